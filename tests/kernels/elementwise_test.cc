// The row-wise SIMD kernels (SwiGLU's SiLU-and-multiply, RMSNorm) against the scalar reference
// on every ISA this CPU supports, over odd lengths (masked tails), strided rows and extreme
// inputs (SiLU saturates to 0 and to x).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "kernels/cpu/isa.h"
#include "kernels/elementwise.h"
#include "kernels/reference/elementwise.h"

namespace fastgen::kernels {
namespace {

class ElementwiseTest : public ::testing::TestWithParam<cpu::Isa> {
 protected:
  void SetUp() override {
    saved_ = cpu::ActiveIsa();
    if (!cpu::ForceIsa(GetParam())) GTEST_SKIP() << cpu::IsaName(GetParam()) << " not supported on this CPU";
  }
  void TearDown() override { cpu::ForceIsa(saved_); }
  cpu::Isa saved_ = cpu::Isa::kReference;
};

void ExpectClose(const std::vector<float>& got, const std::vector<float>& want, float rel, const char* what) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i)
    ASSERT_NEAR(got[i], want[i], rel * std::fabs(want[i]) + 1e-30f) << what << " at " << i;
}

TEST_P(ElementwiseTest, SiluMulMatchesReference) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> dist(-20.0f, 20.0f);
  for (int64_t m : {1, 15, 16, 17, 100, 5632}) {
    const int64_t n = 3, ldg = m + 5, ldu = m + 2;
    std::vector<float> gate(static_cast<size_t>(n * ldg)), up(static_cast<size_t>(n * ldu));
    for (auto& v : gate) v = dist(rng);
    for (auto& v : up) v = dist(rng);
    const float extremes[] = {0.0f, -0.0f, 1e-30f, -100.0f, 100.0f, -88.0f, 89.0f, -1e30f, 1e30f};
    for (size_t i = 0; i < std::size(extremes) && static_cast<int64_t>(i) < m; ++i) gate[i] = extremes[i];
    std::vector<float> want = gate, got = gate;
    reference::SiluMul(want.data(), up.data(), n, m, ldg, ldu);
    SiluMul(got.data(), up.data(), n, m, ldg, ldu);
    ExpectClose(got, want, 2e-6f, "silu*up");  // the padding between rows must be untouched too
  }
}

TEST_P(ElementwiseTest, RmsNormMatchesReference) {
  std::mt19937 rng(4);
  std::normal_distribution<float> dist(0.0f, 3.0f);
  for (int64_t d : {1, 17, 64, 384, 2048}) {
    for (bool plus_one : {false, true}) {
      const int64_t n = 4;
      std::vector<float> x(static_cast<size_t>(n * d)), w(static_cast<size_t>(d));
      for (auto& v : x) v = dist(rng);
      for (auto& v : w) v = dist(rng);
      std::vector<float> want(x.size()), got(x.size(), 7.0f);
      reference::RmsNorm(x.data(), w.data(), n, d, 1e-5f, plus_one, want.data());
      RmsNorm(x.data(), w.data(), n, d, 1e-5f, plus_one, got.data());
      ExpectClose(got, want, 1e-6f, "rmsnorm");
    }
  }
}

TEST_P(ElementwiseTest, MaxSumExpMatchesReference) {
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0f, 4.0f);
  for (int64_t n : {1, 5, 16, 17, 63, 64, 100, 8192, 8195}) {
    std::vector<float> x(static_cast<size_t>(n));
    for (auto& v : x) v = normal(rng);
    x[static_cast<size_t>(n / 2)] = 30.0f;  // a confident row: the sum is close to 1
    if (n > 3) x[1] = -INFINITY;            // masked logits (logit bias) add nothing
    float got_max = 0, want_max = 0;
    const float got = MaxSumExp(x.data(), n, &got_max);
    const float want = reference::MaxSumExp(x.data(), n, &want_max);
    EXPECT_EQ(got_max, want_max) << n;
    EXPECT_NEAR(got, want, 1e-5f * want) << n;
    EXPECT_GE(got, 1.0f) << n;
  }
  const std::vector<float> masked(20, -INFINITY);
  float mx = 0;
  EXPECT_EQ(MaxSumExp(masked.data(), 20, &mx), 0.0f);
  EXPECT_EQ(mx, -INFINITY);
  EXPECT_EQ(MaxSumExp(masked.data(), 0, &mx), 0.0f);
}

TEST_P(ElementwiseTest, ExpShiftMatchesReference) {
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0f, 4.0f);
  for (int64_t n : {1, 7, 8, 15, 16, 17, 100, 2049}) {
    std::vector<float> x(static_cast<size_t>(n));
    for (auto& v : x) v = normal(rng);
    if (n > 3) x[2] = -INFINITY;  // a slot outside the window
    const float shift = *std::max_element(x.begin(), x.end());
    std::vector<float> got = x, want = x;
    ExpShift(got.data(), n, shift);
    reference::ExpShift(want.data(), n, shift);
    for (int64_t i = 0; i < n; ++i)
      EXPECT_NEAR(got[static_cast<size_t>(i)], want[static_cast<size_t>(i)], 2e-6f * want[static_cast<size_t>(i)] + 1e-30f)
          << n << " " << i;
    if (n > 3) {
      EXPECT_EQ(got[2], 0.0f) << n;
    }
    std::vector<float> guard(static_cast<size_t>(n) + 16, 7.0f);  // nothing written past n
    ExpShift(guard.data(), n, 0.0f);
    for (size_t i = static_cast<size_t>(n); i < guard.size(); ++i) EXPECT_EQ(guard[i], 7.0f);
  }
}

INSTANTIATE_TEST_SUITE_P(AllIsas, ElementwiseTest,
                         ::testing::Values(cpu::Isa::kReference, cpu::Isa::kAvx2, cpu::Isa::kAvx512),
                         [](const auto& info) { return std::string(cpu::IsaName(info.param)); });

}  // namespace
}  // namespace fastgen::kernels
