#include "decoding/sampler.h"

#include <algorithm>
#include <bit>
#include <cassert>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>

namespace fastgen {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
constexpr float kPosInf = std::numeric_limits<float>::infinity();

// top-p counts a prefix as having reached top_p when it is within this much mass of it. Without
// the slack, a prefix whose exact mass equals top_p (0.4 + 0.3 for top_p = 0.7) would miss by a
// rounding error and drag in one more token, depending on float noise in the logits.
constexpr double kTopPSlack = 1e-6;

// top-p histogram: weights w in [0, 1] are binned by their float bits with 3 mantissa bits kept,
// i.e. 8 bins per octave, so one bin spans a weight ratio of at most 1.125. Bin 0 holds
// w in (0.9375, 1]; w == 0 lands in the last bin.
constexpr uint32_t kOneBits = 0x3F800000u;
constexpr int kBinShift = 20;
constexpr size_t kNumBins = (kOneBits >> kBinShift) + 1;

size_t BinOf(float w) {
  const uint32_t bits = std::min(std::bit_cast<uint32_t>(w), kOneBits);
  return (kOneBits - bits) >> kBinShift;
}

// exp for the softmax, valid for z <= 0 (all the sampler needs): Cody-Waite range reduction and
// the Cephes expf polynomial (about 1 ulp). Written branch-free, with bit masks instead of
// selects that GCC will not if-convert under -ftrapping-math, so the per-vocabulary loop
// vectorizes; std::exp is an opaque libm call that dominated a 150k-token step. z below -87.3
// (including -inf and NaN) gives exactly 0, and FastExp(0) == 1 exactly, which min-p relies on
// (the top token's weight is its p_max).
inline float FastExp(float z) {
  constexpr float kMin = -87.3f;
  const uint32_t in_range = 0u - static_cast<uint32_t>(z >= kMin);
  const float x = std::bit_cast<float>((std::bit_cast<uint32_t>(z) & in_range) |
                                       (std::bit_cast<uint32_t>(kMin) & ~in_range));
  // Round x * log2(e) to nearest with the 1.5 * 2^23 trick (no libm call, vectorizes on SSE2).
  constexpr float kRound = 12582912.0f;
  const float fn = (x * 1.44269504088896341f + kRound) - kRound;
  const float r = (x - fn * 0.693359375f) + fn * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float y = p * r * r + r + 1.0f;
  const float scale = std::bit_cast<float>((static_cast<int32_t>(fn) + 127) << 23);
  return std::bit_cast<float>(std::bit_cast<uint32_t>(y * scale) & in_range);
}

// Sum in double with independent accumulators: a single running sum is latency-bound at a few
// cycles per element, which is most of a pass over 150k probabilities.
template <typename F>
double SumDouble(size_t begin, size_t end, F value) {
  double acc[4] = {0, 0, 0, 0};
  size_t i = begin;
  for (; i + 4 <= end; i += 4) {
    for (int j = 0; j < 4; ++j) acc[j] += value(i + j);
  }
  for (; i < end; ++i) acc[0] += value(i);
  return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

// Entries of a caller's distribution that SampleFrom may choose: positive and finite.
inline float Usable(float p) { return p > 0.0f && p < kPosInf ? p : 0.0f; }

// SampleFrom walks the distribution in blocks of this many entries, so only one block is
// scanned element by element.
constexpr size_t kSampleBlock = 256;

// Rank order of candidates: higher z first, equal z to the lower id, so every truncation
// boundary that falls on a tie is deterministic.
bool Higher(float za, int32_t ia, float zb, int32_t ib) {
  return za > zb || (za == zb && ia < ib);
}

// Integers as integers, floats with six significant digits ("0.95", not "0.950000").
std::string Num(int32_t v) { return std::to_string(v); }
std::string Num(float v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%g", static_cast<double>(v));
  return buf;
}

uint64_t SplitMix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

}  // namespace

Status ValidateSamplerOptions(const SamplerOptions& o, int32_t vocab_size) {
  if (vocab_size < 1) return InvalidArgument("vocab_size must be >= 1, got " + Num(vocab_size));
  if (!std::isfinite(o.temperature)) {
    return InvalidArgument("temperature must be finite, got " + Num(o.temperature));
  }
  if (o.top_k < 0) return InvalidArgument("top_k must be >= 0 (0 = off), got " + Num(o.top_k));
  if (!(o.top_p > 0.0f && o.top_p <= 1.0f)) {
    return InvalidArgument("top_p must be in (0, 1], got " + Num(o.top_p));
  }
  if (!(o.min_p >= 0.0f && o.min_p <= 1.0f)) {
    return InvalidArgument("min_p must be in [0, 1], got " + Num(o.min_p));
  }
  if (!(o.repetition_penalty > 0.0f) || !std::isfinite(o.repetition_penalty)) {
    return InvalidArgument("repetition_penalty must be finite and > 0, got " +
                           Num(o.repetition_penalty));
  }
  if (!std::isfinite(o.presence_penalty)) {
    return InvalidArgument("presence_penalty must be finite, got " + Num(o.presence_penalty));
  }
  if (!std::isfinite(o.frequency_penalty)) {
    return InvalidArgument("frequency_penalty must be finite, got " + Num(o.frequency_penalty));
  }
  if (o.penalty_last_n < -1) {
    return InvalidArgument("penalty_last_n must be >= -1 (-1 = whole history), got " +
                           Num(o.penalty_last_n));
  }
  for (const auto& [id, bias] : o.logit_bias) {
    if (id < 0 || id >= vocab_size) {
      return InvalidArgument("logit_bias token id " + Num(id) + " is outside the vocabulary [0, " +
                             Num(vocab_size) + ")");
    }
    if (std::isnan(bias) || bias == kPosInf) {
      return InvalidArgument("logit_bias for token " + Num(id) +
                             " must be finite or -inf, got " + Num(bias));
    }
  }
  return Status::Ok();
}

Xoshiro256StarStar::Xoshiro256StarStar(uint64_t seed) {
  // splitmix64 spreads any seed (including 0) over the 256-bit state; xoshiro must not start
  // from all zeros, which splitmix64 cannot produce for four consecutive outputs.
  uint64_t sm = seed;
  for (uint64_t& s : s_) s = SplitMix64(sm);
}

uint64_t Xoshiro256StarStar::Next() {
  const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = Rotl(s_[3], 45);
  return result;
}

double Xoshiro256StarStar::NextDouble() {
  return static_cast<double>(Next() >> 11) * 0x1.0p-53;
}

Sampler::Sampler(SamplerOptions opts, int32_t vocab_size)
    : opts_(std::move(opts)),
      vocab_size_(vocab_size),
      has_penalties_(opts_.penalty_last_n != 0 &&
                     (opts_.repetition_penalty != 1.0f || opts_.presence_penalty != 0.0f ||
                      opts_.frequency_penalty != 0.0f)),
      rng_(opts_.seed) {
  assert(vocab_size_ >= 1);
  const size_t n = static_cast<size_t>(std::max(vocab_size_, 1));
  logits_.resize(n);
  if (has_penalties_) {
    counts_.assign(n, 0);
    touched_.reserve(n);
  }
  if (!greedy()) {
    cands_.reserve(n);
    bin_mass_.resize(kNumBins);
    probs_.reserve(n);
  }
}

void Sampler::ApplyPenalties(std::span<const int32_t> history) {
  const size_t n = history.size();
  const size_t window = opts_.penalty_last_n < 0
                            ? n
                            : std::min(n, static_cast<size_t>(opts_.penalty_last_n));
  // counts_ is all-zero between calls; touched_ remembers which entries to reset, so a call
  // costs O(window) rather than O(vocab).
  for (size_t i = n - window; i < n; ++i) {
    const int32_t id = history[i];
    if (id < 0 || id >= vocab_size_) continue;
    if (counts_[id]++ == 0) touched_.push_back(id);
  }
  const float rep = opts_.repetition_penalty;
  for (int32_t id : touched_) {
    float& x = logits_[id];
    // Dividing a positive logit and multiplying a negative one both make the token less likely;
    // a plain division would *raise* negative logits.
    if (rep != 1.0f) x = x > 0.0f ? x / rep : x * rep;
    x -= opts_.frequency_penalty * static_cast<float>(counts_[id]) + opts_.presence_penalty;
    counts_[id] = 0;
  }
  touched_.clear();
}

void Sampler::ProcessLogits(std::span<const float> logits, std::span<const int32_t> history,
                            std::span<const uint64_t> allowed) {
  assert(logits.size() == static_cast<size_t>(vocab_size_));
  const size_t n = std::min(logits.size(), logits_.size());
  const float* in = logits.data();
  float* out = logits_.data();
  for (size_t i = 0; i < n; ++i) out[i] = in[i] == in[i] ? in[i] : kNegInf;  // NaN -> -inf
  std::fill(logits_.begin() + static_cast<ptrdiff_t>(n), logits_.end(), kNegInf);

  if (has_penalties_) ApplyPenalties(history);

  for (const auto& [id, bias] : opts_.logit_bias) {
    if (id < 0 || id >= vocab_size_) continue;
    float& x = logits_[id];
    x += bias;
    // +inf logit with a -inf ban: the ban wins.
    if (std::isnan(x)) x = kNegInf;
  }
  if (!allowed.empty()) {
    for (size_t w = 0; w < allowed.size() && w * 64 < logits_.size(); ++w) {
      uint64_t banned = ~allowed[w];
      while (banned) {
        const size_t i = w * 64 + static_cast<size_t>(__builtin_ctzll(banned));
        if (i >= logits_.size()) break;
        logits_[i] = kNegInf;
        banned &= banned - 1;
      }
    }
  }
}

namespace {
float MaxOf(const std::vector<float>& v) {
  // Eight independent maxima so the reduction is not one long dependency chain.
  float m[8];
  std::fill(m, m + 8, kNegInf);
  const size_t n = v.size();
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int j = 0; j < 8; ++j) m[j] = v[i + j] > m[j] ? v[i + j] : m[j];
  }
  for (; i < n; ++i) m[0] = v[i] > m[0] ? v[i] : m[0];
  return *std::max_element(m, m + 8);
}
}  // namespace

int32_t Sampler::ArgmaxProcessed() const {
  // The first index holding the maximum: the lowest index wins ties (0 when all are -inf).
  const float m = MaxOf(logits_);
  const auto it = std::find(logits_.begin(), logits_.end(), m);
  return static_cast<int32_t>(it - logits_.begin());
}

void Sampler::SelectTopK(size_t k, const float* w) {
  const float* z = logits_.data();
  const size_t n = logits_.size();
  const auto higher = [](const Candidate& a, const Candidate& b) {
    return Higher(a.z, a.id, b.z, b.id);
  };
  cands_.clear();
  if (k * 16 <= n) {
    // A bounded heap whose front is the worst survivor: almost every token is rejected by one
    // comparison, so this is O(vocab) in practice. A later token can never beat an equal z
    // already held (its id is larger), hence the strict '>'.
    for (size_t i = 0; i < k; ++i) cands_.push_back({z[i], static_cast<int32_t>(i), 0.0f});
    std::make_heap(cands_.begin(), cands_.end(), higher);
    for (size_t i = k; i < n; ++i) {
      if (z[i] > cands_.front().z) {
        std::pop_heap(cands_.begin(), cands_.end(), higher);
        cands_.back() = {z[i], static_cast<int32_t>(i), 0.0f};
        std::push_heap(cands_.begin(), cands_.end(), higher);
      }
    }
    std::sort_heap(cands_.begin(), cands_.end(), higher);
  } else {
    // Large k: selection over all tokens, then sort only the k survivors.
    for (size_t i = 0; i < n; ++i) cands_.push_back({z[i], static_cast<int32_t>(i), 0.0f});
    std::nth_element(cands_.begin(), cands_.begin() + static_cast<ptrdiff_t>(k), cands_.end(),
                     higher);
    cands_.resize(k);
    std::sort(cands_.begin(), cands_.end(), higher);
  }
  for (Candidate& c : cands_) c.w = w[c.id];
}

Sampler::Cutoff Sampler::TopPCutoff(const float* w) {
  // Without top-k the nucleus can be anything from 1 token to most of the vocabulary, so rather
  // than sorting we histogram the weights into bins that are monotone in w: every bin above
  // the one where the cumulative mass crosses top_p is wholly inside the nucleus, every bin
  // below wholly outside, and only the crossing bin is sorted. Cost: two passes over the
  // vocabulary plus sorting one bin.
  const float* z = logits_.data();
  const size_t n = logits_.size();
  std::fill(bin_mass_.begin(), bin_mass_.end(), 0.0);
  for (size_t i = 0; i < n; ++i) bin_mass_[BinOf(w[i])] += w[i];
  double total = 0.0;
  for (double m : bin_mass_) total += m;
  const double target = (static_cast<double>(opts_.top_p) - kTopPSlack) * total;

  double cum = 0.0;
  size_t crossing = kNumBins;
  for (size_t b = 0; b < kNumBins; ++b) {
    if (cum + bin_mass_[b] >= target) {
      crossing = b;
      break;
    }
    cum += bin_mass_[b];
  }
  const Cutoff none{kNegInf, vocab_size_};
  if (crossing == kNumBins) return none;  // only if rounding kept the total below the target

  cands_.clear();
  for (size_t i = 0; i < n; ++i) {
    if (BinOf(w[i]) == crossing) cands_.push_back({z[i], static_cast<int32_t>(i), w[i]});
  }
  if (cands_.empty()) return none;  // unreachable: the crossing bin has positive mass
  std::sort(cands_.begin(), cands_.end(), [](const Candidate& a, const Candidate& b) {
    return Higher(a.z, a.id, b.z, b.id);
  });
  for (const Candidate& c : cands_) {
    cum += c.w;
    if (cum >= target) return {c.z, c.id};
  }
  return {cands_.back().z, cands_.back().id};  // summation-order rounding: the whole bin
}

Sampler::Cutoff Sampler::FindCutoff(const float* w) {
  const Cutoff none{kNegInf, vocab_size_};  // ranks below every token: keeps all
  const size_t n = logits_.size();
  const size_t k = static_cast<size_t>(std::max(opts_.top_k, 0));
  const bool use_top_k = k > 0 && k < n;
  const bool use_top_p = opts_.top_p < 1.0f;
  if (!use_top_k) return use_top_p ? TopPCutoff(w) : none;

  SelectTopK(k, w);
  size_t keep = cands_.size();
  if (use_top_p) {
    // top-p over the top-k survivors renormalized: compare against their own total mass.
    double total = 0.0;
    for (const Candidate& c : cands_) total += c.w;
    const double target = (static_cast<double>(opts_.top_p) - kTopPSlack) * total;
    double cum = 0.0;
    for (size_t i = 0; i < cands_.size(); ++i) {
      cum += cands_[i].w;
      if (cum >= target) {
        keep = i + 1;
        break;
      }
    }
  }
  return {cands_[keep - 1].z, cands_[keep - 1].id};
}

void Sampler::Distribution(std::span<const float> logits, std::span<const int32_t> history,
                           std::vector<float>* probs, std::span<const uint64_t> allowed) {
  ProcessLogits(logits, history, allowed);
  const size_t n = logits_.size();
  probs->resize(n);
  float* w = probs->data();

  float max_logit = MaxOf(logits_);
  // Greedy, or everything banned (see the header): a one-hot at the lowest-index argmax.
  if (greedy() || max_logit == kNegInf) {
    const int32_t best = ArgmaxProcessed();
    std::fill(probs->begin(), probs->end(), 0.0f);
    (*probs)[best] = 1.0f;
    return;
  }

  float* z = logits_.data();
  if (max_logit == kPosInf) {
    // (inf - inf) would be NaN; the +inf tokens tie at the top and take all the mass.
    for (size_t i = 0; i < n; ++i) z[i] = z[i] == kPosInf ? 0.0f : kNegInf;
    max_logit = 0.0f;
  }

  // z = (logit - max) / T in place, and its weight. Subtracting the max before scaling keeps
  // z <= 0, so nothing overflows even for a tiny temperature, and the top token has z == 0 and
  // weight exactly 1.
  const float t = opts_.temperature;
  for (size_t i = 0; i < n; ++i) {
    const float zi = (z[i] - max_logit) / t;
    z[i] = zi;
    w[i] = FastExp(zi);
  }

  const Cutoff cut = FindCutoff(w);
  // min-p: p >= min_p * p_max is w >= min_p, because the top token (weight 1) always survives
  // top-k and top-p. With min_p == 0 the test keeps everything.
  const float min_w = opts_.min_p;
  for (size_t i = 0; i < n; ++i) {
    const bool keep = Higher(z[i], static_cast<int32_t>(i), cut.z, cut.id) ||
                      (z[i] == cut.z && static_cast<int32_t>(i) == cut.id);
    w[i] = keep && w[i] >= min_w ? w[i] : 0.0f;
  }
  const double inv = 1.0 / SumDouble(0, n, [w](size_t i) { return static_cast<double>(w[i]); });
  for (size_t i = 0; i < n; ++i) w[i] = static_cast<float>(w[i] * inv);
}

int32_t Sampler::SampleFrom(std::span<const float> probs) {
  const float* p = probs.data();
  const size_t n = probs.size();
  const auto block_sum = [p, n](size_t b) {
    return SumDouble(b, std::min(n, b + kSampleBlock),
                     [p](size_t i) { return static_cast<double>(Usable(p[i])); });
  };
  double total = 0.0;
  for (size_t b = 0; b < n; b += kSampleBlock) total += block_sum(b);
  if (!(total > 0.0)) return -1;
  const double r = NextUniform() * total;

  // Skip whole blocks while the cumulative mass stays <= r, then scan the block that exceeds
  // it. Only usable (positive) entries can be returned, so zero-probability tokens are never
  // drawn, and a scan that rounding leaves short of r returns the block's last usable entry.
  double cum = 0.0;
  for (size_t b = 0; b < n; b += kSampleBlock) {
    const double bs = block_sum(b);
    if (cum + bs > r) {
      int32_t last = -1;
      for (size_t i = b; i < std::min(n, b + kSampleBlock); ++i) {
        if (Usable(p[i]) == 0.0f) continue;
        cum += p[i];
        last = static_cast<int32_t>(i);
        if (cum > r) break;
      }
      return last;
    }
    cum += bs;
  }
  // r rounded up to the total: the last usable entry.
  for (size_t i = n; i-- > 0;) {
    if (Usable(p[i]) > 0.0f) return static_cast<int32_t>(i);
  }
  return -1;
}

int32_t Sampler::Sample(std::span<const float> logits, std::span<const int32_t> history,
                        std::span<const uint64_t> allowed) {
  if (greedy()) {
    ProcessLogits(logits, history, allowed);
    return ArgmaxProcessed();
  }
  Distribution(logits, history, &probs_, allowed);
  return SampleFrom(probs_);
}

}  // namespace fastgen
