// The split-K attention work item with AVX-512, for head_dim a multiple of 16: attention_tile.h
// over 16-lane vectors.
// GCC 12's AVX-512 headers build _mm*_undefined_*() from a self-initialized variable, which
// -Wuninitialized reports inside the headers at -O3 (a false positive about the header).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include "kernels/cpu/attention_split.h"
#include "kernels/cpu/attention_tile.h"
#include "kernels/cpu/vec_math_avx512.h"

namespace fastgen::kernels::cpu {
namespace {

struct Lanes16 {
  using Vec = __m512;
  using Mask = __mmask16;
  static constexpr int kLanes = 16;
  static constexpr int kRegisters = 32;
  static Vec Zero() { return _mm512_setzero_ps(); }
  static Vec Set1(float x) { return _mm512_set1_ps(x); }
  static Vec Load(const float* p) { return _mm512_loadu_ps(p); }
  static void Store(float* p, Vec v) { _mm512_storeu_ps(p, v); }
  static Vec Add(Vec a, Vec b) { return _mm512_add_ps(a, b); }
  static Vec Mul(Vec a, Vec b) { return _mm512_mul_ps(a, b); }
  static Vec Sub(Vec a, Vec b) { return _mm512_sub_ps(a, b); }
  static Vec Fmadd(Vec a, Vec b, Vec c) { return _mm512_fmadd_ps(a, b, c); }
  static Vec Exp(Vec x) { return cpu::Exp(x); }
  static float HorizontalMax(Vec v) { return _mm512_reduce_max_ps(v); }
  static float HorizontalSum(Vec v) { return _mm512_reduce_add_ps(v); }
  static Mask FirstLanes(int n) { return static_cast<Mask>((1u << n) - 1); }
  static Mask Causal(Mask m, int32_t first_slot, int32_t pos, int64_t window) {
    const __m512i slots = _mm512_add_epi32(_mm512_set1_epi32(first_slot),
                                           _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
    m &= _mm512_cmple_epi32_mask(slots, _mm512_set1_epi32(pos));
    if (window > 0) m &= _mm512_cmpgt_epi32_mask(slots, _mm512_set1_epi32(static_cast<int32_t>(pos - window)));
    return m;
  }
  static bool None(Mask m) { return m == 0; }
  static Vec WhereOr(Mask m, Vec v, float fill) { return _mm512_mask_mov_ps(_mm512_set1_ps(fill), m, v); }
  static Vec ZeroOutside(Mask m, Vec v) { return _mm512_maskz_mov_ps(m, v); }

  static Vec ReduceLanes(const Vec a[16]) { return ReduceLanes16(a); }

  // Rows of n elements, n a multiple of 16 (F16) or 32 (Q8_0, Q4_0). Q8_0 is d · q and Q4_0
  // d · (q − 8) in float32, as the reference. F16 loads a column of every row before storing any: converting row by row,
  // each load waited behind the previous row's stores to the buffer (decode attention at 4096
  // slots, TinyLlama shape: 13.7-15.9 -> 10.0 ms per token).
  static void DecodeRows(DType t, const uint8_t* const* src, int count, int64_t n, float* dst) {
    if (t == DType::kF16) {
      for (int64_t i = 0; i < n; i += 16) {
        __m256i h[kLanes];
        for (int j = 0; j < count; ++j) h[j] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src[j] + 2 * i));
        for (int j = 0; j < count; ++j) _mm512_storeu_ps(dst + j * n + i, _mm512_cvtph_ps(h[j]));
      }
      return;
    }
    if (t == DType::kQ4_0) {
      const __m128i low4 = _mm_set1_epi8(0x0f);
      const __m512i eight = _mm512_set1_epi32(8);
      for (int j = 0; j < count; ++j) {
        const uint8_t* b = src[j];
        for (int64_t i = 0; i < n; i += 32, b += 18) {  // block_q4_0: f16 scale, 16 bytes of nibbles
          uint16_t h;
          __builtin_memcpy(&h, b, 2);
          const __m512 d = _mm512_set1_ps(_cvtsh_ss(h));
          const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 2));
          const __m128i lo = _mm_and_si128(q, low4), hi = _mm_and_si128(_mm_srli_epi16(q, 4), low4);
          const __m512 flo = _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_cvtepu8_epi32(lo), eight));
          const __m512 fhi = _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_cvtepu8_epi32(hi), eight));
          _mm512_storeu_ps(dst + j * n + i, _mm512_mul_ps(d, flo));        // elements 0..15: low nibbles
          _mm512_storeu_ps(dst + j * n + i + 16, _mm512_mul_ps(d, fhi));   // 16..31: high nibbles
        }
      }
      return;
    }
    for (int j = 0; j < count; ++j) {
      const uint8_t* b = src[j];
      for (int64_t i = 0; i < n; i += 32, b += 34) {  // block_q8_0: f16 scale, 32 int8
        uint16_t h;
        __builtin_memcpy(&h, b, 2);
        const __m512 d = _mm512_set1_ps(_cvtsh_ss(h));
        for (int half = 0; half < 2; ++half) {
          const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 2 + 16 * half));
          _mm512_storeu_ps(dst + j * n + i + 16 * half, _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q))));
        }
      }
    }
  }
};

}  // namespace

void AttendTileAvx512(const AttentionArgs& a, int64_t t0, int64_t nt, int64_t kvh, const SlotRange& r,
                      PartialSoftmax* out) {
  AttendTile<Lanes16>(a, t0, nt, kvh, r, out);
}

}  // namespace fastgen::kernels::cpu
