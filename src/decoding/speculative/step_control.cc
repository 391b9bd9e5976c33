#include "decoding/speculative/step_control.h"

#include <algorithm>

namespace fastgen::speculative {
namespace {

// Per-depth acceptance counts decay by this on every observation of their depth: about the
// last 20 observations count, so the chain length follows a change of text within a few lines.
constexpr double kAcceptDecay = 0.95;
// Weight of the prior (the depth above's rate; 0.5 at depth 1) in pseudo-observations.
constexpr double kAcceptPrior = 1.0;
// Moving-average weight of a new step time. Step times on a shared CPU jitter by 10-20% from
// step to step; 0.15 averages about the last dozen measurements of each length.
constexpr double kTimeAlpha = 0.15;

}  // namespace

LengthPlanner::LengthPlanner(int32_t min_length, int32_t max_length, int32_t initial, int32_t probe_every)
    : min_length_(std::clamp(min_length, 0, std::max(0, max_length))),
      max_length_(std::max(0, max_length)),
      initial_(std::clamp(initial, std::min(1, max_length_), max_length_)),
      probe_every_(std::max(1, probe_every)),
      interval_(probe_every_),
      kept_(static_cast<size_t>(max_length_) + 1, 0.0),
      reached_(static_cast<size_t>(max_length_) + 1, 0.0),
      verify_(static_cast<size_t>(max_length_) + 2) {}

double LengthPlanner::Acceptance(int32_t depth) const {
  const double prior = depth <= 1 ? 0.5 : Acceptance(depth - 1);
  if (depth < 1 || depth > max_length_) return prior;
  const auto d = static_cast<size_t>(depth);
  return (kept_[d] + kAcceptPrior * prior) / (reached_[d] + kAcceptPrior);
}

double LengthPlanner::VerifySeconds(int32_t tokens) const {
  const auto last = static_cast<int32_t>(verify_.size()) - 1;
  tokens = std::clamp(tokens, 1, last);
  if (verify_[static_cast<size_t>(tokens)].n > 0) return verify_[static_cast<size_t>(tokens)].value;
  // Nearest measured counts on either side; two below when there is none above.
  int32_t lo = tokens - 1, hi = tokens + 1;
  while (lo >= 1 && verify_[static_cast<size_t>(lo)].n == 0) --lo;
  while (hi <= last && verify_[static_cast<size_t>(hi)].n == 0) ++hi;
  const auto at = [&](int32_t n) { return verify_[static_cast<size_t>(n)].value; };
  if (lo >= 1 && hi <= last) return at(lo) + (at(hi) - at(lo)) * (tokens - lo) / (hi - lo);
  if (hi <= last) return at(hi);  // nothing shorter measured: a longer pass bounds it
  if (lo < 1) return 0;           // nothing measured
  int32_t lo2 = lo - 1;
  while (lo2 >= 1 && verify_[static_cast<size_t>(lo2)].n == 0) --lo2;
  if (lo2 < 1) return at(lo);
  return at(lo) + std::max(0.0, (at(lo) - at(lo2)) / (lo - lo2)) * (tokens - lo);
}

double LengthPlanner::ExpectedRate(int32_t length) const {
  double tokens = 1, reach = 1;
  for (int32_t j = 1; j <= length; ++j) {
    reach *= Acceptance(j);
    tokens += reach;
  }
  const double cost = VerifySeconds(length + 1) + length * draft_per_token_.value;
  return cost > 0 ? tokens / cost : 0.0;
}

int32_t LengthPlanner::Choose() {
  if (max_length_ == 0) return 0;
  // Warm-up: a plain baseline, then the initial length, each measured twice.
  if (min_length_ == 0 && verify_[1].n < 2) return 0;
  if (verify_[static_cast<size_t>(initial_) + 1].n < 2) return initial_;
  int32_t best = min_length_;
  double best_rate = ExpectedRate(best);
  for (int32_t l = best + 1; l <= max_length_; ++l) {
    const double r = ExpectedRate(l);
    if (r > best_rate) best = l, best_rate = r;
  }
  // Probes: a neighbour of the best length, alternately shorter and longer. While the shortest
  // allowed length (plain decoding, usually) wins they back off, doubling up to 8x (a proposer that never pays costs a few probes per
  // generation); once drafting wins they come every probe_every steps again.
  if (best > min_length_) interval_ = probe_every_;
  if (++since_probe_ < interval_) return best;
  since_probe_ = 0;
  if (best == min_length_) interval_ = std::min(interval_ * 2, 8 * probe_every_);
  probe_longer_ = !probe_longer_;
  int32_t probe = probe_longer_ ? best + 1 : best - 1;
  if (probe < min_length_) probe = best + 1;
  if (probe > max_length_) probe = best - 1;
  return std::clamp(probe, min_length_, max_length_);
}

void LengthPlanner::Record(int32_t drafted, int32_t accepted, double propose_seconds, double verify_seconds) {
  drafted = std::clamp(drafted, 0, max_length_);
  accepted = std::clamp(accepted, 0, drafted);
  verify_[static_cast<size_t>(drafted) + 1].Add(verify_seconds, kTimeAlpha);
  if (drafted == 0) return;
  draft_per_token_.Add(propose_seconds / drafted, kTimeAlpha);
  // Depth j was reached when tokens 1..j-1 were kept; it counts as kept when j <= accepted.
  for (int32_t j = 1; j <= std::min(accepted + 1, drafted); ++j) {
    const auto d = static_cast<size_t>(j);
    reached_[d] = kAcceptDecay * reached_[d] + 1;
    kept_[d] = kAcceptDecay * kept_[d] + (j <= accepted ? 1 : 0);
  }
}

FallbackController::FallbackController(bool enabled, int32_t probe_every)
    : enabled_(enabled), probe_every_(std::max(1, probe_every)), interval_(probe_every_) {}

bool FallbackController::Speculate() {
  if (!enabled_) return true;
  if (plain_.n < 2) return false;
  if (spec_.n < 3) return true;
  const bool spec_better = spec_.rate >= plain_.rate;
  if (spec_better != last_better_) interval_ = probe_every_;  // the leader changed: probe soon
  last_better_ = spec_better;
  if (++since_probe_ < interval_) return spec_better;
  since_probe_ = 0;
  interval_ = std::min(interval_ * 2, 64 * probe_every_);
  return !spec_better;
}

void FallbackController::Record(bool spec, int64_t tokens, double seconds) {
  Rate& r = spec ? spec_ : plain_;
  const double rate = static_cast<double>(tokens) / std::max(seconds, 1e-9);
  r.rate = r.n == 0 ? rate : 0.7 * r.rate + 0.3 * rate;
  ++r.n;
}

}  // namespace fastgen::speculative
