#include <vector>

#include "kernels/matmul.h"
#include "kernels/reference/dequant.h"

namespace fastgen::kernels::reference {

void MatMulRows(const TensorView& w, const float* x, int64_t n, float* y, int64_t ldy,
                int64_t m_begin, int64_t m_end) {
  const int64_t k = w.cols();
  std::vector<float> row(static_cast<size_t>(k));  // [k] one dequantized weight row
  for (int64_t m = m_begin; m < m_end; ++m) {
    DequantizeRow(w.dtype, w.row(m), row.data(), k);
    for (int64_t t = 0; t < n; ++t) {
      const float* xt = x + t * k;
      float acc = 0.0f;
      for (int64_t i = 0; i < k; ++i) acc += row[static_cast<size_t>(i)] * xt[i];
      y[t * ldy + m] = acc;
    }
  }
}

}  // namespace fastgen::kernels::reference
