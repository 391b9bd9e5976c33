// Vector math for the AVX-512 kernel files. Include only from *_avx512.cc files: everything
// here has internal linkage (anonymous namespace), so no AVX-512 instruction can leak into
// code the rest of the program links against (see matmul_job.h).
#pragma once

#include <immintrin.h>

namespace fastgen::kernels::cpu {
namespace {

// e^x, lanewise, to ~2 ulp: x = n·ln2 + r with |r| <= ln2/2 (Cody-Waite, ln2 split in two so r
// is exact), e^r from its Taylor series to r^7 (truncation < 6e-9 relative), times 2^n by
// vscalefps. Inputs are clamped to [-100, 88] first, so the reduction stays exact: below -100
// the result is (nearly) 0, above 88 it is e^88 ≈ 1.7e38 (callers divide by it, or never pass
// such values).
inline __m512 Exp(__m512 x) {
  x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-100.0f)), _mm512_set1_ps(88.0f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);  // ln2 high part (exact product)
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606765330187e-06f), r);     // ln2 low part
  __m512 p = _mm512_set1_ps(1.0f / 5040.0f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, n);
}

// Lane j of the result = the sum of the 16 lanes of a[j]: a transposing tree of unpacks and
// shuffles, 45 operations for 16 sums.
inline __m512 ReduceLanes16(const __m512 a[16]) {
  __m512 v[8], w[4], z[2];
  for (int k = 0; k < 8; ++k)  // per 128-bit lane: a[2k] partials in positions 0, 2; a[2k+1] in 1, 3
    v[k] = _mm512_add_ps(_mm512_unpacklo_ps(a[2 * k], a[2 * k + 1]), _mm512_unpackhi_ps(a[2 * k], a[2 * k + 1]));
  for (int k = 0; k < 4; ++k)  // per 128-bit lane: sources 4k .. 4k+3 in order
    w[k] = _mm512_add_ps(_mm512_shuffle_ps(v[2 * k], v[2 * k + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                         _mm512_shuffle_ps(v[2 * k], v[2 * k + 1], _MM_SHUFFLE(3, 2, 3, 2)));
  for (int k = 0; k < 2; ++k)  // 128-bit lanes: sources 8k..8k+3 (two halves), 8k+4..8k+7 (two halves)
    z[k] = _mm512_add_ps(_mm512_shuffle_f32x4(w[2 * k], w[2 * k + 1], _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm512_shuffle_f32x4(w[2 * k], w[2 * k + 1], _MM_SHUFFLE(3, 1, 3, 1)));
  return _mm512_add_ps(_mm512_shuffle_f32x4(z[0], z[1], _MM_SHUFFLE(2, 0, 2, 0)),
                       _mm512_shuffle_f32x4(z[0], z[1], _MM_SHUFFLE(3, 1, 3, 1)));
}

}  // namespace
}  // namespace fastgen::kernels::cpu
