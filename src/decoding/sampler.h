// Token selection from one step's logits: greedy, or sampling with penalties, logit bias,
// temperature and top-k / top-p / min-p truncation, driven by a seeded, portable PRNG.
//
// The sampler exposes the final probability distribution (Distribution), not only a sampled id,
// because exact speculative sampling needs p(x) of both the draft and the target after every
// transform to accept or resample draft tokens.
//
// Order of transforms (the Hugging Face `generate` order, which is also what the OpenAI-style
// parameters assume):
//   1. NaN logits become -inf (a NaN must never win an argmax or poison the softmax sum).
//   2. Penalties over the last `penalty_last_n` tokens of the history: repetition penalty
//      (multiplicative, once per distinct token), then presence and frequency (additive).
//   3. Logit bias (added; -inf bans a token), then the allowed mask when one is given (grammars).
//   4. Greedy (temperature <= 0) stops here: one-hot at the argmax, lowest index on ties.
//   5. Temperature: logits are divided by T before any truncation, so top-p and min-p see the
//      distribution that will actually be sampled from. llama.cpp's default chain applies
//      temperature last instead; we follow HF because then "top_p = 0.9" means 90% of the mass
//      of the distribution the user asked for, and the result is identical for top-k anyway
//      (temperature does not change the ranking).
//   6. top-k: the k highest logits survive; ties at the boundary go to the lower token id so
//      the kept set is deterministic.
//   7. top-p (nucleus): of the top-k survivors, renormalized, keep the shortest
//      highest-first prefix whose cumulative mass reaches top_p (always at least one token).
//   8. min-p: keep survivors with p >= min_p * p_max. min-p is a ratio test, so it is unaffected
//      by the renormalization after steps 6-7.
//   9. Renormalize the survivors; every filtered token gets exactly 0.
//
// Degenerate input: if every logit is -inf or NaN after bias (e.g. the caller banned the whole
// vocabulary), the distribution is a one-hot at token 0, matching greedy's lowest-index
// tie-break over an all -inf row. If some logits are +inf, the +inf tokens share the mass
// equally and everything else gets 0.
//
// History ids outside [0, vocab) are ignored by the penalties; logit-bias ids outside the vocab
// are ignored too (ValidateSamplerOptions rejects them before a Sampler is built).
#pragma once

#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "core/status.h"

namespace fastgen {

struct SamplerOptions {
  float temperature = 1.0f;      // <= 0 means greedy (argmax after penalties and bias)
  int32_t top_k = 0;             // 0 = off
  float top_p = 1.0f;            // 1 = off
  float min_p = 0.0f;            // 0 = off; keep tokens with p >= min_p * p_max
  float repetition_penalty = 1.0f;  // logit>0 ? logit/penalty : logit*penalty, once per token
  float presence_penalty = 0.0f;    // logit -= presence if count>0
  float frequency_penalty = 0.0f;   // logit -= frequency * count
  int32_t penalty_last_n = 64;      // history window of the penalties; -1 = all, 0 = none
  std::vector<std::pair<int32_t, float>> logit_bias;  // added to logits (-inf bans)
  uint64_t seed = 0;
};

// Checks every field against the documented ranges; the message names the offending field.
// temperature must be finite (<= 0 selects greedy); top_k >= 0; top_p in (0, 1]; min_p in
// [0, 1]; repetition_penalty finite and > 0; presence/frequency penalties finite (negative
// values reward repetition, as in the OpenAI API); penalty_last_n >= -1; logit-bias ids in
// [0, vocab_size) with values finite or -inf (+inf would make every other token impossible
// without saying so; ban the others instead).
Status ValidateSamplerOptions(const SamplerOptions& opts, int32_t vocab_size);

// xoshiro256** (Blackman & Vigna), state seeded by splitmix64 from a 64-bit seed. Chosen over
// std::mt19937 + std::uniform_real_distribution because those distributions are
// implementation-defined and differ between standard libraries; this one is bit-identical
// everywhere, so a seed reproduces a generation on any platform.
class Xoshiro256StarStar {
 public:
  explicit Xoshiro256StarStar(uint64_t seed);
  uint64_t Next();
  // Uniform in [0, 1): the top 53 bits of Next() scaled by 2^-53.
  double NextDouble();

 private:
  uint64_t s_[4];
};

class Sampler {
 public:
  // `opts` should have passed ValidateSamplerOptions; invalid values are not re-checked here.
  // vocab_size must be >= 1. All per-call scratch is allocated here, so Distribution and
  // Sample do not allocate (Distribution may grow `probs` once on its first use).
  Sampler(SamplerOptions opts, int32_t vocab_size);

  // Writes the final normalized distribution over the vocabulary into `probs` (resized to
  // vocab_size; zeros for filtered tokens). `logits` must hold vocab_size values; `history`
  // is every token so far (prompt and generated), oldest first.
  // `allowed` (optional): a bitset over the vocabulary (bit id % 64 of word id / 64), e.g. a
  // grammar's mask; tokens outside it get -inf after the logit bias, before temperature and
  // truncation, so top-k / top-p / min-p choose among allowed tokens only.
  void Distribution(std::span<const float> logits, std::span<const int32_t> history,
                    std::vector<float>* probs, std::span<const uint64_t> allowed = {});

  // Inverse-CDF draw from `probs` (need not be exactly normalized; non-positive and NaN entries
  // are never chosen) using one NextUniform(). Returns -1 if no entry is positive.
  int32_t SampleFrom(std::span<const float> probs);

  // Distribution + SampleFrom. Greedy mode skips the distribution and the RNG: argmax after
  // penalties and bias, lowest index on ties.
  int32_t Sample(std::span<const float> logits, std::span<const int32_t> history,
                 std::span<const uint64_t> allowed = {});

  // [0, 1) from this sampler's RNG (speculative acceptance draws from the same stream).
  double NextUniform() { return rng_.NextDouble(); }

  const SamplerOptions& options() const { return opts_; }
  int32_t vocab_size() const { return vocab_size_; }
  bool greedy() const { return opts_.temperature <= 0.0f; }

 private:
  struct Candidate {
    float z;     // (logit - max logit) / temperature, <= 0
    int32_t id;
    float w;     // exp(z), unnormalized weight in [0, 1]
  };
  // Tokens ranked at or above (z, id) in the (z desc, id asc) order survive top-k / top-p.
  struct Cutoff {
    float z;
    int32_t id;
  };

  // Steps 1-3 (and the allowed mask) into logits_.
  void ProcessLogits(std::span<const float> logits, std::span<const int32_t> history,
                     std::span<const uint64_t> allowed);
  void ApplyPenalties(std::span<const int32_t> history);
  // Lowest-index argmax of logits_ (0 if all are -inf).
  int32_t ArgmaxProcessed() const;
  // Steps 6-7 given z (in logits_) and weights w; the last survivor in rank order.
  Cutoff FindCutoff(const float* w);
  // Fills cands_ with the k best tokens by (z desc, id asc), best first.
  void SelectTopK(size_t k, const float* w);
  // top-p over the whole vocabulary without sorting it (histogram of weights, see .cc).
  Cutoff TopPCutoff(const float* w);

  SamplerOptions opts_;
  int32_t vocab_size_;
  bool has_penalties_;
  Xoshiro256StarStar rng_;
  std::vector<float> logits_;       // processed logits, then z in place, [vocab]
  std::vector<int32_t> counts_;     // occurrences in the penalty window, [vocab], kept all-zero
  std::vector<int32_t> touched_;    // distinct ids whose counts_ are nonzero during a call
  std::vector<Candidate> cands_;    // top-k survivors / the top-p boundary bin
  std::vector<double> bin_mass_;    // top-p histogram
  std::vector<float> probs_;        // Sample()'s distribution
};

}  // namespace fastgen
