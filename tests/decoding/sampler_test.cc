#include "decoding/sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

namespace fastgen {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr double kTol = 1e-6;

std::vector<float> Dist(const SamplerOptions& opts, const std::vector<float>& logits,
                        const std::vector<int32_t>& history = {}) {
  Sampler s(opts, static_cast<int32_t>(logits.size()));
  std::vector<float> probs;
  s.Distribution(logits, history, &probs);
  return probs;
}

// softmax of hand-adjusted logits, in double: the expected output when only the logits change.
std::vector<double> Softmax(const std::vector<double>& z) {
  double m = -std::numeric_limits<double>::infinity();
  for (double v : z) m = std::max(m, v);
  std::vector<double> p(z.size());
  double sum = 0;
  for (size_t i = 0; i < z.size(); ++i) sum += p[i] = std::exp(z[i] - m);
  for (double& v : p) v /= sum;
  return p;
}

void ExpectProbs(const std::vector<float>& got, const std::vector<double>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], kTol) << "token " << i;
}

// Logits whose softmax is exactly {0.1, 0.2, 0.3, 0.4} (up to float rounding of the logs).
std::vector<float> TenthsLogits() {
  return {std::log(0.1f), std::log(0.2f), std::log(0.3f), std::log(0.4f)};
}

// ---- Math on small hand-computed distributions ----

TEST(SamplerTest, TemperatureOnly) {
  SamplerOptions o;
  o.temperature = 0.5f;
  // z = (x - 4) / 0.5 = {-6, -4, -2, 0}; p = e^z / (1 + e^-2 + e^-4 + e^-6).
  ExpectProbs(Dist(o, {1, 2, 3, 4}), {0.002144009, 0.015842201, 0.117058913, 0.864954877});
}

TEST(SamplerTest, TemperatureOneIsPlainSoftmax) {
  ExpectProbs(Dist(SamplerOptions{}, TenthsLogits()), {0.1, 0.2, 0.3, 0.4});
}

TEST(SamplerTest, TopK) {
  SamplerOptions o;
  o.top_k = 2;
  // Keeps logits 3 and 4: p = {1, e} / (1 + e).
  ExpectProbs(Dist(o, {1, 2, 3, 4}), {0, 0, 0.268941421, 0.731058579});
}

TEST(SamplerTest, TopKTieAtBoundaryGoesToLowerId) {
  SamplerOptions o;
  o.top_k = 2;
  ExpectProbs(Dist(o, {1, 3, 3, 3}), {0, 0.5, 0.5, 0});
}

TEST(SamplerTest, TopKLargerThanVocabIsNoOp) {
  SamplerOptions o;
  o.top_k = 1000;
  ExpectProbs(Dist(o, TenthsLogits()), {0.1, 0.2, 0.3, 0.4});
}

TEST(SamplerTest, TopPKeepsPrefixThatFirstReachesMass) {
  SamplerOptions o;
  // Sorted: 0.4, 0.3 (cum 0.7), 0.2 (cum 0.9), 0.1.
  o.top_p = 0.65f;
  ExpectProbs(Dist(o, TenthsLogits()), {0, 0, 3.0 / 7, 4.0 / 7});
  o.top_p = 0.7f;  // exactly reached by {0.4, 0.3}: no third token
  ExpectProbs(Dist(o, TenthsLogits()), {0, 0, 3.0 / 7, 4.0 / 7});
  o.top_p = 0.71f;
  ExpectProbs(Dist(o, TenthsLogits()), {0, 2.0 / 9, 3.0 / 9, 4.0 / 9});
  o.top_p = 0.95f;
  ExpectProbs(Dist(o, TenthsLogits()), {0.1, 0.2, 0.3, 0.4});
}

TEST(SamplerTest, TinyTopPKeepsOnlyTopToken) {
  SamplerOptions o;
  o.top_p = 0.3f;
  ExpectProbs(Dist(o, TenthsLogits()), {0, 0, 0, 1});
  o.top_p = 1e-6f;
  ExpectProbs(Dist(o, TenthsLogits()), {0, 0, 0, 1});
}

TEST(SamplerTest, MinP) {
  SamplerOptions o;
  o.min_p = 0.6f;  // threshold 0.24: keeps 0.3 and 0.4
  ExpectProbs(Dist(o, TenthsLogits()), {0, 0, 3.0 / 7, 4.0 / 7});
  o.min_p = 0.4f;  // threshold 0.16: keeps 0.2, 0.3, 0.4
  ExpectProbs(Dist(o, TenthsLogits()), {0, 2.0 / 9, 3.0 / 9, 4.0 / 9});
  o.min_p = 1.0f;  // only the maximum
  ExpectProbs(Dist(o, TenthsLogits()), {0, 0, 0, 1});
}

TEST(SamplerTest, RepetitionPenaltyOncePerDistinctToken) {
  SamplerOptions o;
  o.repetition_penalty = 2.0f;
  o.penalty_last_n = -1;
  // Token 3 appears three times but is divided once; the negative logit of token 1 is
  // multiplied. Adjusted: {2/2, -1*2, 0.5, 3/2}.
  ExpectProbs(Dist(o, {2, -1, 0.5f, 3}, {0, 1, 0, 3, 3, 3}),
              {0.302568291, 0.015063988, 0.183516945, 0.498850776});
}

TEST(SamplerTest, PresenceAndFrequencyPenalties) {
  SamplerOptions o;
  o.presence_penalty = 0.5f;
  o.frequency_penalty = 0.25f;
  o.penalty_last_n = -1;
  // counts {0, 1, 2, 3}: logit -= 0.5 + 0.25 * count for seen tokens.
  ExpectProbs(Dist(o, {0, 0, 0, 0}, {1, 2, 2, 3, 3, 3}), Softmax({0, -0.75, -1.0, -1.25}));
}

TEST(SamplerTest, PenaltyWindowLooksAtLastNTokens) {
  SamplerOptions o;
  o.repetition_penalty = 2.0f;
  o.frequency_penalty = 1.0f;
  o.penalty_last_n = 2;
  // Only the last two tokens {0, 1} count; token 3's earlier occurrences are outside.
  ExpectProbs(Dist(o, {2, -1, 0.5f, 3}, {3, 3, 3, 0, 1}), Softmax({1 - 1, -2 - 1, 0.5, 3}));
  o.penalty_last_n = 0;  // off
  ExpectProbs(Dist(o, {2, -1, 0.5f, 3}, {3, 3, 3, 0, 1}), Softmax({2, -1, 0.5, 3}));
  o.penalty_last_n = 100;  // longer than the history: all of it
  ExpectProbs(Dist(o, {2, -1, 0.5f, 3}, {3, 3, 3, 0, 1}),
              Softmax({1 - 1, -2 - 1, 0.5, 1.5 - 3}));
}

TEST(SamplerTest, PenaltiesIgnoreOutOfVocabHistory) {
  SamplerOptions o;
  o.repetition_penalty = 2.0f;
  ExpectProbs(Dist(o, {2, -1, 0.5f, 3}, {-1, 4, 99, 0}), Softmax({1, -1, 0.5, 3}));
}

TEST(SamplerTest, LogitBiasAddsAndMinusInfBans) {
  SamplerOptions o;
  o.logit_bias = {{3, -kInf}, {0, 1.5f}};
  ExpectProbs(Dist(o, {1, 2, 3, 4}), Softmax({2.5, 2, 3, -INFINITY}));
  o.temperature = 0;
  EXPECT_EQ(Sampler(o, 4).Sample(std::vector<float>{1, 2, 3, 4}, {}), 2);
}

TEST(SamplerTest, CombinedPipelineInDocumentedOrder) {
  SamplerOptions o;
  o.repetition_penalty = 2.0f;
  o.frequency_penalty = 0.5f;
  o.logit_bias = {{1, -kInf}};
  o.temperature = 0.5f;
  o.top_k = 3;
  o.top_p = 0.95f;
  o.min_p = 0.04f;
  // Penalties: token 0 seen twice -> 4/2 - 0.5*2 = 1. Bias bans token 1.
  // Logits {1, -inf, 2.5, 1, 0}; temperature 0.5 -> z = {-3, -, 0, -3, -5}.
  // top-k 3 keeps {2, 0, 3} (0 and 3 tie; token 4 dropped): p = {1, e^-3, e^-3} / (1 + 2e^-3)
  //   = {0.909442, 0.045279, 0.045279}.
  // top-p 0.95: 0.909442 + 0.045279 = 0.954721 reaches it, and the tie goes to token 0.
  // min-p 0.04: e^-3 = 0.0498 >= 0.04, token 0 stays. Result {1, e^-3} / (1 + e^-3).
  const std::vector<float> logits = {4, 3, 2.5f, 1, 0};
  const std::vector<int32_t> history = {0, 0};
  ExpectProbs(Dist(o, logits, history), {0.047425873, 0, 0.952574127, 0, 0});
  // Raising min-p above e^-3 removes token 0 as well.
  o.min_p = 0.05f;
  ExpectProbs(Dist(o, logits, history), {0, 0, 1, 0, 0});
}

TEST(SamplerTest, TopPSeesTemperatureScaledDistribution) {
  SamplerOptions o;
  o.top_p = 0.9f;
  // At T = 1 the {0.1, 0.2, 0.3, 0.4} nucleus at 0.9 has three tokens; at T = 0.25 the top
  // token alone holds 0.4^4 / sum(p^4) = 0.7232 and the top two 0.9520.
  ExpectProbs(Dist(o, TenthsLogits()), {0, 2.0 / 9, 3.0 / 9, 4.0 / 9});
  o.temperature = 0.25f;
  ExpectProbs(Dist(o, TenthsLogits()), {0, 0, 81.0 / 337, 256.0 / 337});
}

// ---- Greedy ----

TEST(SamplerTest, GreedyLowestIndexTieBreak) {
  SamplerOptions o;
  o.temperature = 0.0f;
  Sampler s(o, 4);
  const std::vector<float> logits = {1, 5, 5, 2};
  EXPECT_EQ(s.Sample(logits, {}), 1);
  std::vector<float> probs;
  s.Distribution(logits, {}, &probs);
  EXPECT_EQ(probs, (std::vector<float>{0, 1, 0, 0}));
}

TEST(SamplerTest, GreedyAppliesPenaltiesAndDoesNotConsumeRng) {
  SamplerOptions o;
  o.temperature = -1.0f;
  o.repetition_penalty = 2.0f;
  o.seed = 7;
  Sampler s(o, 4);
  EXPECT_EQ(s.Sample(std::vector<float>{1, 5, 4, 2}, std::vector<int32_t>{1}), 2);
  Sampler fresh(o, 4);
  EXPECT_EQ(s.NextUniform(), fresh.NextUniform());
}

TEST(SamplerTest, GreedyIgnoresTruncation) {
  SamplerOptions o;
  o.temperature = 0.0f;
  o.top_k = 1;
  o.top_p = 0.1f;
  o.min_p = 0.9f;
  EXPECT_EQ(Sampler(o, 3).Sample(std::vector<float>{0, 2, 1}, {}), 1);
}

// ---- Edge cases ----

TEST(SamplerTest, AllMinusInfButOne) {
  ExpectProbs(Dist(SamplerOptions{}, {-kInf, -kInf, 3.0f, -kInf}), {0, 0, 1, 0});
}

TEST(SamplerTest, EverythingBannedFallsBackToTokenZero) {
  SamplerOptions o;
  o.logit_bias = {{0, -kInf}, {1, -kInf}, {2, -kInf}};
  ExpectProbs(Dist(o, {1, 2, 3}), {1, 0, 0});
  Sampler s(o, 3);
  EXPECT_EQ(s.Sample(std::vector<float>{1, 2, 3}, {}), 0);
}

TEST(SamplerTest, NanLogitsAreMinusInf) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  ExpectProbs(Dist(SamplerOptions{}, {nan, 0, nan, 0}), {0, 0.5, 0, 0.5});
  SamplerOptions greedy;
  greedy.temperature = 0;
  EXPECT_EQ(Sampler(greedy, 3).Sample(std::vector<float>{nan, -1, 2}, {}), 2);
  ExpectProbs(Dist(SamplerOptions{}, {nan, nan}), {1, 0});
}

TEST(SamplerTest, PlusInfLogitsShareTheMass) {
  ExpectProbs(Dist(SamplerOptions{}, {1, kInf, 2, kInf}), {0, 0.5, 0, 0.5});
  SamplerOptions o;
  o.logit_bias = {{1, -kInf}};  // a ban beats +inf
  ExpectProbs(Dist(o, {1, kInf, 2, kInf}), {0, 0, 0, 1});
}

TEST(SamplerTest, VocabOne) {
  SamplerOptions o;
  o.top_k = 5;
  o.top_p = 0.5f;
  o.min_p = 0.5f;
  Sampler s(o, 1);
  std::vector<float> probs;
  s.Distribution(std::vector<float>{-3}, {}, &probs);
  EXPECT_EQ(probs, std::vector<float>{1});
  EXPECT_EQ(s.Sample(std::vector<float>{-3}, {}), 0);
}

TEST(SamplerTest, TinyTemperatureDoesNotOverflow) {
  SamplerOptions o;
  o.temperature = 1e-30f;
  ExpectProbs(Dist(o, {1, 2, 3, 2.5f}), {0, 0, 1, 0});
}

// ---- Large vocabulary: lazy sorting must match a brute-force full sort ----

struct Ref {
  float z;
  int32_t id;
};

// The brute-force oracle: full sort, then the documented rules in order.
std::vector<double> ReferenceDistribution(const std::vector<float>& logits, float t, int32_t k,
                                          float top_p, float min_p) {
  const float m = *std::max_element(logits.begin(), logits.end());
  std::vector<Ref> c;
  for (int32_t i = 0; i < static_cast<int32_t>(logits.size()); ++i) {
    c.push_back({(logits[i] - m) / t, i});
  }
  std::sort(c.begin(), c.end(),
            [](const Ref& a, const Ref& b) { return a.z > b.z || (a.z == b.z && a.id < b.id); });
  if (k > 0 && static_cast<size_t>(k) < c.size()) c.resize(k);
  double total = 0;
  for (const Ref& r : c) total += std::exp(r.z);
  size_t keep = c.size();
  double cum = 0;
  for (size_t i = 0; i < c.size() && top_p < 1.0f; ++i) {
    cum += std::exp(c[i].z);
    if (cum >= (top_p - 1e-6) * total) {
      keep = i + 1;
      break;
    }
  }
  c.resize(keep);
  while (c.size() > 1 && std::exp(c.back().z) < min_p) c.pop_back();
  double sum = 0;
  for (const Ref& r : c) sum += std::exp(r.z);
  std::vector<double> p(logits.size(), 0.0);
  for (const Ref& r : c) p[r.id] = std::exp(r.z) / sum;
  return p;
}

TEST(SamplerTest, LargeVocabMatchesFullSortOracle) {
  const int32_t vocab = 151936;
  Xoshiro256StarStar rng(123);
  std::vector<float> logits(vocab);
  for (float& x : logits) x = static_cast<float>(rng.NextDouble() * 20.0 - 10.0);
  logits[777] = logits[778] = 12.0f;  // a tie at the top

  struct Case {
    float t;
    int32_t k;
    float p;
    float min_p;
  };
  for (const Case& cs : {Case{1.0f, 0, 0.9f, 0.0f}, Case{0.7f, 0, 0.5f, 0.0f},
                         Case{1.0f, 40, 0.9f, 0.0f}, Case{1.0f, 0, 1.0f, 0.001f},
                         Case{1.3f, 100, 0.95f, 0.05f}, Case{1.0f, 5, 1.0f, 0.0f},
                         Case{2.0f, 0, 0.999f, 0.0f},
                         Case{1.0f, 20000, 0.9f, 0.0f}}) {  // large k: nth_element path
    SCOPED_TRACE("t=" + std::to_string(cs.t) + " k=" + std::to_string(cs.k) +
                 " p=" + std::to_string(cs.p) + " min_p=" + std::to_string(cs.min_p));
    SamplerOptions o;
    o.temperature = cs.t;
    o.top_k = cs.k;
    o.top_p = cs.p;
    o.min_p = cs.min_p;
    const std::vector<float> got = Dist(o, logits);
    const std::vector<double> want = ReferenceDistribution(logits, cs.t, cs.k, cs.p, cs.min_p);
    size_t mismatched_support = 0;
    double max_err = 0;
    for (int32_t i = 0; i < vocab; ++i) {
      if ((got[i] > 0) != (want[i] > 0)) ++mismatched_support;
      max_err = std::max(max_err, std::abs(got[i] - want[i]));
    }
    EXPECT_EQ(mismatched_support, 0u);
    EXPECT_LT(max_err, 1e-6);
    EXPECT_NEAR(std::accumulate(got.begin(), got.end(), 0.0), 1.0, 1e-5);
  }
}

// ---- RNG and sampling ----

TEST(SamplerTest, Xoshiro256StarStarMatchesReferenceStream) {
  // Seed 0 -> splitmix64 state {0xe220a8397b1dcdaf, 0x6e789e6aa1b965f4, 0x06c45d188009454f,
  // 0xf88bb8a8724c81ec}; outputs computed from the published xoshiro256** algorithm. Pinning
  // them guarantees a seed reproduces the same tokens on every platform and version.
  Xoshiro256StarStar rng(0);
  EXPECT_EQ(rng.Next(), 0x99ec5f36cb75f2b4ULL);
  EXPECT_EQ(rng.Next(), 0xbf6e1f784956452aULL);
  EXPECT_EQ(rng.Next(), 0x1a5f849d4933e6e0ULL);
}

TEST(SamplerTest, SeedDeterminism) {
  SamplerOptions o;
  o.seed = 42;
  o.top_p = 0.9f;
  const std::vector<float> logits = {0.1f, 0.5f, 0.2f, 1.0f, -0.3f, 0.8f, 0.0f, 0.4f};
  auto run = [&](uint64_t seed) {
    SamplerOptions so = o;
    so.seed = seed;
    Sampler s(so, 8);
    std::vector<int32_t> out;
    for (int i = 0; i < 500; ++i) out.push_back(s.Sample(logits, out));
    return out;
  };
  EXPECT_EQ(run(42), run(42));
  EXPECT_NE(run(42), run(43));
}

TEST(SamplerTest, NextUniformInUnitInterval) {
  Sampler s(SamplerOptions{}, 2);
  for (int i = 0; i < 10000; ++i) {
    const double u = s.NextUniform();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
  }
}

TEST(SamplerTest, SampleFromFrequenciesMatchProbs) {
  const std::vector<float> probs = {0.1f, 0.0f, 0.2f, 0.3f, 0.0f, 0.4f};
  Sampler s(SamplerOptions{}, 6);
  constexpr int kDraws = 200000;
  std::vector<int> counts(probs.size(), 0);
  for (int i = 0; i < kDraws; ++i) {
    const int32_t id = s.SampleFrom(probs);
    ASSERT_GE(id, 0);
    ASSERT_LT(id, 6);
    ++counts[id];
  }
  EXPECT_EQ(counts[1], 0);
  EXPECT_EQ(counts[4], 0);
  double chi2 = 0;
  for (size_t i = 0; i < probs.size(); ++i) {
    if (probs[i] == 0) continue;
    const double expected = kDraws * static_cast<double>(probs[i]);
    chi2 += (counts[i] - expected) * (counts[i] - expected) / expected;
  }
  // 3 degrees of freedom: P(chi2 > 60) < 1e-12 for a correct sampler, so this cannot flake
  // whatever the seed, while moving one percentage point of mass between two buckets (2000 of
  // 200k draws) gives chi2 >= 2000^2/80000 + 2000^2/60000 > 110.
  EXPECT_LT(chi2, 60.0) << counts[0] << " " << counts[2] << " " << counts[3] << " " << counts[5];
}

TEST(SamplerTest, SampleFromSkipsInvalidEntries) {
  Sampler s(SamplerOptions{}, 4);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> probs = {nan, -1.0f, 0.0f, 2.0f};  // unnormalized is fine
  for (int i = 0; i < 100; ++i) EXPECT_EQ(s.SampleFrom(probs), 3);
  EXPECT_EQ(s.SampleFrom(std::vector<float>{0, 0}), -1);
  EXPECT_EQ(s.SampleFrom(std::vector<float>{}), -1);
}

TEST(SamplerTest, SampleEqualsDistributionThenSampleFrom) {
  SamplerOptions o;
  o.seed = 9;
  o.top_k = 3;
  o.temperature = 0.8f;
  const std::vector<float> logits = {0.3f, 1.2f, -0.4f, 0.9f, 1.1f};
  Sampler a(o, 5), b(o, 5);
  std::vector<float> probs;
  for (int i = 0; i < 200; ++i) {
    b.Distribution(logits, {}, &probs);
    ASSERT_EQ(a.Sample(logits, {}), b.SampleFrom(probs));
  }
}

TEST(SamplerTest, DistributionReusesOutputBuffer) {
  Sampler s(SamplerOptions{}, 4);
  std::vector<float> probs;
  s.Distribution(TenthsLogits(), {}, &probs);
  const float* data = probs.data();
  for (int i = 0; i < 10; ++i) s.Distribution(TenthsLogits(), {}, &probs);
  EXPECT_EQ(probs.data(), data);
}

// ---- Validation ----

void ExpectInvalid(const SamplerOptions& o, const std::string& name, int32_t vocab = 10) {
  const Status st = ValidateSamplerOptions(o, vocab);
  EXPECT_EQ(st.code(), ErrorCode::kInvalidArgument) << name;
  EXPECT_NE(st.message().find(name), std::string::npos) << st.message();
}

TEST(SamplerTest, ValidationAcceptsDefaultsAndEdges) {
  EXPECT_TRUE(ValidateSamplerOptions(SamplerOptions{}, 10).ok());
  SamplerOptions o;
  o.temperature = 0;
  o.top_k = 100000;
  o.top_p = 1.0f;
  o.min_p = 1.0f;
  o.presence_penalty = -2.0f;
  o.penalty_last_n = -1;
  o.logit_bias = {{0, -kInf}, {9, 100.0f}};
  EXPECT_TRUE(ValidateSamplerOptions(o, 10).ok());
}

TEST(SamplerTest, ValidationNamesTheParameter) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  SamplerOptions o;
  o.temperature = nan;
  ExpectInvalid(o, "temperature");
  o = {};
  o.top_k = -1;
  ExpectInvalid(o, "top_k");
  for (float p : {0.0f, -0.1f, 1.5f, nan}) {
    o = {};
    o.top_p = p;
    ExpectInvalid(o, "top_p");
  }
  for (float p : {-0.1f, 1.01f, nan}) {
    o = {};
    o.min_p = p;
    ExpectInvalid(o, "min_p");
  }
  for (float p : {0.0f, -1.0f, nan, kInf}) {
    o = {};
    o.repetition_penalty = p;
    ExpectInvalid(o, "repetition_penalty");
  }
  o = {};
  o.presence_penalty = nan;
  ExpectInvalid(o, "presence_penalty");
  o = {};
  o.frequency_penalty = kInf;
  ExpectInvalid(o, "frequency_penalty");
  o = {};
  o.penalty_last_n = -2;
  ExpectInvalid(o, "penalty_last_n");
  o = {};
  o.logit_bias = {{10, 1.0f}};
  ExpectInvalid(o, "logit_bias");
  o.logit_bias = {{-1, 1.0f}};
  ExpectInvalid(o, "logit_bias");
  o.logit_bias = {{3, nan}};
  ExpectInvalid(o, "logit_bias");
  o.logit_bias = {{3, kInf}};
  ExpectInvalid(o, "logit_bias");
  ExpectInvalid(SamplerOptions{}, "vocab_size", 0);
}

}  // namespace
}  // namespace fastgen
