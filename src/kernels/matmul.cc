#include "kernels/matmul.h"

namespace fastgen::kernels {

void MatMul(const TensorView& w, const float* x, int64_t n, float* y, int64_t ldy,
            ThreadPool& pool) {
  // Quantized rows are whole blocks, so any row split is valid; 16-row grains keep each
  // thread's output writes on separate cache lines.
  pool.ParallelFor(w.rows(), [&](int64_t m0, int64_t m1) {
    reference::MatMulRows(w, x, n, y, ldy, m0, m1);
  }, 16);
}

}  // namespace fastgen::kernels
