// Speculative decoding, part 2: the acceptance rules applied to one drafted token.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "decoding/sampler.h"

namespace fastgen::speculative {

// Which drafted tokens the verifier keeps.
enum class AcceptRule {
  // Keep a drafted token iff it is what the target's sampler picks in greedy mode (argmax
  // after penalties and bias). Output identical to plain greedy decoding. Needs temperature 0.
  kGreedy,
  // Speculative sampling (Leviathan et al. 2023, Chen et al. 2023): keep x with probability
  // min(1, p(x)/q(x)), else draw from max(0, p - q) renormalized. p and q are both the sampler's
  // final distributions (every transform applied), so the output is distributed exactly as
  // plain sampling from the target. Drafts with q are chains; deterministic drafts may be
  // trees, whose siblings are tried in turn (AcceptSampledAmong).
  kSampling,
  // BiLD (Kim et al. 2023), opt-in and NOT lossless: keep a drafted token unless the target
  // finds it too unlikely, -log p_target(x) > rollback_threshold (p after the greedy sampler's
  // penalties and bias, softmax at temperature 1); the first rejected token is replaced by the
  // target's greedy choice. Its fallback half (when the draft stops) is the draft model's
  // min_confidence. Needs temperature 0.
  kBild,
};

// Speculative sampling for one drafted token x with target distribution p and draft
// distribution q (empty: q is one-hot at x). Returns true if x is kept; otherwise writes the
// replacement drawn from the residual into *token. Uses one uniform from `sampler` for the test
// and one more for a replacement draw. `scratch` holds the residual.
bool AcceptSampled(std::span<const float> p, std::span<const float> q, int32_t x, Sampler& sampler,
                   std::vector<float>* scratch, int32_t* token);

// Recursive rejection sampling over deterministic candidates xs (distinct tokens, q one-hot at
// each: a token tree's siblings): xs[k] is kept with probability p(xs[k]) / (mass p has left
// after removing xs[0..k)), else removed from p; so the result is distributed exactly as p.
// Returns the index of the kept candidate, or -1 with *token drawn from what is left of p.
// `p` (the target's final distribution) is modified.
int32_t AcceptSampledAmong(std::span<float> p, std::span<const int32_t> xs, Sampler& sampler, int32_t* token);

// BiLD's test: -log softmax(logits)[x] <= threshold, with the softmax of `logits` at T = 1.
bool AcceptBild(std::span<const float> logits, int32_t x, float rollback_threshold);

}  // namespace fastgen::speculative
