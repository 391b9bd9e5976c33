// The K-quants (Q2_K, Q3_K, Q4_K, Q5_K, Q6_K) times int8 activations with AVX-512 VNNI, for
// decode: one weight row at a time, up to 4 tokens per pass (quant_decode_avx512.h).
//
// Each super-block of 256 weights is widened to unsigned bytes in registers, 64 at a time and in
// the order of x: the 2-bit planes of Q2_K / Q3_K and the nibbles of Q5_K come out of one 32-byte
// load broadcast to both halves of a 512-bit register and shifted per 64-bit lane (the bits a
// lane shift pulls in from the next byte land above the mask). vpdpbusd then sums 4 products per
// int32 lane, so the lanes of one 512-bit product cover 4 sub-blocks of 16 (Q2_K, Q3_K, Q6_K) or
// 2 of 32 (Q4_K, Q5_K): each lane is scaled by its sub-block's scale times x's block scale and
// accumulated lane-wise, and the vector is summed once per row. Offsets and minimums come back
// out per sub-block through x's block sums: Q2_K, Q4_K, Q5_K subtract dmin · m · Σx, Q3_K
// (quants stored as q + 4) 4 · d · s · Σx, Q6_K (q + 32) 32 · d · s · Σx.
// GCC 12's AVX-512 headers build _mm*_undefined_*() from a self-initialized variable, which
// -Wuninitialized reports inside the headers at -O3 (a false positive about the header).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cstring>

#include "kernels/cpu/act_layout.h"
#include "kernels/cpu/kernels_avx512.h"
#include "kernels/cpu/quant_decode_avx512.h"
#include "kernels/reference/quant_blocks.h"

namespace fastgen::kernels::cpu {
namespace {

// 32 bytes broadcast to both halves of a 512-bit register.
inline __m512i Broadcast32(const uint8_t* p) {
  return _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}

// Bits [s, s + width) of each byte of v in the low 256 bits and bits [t, t + width) in the high
// 256 bits, as bytes: the shift moves each 64-bit lane, the mask keeps the bits that came from
// the byte itself (s, t <= 8 - width).
inline __m512i BitPlanes(__m512i v, int s, int t, uint8_t mask) {
  const __m512i shift = _mm512_setr_epi64(s, s, s, s, t, t, t, t);
  return _mm512_and_si512(_mm512_srlv_epi64(v, shift), _mm512_set1_epi8(static_cast<char>(mask)));
}

// Per-lane scales for a vpdpbusd over 64 weights: lanes 4j..4j+3 take sub-block 4c + j of 16
// (Spread16), or lanes 8j..8j+7 sub-block 2c + j of 32 (Spread32).
alignas(64) constexpr int32_t kSpread16[4][16] = {{0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3},
                                                  {4, 4, 4, 4, 5, 5, 5, 5, 6, 6, 6, 6, 7, 7, 7, 7},
                                                  {8, 8, 8, 8, 9, 9, 9, 9, 10, 10, 10, 10, 11, 11, 11, 11},
                                                  {12, 12, 12, 12, 13, 13, 13, 13, 14, 14, 14, 14, 15, 15, 15, 15}};
alignas(64) constexpr int32_t kSpread32[4][16] = {{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1},
                                                  {2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3},
                                                  {4, 4, 4, 4, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 5},
                                                  {6, 6, 6, 6, 6, 6, 6, 6, 7, 7, 7, 7, 7, 7, 7, 7}};
inline __m512 Spread16(__m512 v, int c) { return _mm512_permutexvar_ps(_mm512_load_si512(kSpread16[c]), v); }
inline __m512 Spread32(__m512 v, int c) { return _mm512_permutexvar_ps(_mm512_load_si512(kSpread32[c]), v); }

// The 16 signed 6-bit Q3_K scales (stored + 32) as int8: low 4 bits from the nibbles of bytes
// 0..7, top 2 bits from bytes 8..11, two bits per sub-block group of four.
inline __m128i Q3KScales(const uint8_t* s /*[12]*/) {
  const __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(s));
  const __m128i low4 = _mm_set1_epi8(0x0f);
  const __m128i lo = _mm_unpacklo_epi64(_mm_and_si128(b, low4), _mm_and_si128(_mm_srli_epi16(b, 4), low4));
  int32_t h32;
  std::memcpy(&h32, s + 8, 4);
  const __m128i hi = _mm_and_si128(_mm_srlv_epi32(_mm_set1_epi32(h32), _mm_setr_epi32(0, 2, 4, 6)), _mm_set1_epi8(3));
  return _mm_sub_epi8(_mm_or_si128(lo, _mm_slli_epi16(hi, 4)), _mm_set1_epi8(32));
}

// Q2_K and Q3_K share everything but how a 64-weight chunk and the scales are unpacked:
// value = scale_g · q − min_g per 16-element sub-block g, q unsigned (Q3_K: q + 4 with the 4
// taken out as a "min" of 4 · scale_g).
template <int T, class Chunk>
inline void Dot16(const TokenActs* x, int64_t i, __m512 scf, const Chunk& chunk, __m512 (&acc)[2][T]) {
  for (int c = 0; c < 4; ++c) {
    const __m512i w = chunk(c);
    const __m512 s = Spread16(scf, c);
    for (int t = 0; t < T; ++t) {
      const __m512i xv = _mm512_loadu_si512(x[t].qs + 256 * i + 64 * c);
      const __m512 dx = _mm512_loadu_ps(x[t].dx_pair + 16 * (4 * i + c));
      const __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w, xv);
      acc[c & 1][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(s, dx), acc[c & 1][t]);
    }
  }
}

template <int T>
void DotQ2_K(const MatMulJob& job, const TokenActs* x, int64_t m, float* out /*[T]*/) {
  const block_q2_K* row = RowAt<block_q2_K>(job, m);
  __m512 acc[2][T], min_acc[T];
  for (int t = 0; t < T; ++t) acc[0][t] = acc[1][t] = min_acc[t] = _mm512_setzero_ps();
  for (int64_t i = 0; i < job.k / 256; ++i) {
    const block_q2_K& blk = row[i];
    PrefetchAhead(&blk, job.stream);  // 84 bytes per super-block
    PrefetchAhead(reinterpret_cast<const uint8_t*>(&blk) + 64, job.stream);
    const __m128i sb = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk.scales));
    const __m512 scf = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_and_si128(sb, _mm_set1_epi8(0x0f)))),
                                     _mm512_set1_ps(HalfToFloat(blk.d)));
    const __m512 mnf = _mm512_mul_ps(
        _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_and_si128(_mm_srli_epi16(sb, 4), _mm_set1_epi8(0x0f)))),
        _mm512_set1_ps(HalfToFloat(blk.dmin)));
    for (int t = 0; t < T; ++t) min_acc[t] = _mm512_fmadd_ps(mnf, _mm512_loadu_ps(x[t].fsum16 + 16 * i), min_acc[t]);
    const __m512i q[2] = {Broadcast32(blk.qs), Broadcast32(blk.qs + 32)};
    // Chunk c: 32 bytes of half c / 2, bit pairs 4(c % 2) and 4(c % 2) + 2.
    Dot16<T>(x, i, scf, [&q](int c) { return BitPlanes(q[c / 2], 4 * (c % 2), 4 * (c % 2) + 2, 0x03); }, acc);
  }
  for (int t = 0; t < T; ++t)
    out[t] = _mm512_reduce_add_ps(_mm512_add_ps(acc[0][t], acc[1][t])) - _mm512_reduce_add_ps(min_acc[t]);
}

template <int T>
void DotQ3_K(const MatMulJob& job, const TokenActs* x, int64_t m, float* out /*[T]*/) {
  const block_q3_K* row = RowAt<block_q3_K>(job, m);
  __m512 acc[2][T], corr[T];  // corr: Σ_g d · scale_g · Σx_g, the stored +4 to take out
  for (int t = 0; t < T; ++t) acc[0][t] = acc[1][t] = corr[t] = _mm512_setzero_ps();
  for (int64_t i = 0; i < job.k / 256; ++i) {
    const block_q3_K& blk = row[i];
    PrefetchAhead(&blk, job.stream);  // 110 bytes per super-block
    PrefetchAhead(reinterpret_cast<const uint8_t*>(&blk) + 64, job.stream);
    const __m512 scf = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(Q3KScales(blk.scales))),
                                     _mm512_set1_ps(HalfToFloat(blk.d)));
    for (int t = 0; t < T; ++t) corr[t] = _mm512_fmadd_ps(scf, _mm512_loadu_ps(x[t].fsum16 + 16 * i), corr[t]);
    const __m512i q[2] = {Broadcast32(blk.qs), Broadcast32(blk.qs + 32)};
    const __m512i hm = Broadcast32(blk.hmask);
    // Chunk c: low bits as Q2_K; high bits 2c and 2c + 1 of hmask (one per 32 elements).
    Dot16<T>(x, i, scf, [&q, &hm](int c) {
      const __m512i low = BitPlanes(q[c / 2], 4 * (c % 2), 4 * (c % 2) + 2, 0x03);
      const __m512i high = BitPlanes(hm, 2 * c, 2 * c + 1, 0x01);
      return _mm512_or_si512(low, _mm512_slli_epi16(high, 2));
    }, acc);
  }
  for (int t = 0; t < T; ++t)
    out[t] = _mm512_reduce_add_ps(_mm512_add_ps(acc[0][t], acc[1][t])) - 4.0f * _mm512_reduce_add_ps(corr[t]);
}

template <int T>
void DotQ4_K(const MatMulJob& job, const TokenActs* x, int64_t m, float* out /*[T]*/) {
  const block_q4_K* row = RowAt<block_q4_K>(job, m);
  // One accumulator per product of a super-block: four independent FMA chains, not one.
  __m512 acc[4][T];
  __m256 min_acc[T];
  for (int t = 0; t < T; ++t) {
    for (int j = 0; j < 4; ++j) acc[j][t] = _mm512_setzero_ps();
    min_acc[t] = _mm256_setzero_ps();
  }
  const __m512i low4 = _mm512_set1_epi8(0x0f);
  // Lane patterns picking sub-block scales for the 4 products of a super-block: low nibbles of
  // chunks 0,1 (sub-blocks 0, 2), their high nibbles (1, 3), then chunks 2,3 (4, 6 and 5, 7). x
  // is stored in the same order (qs_q4k), so one 64-byte load of quants serves two sub-blocks.
  const __m512i pick[4] = {
      _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 2, 2, 2),
      _mm512_setr_epi32(1, 1, 1, 1, 1, 1, 1, 1, 3, 3, 3, 3, 3, 3, 3, 3),
      _mm512_setr_epi32(4, 4, 4, 4, 4, 4, 4, 4, 6, 6, 6, 6, 6, 6, 6, 6),
      _mm512_setr_epi32(5, 5, 5, 5, 5, 5, 5, 5, 7, 7, 7, 7, 7, 7, 7, 7)};
  for (int64_t i = 0; i < job.k / 256; ++i) {
    const block_q4_K& blk = row[i];
    PrefetchAhead(&blk, job.stream);  // 144 bytes per super-block: two lines and a quarter
    PrefetchAhead(reinterpret_cast<const uint8_t*>(&blk) + 64, job.stream);
    uint32_t sm[4];
    UnpackQ4KScales(blk.scales, sm);
    const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(sm));
    const __m256 sc = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(bytes));
    const __m256 mn = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(bytes, 8)));
    const __m256 scd = _mm256_mul_ps(sc, _mm256_set1_ps(HalfToFloat(blk.d)));
    const __m256 mnd = _mm256_mul_ps(mn, _mm256_set1_ps(HalfToFloat(blk.dmin)));
    const __m512i q[2] = {_mm512_loadu_si512(blk.qs), _mm512_loadu_si512(blk.qs + 64)};
    const __m512i w[4] = {_mm512_and_si512(q[0], low4), _mm512_and_si512(_mm512_srli_epi16(q[0], 4), low4),
                          _mm512_and_si512(q[1], low4), _mm512_and_si512(_mm512_srli_epi16(q[1], 4), low4)};
    for (int t = 0; t < T; ++t) {
      const int8_t* xq = x[t].qs_q4k + 256 * i;  // [256] in nibble order
      // d · scale_j · d_x(j) for the 8 sub-blocks.
      const __m512 scale = _mm512_castps256_ps512(_mm256_mul_ps(scd, _mm256_loadu_ps(x[t].d + 8 * i)));
      // The minimum of sub-block j contributes dmin · m_j · (sum of x over j).
      min_acc[t] = _mm256_fmadd_ps(mnd, _mm256_loadu_ps(x[t].fsum32 + 8 * i), min_acc[t]);
      for (int j = 0; j < 4; ++j) {
        const __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w[j], _mm512_loadu_si512(xq + 64 * j));
        acc[j][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_permutexvar_ps(pick[j], scale), acc[j][t]);
      }
    }
  }
  for (int t = 0; t < T; ++t) {
    const __m512 sum = _mm512_add_ps(_mm512_add_ps(acc[0][t], acc[1][t]), _mm512_add_ps(acc[2][t], acc[3][t]));
    out[t] = _mm512_reduce_add_ps(sum) - ReduceAdd(min_acc[t]);
  }
}

template <int T>
void DotQ5_K(const MatMulJob& job, const TokenActs* x, int64_t m, float* out /*[T]*/) {
  const block_q5_K* row = RowAt<block_q5_K>(job, m);
  __m512 acc[2][T];
  __m256 min_acc[T];
  for (int t = 0; t < T; ++t) {
    acc[0][t] = acc[1][t] = _mm512_setzero_ps();
    min_acc[t] = _mm256_setzero_ps();
  }
  for (int64_t i = 0; i < job.k / 256; ++i) {
    const block_q5_K& blk = row[i];
    for (int line = 0; line < 176; line += 64)  // 176 bytes per super-block
      PrefetchAhead(reinterpret_cast<const uint8_t*>(&blk) + line, job.stream);
    uint32_t sm[4];
    UnpackQ4KScales(blk.scales, sm);
    const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(sm));
    const __m256 scd = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(bytes)), _mm256_set1_ps(HalfToFloat(blk.d)));
    const __m256 mnd = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(bytes, 8))),
                                     _mm256_set1_ps(HalfToFloat(blk.dmin)));
    for (int t = 0; t < T; ++t) min_acc[t] = _mm256_fmadd_ps(mnd, _mm256_loadu_ps(x[t].fsum32 + 8 * i), min_acc[t]);
    const __m512i qh = Broadcast32(blk.qh);
    for (int p = 0; p < 4; ++p) {
      // Elements 64p..64p+31: low nibbles of qs[32p..], fifth bit 2p of qh; the next 32: high
      // nibbles, bit 2p + 1.
      const __m512i low = BitPlanes(Broadcast32(blk.qs + 32 * p), 0, 4, 0x0f);
      const __m512i high = BitPlanes(qh, 2 * p, 2 * p + 1, 0x01);
      const __m512i w = _mm512_or_si512(low, _mm512_slli_epi16(high, 4));
      const __m512 s = Spread32(_mm512_castps256_ps512(scd), p);
      for (int t = 0; t < T; ++t) {
        const __m512i xv = _mm512_loadu_si512(x[t].qs + 256 * i + 64 * p);
        const __m512 dx = _mm512_loadu_ps(x[t].dx_pair + 16 * (4 * i + p));
        const __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w, xv);
        acc[p & 1][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(s, dx), acc[p & 1][t]);
      }
    }
  }
  for (int t = 0; t < T; ++t)
    out[t] = _mm512_reduce_add_ps(_mm512_add_ps(acc[0][t], acc[1][t])) - ReduceAdd(min_acc[t]);
}

// One half (128 elements) of a Q6_K super-block as two vectors of 64 unsigned 6-bit values
// (stored q + 32), in x's order: q01 = elements 0..63 (low nibbles of ql[0..63], with bit pairs
// 0-1 of qh[0..31] on the first 32 and 2-3 on the next), q23 = elements 64..127 (high nibbles,
// bit pairs 4-5 and 6-7).
inline void UnpackQ6KHalf(const uint8_t* ql /*[64]*/, const uint8_t* qh /*[32]*/, __m512i* q01, __m512i* q23) {
  const __m512i low4 = _mm512_set1_epi8(0x0f);
  const __m512i bits45 = _mm512_set1_epi8(0x30);
  const __m512i l = _mm512_loadu_si512(ql);
  const __m512i h = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(qh)));
  // The 64-bit lanes of the lower 32 bytes shift by 4 (then 0), of the upper 32 by 2 (then 2 right).
  const __m512i up = _mm512_sllv_epi64(h, _mm512_setr_epi64(4, 4, 4, 4, 2, 2, 2, 2));
  const __m512i down = _mm512_srlv_epi64(h, _mm512_setr_epi64(0, 0, 0, 0, 2, 2, 2, 2));
  *q01 = _mm512_or_si512(_mm512_and_si512(l, low4), _mm512_and_si512(up, bits45));
  *q23 = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l, 4), low4), _mm512_and_si512(down, bits45));
}

// Per 64 elements: one vpdpbusd whose lane l sums elements 4l..4l+3 (16-element sub-block l / 4
// of the four), scaled by d · scale_j (the row's, permuted once for all tokens) times x's block
// scale (dx_pair: lanes 0..7 the first 32-block, 8..15 the second), into one of two accumulators.
template <int T>
void DotQ6_K(const MatMulJob& job, const TokenActs* x, int64_t m, float* out /*[T]*/) {
  const block_q6_K* row = RowAt<block_q6_K>(job, m);
  __m512 acc[2][T];
  __m512 corr[T];  // Σ_j d · scale_j · (sum of x over 16-element sub-block j)
  for (int t = 0; t < T; ++t) {
    acc[0][t] = acc[1][t] = _mm512_setzero_ps();
    corr[t] = _mm512_setzero_ps();
  }
  for (int64_t i = 0; i < job.k / 256; ++i) {
    const block_q6_K& blk = row[i];
    for (int line = 0; line < 210; line += 64)  // 210 bytes per super-block
      PrefetchAhead(reinterpret_cast<const uint8_t*>(&blk) + line, job.stream);
    const __m512 sc = _mm512_mul_ps(
        _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk.scales)))),
        _mm512_set1_ps(HalfToFloat(blk.d)));
    for (int t = 0; t < T; ++t) corr[t] = _mm512_fmadd_ps(sc, _mm512_loadu_ps(x[t].fsum16 + 16 * i), corr[t]);
    for (int h = 0; h < 2; ++h) {
      __m512i q[2];
      UnpackQ6KHalf(blk.ql + 64 * h, blk.qh + 32 * h, &q[0], &q[1]);
      for (int p = 0; p < 2; ++p) {
        const int j = 8 * h + 4 * p;  // the 64 elements' first sub-block
        const __m512 wsc = _mm512_permutexvar_ps(
            _mm512_setr_epi32(j, j, j, j, j + 1, j + 1, j + 1, j + 1, j + 2, j + 2, j + 2, j + 2, j + 3, j + 3, j + 3, j + 3),
            sc);
        const int64_t pair = 4 * i + 2 * h + p;  // the 64 elements' index in x
        for (int t = 0; t < T; ++t) {
          const __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), q[p], _mm512_loadu_si512(x[t].qs + 64 * pair));
          const __m512 s = _mm512_mul_ps(wsc, _mm512_loadu_ps(x[t].dx_pair + 16 * pair));
          acc[p][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), s, acc[p][t]);
        }
      }
    }
  }
  // Stored quants are q + 32: remove 32 · Σ_j d · scale_j · Σx_j.
  for (int t = 0; t < T; ++t)
    out[t] = _mm512_reduce_add_ps(_mm512_add_ps(acc[0][t], acc[1][t])) - 32.0f * _mm512_reduce_add_ps(corr[t]);
}

}  // namespace

void KQuantDecodeRowsAvx512(const MatMulJob& job, int64_t m0, int64_t m1) {
  const DecodeActs acts = DecodeActsAt(job.act, job.n, job.k);
  switch (job.dtype) {
    case DType::kQ2_K:
      DecodeTokens(job, acts, m0, m1, [&job]<int T>(const TokenActs* x, int64_t m, float* out) { DotQ2_K<T>(job, x, m, out); });
      break;
    case DType::kQ3_K:
      DecodeTokens(job, acts, m0, m1, [&job]<int T>(const TokenActs* x, int64_t m, float* out) { DotQ3_K<T>(job, x, m, out); });
      break;
    case DType::kQ4_K:
      DecodeTokens(job, acts, m0, m1, [&job]<int T>(const TokenActs* x, int64_t m, float* out) { DotQ4_K<T>(job, x, m, out); });
      break;
    case DType::kQ5_K:
      DecodeTokens(job, acts, m0, m1, [&job]<int T>(const TokenActs* x, int64_t m, float* out) { DotQ5_K<T>(job, x, m, out); });
      break;
    case DType::kQ6_K:
      DecodeTokens(job, acts, m0, m1, [&job]<int T>(const TokenActs* x, int64_t m, float* out) { DotQ6_K<T>(job, x, m, out); });
      break;
    default:
      break;
  }
}

}  // namespace fastgen::kernels::cpu
