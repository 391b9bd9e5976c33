// The row-wise operations of a decoder layer on the active ISA (AVX-512 or AVX2 kernels),
// the scalar reference (kernels/reference/elementwise.h, same contracts) otherwise.
#pragma once

#include <cstdint>

namespace fastgen::kernels {

// out[t] = x[t] / rms(x[t]) * w (w + 1 when plus_one). x, out: [n, d]; w: [d].
void RmsNorm(const float* x, const float* w, int64_t n, int64_t d, float eps, bool plus_one, float* out);
// gate[i] = silu(gate[i]) * up[i] over n rows of m elements (row strides ldg, ldu).
void SiluMul(float* gate, const float* up, int64_t n, int64_t m, int64_t ldg, int64_t ldu);
// Of one row x[0, n): *max = its largest entry, returned Σ exp(x[i] − max) (>= 1; 0 for n = 0
// or an all -inf row). Softmax's top probability is 1 / that sum: a draft model's confidence
// per drafted token, over a whole vocabulary, in a few microseconds.
float MaxSumExp(const float* x, int64_t n, float* max);
// x[i] = exp(x[i] − shift) over x[0, n) (-inf entries become 0): a softmax's numerators once
// the shift is its row's max, e.g. the attention each cached token receives (KV eviction).
void ExpShift(float* x, int64_t n, float shift);

}  // namespace fastgen::kernels
