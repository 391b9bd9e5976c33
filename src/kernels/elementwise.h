// The row-wise operations of a decoder layer on the active ISA (AVX-512 or AVX2 kernels),
// the scalar reference (kernels/reference/elementwise.h, same contracts) otherwise.
#pragma once

#include <cstdint>

namespace fastgen::kernels {

// out[t] = x[t] / rms(x[t]) * w (w + 1 when plus_one). x, out: [n, d]; w: [d].
void RmsNorm(const float* x, const float* w, int64_t n, int64_t d, float eps, bool plus_one, float* out);
// gate[i] = silu(gate[i]) * up[i] over n rows of m elements (row strides ldg, ldu).
void SiluMul(float* gate, const float* up, int64_t n, int64_t m, int64_t ldg, int64_t ldu);

}  // namespace fastgen::kernels
