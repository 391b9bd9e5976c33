// The plain generation loop: one batched prefill of the prompt, then one decode step per token,
// sampling each next token, until a stop id or the token budget.
#pragma once

#include <functional>
#include <span>
#include <vector>

#include "core/status.h"
#include "decoding/constrained/token_mask.h"
#include "decoding/sampler.h"
#include "kv/eviction.h"
#include "models/model.h"

namespace fastgen {

struct GenerateOptions {
  int64_t max_new_tokens = 128;
  SamplerOptions sampler;
  bool ignore_eos = false;          // keep going past the model's end-of-sequence ids
  std::vector<int32_t> stop_ids;    // extra ids that end generation (e.g. a chat turn's end)
  // When set, receives the logits of every prompt position: [n_prompt, vocab].
  std::vector<float>* prompt_logits = nullptr;
  // KV eviction (optional): the prompt goes through in pieces that fit the cache past the
  // budget, the cache is evicted back to the budget after each piece and each decoded token,
  // and generation runs until `max_positions` positions (prompt + generated), which must be set,
  // rather than until the cache is full. kv.capacity() must exceed the budget.
  KvEvictor* evictor = nullptr;
  int64_t max_positions = 0;
  // Constrained decoding (optional): each token is sampled among those the grammar allows from
  // where the text stands (end-of-sequence ids only where it may end), and generation stops once
  // the grammar allows nothing more. Its vocabulary's end ids should be the stop ids above.
  constrained::TokenConstraint* constraint = nullptr;
  // Banned strings (optional, BannedStrings): the output never contains one, however tokens split
  // it; token_bytes (Tokenizer::TokenBytes) must be set with them. The callback sees a token once
  // no banned string can begin in it.
  std::vector<std::string> banned_strings;
  const std::vector<std::string>* token_bytes = nullptr;
};

// kGrammarComplete: the constraint's grammar allows nothing more (the text is a complete sentence).
enum class StopReason { kMaxTokens, kStopToken, kCallback, kContextFull, kGrammarComplete };

struct GenerateResult {
  std::vector<int32_t> tokens;  // generated ids (a stop id that ended generation included)
  StopReason stop_reason = StopReason::kMaxTokens;
  int64_t prompt_tokens = 0;
  double prefill_seconds = 0;
  double decode_seconds = 0;     // from the first sampled token to the last
};

// Called with each generated id as soon as it is sampled; return false to stop.
using TokenCallback = std::function<bool(int32_t)>;

// One constrained sampling step: samples among the tokens `constraint` allows and advances it
// past the token. `allowed` is scratch for the mask. An error when nothing is allowed.
Expected<int32_t> SampleConstrained(Sampler& sampler, constrained::TokenConstraint& constraint,
                                    std::span<const float> logits, std::span<const int32_t> history,
                                    std::vector<uint64_t>* allowed);

// The same with a constraint (optional) and tokens refused at this step (`banned`, optional).
Expected<int32_t> SampleRestricted(Sampler& sampler, constrained::TokenConstraint* constraint,
                                   std::span<const int32_t> banned, std::span<const float> logits,
                                   std::span<const int32_t> history, std::vector<uint64_t>* allowed);

// Runs `prompt` through `model` into `kv` (which may already hold a prefix) and generates.
Expected<GenerateResult> Generate(Model& model, KvCache& kv, std::span<const int32_t> prompt,
                                  const GenerateOptions& options, const TokenCallback& on_token);

}  // namespace fastgen
