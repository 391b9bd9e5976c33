// GPTQ against a direct float64 implementation of the paper's algorithm (the OBS form: the
// inverse Hessian updated by eliminating each quantized column, no Cholesky, no row tiles):
// the same codes; and the layer's output error on held-out inputs below rounding's.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>
#include <random>

#include "kernels/reference/dequant.h"
#include "kernels/reference/quant_grid.h"
#include "quant/gptq.h"

namespace fastgen::quant {
namespace {

namespace ref = kernels::reference;

ThreadPool& Pool() {
  static ThreadPool pool(2);
  return pool;
}

// Inputs with correlated columns and uneven scales, as a layer's activations have:
// X = Z · M with Z ~ N(0, 1) [n, k] and a random mixing M [k, k] scaled per column.
std::vector<float> Activations(int64_t n, int64_t k, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0, 1);
  std::mt19937 mrng(1234);  // the same mixing for calibration and held-out inputs
  std::vector<float> m(static_cast<size_t>(k * k));
  for (int64_t i = 0; i < k; ++i)
    for (int64_t j = 0; j < k; ++j) m[i * k + j] = (i == j ? 1.0f : 0.0f) + 0.3f * g(mrng) / std::sqrt(float(k));
  std::vector<float> scale(static_cast<size_t>(k));
  for (auto& s : scale) s = std::exp(1.2f * g(mrng));
  std::vector<float> z(static_cast<size_t>(k)), x(static_cast<size_t>(n * k));
  for (int64_t t = 0; t < n; ++t) {
    for (auto& v : z) v = g(rng);
    for (int64_t j = 0; j < k; ++j) {
      double s = 0;
      for (int64_t i = 0; i < k; ++i) s += z[i] * m[i * k + j];
      x[t * k + j] = static_cast<float>(s) * scale[j];
    }
  }
  return x;
}

std::vector<double> Gram(const std::vector<float>& x, int64_t n, int64_t k) {
  std::vector<double> h(static_cast<size_t>(k * k), 0.0);
  for (int64_t t = 0; t < n; ++t)
    for (int64_t i = 0; i < k; ++i)
      for (int64_t j = 0; j < k; ++j) h[i * k + j] += double(x[t * k + i]) * x[t * k + j];
  return h;
}

std::vector<float> Weights(int64_t rows, int64_t cols, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0, 0.05f);
  std::vector<float> w(static_cast<size_t>(rows * cols));
  for (auto& v : w) v = g(rng);
  return w;
}

// Gauss-Jordan inverse with partial pivoting.
std::vector<double> Inverse(std::vector<double> a, int64_t n) {
  std::vector<double> inv(static_cast<size_t>(n * n), 0.0);
  for (int64_t i = 0; i < n; ++i) inv[i * n + i] = 1;
  for (int64_t c = 0; c < n; ++c) {
    int64_t p = c;
    for (int64_t i = c + 1; i < n; ++i)
      if (std::fabs(a[i * n + c]) > std::fabs(a[p * n + c])) p = i;
    for (int64_t j = 0; j < n; ++j) {
      std::swap(a[c * n + j], a[p * n + j]);
      std::swap(inv[c * n + j], inv[p * n + j]);
    }
    const double d = a[c * n + c];
    for (int64_t j = 0; j < n; ++j) {
      a[c * n + j] /= d;
      inv[c * n + j] /= d;
    }
    for (int64_t i = 0; i < n; ++i) {
      if (i == c) continue;
      const double f = a[i * n + c];
      if (f == 0) continue;
      for (int64_t j = 0; j < n; ++j) {
        a[i * n + j] -= f * a[c * n + j];
        inv[i * n + j] -= f * inv[c * n + j];
      }
    }
  }
  return inv;
}

// The paper's algorithm, directly: quantize column q, spread its error with the current
// inverse Hessian's row, then eliminate q from the inverse Hessian (OBS). Block grids as
// GptqQuantize chooses them (the format's scales from the current weights at each block's
// first column; with act-order, from the original weights up front).
std::vector<uint8_t> DirectGptq(DType type, const std::vector<float>& w, int64_t rows, int64_t cols,
                                std::vector<double> h, double damp, bool act_order) {
  const int64_t blk = Info(type).block_elems, blocks = cols / blk;
  const size_t row_bytes = *RowBytes(type, cols), bb = Info(type).block_bytes;
  double mean = 0;
  for (int64_t c = 0; c < cols; ++c) mean += h[c * cols + c];
  mean /= double(cols);
  std::vector<float> imp(static_cast<size_t>(cols));
  for (int64_t c = 0; c < cols; ++c) imp[c] = static_cast<float>(h[c * cols + c] / mean);
  std::vector<int64_t> order(static_cast<size_t>(cols));
  std::iota(order.begin(), order.end(), 0);
  if (act_order)
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return h[a * cols + a] > h[b * cols + b]; });
  for (int64_t c = 0; c < cols; ++c) h[c * cols + c] += damp * mean;
  std::vector<double> hinv = Inverse(h, cols);

  std::vector<double> wd(w.begin(), w.end());
  std::vector<uint8_t> packed(row_bytes * static_cast<size_t>(rows), 0);
  std::vector<ref::BlockGrid> grids(static_cast<size_t>(rows * blocks));
  std::vector<int> codes(static_cast<size_t>(rows * cols));
  std::vector<float> tmp(static_cast<size_t>(blk));
  if (act_order)
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t b = 0; b < blocks; ++b)
        ref::ChooseBlockGrid(type, w.data() + r * cols + b * blk, imp.data() + b * blk,
                             packed.data() + r * row_bytes + b * bb, &grids[r * blocks + b]);
  std::vector<uint8_t> done(static_cast<size_t>(cols), 0);
  for (int64_t step = 0; step < cols; ++step) {
    const int64_t q = order[step], b = q / blk;
    for (int64_t r = 0; r < rows; ++r) {
      double* wr = wd.data() + r * cols;
      if (!act_order && q % blk == 0) {
        for (int64_t k = 0; k < blk; ++k) tmp[k] = static_cast<float>(wr[q + k]);
        ref::ChooseBlockGrid(type, tmp.data(), imp.data() + q, packed.data() + r * row_bytes + b * bb, &grids[r * blocks + b]);
      }
      float value = 0;
      codes[r * cols + q] = ref::GridCode(grids[r * blocks + b], static_cast<int>(q % blk), static_cast<float>(wr[q]), &value);
      const double e = (wr[q] - value) / hinv[q * cols + q];
      for (int64_t j = 0; j < cols; ++j)
        if (!done[j] && j != q) wr[j] -= e * hinv[q * cols + j];
    }
    // Eliminate q: H⁻¹ ← H⁻¹ − H⁻¹[:, q] H⁻¹[q, :] / H⁻¹[q, q].
    const double d = hinv[q * cols + q];
    std::vector<double> col(static_cast<size_t>(cols));
    for (int64_t i = 0; i < cols; ++i) col[i] = hinv[i * cols + q];
    for (int64_t i = 0; i < cols; ++i)
      for (int64_t j = 0; j < cols; ++j) hinv[i * cols + j] -= col[i] * col[j] / d;
    done[q] = 1;
  }
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t b = 0; b < blocks; ++b)
      ref::PackBlockCodes(type, codes.data() + r * cols + b * blk, packed.data() + r * row_bytes + b * bb);
  return packed;
}

std::vector<float> Dequantize(DType type, const std::vector<uint8_t>& packed, int64_t rows, int64_t cols) {
  std::vector<float> w(static_cast<size_t>(rows * cols));
  const size_t rb = *RowBytes(type, cols);
  for (int64_t r = 0; r < rows; ++r) ref::DequantizeRow(type, packed.data() + r * rb, w.data() + r * cols, cols);
  return w;
}

// ‖W X − Ŵ X‖² over inputs x [n, k].
double OutputError(const std::vector<float>& w, const std::vector<float>& wq, const std::vector<float>& x, int64_t rows,
                   int64_t n, int64_t k) {
  double e = 0;
  for (int64_t t = 0; t < n; ++t)
    for (int64_t r = 0; r < rows; ++r) {
      double d = 0;
      for (int64_t j = 0; j < k; ++j) d += (double(w[r * k + j]) - wq[r * k + j]) * x[t * k + j];
      e += d * d;
    }
  return e;
}

TEST(Gptq, InverseCholeskyUpperFactorsTheInverse) {
  const int64_t n = 37;
  const auto x = Activations(200, n, 3);
  auto h = Gram(x, 200, n);
  const auto h0 = h;
  ASSERT_TRUE(InverseCholeskyUpper(h, n));
  // H · (UᵀU) = I, and U is upper triangular.
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) {
      if (i > j) {
        EXPECT_EQ(h[i * n + j], 0.0);
      }
      double s = 0;
      for (int64_t k = 0; k < n; ++k) {
        double uu = 0;  // (UᵀU)[k][j]
        for (int64_t m = 0; m <= std::min(k, j); ++m) uu += h[m * n + k] * h[m * n + j];
        s += h0[i * n + k] * uu;
      }
      EXPECT_NEAR(s, i == j ? 1.0 : 0.0, 1e-8) << i << "," << j;
    }
  std::vector<double> bad(4, 0.0);  // [[0, 0], [0, 0]]: not positive definite
  EXPECT_FALSE(InverseCholeskyUpper(bad, 2));
}

TEST(Gptq, MakesTheSameChoicesAsTheDirectAlgorithmAndBeatsRounding) {
  struct Case {
    DType type;
    int64_t cols;
  };
  for (const Case& c : {Case{DType::kQ4_0, 64}, Case{DType::kQ8_0, 64}, Case{DType::kQ4_K, 256}, Case{DType::kQ6_K, 256}}) {
    for (bool act_order : {false, true}) {
      SCOPED_TRACE(std::string(Name(c.type)) + (act_order ? " act-order" : ""));
      const int64_t rows = 24, k = c.cols, n = 16 * k;  // enough samples that H generalizes
      const auto x = Activations(n, k, 1);
      const auto held_out = Activations(n, k, 2);
      const auto w = Weights(rows, k, 9);
      const auto h = Gram(x, n, k);
      GptqOptions o;
      o.act_order = act_order;
      auto got = GptqQuantize(c.type, w.data(), rows, k, h, o, Pool());
      ASSERT_TRUE(got.ok()) << got.status().message();
      EXPECT_EQ(got->damp, o.damp);
      const auto want = DirectGptq(c.type, w, rows, k, h, o.damp, act_order);
      ASSERT_EQ(got->packed.size(), want.size());
      size_t differing = 0;
      const size_t rb = *RowBytes(c.type, k);
      for (int64_t r = 0; r < rows; ++r)
        differing += !std::equal(want.begin() + r * rb, want.begin() + (r + 1) * rb, got->packed.begin() + r * rb);
      EXPECT_EQ(differing, 0u) << "rows whose codes differ from the direct algorithm's";

      // Rounding to nearest for comparison, with the same format.
      std::vector<uint8_t> rtn(want.size());
      for (int64_t r = 0; r < rows; ++r) ref::QuantizeRow(c.type, w.data() + r * k, rtn.data() + r * rb, k);
      const double e_gptq = OutputError(w, Dequantize(c.type, got->packed, rows, k), held_out, rows, n, k);
      const double e_rtn = OutputError(w, Dequantize(c.type, rtn, rows, k), held_out, rows, n, k);
      // At 8 bits rounding loses little and GPTQ gains little; at 4-6 bits it gains much.
      EXPECT_LT(e_gptq, (c.type == DType::kQ8_0 ? 1.0 : 0.75) * e_rtn) << "GPTQ " << e_gptq << " vs rounding " << e_rtn;
    }
  }
}

TEST(Gptq, RefusesWhatItCannotDo) {
  const auto w = Weights(4, 48, 1);
  std::vector<double> h(48 * 48, 0.0);
  for (int i = 0; i < 48; ++i) h[i * 48 + i] = 1;
  EXPECT_FALSE(GptqQuantize(DType::kQ4_0, w.data(), 4, 48, h, {}, Pool()).ok());  // 48 is not whole blocks
  EXPECT_FALSE(GptqQuantize(DType::kF16, w.data(), 4, 32, std::vector<double>(32 * 32, 0.0), {}, Pool()).ok());
  // A column no input reaches (zero row and column of H) is quantized to its block's zero.
  std::vector<double> h32(32 * 32, 0.0);
  for (int i = 1; i < 32; ++i) h32[i * 32 + i] = 1 + i;
  auto r = GptqQuantize(DType::kQ8_0, w.data(), 4, 32, h32, {}, Pool());
  ASSERT_TRUE(r.ok()) << r.status().message();
  const auto wq = Dequantize(DType::kQ8_0, r->packed, 4, 32);
  for (int64_t row = 0; row < 4; ++row) EXPECT_EQ(wq[row * 32], 0.0f);
}

}  // namespace
}  // namespace fastgen::quant
