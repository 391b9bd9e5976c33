// The row-wise operations of a decoder layer with AVX-512: SwiGLU's SiLU-and-multiply (one
// vector exp per 16 elements instead of a libm call each) and RMSNorm (sum of squares in
// double, like the reference, then one scaling pass).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cmath>

#include "kernels/cpu/kernels_avx512.h"
#include "kernels/cpu/vec_math_avx512.h"

namespace fastgen::kernels::cpu {

void SiluMulAvx512(float* gate, const float* up, int64_t n, int64_t m, int64_t ldg, int64_t ldu) {
  const __m512 one = _mm512_set1_ps(1.0f);
  for (int64_t t = 0; t < n; ++t) {
    float* g = gate + t * ldg;
    const float* u = up + t * ldu;
    for (int64_t i = 0; i < m; i += 16) {
      const __mmask16 k = m - i >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << (m - i)) - 1);
      const __m512 x = _mm512_maskz_loadu_ps(k, g + i);
      // silu(x) = x / (1 + e^-x); below -88, e^-x overflows float and silu(x) is 0 (|silu| <
      // 1e-36), which Exp's clamping would not give, so those lanes are set to 0 outright.
      const __m512 s = _mm512_mask_mov_ps(
          _mm512_div_ps(x, _mm512_add_ps(one, Exp(_mm512_sub_ps(_mm512_setzero_ps(), x)))),
          _mm512_cmp_ps_mask(x, _mm512_set1_ps(-88.0f), _CMP_LT_OQ), _mm512_setzero_ps());
      _mm512_mask_storeu_ps(g + i, k, _mm512_mul_ps(s, _mm512_maskz_loadu_ps(k, u + i)));
    }
  }
}

void RmsNormAvx512(const float* x, const float* w, int64_t n, int64_t d, float eps, bool plus_one,
                   float* out) {
  const __m512 one = _mm512_set1_ps(plus_one ? 1.0f : 0.0f);
  for (int64_t t = 0; t < n; ++t) {
    const float* xt = x + t * d;
    float* ot = out + t * d;
    // Squares summed in double, as the reference does (see reference::RmsNorm).
    __m512d ss0 = _mm512_setzero_pd(), ss1 = _mm512_setzero_pd();
    for (int64_t i = 0; i < d; i += 16) {
      const __mmask16 k = d - i >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << (d - i)) - 1);
      const __m512 v = _mm512_maskz_loadu_ps(k, xt + i);
      const __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(v));
      const __m512d hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
      ss0 = _mm512_fmadd_pd(lo, lo, ss0);
      ss1 = _mm512_fmadd_pd(hi, hi, ss1);
    }
    const double ss = _mm512_reduce_add_pd(_mm512_add_pd(ss0, ss1));
    const __m512 inv = _mm512_set1_ps(static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(d) + eps)));
    for (int64_t i = 0; i < d; i += 16) {
      const __mmask16 k = d - i >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << (d - i)) - 1);
      const __m512 wi = _mm512_add_ps(one, _mm512_maskz_loadu_ps(k, w + i));
      _mm512_mask_storeu_ps(ot + i, k, _mm512_mul_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(k, xt + i), inv), wi));
    }
  }
}

float MaxSumExpAvx512(const float* x, int64_t n, float* max) {
  __m512 mv = _mm512_set1_ps(-INFINITY);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 k = n - i >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << (n - i)) - 1);
    mv = _mm512_mask_max_ps(mv, k, mv, _mm512_maskz_loadu_ps(k, x + i));
  }
  const float mx = _mm512_reduce_max_ps(mv);
  *max = mx;
  if (mx == -INFINITY) return 0.0f;
  // Four sums: a vocabulary of 8192 adds 128 terms per lane, well within float precision for
  // a confidence estimate, and four chains hide the add latency.
  const __m512 shift = _mm512_set1_ps(mx);
  __m512 s[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
  int64_t i = 0;
  for (; i + 64 <= n; i += 64)
    for (int u = 0; u < 4; ++u) s[u] = _mm512_add_ps(s[u], Exp(_mm512_sub_ps(_mm512_loadu_ps(x + i + 16 * u), shift)));
  for (; i < n; i += 16) {
    const __mmask16 k = n - i >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << (n - i)) - 1);
    // Lanes past the row contribute exp(-inf) = 0 (Exp clamps to e^-100, so they are masked).
    s[0] = _mm512_add_ps(s[0], _mm512_maskz_mov_ps(k, Exp(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), shift))));
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s[0], s[1]), _mm512_add_ps(s[2], s[3])));
}

void ExpShiftAvx512(float* x, int64_t n, float shift) {
  const __m512 sh = _mm512_set1_ps(shift);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 k = n - i >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << (n - i)) - 1);
    const __m512 v = _mm512_maskz_loadu_ps(k, x + i);
    // Exp clamps its argument (e^-100 for -inf): -inf entries are set to 0 explicitly.
    const __mmask16 finite = _mm512_cmp_ps_mask(v, _mm512_set1_ps(-INFINITY), _CMP_NEQ_OQ);
    _mm512_mask_storeu_ps(x + i, k, _mm512_maskz_mov_ps(finite, Exp(_mm512_sub_ps(v, sh))));
  }
}

}  // namespace fastgen::kernels::cpu
