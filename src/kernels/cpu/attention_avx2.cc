// The split-K attention work item with AVX2 + FMA, for head_dim a multiple of 8:
// attention_tile.h over 8-lane vectors.
#include <immintrin.h>

#include "kernels/cpu/attention_split.h"
#include "kernels/cpu/attention_tile.h"
#include "kernels/cpu/vec_math_avx2.h"

namespace fastgen::kernels::cpu {
namespace {

struct Lanes8 {
  using Vec = __m256;
  using Mask = __m256i;  // all ones in the lanes that count
  static constexpr int kLanes = 8;
  static constexpr int kRegisters = 16;
  static Vec Zero() { return _mm256_setzero_ps(); }
  static Vec Set1(float x) { return _mm256_set1_ps(x); }
  static Vec Load(const float* p) { return _mm256_loadu_ps(p); }
  static void Store(float* p, Vec v) { _mm256_storeu_ps(p, v); }
  static Vec Add(Vec a, Vec b) { return _mm256_add_ps(a, b); }
  static Vec Mul(Vec a, Vec b) { return _mm256_mul_ps(a, b); }
  static Vec Sub(Vec a, Vec b) { return _mm256_sub_ps(a, b); }
  static Vec Fmadd(Vec a, Vec b, Vec c) { return _mm256_fmadd_ps(a, b, c); }
  // Below -87 it gives e^-87 rather than 0; the caller zeroes the lanes that must be.
  static Vec Exp(Vec x) { return cpu::Exp(x); }
  static __m256i Iota() { return _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7); }
  static float HorizontalMax(Vec v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    return _mm_cvtss_f32(_mm_max_ss(m, _mm_movehdup_ps(m)));
  }
  static float HorizontalSum(Vec v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
  }
  static Mask FirstLanes(int n) { return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), Iota()); }
  static Mask Causal(Mask m, int32_t first_slot, int32_t pos, int64_t window) {
    const __m256i slots = _mm256_add_epi32(_mm256_set1_epi32(first_slot), Iota());
    m = _mm256_andnot_si256(_mm256_cmpgt_epi32(slots, _mm256_set1_epi32(pos)), m);
    if (window > 0)
      m = _mm256_and_si256(m, _mm256_cmpgt_epi32(slots, _mm256_set1_epi32(static_cast<int32_t>(pos - window))));
    return m;
  }
  static bool None(Mask m) { return _mm256_testz_si256(m, m); }
  static Vec WhereOr(Mask m, Vec v, float fill) { return _mm256_blendv_ps(_mm256_set1_ps(fill), v, _mm256_castsi256_ps(m)); }
  static Vec ZeroOutside(Mask m, Vec v) { return _mm256_and_ps(_mm256_castsi256_ps(m), v); }

  static Vec ReduceLanes(const Vec a[8]) { return ReduceLanes8(a); }

  // Rows of n elements, n a multiple of 8 (F16) or 32 (Q8_0, Q4_0), as the AVX-512 version
  // (which says why F16 loads a column of every row first).
  static void DecodeRows(DType t, const uint8_t* const* src, int count, int64_t n, float* dst) {
    if (t == DType::kF16) {
      for (int64_t i = 0; i < n; i += 8) {
        __m128i h[kLanes];
        for (int j = 0; j < count; ++j) h[j] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src[j] + 2 * i));
        for (int j = 0; j < count; ++j) _mm256_storeu_ps(dst + j * n + i, _mm256_cvtph_ps(h[j]));
      }
      return;
    }
    if (t == DType::kQ4_0) {
      const __m128i low4 = _mm_set1_epi8(0x0f);
      const __m256i eight = _mm256_set1_epi32(8);
      for (int j = 0; j < count; ++j) {
        const uint8_t* b = src[j];
        for (int64_t i = 0; i < n; i += 32, b += 18) {  // block_q4_0: f16 scale, 16 bytes of nibbles
          uint16_t h;
          __builtin_memcpy(&h, b, 2);
          const __m256 d = _mm256_set1_ps(_cvtsh_ss(h));
          const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 2));
          const __m128i nib[2] = {_mm_and_si128(q, low4), _mm_and_si128(_mm_srli_epi16(q, 4), low4)};
          for (int half = 0; half < 2; ++half)      // low nibbles are elements 0..15, high 16..31
            for (int part = 0; part < 2; ++part) {  // 8 elements at a time
              const __m128i bytes = part ? _mm_srli_si128(nib[half], 8) : nib[half];
              const __m256 f = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_cvtepu8_epi32(bytes), eight));
              _mm256_storeu_ps(dst + j * n + i + 16 * half + 8 * part, _mm256_mul_ps(d, f));
            }
        }
      }
      return;
    }
    for (int j = 0; j < count; ++j) {
      const uint8_t* b = src[j];
      for (int64_t i = 0; i < n; i += 32, b += 34) {  // block_q8_0: f16 scale, 32 int8
        uint16_t h;
        __builtin_memcpy(&h, b, 2);
        const __m256 d = _mm256_set1_ps(_cvtsh_ss(h));
        for (int part = 0; part < 4; ++part) {
          const __m128i q = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(b + 2 + 8 * part));
          _mm256_storeu_ps(dst + j * n + i + 8 * part, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q))));
        }
      }
    }
  }
};

}  // namespace

void AttendTileAvx2(const AttentionArgs& a, int64_t t0, int64_t nt, int64_t kvh, const SlotRange& r,
                    PartialSoftmax* out) {
  AttendTile<Lanes8>(a, t0, nt, kvh, r, out);
}

}  // namespace fastgen::kernels::cpu
