// Scalar reference kernels for the non-matmul operations of a decoder layer. Each is the oracle
// for its SIMD counterpart. Row-major float32 throughout.
#pragma once

#include <cstdint>

namespace fastgen::kernels::reference {

// out[t] = x[t] / rms(x[t]) * w, with w' = 1 + w when plus_one (Gemma). x, out: [n, d]; w: [d].
void RmsNorm(const float* x, const float* w, int64_t n, int64_t d, float eps, bool plus_one,
             float* out);
// out[t] = (x[t] - mean) / sqrt(var + eps) * w + b. x, out: [n, d]; w, b: [d].
void LayerNorm(const float* x, const float* w, const float* b, int64_t n, int64_t d, float eps,
               float* out);
// y[t] += bias. y: [n, m] with row stride ldy; bias: [m].
void AddBias(float* y, const float* bias, int64_t n, int64_t m, int64_t ldy);
// gate[i] = act(gate[i]) * up[i] over n rows of m elements (row strides ldg, ldu).
void SiluMul(float* gate, const float* up, int64_t n, int64_t m, int64_t ldg, int64_t ldu);
void GeluTanhMul(float* gate, const float* up, int64_t n, int64_t m, int64_t ldg, int64_t ldu);
void GeluTanh(float* x, int64_t count);
// x += y over count elements (residual connections).
void Add(float* x, const float* y, int64_t count);
void Scale(float* x, float s, int64_t count);
// In-place softmax of one row.
void Softmax(float* x, int64_t count);
// *max = max of x[0, n); returns Σ exp(x[i] − max), summed in double (0 for n = 0 or all -inf).
float MaxSumExp(const float* x, int64_t n, float* max);
// x[i] = exp(x[i] − shift); -inf entries become 0.
void ExpShift(float* x, int64_t n, float shift);

}  // namespace fastgen::kernels::reference
