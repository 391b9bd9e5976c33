// KL-divergence of a model's next-token distributions from a base model's, over the positions
// the perplexity method scores: the measure of what quantization costs that perplexity alone
// hides (two models can share a perplexity and disagree on many tokens).
//
// The base run saves, per scored position, its log-sum-exp, the nll of the actual next token
// and its top-k logits (ids and values), not the whole vocabulary row: llama.cpp's logits file
// is vocab × 2 bytes per position; this one is 16 + 8k. KL(P‖Q) is then computed over the base's
// top-k tokens plus one bucket holding the rest of both distributions' mass:
//   Σ_{i∈topk} p_i log(p_i/q_i) + p_rest log(p_rest/q_rest)
// By the log-sum inequality this never exceeds the exact KL, and with k = 64 on a model whose
// base puts >99% of its mass on its top 64 tokens it is exact to the rounding (the test
// compares it with the full sum).
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/status.h"
#include "eval/perplexity.h"

namespace fastgen::eval {

// What identifies the evaluation a base file was made for: a comparison over other tokens,
// another chunking or another vocabulary would compare unrelated distributions.
struct KlFileHeader {
  uint32_t vocab = 0;
  uint32_t ctx = 0;
  uint32_t chunks = 0;
  uint32_t top_k = 0;
  uint64_t positions = 0;
  uint64_t token_hash = 0;  // FNV-1a of the evaluated tokens (chunks * ctx ids, BOS-replaced)
};

uint64_t HashTokens(std::span<const int32_t> tokens);

// Writes a base file as the scored positions arrive (ComputePerplexity's observer).
class KlBaseWriter {
 public:
  static Expected<std::unique_ptr<KlBaseWriter>> Create(const std::string& path, const KlFileHeader& header);
  ~KlBaseWriter();
  Status Add(const ScoredPosition& p);
  // Checks that every promised position arrived and closes the file.
  Status Finish();

 private:
  KlBaseWriter() = default;
  std::string path_;
  std::FILE* f_ = nullptr;
  KlFileHeader h_;
  uint64_t written_ = 0;
  std::vector<int32_t> order_;
  std::vector<uint8_t> record_;
};

// One base position read back.
struct KlBaseRecord {
  double log_sum_exp = 0;
  double nll = 0;
  std::span<const int32_t> ids;     // [top_k] descending by logit
  std::span<const float> logits;    // [top_k]
};

struct KlStats {
  int64_t positions = 0;
  double ppl_base = 0, ppl = 0;              // over the same positions
  double ln_ppl_ratio = 0, ln_ppl_ratio_stderr = 0;  // mean of nll - nll_base
  double ppl_ratio = 0, ppl_ratio_stderr = 0;
  double kld_mean = 0, kld_stderr = 0;
  double kld_median = 0, kld_p90 = 0, kld_p99 = 0, kld_max = 0;
  double same_top = 0, same_top_stderr = 0;  // fraction of positions whose argmax agrees
  double delta_p_mean = 0, delta_p_stderr = 0;  // p(next) - p_base(next)
  int top_k = 0;
};

// Reads a base file and compares another model's scored positions with it.
class KlComparer {
 public:
  static Expected<std::unique_ptr<KlComparer>> Open(const std::string& path);
  const KlFileHeader& header() const { return h_; }
  // Refuses an evaluation that is not the one the base file was made from (naming what differs).
  Status CheckMatches(const KlFileHeader& run) const;
  Status Add(const ScoredPosition& p);
  KlStats Finish() const;
  ~KlComparer();

  // KL(base ‖ model) at one position from the base's top-k record and the model's full row.
  static double Divergence(const KlBaseRecord& base, std::span<const float> logits, double log_sum_exp);

 private:
  KlComparer() = default;
  std::string path_;
  std::FILE* f_ = nullptr;         // read one record per Add, in order
  KlFileHeader h_;
  uint64_t read_ = 0;
  std::vector<uint8_t> record_;
  std::vector<float> kld_, d_nll_, d_p_;
  int64_t same_top_ = 0;
  double nll_sum_ = 0, nll_base_sum_ = 0;
};

}  // namespace fastgen::eval
