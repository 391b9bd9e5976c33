// Matrix products of float32 activations with weights in their stored dtype: the operation that
// dominates both prefill (n = prompt tokens, compute-bound) and decode (n = 1, bandwidth-bound).
#pragma once

#include <cstdint>

#include "core/tensor.h"
#include "core/thread_pool.h"

namespace fastgen::kernels {

// y[n, m] = x[n, k] · W[m, k]ᵀ, where W is row-major in its stored dtype (k = W.cols(),
// m = W.rows()). Rows of y are ldy floats apart (ldy >= m), rows of x are k floats apart.
// Splits the m output rows across the pool.
void MatMul(const TensorView& w, const float* x, int64_t n, float* y, int64_t ldy,
            ThreadPool& pool);
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
                 ThreadPool& pool);

namespace reference {
// The scalar oracle: dequantizes each weight row to float32 and takes float32 dot products
// (accumulated in double-free float32, sequential order). Single-threaded per call; rows
// [m_begin, m_end) only, so dispatchers can split the work.
void MatMulRows(const TensorView& w, const float* x, int64_t n, float* y, int64_t ldy,
                int64_t m_begin, int64_t m_end);
}  // namespace reference

}  // namespace fastgen::kernels
