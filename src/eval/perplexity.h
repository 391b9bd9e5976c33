// Perplexity of a model over a text, by llama.cpp's llama-perplexity method, so figures from
// both engines compare directly: the tokenized text is cut into chunks of `ctx` tokens, each
// chunk is evaluated from an empty cache (its first token replaced by BOS when the tokenizer
// adds one), and only the second half of each chunk is scored: the logits at positions
// ctx/2 .. ctx-2 predict tokens ctx/2+1 .. ctx-1, so every scored token sees at least ctx/2
// tokens of context.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <vector>

#include "core/status.h"
#include "kv/eviction.h"
#include "models/model.h"

namespace fastgen::eval {

struct PerplexityOptions {
  int64_t ctx = 512;                // tokens per chunk (llama-perplexity's -c)
  int64_t chunks = -1;              // chunks evaluated; -1: every whole chunk of the text
  std::optional<int32_t> bos;       // replaces each chunk's first token (llama.cpp's add_bos)
  int64_t batch = 512;              // tokens per forward pass; a chunk is evaluated in ctx/batch passes
  // A KV eviction policy (optional): each chunk's first `budget` tokens go through in batched
  // passes, then every later token alone, the cache evicted back to the budget after each pass,
  // so each token is scored with the cache a decoding user of the policy would have.
  KvEvictor* evictor = nullptr;
  // TidalDecode sparse attention (optional): the scored half is decoded a token at a time, as
  // decoding with it would read the cache (prefill stays dense).
  TidalSelector* sparse = nullptr;
};

// One scored position, as the scoring observer sees it (KL-divergence builds on this).
struct ScoredPosition {
  int64_t index = 0;                // 0 .. total scored positions - 1, in text order
  std::span<const float> logits;    // [vocab] the model's logits at this position
  int32_t next = 0;                 // the token these logits predict
  double log_sum_exp = 0;           // log Σ exp(logits)
  double nll = 0;                   // log_sum_exp - logits[next]
};

struct PerplexityProgress {
  int64_t chunk = 0;                // chunks done
  int64_t chunks = 0;               // chunks in all
  double ppl = 0;                   // running estimate after `chunk` chunks
  double seconds = 0;               // elapsed
};

struct PerplexityResult {
  int64_t chunks = 0;
  int64_t ctx = 0;
  int64_t tokens = 0;               // tokens of the text
  int64_t scored = 0;               // positions scored: chunks * (ctx - ctx/2 - 1)
  double mean_nll = 0;              // nats per scored token
  double ppl = 0;                   // exp(mean_nll)
  double ppl_stderr = 0;            // ppl * stderr of the mean nll (llama-perplexity's ±)
  std::vector<double> running_ppl;  // the estimate after each chunk
  double seconds = 0;
};

// The chunks `tokens` holds whole at `ctx` per chunk, capped by options.chunks.
int64_t PerplexityChunks(int64_t tokens, const PerplexityOptions& options);

// Evaluates the model over `tokens`. `observe` (optional) sees every scored position in order
// and may fail the run; `progress` (optional) is called after each chunk. Errors: ctx < 4, or
// fewer than 2 * ctx tokens (llama-perplexity's requirement, so one chunk is never all).
Expected<PerplexityResult> ComputePerplexity(Model& model, std::span<const int32_t> tokens,
                                             const PerplexityOptions& options,
                                             const std::function<Status(const ScoredPosition&)>& observe = {},
                                             const std::function<void(const PerplexityProgress&)>& progress = {});

// log Σ exp(x) over a row, accumulated in double.
double LogSumExp(std::span<const float> x);

}  // namespace fastgen::eval
