// Speculative decoding, part 5: how much to speculate each step. Two controllers, both fed the
// step times the verifier measures, both changing only speed, never output:
//   - LengthPlanner, for proposers that draft a chain of whatever length they are asked for (a
//     draft model): picks each step's chain length, 0 meaning a plain decode step, to maximize
//     expected committed tokens per second;
//   - FallbackController, for the others (prompt lookup, Jacobi, token trees): decides only
//     between the proposer's draft and a plain step.
#pragma once

#include <cstdint>
#include <vector>

namespace fastgen::speculative {

// With a_j the probability that drafted token j is kept given tokens 1..j-1 were, a chain of L
// tokens commits E(L) = 1 + Σ_{i<=L} Π_{j<=i} a_j tokens (the target's own token always comes)
// at a cost C(L) = V(L + 1) + L·D, where V(n) is the target's verification of n tokens plus the
// step's bookkeeping and D the draft's cost per token; L = 0 is plain decoding, C(0) = V(1).
// Each step takes the L maximizing E(L) / C(L) (Leviathan et al. 2023 fix L for a whole
// generation from one acceptance rate and a cost ratio; here a_j, V and D are measured as the
// generation runs, so a phase of easy text lengthens the chain and a hard one stops drafting).
//
// Estimates: a_j from decayed counts of kept / reached (prior: a_{j-1}), V(n) one moving average
// per n (an unmeasured n interpolated from measured ones), D a moving average. A length never
// chosen is never measured, so every probe_every-th step tries a neighbour of the best length
// (alternately one shorter and one longer): that keeps V and a_j fresh around the optimum as the
// context grows, at the price of a step at a near-optimal length.
class LengthPlanner {
 public:
  // Lengths min_length..max_length (min_length 0 or 1: whether plain steps are allowed);
  // `initial` is the first speculative length, after two plain steps (when allowed).
  LengthPlanner(int32_t min_length, int32_t max_length, int32_t initial, int32_t probe_every);

  int32_t Choose();
  // A step that ran `length` (0: plain) and kept `accepted` drafted tokens. `drafted` may fall
  // short of the chosen length (the proposer stopped early); verify_seconds includes the walk
  // and the cache compaction, propose_seconds the drafting.
  void Record(int32_t drafted, int32_t accepted, double propose_seconds, double verify_seconds);

  // The model's numbers, for tests and diagnostics.
  double Acceptance(int32_t depth) const;         // a_depth, depth >= 1
  double VerifySeconds(int32_t tokens) const;     // V(tokens), tokens >= 1; 0 if nothing measured
  double DraftSecondsPerToken() const { return draft_per_token_.value; }
  double ExpectedRate(int32_t length) const;      // E(L) / C(L), tokens per second

 private:
  struct Average {
    double value = 0;
    int64_t n = 0;
    // The first sample is replaced by the second: a generation's first steps of each kind run
    // from cold caches (the draft's weights, the new cache rows) and would bias it for long.
    void Add(double x, double alpha) {
      value = n <= 1 ? x : (1 - alpha) * value + alpha * x;
      ++n;
    }
  };
  int32_t min_length_;
  int32_t max_length_;
  int32_t initial_;
  int64_t probe_every_;
  int64_t interval_;                    // steps between probes (backs off while plain wins)
  int64_t since_probe_ = 0;
  bool probe_longer_ = false;
  std::vector<double> kept_, reached_;  // [max_length + 1] decayed counts per depth (index 0 unused)
  std::vector<Average> verify_;         // [max_length + 2] V(n) per verified token count n
  Average draft_per_token_;
};

// Chooses, step by step, between drafting and a plain decode step from the tokens per second
// each has been committing lately (exponential moving averages). Starts with two plain steps
// for a baseline and three speculative ones, then follows the faster mode and probes the other
// now and then so a change (a run of copyable text, say) is noticed. Probes of a losing mode
// back off exponentially (probe_every, doubling up to 64x): a proposer that never pays costs
// a few failed probes per generation, one that pays again is back in use within one interval.
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

}  // namespace fastgen::speculative
