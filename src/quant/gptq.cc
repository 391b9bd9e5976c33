#include "quant/gptq.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

#include "kernels/reference/dequant.h"
#include "kernels/reference/quant_grid.h"

namespace fastgen::quant {
namespace {

namespace ref = kernels::reference;

// In-place lower Cholesky factor of a [n, n] row-major SPD matrix (the upper triangle is left
// as it was). False on a non-positive pivot.
bool CholeskyLower(std::vector<double>& a, int64_t n) {
  for (int64_t j = 0; j < n; ++j) {
    double* aj = a.data() + j * n;
    double d = aj[j];
    for (int64_t k = 0; k < j; ++k) d -= aj[k] * aj[k];
    if (!(d > 0)) return false;
    d = std::sqrt(d);
    aj[j] = d;
    for (int64_t i = j + 1; i < n; ++i) {
      double* ai = a.data() + i * n;
      double s = ai[j];
      for (int64_t k = 0; k < j; ++k) s -= ai[k] * aj[k];
      ai[j] = s / d;
    }
  }
  return true;
}

}  // namespace

bool InverseCholeskyUpper(std::vector<double>& h, int64_t n) {
  if (!CholeskyLower(h, n)) return false;
  // Linv = L⁻¹ (lower), by forward substitution column by column.
  std::vector<double> inv(static_cast<size_t>(n * n), 0.0);
  for (int64_t c = 0; c < n; ++c) {
    inv[c * n + c] = 1.0 / h[c * n + c];
    for (int64_t i = c + 1; i < n; ++i) {
      double s = 0;
      for (int64_t k = c; k < i; ++k) s += h[i * n + k] * inv[k * n + c];
      inv[i * n + c] = -s / h[i * n + i];
    }
  }
  // H⁻¹ = Linvᵀ Linv: entry (i, j) = Σ_{k ≥ max(i,j)} Linv[k][i] Linv[k][j].
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j <= i; ++j) {
      double s = 0;
      for (int64_t k = i; k < n; ++k) s += inv[k * n + i] * inv[k * n + j];
      h[i * n + j] = h[j * n + i] = s;
    }
  // U = Mᵀ with H⁻¹ = M Mᵀ (M lower): the upper factor H⁻¹ = Uᵀ U.
  if (!CholeskyLower(h, n)) return false;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = i + 1; j < n; ++j) {
      h[i * n + j] = h[j * n + i];
      h[j * n + i] = 0;
    }
  return true;
}

Expected<GptqResult> GptqQuantize(DType type, const float* w, int64_t rows, int64_t cols, std::vector<double> h,
                                  const GptqOptions& o, ThreadPool& pool) {
  if (!ref::HasBlockGrid(type))
    return InvalidArgument(std::string("GPTQ: no block grid for ") + std::string(Name(type)) +
                           " (Q8_0, Q4_0, Q4_K and Q6_K have one)");
  const int64_t blk = Info(type).block_elems;
  if (cols % blk != 0 || rows < 1)
    return InvalidArgument("GPTQ: a [" + std::to_string(rows) + ", " + std::to_string(cols) + "] matrix does not split into " +
                           std::string(Name(type)) + " blocks");
  if (static_cast<int64_t>(h.size()) != cols * cols) return Internal("GPTQ: the Hessian is not [cols, cols]");
  const size_t row_bytes = *RowBytes(type, cols);
  const size_t block_bytes = Info(type).block_bytes;

  // Importance of each column for the block scale searches: H's diagonal (the mean squared
  // input), normalized; a column no input ever reaches is dead: weight 0, pinned to zero.
  std::vector<double> diag(static_cast<size_t>(cols));
  double mean_diag = 0;
  for (int64_t c = 0; c < cols; ++c) mean_diag += diag[c] = h[c * cols + c];
  mean_diag /= static_cast<double>(cols);
  if (!(mean_diag > 0)) mean_diag = 1;
  std::vector<float> importance(static_cast<size_t>(cols));
  std::vector<uint8_t> dead(static_cast<size_t>(cols), 0);
  for (int64_t c = 0; c < cols; ++c) {
    importance[c] = static_cast<float>(diag[c] / mean_diag);
    if (diag[c] <= 0) {
      dead[c] = 1;
      h[c * cols + c] = mean_diag;
    }
  }

  // Column order.
  std::vector<int64_t> perm(static_cast<size_t>(cols));
  std::iota(perm.begin(), perm.end(), 0);
  if (o.act_order)
    std::stable_sort(perm.begin(), perm.end(), [&](int64_t a, int64_t b) { return diag[a] > diag[b]; });
  std::vector<double> hp(static_cast<size_t>(cols * cols));
  for (int64_t i = 0; i < cols; ++i)
    for (int64_t j = 0; j < cols; ++j) hp[i * cols + j] = h[perm[i] * cols + perm[j]];
  h.clear();
  h.shrink_to_fit();

  GptqResult result;
  std::vector<double> u;
  double damp = o.damp;
  for (int attempt = 0;; ++attempt) {
    u = hp;
    for (int64_t i = 0; i < cols; ++i) u[i * cols + i] += damp * mean_diag;
    if (InverseCholeskyUpper(u, cols)) break;
    if (attempt == 3) return Internal("GPTQ: the Hessian is not positive definite even with dampening " + std::to_string(damp));
    damp *= 10;
  }
  result.damp = damp;
  hp.clear();
  hp.shrink_to_fit();

  result.packed.assign(row_bytes * static_cast<size_t>(rows), 0);
  uint8_t* packed = result.packed.data();
  const int64_t blocks = cols / blk;
  // Rows are independent given U: each thread takes tiles of rows, and each U row it streams
  // serves the whole tile from the cache.
  constexpr int64_t kTile = 16;
  pool.ParallelFor((rows + kTile - 1) / kTile, [&](int64_t t0, int64_t t1) {
    std::vector<double> wt(static_cast<size_t>(kTile * cols));  // the tile, columns in visiting order
    std::vector<ref::BlockGrid> grids(static_cast<size_t>(kTile * blocks));
    std::vector<int> codes(static_cast<size_t>(kTile * cols));
    std::vector<float> tmp(static_cast<size_t>(blk));
    double err[kTile];
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t r0 = t * kTile, nr = std::min(kTile, rows - r0);
      for (int64_t r = 0; r < nr; ++r) {
        const float* src = w + (r0 + r) * cols;
        for (int64_t i = 0; i < cols; ++i) wt[r * cols + i] = dead[perm[i]] ? 0.0 : src[perm[i]];
        if (o.act_order)  // static grids from the original weights
          for (int64_t b = 0; b < blocks; ++b) {
            for (int64_t j = 0; j < blk; ++j) tmp[j] = dead[b * blk + j] ? 0.0f : src[b * blk + j];
            ref::ChooseBlockGrid(type, tmp.data(), importance.data() + b * blk,
                                 packed + (r0 + r) * row_bytes + b * block_bytes, &grids[r * blocks + b]);
          }
      }
      for (int64_t i = 0; i < cols; ++i) {
        const int64_t c = perm[i], b = c / blk, j = c % blk;
        const double* ui = u.data() + i * cols;
        for (int64_t r = 0; r < nr; ++r) {
          double* wr = wt.data() + r * cols;
          if (!o.act_order && j == 0) {  // identity order: columns i .. i + blk - 1 are this block
            for (int64_t k = 0; k < blk; ++k) tmp[k] = static_cast<float>(wr[i + k]);
            ref::ChooseBlockGrid(type, tmp.data(), importance.data() + c, packed + (r0 + r) * row_bytes + b * block_bytes,
                                 &grids[r * blocks + b]);
          }
          float value = 0;
          codes[r * cols + c] = ref::GridCode(grids[r * blocks + b], static_cast<int>(j), static_cast<float>(wr[i]), &value);
          err[r] = (wr[i] - value) / ui[i];
        }
        for (int64_t r = 0; r < nr; ++r) {
          double* wr = wt.data() + r * cols;
          const double e = err[r];
          for (int64_t k = i + 1; k < cols; ++k) wr[k] -= e * ui[k];
        }
      }
      for (int64_t r = 0; r < nr; ++r)
        for (int64_t b = 0; b < blocks; ++b)
          ref::PackBlockCodes(type, codes.data() + r * cols + b * blk, packed + (r0 + r) * row_bytes + b * block_bytes);
    }
  });
  return result;
}

}  // namespace fastgen::quant
