// The step controllers against simulated proposers: known per-depth acceptance and step costs,
// so the best length is known in closed form and what the planner commits per second can be
// compared with it.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "decoding/speculative/step_control.h"

namespace fastgen::speculative {
namespace {

// A proposer whose drafted token j is kept with probability accept[j - 1] (given 1..j-1 were),
// verified at cost v1 + slope·(n - 1) for n tokens, drafted at `draft` per token.
struct World {
  std::vector<double> accept;  // conditional acceptance at depth 1, 2, ...
  double v1 = 1e-3, slope = 1e-4, draft = 1e-4;

  double Accept(int32_t depth) const {
    return accept.empty() ? 0.0 : accept[std::min<size_t>(depth - 1, accept.size() - 1)];
  }
  double Rate(int32_t length) const {  // expected tokens per second at a fixed length
    double tokens = 1, reach = 1;
    for (int32_t j = 1; j <= length; ++j) tokens += reach *= Accept(j);
    return tokens / (v1 + slope * length + draft * length);
  }
  double BestRate(int32_t max_length) const {
    double best = 0;
    for (int32_t l = 0; l <= max_length; ++l) best = std::max(best, Rate(l));
    return best;
  }
};

struct SimRun {
  double rate = 0;          // committed tokens per simulated second
  std::vector<int64_t> chosen;  // [max_length + 1] how often each length ran
};

// Runs `steps` steps of the planner in `world`; timings carry ±10% noise, as on a shared CPU.
SimRun Simulate(LengthPlanner& planner, const World& world, int32_t max_length, int steps, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  SimRun run;
  run.chosen.assign(static_cast<size_t>(max_length) + 1, 0);
  double tokens = 0, seconds = 0;
  for (int s = 0; s < steps; ++s) {
    const int32_t l = planner.Choose();
    EXPECT_GE(l, 0);
    EXPECT_LE(l, max_length);
    ++run.chosen[static_cast<size_t>(l)];
    int32_t kept = 0;
    while (kept < l && u(rng) < world.Accept(kept + 1)) ++kept;
    const double propose = world.draft * l * (0.9 + 0.2 * u(rng));
    const double verify = (world.v1 + world.slope * l) * (0.9 + 0.2 * u(rng));
    planner.Record(l, kept, propose, verify);
    tokens += kept + 1;
    seconds += propose + verify;
  }
  run.rate = tokens / seconds;
  return run;
}

TEST(LengthPlanner, FindsTheBestLength) {
  // Each world's best fixed length differs: 0 (drafts always rejected), 1-2 (a weak draft, as
  // fg-draft on code), 6 (a draft that is nearly always right).
  const std::vector<World> worlds = {
      {{0.0}},
      {{0.6, 0.75, 0.85}, 0.6e-3, 0.1e-3, 0.09e-3},
      {{0.98}, 1e-3, 0.02e-3, 0.01e-3},
      {{0.3}, 1e-3, 0.3e-3, 0.3e-3},
  };
  for (size_t w = 0; w < worlds.size(); ++w) {
    LengthPlanner planner(0, 6, 3, 4);
    const SimRun run = Simulate(planner, worlds[w], 6, 2000, 7 + static_cast<uint32_t>(w));
    const double best = worlds[w].BestRate(6);
    int32_t best_length = 0;
    for (int32_t l = 1; l <= 6; ++l)
      if (worlds[w].Rate(l) > worlds[w].Rate(best_length)) best_length = l;
    std::printf("[ info ] world %zu: %.3f of the best fixed length (%d)\n", w, run.rate / best, best_length);
    EXPECT_GT(run.rate, 0.93 * best) << "world " << w << ": best fixed length " << best_length;
    // The most chosen length is the best one or a neighbour of equal worth.
    const auto most = static_cast<int32_t>(std::max_element(run.chosen.begin(), run.chosen.end()) - run.chosen.begin());
    EXPECT_GT(worlds[w].Rate(most), 0.97 * worlds[w].Rate(best_length)) << "world " << w << " ran length " << most;
  }
}

TEST(LengthPlanner, EstimatesAcceptanceAndCosts) {
  const World world{{0.5, 0.8}, 1e-3, 0.1e-3, 0.05e-3};
  LengthPlanner planner(1, 4, 4, 1000000);  // no probes: always the initial length until it plans
  std::mt19937 rng(3);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  double sum1 = 0, sum2 = 0;
  const int steps = 4000;
  for (int s = 0; s < steps; ++s) {
    int32_t kept = 0;
    while (kept < 4 && u(rng) < world.Accept(kept + 1)) ++kept;
    planner.Record(4, kept, 4 * world.draft, world.v1 + 4 * world.slope);
    sum1 += planner.Acceptance(1);
    sum2 += planner.Acceptance(2);
  }
  // About the last 20 observations of each depth count, so one estimate wanders by ±0.1; their
  // mean over the run is the rate, pulled slightly toward the prior (0.5; a_1 for depth 2).
  EXPECT_NEAR(sum1 / steps, 0.5, 0.03);
  EXPECT_NEAR(sum2 / steps, 0.77, 0.04);
  EXPECT_NEAR(planner.DraftSecondsPerToken(), world.draft, 1e-9);
  EXPECT_NEAR(planner.VerifySeconds(5), world.v1 + 4 * world.slope, 1e-9);
  // Nothing else measured: a shorter pass is bounded by the longer one measured.
  EXPECT_NEAR(planner.VerifySeconds(2), planner.VerifySeconds(5), 1e-12);
}

TEST(LengthPlanner, InterpolatesUnmeasuredPasses) {
  LengthPlanner planner(0, 8, 2, 4);
  EXPECT_EQ(planner.VerifySeconds(3), 0.0);  // nothing measured
  for (int i = 0; i < 3; ++i) {
    planner.Record(0, 0, 0.0, 1.0e-3);   // V(1)
    planner.Record(4, 0, 4e-4, 1.4e-3);  // V(5)
  }
  EXPECT_NEAR(planner.VerifySeconds(3), 1.2e-3, 1e-12);  // between the two
  EXPECT_NEAR(planner.VerifySeconds(7), 1.6e-3, 1e-12);  // extrapolated from the two below
}

TEST(LengthPlanner, MinimumLengthOneNeverDecodesPlainly) {
  LengthPlanner planner(1, 4, 2, 2);
  const SimRun run = Simulate(planner, World{{0.0}}, 4, 300, 1);
  EXPECT_EQ(run.chosen[0], 0);
  EXPECT_GT(run.chosen[1], 250);  // drafting never pays: the shortest draft
}

// A proposer that stops paying, then pays again (a run of copyable text): the planner stops
// drafting within a few dozen steps and resumes within a probe interval or two.
TEST(LengthPlanner, FollowsAChangeOfText) {
  LengthPlanner planner(0, 6, 3, 4);
  const World good{{0.9}, 1e-3, 0.05e-3, 0.05e-3};
  const World bad{{0.0}, 1e-3, 0.05e-3, 0.05e-3};
  Simulate(planner, good, 6, 300, 1);
  const SimRun off = Simulate(planner, bad, 6, 300, 2);
  std::printf("[ info ] after the change: %lld of 300 steps plain\n", static_cast<long long>(off.chosen[0]));
  EXPECT_GT(off.chosen[0], 220) << "still drafting while nothing is accepted: " << ::testing::PrintToString(off.chosen);
  const SimRun on = Simulate(planner, good, 6, 300, 3);
  EXPECT_GT(on.rate, 0.9 * good.BestRate(6));
}

TEST(FallbackController, SettlesOnTheFasterMode) {
  for (const bool spec_faster : {true, false}) {
    FallbackController c(true, 4);
    int spec_steps = 0;
    for (int s = 0; s < 400; ++s) {
      const bool spec = c.Speculate();
      spec_steps += spec;
      // Speculative steps commit 2 tokens in 1.5 ms (faster) or 3 ms (slower); plain 1 in 1 ms.
      c.Record(spec, spec ? 2 : 1, spec ? (spec_faster ? 1.5e-3 : 3e-3) : 1e-3);
    }
    if (spec_faster) EXPECT_GT(spec_steps, 380);
    else EXPECT_LT(spec_steps, 20);
  }
  FallbackController off(false, 4);
  for (int s = 0; s < 10; ++s) EXPECT_TRUE(off.Speculate());
}

}  // namespace
}  // namespace fastgen::speculative
