// Speculative decoding, part 5: how much to speculate each step. Three controllers, fed the
// step times the verifier measures, changing only speed, never output:
//   - LengthPlanner, for proposers that draft a chain of whatever length they are asked for (a
//     draft model, layer skipping): the chain length of each drafting step;
//   - DraftGate, for the same proposers: whether to draft at all, from the planner's model;
//   - FallbackController, for proposers whose drafts are what they find (prompt lookup, Jacobi,
//     token trees): whether to draft, from the tokens per second each mode commits.
// Length and gate are separate because the questions differ in kind. Which length is best is a
// comparison of neighbouring steps in the same regime. Whether to draft at all compares regimes:
// a plain step amid drafting runs slower than one amid plain steps (the draft model's weights
// and cache push the target's out of L3: on fg-target about 0.85 against 0.65 ms), and the
// first draft after plain steps pays for the draft model catching up. A model of both choices
// from step-to-step comparisons measured those transition steps and misjudged both ways.
#pragma once

#include <cstdint>
#include <vector>

namespace fastgen::speculative {

// An exponential moving average whose first sample is replaced by the second: a generation's
// first steps of each kind run from cold caches (the draft's weights, new cache rows) and would
// bias it for long.
struct MovingAverage {
  double value = 0;
  int64_t n = 0;
  void Add(double x, double alpha) {
    value = n <= 1 ? x : (1 - alpha) * value + alpha * x;
    ++n;
  }
};

// Chooses, step by step, between drafting and a plain decode step from the tokens per second
// each has been committing lately (exponential moving averages). Starts with two plain steps
// for a baseline and three speculative ones, then follows the faster mode and probes the other
// now and then so a change (a run of copyable text, say) is noticed. Probes of a losing mode
// back off exponentially (probe_every, doubling up to 64x): a proposer that never pays costs
// a few failed probes per generation, one that pays again is back in use within one interval.
// Used for proposers whose drafts are what they find (prompt lookup, Jacobi, token trees).
class FallbackController {
 public:
  FallbackController(bool enabled, int32_t probe_every);

  bool Speculate();
  void Record(bool spec, int64_t tokens, double seconds);

 private:
  struct Rate {
    double rate = 0;  // tokens per second
    int64_t n = 0;
  };
  bool enabled_;
  int64_t probe_every_;
  int64_t interval_;
  int64_t since_probe_ = 0;
  bool last_better_ = true;
  Rate spec_, plain_;
};

// With a_j the probability that drafted token j is kept given tokens 1..j-1 were, a chain of L
// tokens commits E(L) = 1 + Σ_{i<=L} Π_{j<=i} a_j tokens (the target's own token always comes)
// in a step costing C(L): drafting L tokens, verifying L + 1, the walk and the cache compaction.
// Each drafting step takes the L >= 1 maximizing E(L) / C(L) (Leviathan et al. 2023 fix L for a
// generation from one acceptance rate and a cost ratio; here a_j and C are measured as the
// generation runs, so easy text lengthens the chain and hard text shortens it).
//
// Estimates: a_j from decayed counts of kept / reached (prior: a_{j-1}). Costs are factored as
// C(L) = s · c(L): s, the machine's current pace, follows every step; c(L), relative to the
// initial length's (c = 1), comes from the time ratios of consecutive steps of different
// lengths, moves slowly, and is interpolated for lengths not measured. The pace of a shared CPU
// drifts by 2x within a generation (cold caches at the start, other work): absolute per-length
// averages compared a length measured in a slow minute with one measured in a fast one.
//
// A length never chosen is never measured, so every probe_every-th step runs a neighbour of the
// best length, alternately one longer (the only way to observe a deeper acceptance: a depth
// judged on a few early rejections would otherwise never be drafted again) and one shorter;
// a neighbour never measured is tried once straight away (an unmeasured length's cost is
// interpolated, flatly past the longest measured one, which would favour it blindly).
class LengthPlanner {
 public:
  // Lengths 1..max_length (at most 64); `initial` is measured first and is the cost unit.
  LengthPlanner(int32_t max_length, int32_t initial, int32_t probe_every);

  // The best length and its expected tokens per unit of cost, E(L) / c(L) (0 before any cost
  // is measured): what the gate weighs against plain decoding.
  struct Plan {
    int32_t best = 1;
    double tokens_per_unit = 0;
    double whole = 0;  // estimated P(a draft of length `best` is kept whole)
  };
  Plan Best() const;
  // The length to draft this step, given Best(): the best one, an unmeasured neighbour, or a
  // probe.
  int32_t Choose(const Plan& plan);
  // A drafting step: `drafted` tokens (fewer than chosen when the proposer stopped early),
  // `accepted` of them kept, `seconds` from drafting to the compacted cache.
  void Record(int32_t drafted, int32_t accepted, double seconds);
  // Plain steps ran since the last Record: the next step is compared with none before it.
  void Interrupt() { last_drafted_ = -1; }

  // The model's numbers, for tests and diagnostics.
  double Acceptance(int32_t depth) const;      // a_depth, depth >= 1
  double RelativeCost(int32_t length) const;   // c(length), 1 <= length <= max; 0 if nothing measured
  double StepSeconds(int32_t length) const;    // s · c(length)

 private:
  bool Measured(int32_t length) const;
  double AcceptanceGiven(int32_t depth, double prior) const;  // a_depth with a_{depth-1} = prior

  int32_t max_length_;
  int32_t anchor_;                      // the initial length: c = 1
  int64_t probe_every_;
  int64_t since_probe_ = 0;
  bool probe_longer_ = false;
  std::vector<double> kept_, reached_;  // [max_length + 1] decayed counts per depth (index 0 unused)
  std::vector<MovingAverage> cost_;     // [max_length + 1] c(L) (index 0 unused)
  std::vector<bool> explored_;          // [max_length + 1] tried once as an unmeasured neighbour
  MovingAverage pace_;                  // s, seconds per anchor-length step
  int32_t best_ = -1;                   // the best length at the last Choose
  int32_t last_drafted_ = -1;           // the previous step's length (-1: none to compare with)
  double last_seconds_ = 0;             // ... and its time
};

// The fallback for proposers the LengthPlanner drives: drafts while the planner's best tokens
// per unit of drafting cost, E(L) / c(L), times the ratio R of a plain step's time to a unit
// drafting step's, beats plain decoding's one token per step. Unlike FallbackController, which
// compares the realized tokens per second of the two modes (noisy over a few steps: a drafting
// step commits 1 to L + 1 tokens), the text enters only through the acceptance estimates and
// the machine only through R, a ratio of step times, which changes slowly: R is updated only
// while both modes were measured within the last 16 steps, so a drift of the machine's pace
// while one mode runs is not read as a change of the other. Each mode's step time is a moving
// average over its own steps, leaving out the first after a change of mode (a draft model
// catches up on the tokens decoded plainly; a plain step right after drafting finds the
// target's weights pushed out of L3).
//
// The model can be wrong where the measurements feeding it are: relative costs c(L) from a few
// noisy step pairs once put a one-token draft at a quarter of a two-token one, and the gate read
// drafting as five times ahead while it ran at 0.8x of plain (layer skipping on fg-target). So
// the realized rate vetoes it: drafting's committed tokens per second (moving averages of its
// steps' tokens and seconds, transitions left out) times plain decoding's seconds per token
// caps the model's value. Plain's time is the latest measured, possibly from before a drift of
// the machine's pace; a veto that drift causes lasts until plain steps re-measure it (two or
// three steps), since the cap is recomputed from the current averages at every decision.
//
// Warm-up: two plain steps, then drafting until two drafting steps (after the transition) are
// measured. Probes: bursts of the other mode (drafting: 3 steps, or 2 when it is more than 20%
// behind; plain: 2), backing off exponentially (probe_every, doubling up to 16x; from 4x up to
// 64x while drafting is more than 20% behind or 25% ahead), reset to probe_every when the
// leader changes. Drafting is left only once it falls 5% behind, entered once it is ahead.
class DraftGate {
 public:
  DraftGate(bool enabled, int32_t probe_every);

  // tokens_per_unit: LengthPlanner::Best().tokens_per_unit.
  bool Speculate(double tokens_per_unit);
  void RecordPlain(double seconds);
  // A drafting step: its time divided by the relative cost of its length, the tokens it
  // committed and its time.
  void RecordSpec(double unit_seconds, int64_t tokens, double seconds);
  double CostRatio() const { return ratio_.value; }  // R; 0 before both modes were measured
  // Drafting's realized tokens per second over plain decoding's; 0 before both were measured.
  double RealizedRatio() const;

 private:
  // Returns false for a step left out (a transition, or no time measured).
  bool Step(bool spec, double seconds);

  bool enabled_;
  int64_t probe_every_;
  int64_t interval_;
  int64_t since_probe_ = 0;
  bool last_better_ = true;
  bool burst_spec_ = false;
  int32_t burst_left_ = 0;
  int64_t step_ = 0;
  bool last_spec_ = false;
  MovingAverage plain_, unit_, ratio_;
  MovingAverage spec_tokens_, spec_seconds_;  // drafting steps' committed tokens and times
  int64_t plain_step_ = -1000, spec_step_ = -1000;  // step_ of each mode's last measurement
};

}  // namespace fastgen::speculative
