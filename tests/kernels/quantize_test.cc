// Reference quantizers: exact results where the format makes them exact, error bounds on
// random data, and robustness to NaN, infinity and huge inputs.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/reference/dequant.h"
#include "kernels/reference/quant_blocks.h"
#include "kernels/reference/quant_grid.h"

namespace fastgen {
namespace {

using kernels::reference::DequantizeRow;
using kernels::reference::QuantizeRow;

std::vector<float> RoundTrip(DType t, const std::vector<float>& x) {
  std::vector<uint8_t> q(*RowBytes(t, static_cast<int64_t>(x.size())));
  EXPECT_TRUE(QuantizeRow(t, x.data(), q.data(), static_cast<int64_t>(x.size())));
  std::vector<float> y(x.size());
  DequantizeRow(t, q.data(), y.data(), static_cast<int64_t>(y.size()));
  return y;
}

std::vector<float> Gaussian(size_t n, uint32_t seed, float stddev = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, stddev);
  std::vector<float> x(n);
  for (float& v : x) v = dist(rng);
  return x;
}

// ‖x − y‖ / ‖x‖.
double RelativeRmse(const std::vector<float>& x, const std::vector<float>& y) {
  double num = 0, den = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    num += (double(x[i]) - y[i]) * (double(x[i]) - y[i]);
    den += double(x[i]) * x[i];
  }
  return std::sqrt(num / den);
}

TEST(Quantize, RejectsUnsupportedTypesAndLengths) {
  std::vector<float> x(256, 1.0f);
  std::vector<uint8_t> out(4096);
  EXPECT_FALSE(QuantizeRow(DType::kI32, x.data(), out.data(), 256));
  EXPECT_FALSE(QuantizeRow(DType::kQ8_0, x.data(), out.data(), 48));
  EXPECT_FALSE(QuantizeRow(DType::kQ4_K, x.data(), out.data(), 128));
  EXPECT_TRUE(QuantizeRow(DType::kQ4_K, x.data(), out.data(), 0));
}

TEST(Quantize, PlainTypes) {
  const std::vector<float> x = {1.0f, -2.5f, 65504.0f, 1e-8f, 0.1f};
  EXPECT_EQ(RoundTrip(DType::kF32, x), x);
  const std::vector<float> h = RoundTrip(DType::kF16, x);
  EXPECT_EQ(h[0], 1.0f);
  EXPECT_EQ(h[2], 65504.0f);
  EXPECT_NEAR(h[4], 0.1f, 1e-4f);
  const std::vector<float> b = RoundTrip(DType::kBF16, x);
  EXPECT_EQ(b[1], -2.5f);
  EXPECT_NEAR(b[4], 0.1f, 1e-3f);
}

TEST(Quantize, Q8_0ExactOnIntegers) {
  std::vector<float> x(64);
  for (int i = 0; i < 64; ++i) x[static_cast<size_t>(i)] = static_cast<float>((i * 37) % 255 - 127);
  x[0] = 127.0f;  // each block's amax is 127, so d = 1 and every integer is exact
  x[32] = -127.0f;
  EXPECT_EQ(RoundTrip(DType::kQ8_0, x), x);
  block_q8_0 b[2];
  ASSERT_TRUE(QuantizeRow(DType::kQ8_0, x.data(), b, 64));
  EXPECT_EQ(F16ToF32(b[0].d), 1.0f);
  EXPECT_EQ(b[1].qs[0], -127);
}

TEST(Quantize, Q8_0RoundsHalfAwayFromZero) {
  std::vector<float> x(32, 0.0f);
  x[0] = 127.0f;
  x[1] = 2.5f;
  x[2] = -2.5f;
  x[3] = 3.5f;
  block_q8_0 b;
  ASSERT_TRUE(QuantizeRow(DType::kQ8_0, x.data(), &b, 32));
  EXPECT_EQ(b.qs[1], 3);
  EXPECT_EQ(b.qs[2], -3);
  EXPECT_EQ(b.qs[3], 4);
}

TEST(Quantize, Q4_0ExactOnItsGrid) {
  // The value of largest magnitude (-4) maps to q = 0, d = 0.5: all multiples of 0.5 in
  // [-4, 3.5] are exact.
  std::vector<float> x(32);
  for (int i = 0; i < 32; ++i) x[static_cast<size_t>(i)] = 0.5f * static_cast<float>(i % 16 - 8);
  EXPECT_EQ(RoundTrip(DType::kQ4_0, x), x);
  block_q4_0 b;
  ASSERT_TRUE(QuantizeRow(DType::kQ4_0, x.data(), &b, 32));
  EXPECT_EQ(F16ToF32(b.d), 0.5f);
  EXPECT_EQ(b.qs[0], 0x00);  // elements 0 and 16 are both -4
  EXPECT_EQ(b.qs[15], 0xff);  // elements 15 and 31 are both 3.5
}

TEST(Quantize, ErrorBoundsOnGaussianData) {
  struct Case {
    DType t;
    double max_relative_rmse;
  };
  // Typical values for N(0, 1) rows: Q8_0 ~0.004, Q4_0 ~0.10, Q4_K ~0.07, Q6_K ~0.018,
  // Q5_K ~0.035, Q3_K ~0.17, Q2_K ~0.3.
  for (const Case& c : {Case{DType::kQ8_0, 0.006}, Case{DType::kQ4_0, 0.13},
                        Case{DType::kQ4_K, 0.10}, Case{DType::kQ6_K, 0.025},
                        Case{DType::kQ5_K, 0.05}, Case{DType::kQ3_K, 0.22}, Case{DType::kQ2_K, 0.40},
                        Case{DType::kF16, 1e-3}, Case{DType::kBF16, 5e-3}}) {
    for (uint32_t seed = 0; seed < 4; ++seed) {
      const std::vector<float> x = Gaussian(4096, seed, seed % 2 ? 0.02f : 3.0f);
      const double e = RelativeRmse(x, RoundTrip(c.t, x));
      EXPECT_LT(e, c.max_relative_rmse) << Name(c.t) << " seed " << seed;
      EXPECT_GT(e, 0.0) << Name(c.t);
    }
  }
}

TEST(Quantize, PerElementBoundsForBlockTypes) {
  const std::vector<float> x = Gaussian(32 * 64, 11);
  const std::vector<float> q8 = RoundTrip(DType::kQ8_0, x);
  const std::vector<float> q4 = RoundTrip(DType::kQ4_0, x);
  for (size_t b = 0; b < x.size() / 32; ++b) {
    float amax = 0;
    for (size_t i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(x[32 * b + i]));
    for (size_t i = 0; i < 32; ++i) {
      const size_t k = 32 * b + i;
      // Half a step of d = amax/127, plus the f16 rounding of d times |q| <= 127.
      EXPECT_LE(std::fabs(x[k] - q8[k]), amax * (0.5f / 127 + 1.0f / 1024)) << k;
      // Q4_0: d = amax/8 and one step of error at the clamped top end.
      EXPECT_LE(std::fabs(x[k] - q4[k]), amax / 8 * (1.0f + 1.0f / 64)) << k;
    }
  }
}

TEST(Quantize, KQuantsOfSpecialRows) {
  for (DType t : {DType::kQ4_K, DType::kQ6_K, DType::kQ8_0, DType::kQ4_0, DType::kQ2_K, DType::kQ3_K, DType::kQ5_K}) {
    SCOPED_TRACE(std::string(Name(t)));
    const std::vector<float> zeros(512, 0.0f);
    EXPECT_EQ(RoundTrip(t, zeros), zeros);
    // A constant positive row and a row with one outlier stay finite and close.
    const std::vector<float> c(512, 0.75f);
    for (float v : RoundTrip(t, c)) EXPECT_NEAR(v, 0.75f, 0.06f);
    std::vector<float> spike(512, 0.01f);
    spike[3] = 100.0f;
    const std::vector<float> s = RoundTrip(t, spike);
    EXPECT_NEAR(s[3], 100.0f, t == DType::kQ2_K || t == DType::kQ3_K ? 10.0f : 1.0f);
    for (float v : s) EXPECT_TRUE(std::isfinite(v));
    // NaN, infinity and huge values must not trigger undefined behaviour (UBSan checks the
    // float-to-int conversions); what they quantize to is unspecified.
    std::vector<float> hostile = Gaussian(512, 3);
    hostile[1] = NAN;
    hostile[7] = INFINITY;
    hostile[300] = -3e38f;
    hostile[301] = 3e38f;
    RoundTrip(t, hostile);
  }
}

TEST(Quantize, Q4_KAndQ6_KUseTheirSubBlockStructure) {
  // Rows whose 32-element (Q4_K) or 16-element (Q6_K) groups have very different scales:
  // per-group scales keep the small groups accurate, which one scale per block could not.
  std::vector<float> x = Gaussian(256, 5, 1.0f);
  for (size_t i = 0; i < 256; ++i)
    if ((i / 32) % 2 == 1) x[i] *= 0.05f;
  for (DType t : {DType::kQ4_K, DType::kQ6_K}) {
    const std::vector<float> y = RoundTrip(t, x);
    std::vector<float> xs, ys;
    for (size_t i = 32; i < 64; ++i) {
      xs.push_back(x[i]);
      ys.push_back(y[i]);
    }
    EXPECT_LT(RelativeRmse(xs, ys), t == DType::kQ6_K ? 0.05 : 0.2) << Name(t);
  }
}


namespace grid_tests {

using kernels::reference::BlockGrid;
using kernels::reference::ChooseBlockGrid;
using kernels::reference::GridCode;
using kernels::reference::PackBlockCodes;
using kernels::reference::QuantizeRowWeighted;

// Choosing a block's grid, taking the nearest code of every element and packing the codes
// reproduces the quantizer's block (byte for byte where the quantizer rounds to the grid it
// stores), and the packed codes dequantize to exactly the values GridCode promised.
TEST(QuantGrid, NearestCodesRepackToTheQuantizersBlockAndDequantizeAsPromised) {
  for (DType t : {DType::kQ8_0, DType::kQ4_0, DType::kQ2_K, DType::kQ3_K, DType::kQ4_K, DType::kQ5_K, DType::kQ6_K}) {
    const int be = static_cast<int>(Info(t).block_elems);
    const size_t bb = Info(t).block_bytes;
    int identical = 0, blocks = 0;
    for (uint32_t seed = 0; seed < 40; ++seed) {
      const auto x = Gaussian(static_cast<size_t>(be), 100 + seed, 0.02f);
      std::vector<uint8_t> want(bb), got(bb);
      ASSERT_TRUE(QuantizeRow(t, x.data(), want.data(), be));
      BlockGrid g;
      ASSERT_TRUE(ChooseBlockGrid(t, x.data(), nullptr, got.data(), &g));
      EXPECT_EQ(got, want) << Name(t) << ": ChooseBlockGrid writes the quantizer's block";
      std::vector<int> codes(static_cast<size_t>(be));
      std::vector<float> promised(static_cast<size_t>(be));
      for (int j = 0; j < be; ++j) codes[j] = GridCode(g, j, x[j], &promised[j]);
      std::fill(got.begin(), got.end(), 0);
      ASSERT_TRUE(ChooseBlockGrid(t, x.data(), nullptr, got.data(), &g));
      ASSERT_TRUE(PackBlockCodes(t, codes.data(), got.data()));
      identical += got == want;
      ++blocks;
      std::vector<float> y(static_cast<size_t>(be));
      DequantizeRow(t, got.data(), y.data(), be);
      for (int j = 0; j < be; ++j) ASSERT_EQ(y[j], promised[j]) << Name(t) << " element " << j;
    }
    // Q8_0 and Q4_0 derive their codes from the unrounded scale, before it is stored as f16
    // (the K-quants requantize against the stored scales): a code may differ by one where an
    // element sits near a rounding boundary.
    if (t == DType::kQ8_0 || t == DType::kQ4_0)
      EXPECT_GE(identical, blocks / 2) << Name(t);
    else
      EXPECT_EQ(identical, blocks) << Name(t);
  }
}

// With an importance vector the scale searches minimise the importance-weighted error: over
// many blocks it is below the default quantizer's on that measure.
TEST(QuantGrid, ImportanceWeightingLowersTheWeightedError) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  for (DType t : {DType::kQ4_0, DType::kQ2_K, DType::kQ3_K, DType::kQ4_K, DType::kQ5_K, DType::kQ6_K}) {
    const int64_t n = 256 * 64;
    const auto x = Gaussian(static_cast<size_t>(n), 9, 0.05f);
    std::vector<float> imp(static_cast<size_t>(n));
    for (auto& v : imp) v = std::pow(u(rng), 4.0f) * 10;  // a few columns matter much more
    std::vector<uint8_t> q(*RowBytes(t, n)), qw(*RowBytes(t, n));
    ASSERT_TRUE(QuantizeRow(t, x.data(), q.data(), n));
    ASSERT_TRUE(QuantizeRowWeighted(t, x.data(), imp.data(), qw.data(), n));
    std::vector<float> y(static_cast<size_t>(n)), yw(static_cast<size_t>(n));
    DequantizeRow(t, q.data(), y.data(), n);
    DequantizeRow(t, qw.data(), yw.data(), n);
    double e = 0, ew = 0;
    for (int64_t i = 0; i < n; ++i) {
      e += imp[i] * (x[i] - y[i]) * (x[i] - y[i]);
      ew += imp[i] * (x[i] - yw[i]) * (x[i] - yw[i]);
    }
    EXPECT_LT(ew, 0.9 * e) << Name(t);
    // A null importance is the plain quantizer, byte for byte.
    ASSERT_TRUE(QuantizeRowWeighted(t, x.data(), nullptr, qw.data(), n));
    EXPECT_EQ(qw, q) << Name(t);
  }
}

}  // namespace grid_tests
}  // namespace
}  // namespace fastgen
