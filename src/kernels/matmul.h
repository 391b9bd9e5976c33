// Matrix products of float32 activations with weights in their stored dtype: the operation that
// dominates both prefill (n = prompt tokens, compute-bound) and decode (n = 1, bandwidth-bound).
#pragma once

#include <cstdint>

#include "core/tensor.h"
#include "core/thread_pool.h"

namespace fastgen::kernels {

// Which kernels compute a call's tokens. Both are invariant to the batch: a token's outputs are
// the same bits whatever other tokens share the call and wherever it sits among them. They
// differ from each other in rounding, so a caller that needs the same bits for a token however
// it is batched names the path:
enum class MatMulPath {
  kAuto,    // by size: the decode kernels for a few tokens, the GEMM for many
  kDecode,  // the decode (per-row dot product) kernels at any n: decoding steps, verification
  kGemm,    // the cache-blocked GEMM at any n: prompt tokens
};

// y[n, m] = x[n, k] · W[m, k]ᵀ, where W is row-major in its stored dtype (k = W.cols(),
// m = W.rows()). Rows of y are ldy floats apart (ldy >= m), rows of x are k floats apart.
// Splits the m output rows across the pool.
void MatMul(const TensorView& w, const float* x, int64_t n, float* y, int64_t ldy,
            ThreadPool& pool, MatMulPath path = MatMulPath::kAuto);
inline void MatMul(const TensorView& w, const float* x, int64_t n, float* y, ThreadPool& pool) {
  MatMul(w, x, n, y, w.rows(), pool);
}

// Several products of the same x at once, y_i[n, m_i] = x[n, k] · W_iᵀ (rows ldy_i apart): the
// Q/K/V projections, or the gate and up projections. When the weights share dtype and k, x is
// prepared once and one parallel region covers all rows; otherwise they run one by one.
struct MatMulOutput {
  const TensorView* w;
  float* y;
  int64_t ldy;
};
inline constexpr int kMaxGroup = 4;
void MatMulGroup(const MatMulOutput* outs, int count, const float* x, int64_t n,
                 ThreadPool& pool, MatMulPath path = MatMulPath::kAuto);

namespace reference {
// The scalar oracle: dequantizes each weight row to float32 and takes float32 dot products
// (accumulated in double-free float32, sequential order). Single-threaded per call; rows
// [m_begin, m_end) only, so dispatchers can split the work.
void MatMulRows(const TensorView& w, const float* x, int64_t n, float* y, int64_t ldy,
                int64_t m_begin, int64_t m_end);
}  // namespace reference

}  // namespace fastgen::kernels
