#include "decoding/speculative/step_control.h"

#include <algorithm>

namespace fastgen::speculative {
namespace {

// Per-depth acceptance counts decay by this on every observation of their depth: about the
// last 10 observations count, so the chain length follows the text within a line or two.
constexpr double kAcceptDecay = 0.9;
// Weight of the prior (the depth above's rate; 0.5 at depth 1) in pseudo-observations.
constexpr double kAcceptPrior = 1.0;
// Moving-average weights: a relative cost averages about its last dozen measurements (step
// times jitter by 10-20% from step to step), the pace about its last three.
constexpr double kCostAlpha = 0.15;
constexpr double kPaceAlpha = 0.3;
// Drafting's realized rate (DraftGate's cap on its model) averages about its last dozen steps:
// a step commits anywhere from 1 to L + 1 tokens.
constexpr double kRealizedAlpha = 0.15;
// ... and caps the model once it has this many drafting steps: a generation's first drafts are
// often rejected (its first tokens, before the planner has learned the text), and a cap set by
// them made layer skipping decode plainly where it paid 1.14x (fg-target, edit task). Drafting
// at 0.6x of plain's rate or less is capped sooner: a few steps tell that much apart.
constexpr int64_t kRealizedMinSteps = 8;
constexpr int64_t kRealizedMinStepsFarBehind = 3;
constexpr double kFarBehind = 0.6;
// Longest chain planned, whatever the budget (--spec-budget and --draft-max take any size): each
// step's choice costs O(length^2), and no draft model is kept whole for dozens of tokens.
constexpr int32_t kMaxLength = 64;

}  // namespace

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

LengthPlanner::LengthPlanner(int32_t max_length, int32_t initial, int32_t probe_every)
    : max_length_(std::clamp(max_length, 1, kMaxLength)),
      anchor_(std::clamp(initial, 1, max_length_)),
      probe_every_(std::max(1, probe_every)),
      kept_(static_cast<size_t>(max_length_) + 1, 0.0),
      reached_(static_cast<size_t>(max_length_) + 1, 0.0),
      cost_(static_cast<size_t>(max_length_) + 1),
      explored_(static_cast<size_t>(max_length_) + 1, false) {}

double LengthPlanner::AcceptanceGiven(int32_t depth, double prior) const {
  const auto d = static_cast<size_t>(depth);
  return (kept_[d] + kAcceptPrior * prior) / (reached_[d] + kAcceptPrior);
}

double LengthPlanner::Acceptance(int32_t depth) const {
  double a = 0.5;  // the prior at depth 1; each depth's estimate is the next one's prior
  for (int32_t j = 1; j <= std::min(depth, max_length_); ++j) a = AcceptanceGiven(j, a);
  return a;
}

bool LengthPlanner::Measured(int32_t length) const {
  return length == anchor_ ? pace_.n > 0 : cost_[static_cast<size_t>(length)].n > 0;
}

double LengthPlanner::RelativeCost(int32_t length) const {
  length = std::clamp(length, 1, max_length_);
  const auto at = [&](int32_t l) { return l == anchor_ ? 1.0 : cost_[static_cast<size_t>(l)].value; };
  if (Measured(length)) return at(length);
  // Nearest measured lengths on either side; two below when there is none above.
  int32_t lo = length - 1, hi = length + 1;
  while (lo >= 1 && !Measured(lo)) --lo;
  while (hi <= max_length_ && !Measured(hi)) ++hi;
  if (lo >= 1 && hi <= max_length_) return at(lo) + (at(hi) - at(lo)) * (length - lo) / (hi - lo);
  if (hi <= max_length_) return at(hi);  // nothing shorter measured: a longer step bounds it
  if (lo < 1) return 0;                  // nothing measured
  int32_t lo2 = lo - 1;
  while (lo2 >= 1 && !Measured(lo2)) --lo2;
  if (lo2 < 1) return at(lo);
  return at(lo) + std::max(0.0, (at(lo) - at(lo2)) / (lo - lo2)) * (length - lo);
}

double LengthPlanner::StepSeconds(int32_t length) const { return pace_.value * RelativeCost(length); }

LengthPlanner::Plan LengthPlanner::Best() const {
  // E(L) / c(L) for every L in one pass; the pace is common to all lengths, so this ranks them
  // as E(L) / C(L) does.
  Plan plan;
  double tokens = 1, reach = 1, a = 0.5;
  for (int32_t l = 1; l <= max_length_; ++l) {
    a = AcceptanceGiven(l, a);
    reach *= a;
    tokens += reach;
    const double c = RelativeCost(l);
    if (c > 0 && tokens / c > plan.tokens_per_unit) plan = {l, tokens / c, reach};
  }
  return plan;
}

int32_t LengthPlanner::Choose(const Plan& plan) {
  if (pace_.n < 2) return anchor_;  // the unit first
  const int32_t best = plan.best;
  best_ = best;
  // The best length's neighbours are measured once before anything else: until then their
  // costs are interpolated, and past the longest measured length flatly (optimistically).
  for (int32_t l : {best + 1, best - 1}) {
    if (l < 1 || l > max_length_ || Measured(l) || explored_[static_cast<size_t>(l)]) continue;
    explored_[static_cast<size_t>(l)] = true;  // once: a pair with an unmeasured length sets nothing
    return l;
  }
  if (++since_probe_ < probe_every_ || max_length_ == 1) return best;
  since_probe_ = 0;
  // Probes alternate longer and shorter, except while whole drafts of the best length are
  // mostly kept: then only a longer one can find out how far the agreement goes (code turning
  // predictable made the planner take ~50 steps to climb from 1 to 4 tokens, fg-draft).
  probe_longer_ = plan.whole >= 0.5 || !probe_longer_;
  if (best == max_length_ || (!probe_longer_ && best > 1)) return best - 1;
  return best + 1;
}

void LengthPlanner::Record(int32_t drafted, int32_t accepted, double seconds) {
  if (drafted < 1) {
    Interrupt();
    return;
  }
  drafted = std::min(drafted, max_length_);
  accepted = std::clamp(accepted, 0, drafted);
  // Depth j was reached when tokens 1..j-1 were kept; it counts as kept when j <= accepted.
  for (int32_t j = 1; j <= std::min(accepted + 1, drafted); ++j) {
    const auto d = static_cast<size_t>(j);
    reached_[d] = kAcceptDecay * reached_[d] + 1;
    kept_[d] = kAcceptDecay * kept_[d] + (j <= accepted ? 1 : 0);
  }
  // r = T / T_prev of consecutive steps of different lengths estimates c(this) / c(prev): the
  // pace is the same for both. A pair with the anchor sets the other length's cost; a pair of
  // two other lengths sets the probe's from the best length's, never the other way round
  // (costs derived from each other in turn would wander off). A run of one length moves only
  // the pace: it cannot tell a change of pace from a change of its own cost.
  const int32_t prev = last_drafted_;
  const double prev_seconds = last_seconds_;
  last_drafted_ = drafted;
  last_seconds_ = seconds;
  const auto cost = [&](int32_t l) -> MovingAverage& { return cost_[static_cast<size_t>(l)]; };
  if (prev >= 1 && prev != drafted && prev_seconds > 0 && seconds > 0) {
    const double r = seconds / prev_seconds;
    if (prev == anchor_) {
      cost(drafted).Add(r, kCostAlpha);
    } else if (drafted == anchor_) {
      cost(prev).Add(1 / r, kCostAlpha);
    } else if (drafted != best_ && cost(prev).n > 0) {
      cost(drafted).Add(r * cost(prev).value, kCostAlpha);
    } else if (prev != best_ && cost(drafted).n > 0) {
      cost(prev).Add(cost(drafted).value / r, kCostAlpha);
    }
  }
  const double c = drafted == anchor_ ? 1.0 : RelativeCost(drafted);
  if (c > 0) pace_.Add(seconds / c, kPaceAlpha);
}

DraftGate::DraftGate(bool enabled, int32_t probe_every)
    : enabled_(enabled), probe_every_(std::max(1, probe_every)), interval_(probe_every_) {}

bool DraftGate::Speculate(double tokens_per_unit) {
  if (!enabled_) return true;
  if (burst_left_ > 0) {
    --burst_left_;
    return burst_spec_;
  }
  if (plain_.n < 2) return false;  // warm-up: a plain baseline, then drafting
  if (unit_.n < 2 || ratio_.n == 0) return true;
  // Drafting's rate over plain's: the model's, capped by the realized one.
  double value = tokens_per_unit * ratio_.value;
  const double realized = RealizedRatio();
  if (spec_tokens_.n >= kRealizedMinSteps || (spec_tokens_.n >= kRealizedMinStepsFarBehind && realized <= kFarBehind))
    value = std::min(value, realized);
  const bool spec_better = value >= (last_better_ ? 0.95 : 1.0);
  if (spec_better != last_better_) interval_ = probe_every_;  // the leader changed: probe soon
  last_better_ = spec_better;
  if (++since_probe_ < interval_) return spec_better;
  since_probe_ = 0;
  // Far from break-even a probe is unlikely to change the choice: back off further.
  const bool behind = value < 0.8, ahead = value > 1.25;
  interval_ = behind || ahead ? std::min(std::max(interval_ * 2, 4 * probe_every_), 64 * probe_every_)
                              : std::min(interval_ * 2, 16 * probe_every_);
  burst_spec_ = !spec_better;
  burst_left_ = burst_spec_ && !behind ? 2 : 1;  // the burst's steps after this one
  return burst_spec_;
}

bool DraftGate::Step(bool spec, double seconds) {
  const bool transition = spec != last_spec_;
  last_spec_ = spec;
  ++step_;
  if (transition || seconds <= 0) return false;
  if (spec) {
    unit_.Add(seconds, kPaceAlpha);
    spec_step_ = step_;
  } else {
    plain_.Add(seconds, kPaceAlpha);
    plain_step_ = step_;
  }
  if (unit_.n > 0 && plain_.n > 0 && step_ - std::min(plain_step_, spec_step_) <= 16)
    ratio_.Add(plain_.value / unit_.value, 0.1);
  return true;
}

void DraftGate::RecordPlain(double seconds) { Step(false, seconds); }

void DraftGate::RecordSpec(double unit_seconds, int64_t tokens, double seconds) {
  if (!Step(true, unit_seconds)) return;  // also left out when no time was measured
  spec_tokens_.Add(static_cast<double>(tokens), kRealizedAlpha);
  spec_seconds_.Add(seconds, kRealizedAlpha);
}

double DraftGate::RealizedRatio() const {
  if (spec_tokens_.n == 0 || plain_.n == 0 || spec_seconds_.value <= 0) return 0;
  return spec_tokens_.value / spec_seconds_.value * plain_.value;
}

}  // namespace fastgen::speculative
