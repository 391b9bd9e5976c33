#include "kernels/reference/elementwise.h"

#include <algorithm>
#include <cmath>

namespace fastgen::kernels::reference {

void RmsNorm(const float* x, const float* w, int64_t n, int64_t d, float eps, bool plus_one,
             float* out) {
  for (int64_t t = 0; t < n; ++t) {
    const float* xt = x + t * d;
    float* ot = out + t * d;
    // Accumulate in double: the mean of squares over thousands of elements is the one place
    // float32 summation order would show up in the logits.
    double ss = 0.0;
    for (int64_t i = 0; i < d; ++i) ss += static_cast<double>(xt[i]) * xt[i];
    const float inv = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(d) + eps));
    for (int64_t i = 0; i < d; ++i) {
      const float wi = plus_one ? 1.0f + w[i] : w[i];
      ot[i] = xt[i] * inv * wi;
    }
  }
}

void LayerNorm(const float* x, const float* w, const float* b, int64_t n, int64_t d, float eps,
               float* out) {
  for (int64_t t = 0; t < n; ++t) {
    const float* xt = x + t * d;
    float* ot = out + t * d;
    double mean = 0.0;
    for (int64_t i = 0; i < d; ++i) mean += xt[i];
    mean /= static_cast<double>(d);
    double var = 0.0;
    for (int64_t i = 0; i < d; ++i) {
      const double c = xt[i] - mean;
      var += c * c;
    }
    var /= static_cast<double>(d);
    const double inv = 1.0 / std::sqrt(var + eps);
    for (int64_t i = 0; i < d; ++i)
      ot[i] = static_cast<float>((xt[i] - mean) * inv) * w[i] + (b ? b[i] : 0.0f);
  }
}

void AddBias(float* y, const float* bias, int64_t n, int64_t m, int64_t ldy) {
  for (int64_t t = 0; t < n; ++t)
    for (int64_t i = 0; i < m; ++i) y[t * ldy + i] += bias[i];
}

namespace {
inline float Silu(float v) { return v / (1.0f + std::exp(-v)); }
// GELU with the tanh approximation (GPT-2's gelu_new, PyTorch's gelu(approximate="tanh")).
inline float GeluTanhScalar(float v) {
  constexpr float kSqrt2OverPi = 0.7978845608028654f;
  return 0.5f * v * (1.0f + std::tanh(kSqrt2OverPi * (v + 0.044715f * v * v * v)));
}
}  // namespace

void SiluMul(float* gate, const float* up, int64_t n, int64_t m, int64_t ldg, int64_t ldu) {
  for (int64_t t = 0; t < n; ++t)
    for (int64_t i = 0; i < m; ++i) gate[t * ldg + i] = Silu(gate[t * ldg + i]) * up[t * ldu + i];
}

void GeluTanhMul(float* gate, const float* up, int64_t n, int64_t m, int64_t ldg, int64_t ldu) {
  for (int64_t t = 0; t < n; ++t)
    for (int64_t i = 0; i < m; ++i)
      gate[t * ldg + i] = GeluTanhScalar(gate[t * ldg + i]) * up[t * ldu + i];
}

void GeluTanh(float* x, int64_t count) {
  for (int64_t i = 0; i < count; ++i) x[i] = GeluTanhScalar(x[i]);
}

void Add(float* x, const float* y, int64_t count) {
  for (int64_t i = 0; i < count; ++i) x[i] += y[i];
}

void Scale(float* x, float s, int64_t count) {
  for (int64_t i = 0; i < count; ++i) x[i] *= s;
}

void Softmax(float* x, int64_t count) {
  if (count <= 0) return;
  const float mx = *std::max_element(x, x + count);
  if (mx == -INFINITY) {  // every entry masked: define the result as uniform zero weights
    std::fill(x, x + count, 0.0f);
    return;
  }
  double sum = 0.0;
  for (int64_t i = 0; i < count; ++i) {
    x[i] = std::exp(x[i] - mx);
    sum += x[i];
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t i = 0; i < count; ++i) x[i] *= inv;
}

float MaxSumExp(const float* x, int64_t n, float* max) {
  float mx = -INFINITY;
  for (int64_t i = 0; i < n; ++i) mx = std::max(mx, x[i]);
  *max = mx;
  if (mx == -INFINITY) return 0.0f;
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += std::exp(static_cast<double>(x[i]) - mx);
  return static_cast<float>(sum);
}

void ExpShift(float* x, int64_t n, float shift) {
  for (int64_t i = 0; i < n; ++i) x[i] = std::exp(x[i] - shift);
}

}  // namespace fastgen::kernels::reference
