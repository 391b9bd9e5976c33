// The row-wise operations of a decoder layer with AVX2 + FMA: SwiGLU's SiLU-and-multiply (one
// vector exp per 8 elements) and RMSNorm (sum of squares in double, like the reference).
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "kernels/cpu/kernels_avx2.h"
#include "kernels/cpu/vec_math_avx2.h"

namespace fastgen::kernels::cpu {
namespace {

// Lanes [0, n) of an all-ones mask, for maskload/maskstore of a row's tail.
inline __m256i TailMask(int64_t n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

}  // namespace

void SiluMulAvx2(float* gate, const float* up, int64_t n, int64_t m, int64_t ldg, int64_t ldu) {
  const __m256 one = _mm256_set1_ps(1.0f);
  for (int64_t t = 0; t < n; ++t) {
    float* g = gate + t * ldg;
    const float* u = up + t * ldu;
    for (int64_t i = 0; i < m; i += 8) {
      const __m256i k = TailMask(m - i >= 8 ? 8 : m - i);
      const __m256 x = _mm256_maskload_ps(g + i, k);
      // silu(x) = x / (1 + e^-x); below -87 it is 0 to float precision (Exp clamps, so set it).
      __m256 s = _mm256_div_ps(x, _mm256_add_ps(one, Exp(_mm256_sub_ps(_mm256_setzero_ps(), x))));
      s = _mm256_andnot_ps(_mm256_cmp_ps(x, _mm256_set1_ps(-87.0f), _CMP_LT_OQ), s);
      _mm256_maskstore_ps(g + i, k, _mm256_mul_ps(s, _mm256_maskload_ps(u + i, k)));
    }
  }
}

void RmsNormAvx2(const float* x, const float* w, int64_t n, int64_t d, float eps, bool plus_one, float* out) {
  const __m256 one = _mm256_set1_ps(plus_one ? 1.0f : 0.0f);
  for (int64_t t = 0; t < n; ++t) {
    const float* xt = x + t * d;
    float* ot = out + t * d;
    __m256d ss0 = _mm256_setzero_pd(), ss1 = _mm256_setzero_pd();
    for (int64_t i = 0; i < d; i += 8) {
      const __m256 v = _mm256_maskload_ps(xt + i, TailMask(d - i >= 8 ? 8 : d - i));
      const __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(v));
      const __m256d hi = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
      ss0 = _mm256_fmadd_pd(lo, lo, ss0);
      ss1 = _mm256_fmadd_pd(hi, hi, ss1);
    }
    alignas(32) double parts[4];
    _mm256_store_pd(parts, _mm256_add_pd(ss0, ss1));
    const double ss = (parts[0] + parts[1]) + (parts[2] + parts[3]);
    const __m256 inv = _mm256_set1_ps(static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(d) + eps)));
    for (int64_t i = 0; i < d; i += 8) {
      const __m256i k = TailMask(d - i >= 8 ? 8 : d - i);
      const __m256 wi = _mm256_add_ps(one, _mm256_maskload_ps(w + i, k));
      _mm256_maskstore_ps(ot + i, k, _mm256_mul_ps(_mm256_mul_ps(_mm256_maskload_ps(xt + i, k), inv), wi));
    }
  }
}

float MaxSumExpAvx2(const float* x, int64_t n, float* max) {
  const __m256 ninf = _mm256_set1_ps(-INFINITY);
  __m256 mv = ninf;
  for (int64_t i = 0; i < n; i += 8) {
    const __m256i k = TailMask(n - i >= 8 ? 8 : n - i);
    mv = _mm256_max_ps(mv, _mm256_blendv_ps(ninf, _mm256_maskload_ps(x + i, k), _mm256_castsi256_ps(k)));
  }
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, mv);
  float mx = lanes[0];
  for (int l = 1; l < 8; ++l) mx = std::max(mx, lanes[l]);
  *max = mx;
  if (mx == -INFINITY) return 0.0f;
  const __m256 shift = _mm256_set1_ps(mx);
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    s0 = _mm256_add_ps(s0, Exp(_mm256_sub_ps(_mm256_loadu_ps(x + i), shift)));
    s1 = _mm256_add_ps(s1, Exp(_mm256_sub_ps(_mm256_loadu_ps(x + i + 8), shift)));
  }
  for (; i < n; i += 8) {
    const __m256i k = TailMask(n - i >= 8 ? 8 : n - i);
    const __m256 e = Exp(_mm256_sub_ps(_mm256_maskload_ps(x + i, k), shift));
    s0 = _mm256_add_ps(s0, _mm256_and_ps(e, _mm256_castsi256_ps(k)));
  }
  _mm256_store_ps(lanes, _mm256_add_ps(s0, s1));
  float sum = 0.0f;
  for (int l = 0; l < 8; ++l) sum += lanes[l];
  return sum;
}

void ExpShiftAvx2(float* x, int64_t n, float shift) {
  const __m256 sh = _mm256_set1_ps(shift), ninf = _mm256_set1_ps(-INFINITY);
  for (int64_t i = 0; i < n; i += 8) {
    const __m256i k = TailMask(n - i >= 8 ? 8 : n - i);
    const __m256 v = _mm256_maskload_ps(x + i, k);
    // Exp clamps its argument (e^-100 for -inf): -inf entries are set to 0 explicitly.
    const __m256 finite = _mm256_cmp_ps(v, ninf, _CMP_NEQ_OQ);
    _mm256_maskstore_ps(x + i, k, _mm256_and_ps(finite, Exp(_mm256_sub_ps(v, sh))));
  }
}

}  // namespace fastgen::kernels::cpu
