// Q8_0 / Q4_0 / Q4_K / Q6_K weights times int8-quantized activations with AVX-512 VNNI, for small
// n (decode): per-row dot products, one weight row at a time (see QuantDecodeRowsAvx512).
//
// x is quantized once per call to int8 in blocks of 32 with a float scale (QuantizeActsAvx512).
// Weights stay in their file format and are widened to bytes in registers; vpdpbusd multiplies
// unsigned weight bytes by signed x bytes, so signed Q8_0 weights are biased by +128 (an XOR)
// and every format's constant offset (128, 8, 32) is taken back out through the block sums of x
// (an integer in one lane of the block's accumulator, so it costs nothing). Each block's int32
// sum is then scaled in float32 by d_w · d_x. Rounding x to 8 bits per block is the only
// approximation; matmul_test.cc measures it.
// Q8_0 and Q4_0 take two blocks per 512-bit vector and Q4_K two 32-byte quant chunks (x is
// reordered to match once per call): half the conversions, scalings and FMAs per weight byte,
// 1.7-1.8x the single-block ymm loop that the Q6_K kernel and the tails still use.
// GCC 12's AVX-512 headers build _mm*_undefined_*() from a self-initialized variable, which
// -Wuninitialized reports inside the headers at -O3 (a false positive about the header).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cstring>

#include "kernels/cpu/act_layout.h"
#include "kernels/cpu/kernels_avx512.h"
#include "kernels/cpu/prefetch.h"
#include "kernels/reference/quant_blocks.h"

namespace fastgen::kernels::cpu {
namespace {

inline float HalfToFloat(uint16_t h) { return _cvtsh_ss(h); }

// Software prefetch distance for the weight stream. The hardware prefetcher alone left the
// 4-bit kernels at ~0.8 of the read bandwidth; asking for the line 8 KiB ahead of the one in
// use keeps enough misses in flight: tg64 on the TinyLlama-shape Q4_0 model went from 57-59 to
// 65-67 tok/s at 4 KiB and 77-80 at 8 KiB (16 KiB: no better), and one thread from DRAM read
// above the plain-read bandwidth sample (matmul_bench -t 1).
constexpr int64_t kPrefetchBytes = 8192;
inline void PrefetchAhead(const void* p, bool stream) {
  PrefetchWeights(static_cast<const char*>(p) + kPrefetchBytes, stream);
}

inline float ReduceAdd(__m256 v) {
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 s2 = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(s2, _mm_movehdup_ps(s2)));
}

// An int32 vector holding `v` in lane 0 and zeros elsewhere.
inline __m256i LaneZero(int32_t v) { return _mm256_zextsi128_si256(_mm_cvtsi32_si128(v)); }

void QuantizeRow(const float* x /*[k]*/, int64_t k, int8_t* qs /*[k]*/, float* d /*[k/32]*/,
                 int32_t* isum16 /*[k/16]*/, float* fsum16 /*[k/16]*/, float* fsum32 /*[k/32]*/) {
  for (int64_t b = 0; b < k / 32; ++b) {
    const __m512 v0 = _mm512_loadu_ps(x + 32 * b);
    const __m512 v1 = _mm512_loadu_ps(x + 32 * b + 16);
    const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
    const float db = amax / 127.0f;
    const __m512 id = _mm512_set1_ps(amax > 0.0f ? 127.0f / amax : 0.0f);
    // Round to nearest (even) under the default MXCSR; the saturating pack keeps |q| <= 127.
    const __m512i q0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, id));
    const __m512i q1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, id));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(qs + 32 * b), _mm512_cvtsepi32_epi8(q0));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(qs + 32 * b + 16), _mm512_cvtsepi32_epi8(q1));
    const int32_t s0 = _mm512_reduce_add_epi32(q0), s1 = _mm512_reduce_add_epi32(q1);
    d[b] = db;
    isum16[2 * b] = s0;
    isum16[2 * b + 1] = s1;
    fsum16[2 * b] = db * static_cast<float>(s0);
    fsum16[2 * b + 1] = db * static_cast<float>(s1);
    fsum32[b] = db * static_cast<float>(s0 + s1);
  }
}

// One token's slice of DecodeActs.
struct TokenActs {
  const int8_t* qs;          // [k]
  const float* d;            // [k/32]
  const int32_t* isum16;     // [k/16]
  const float* fsum16;       // [k/16]
  const float* fsum32;       // [k/32]
  const float* dx_pair;      // [k/64, 16]
  const int32_t* bias_pair;  // [k/64, 16]
  const int8_t* qs_q4k;      // [k]
};

TokenActs TokenAt(const DecodeActs& a, int64_t k, int64_t t) {
  return {a.qs + t * k,           a.d + t * (k / 32),      a.isum16 + t * (k / 16),
          a.fsum16 + t * (k / 16), a.fsum32 + t * (k / 32), a.dx_pair + t * (k / 64) * 16,
          a.bias_pair + t * (k / 64) * 16, a.qs_q4k + t * k};
}

// [d_w(block 2p) × 8 lanes, d_w(block 2p+1) × 8 lanes] from the blocks' f16 scales.
inline __m512 PairScales(uint16_t d0, uint16_t d1) {
  const __m128 both = _mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int>(d0 | (uint32_t{d1} << 16))));
  return _mm512_permutexvar_ps(_mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1),
                               _mm512_castps128_ps512(both));
}

// Runs pair(p, acc) for p in [0, pairs), even pairs into `even` and odd ones into `odd`
// (unrolled by two, so both stay in registers): one accumulator would make every pair wait on
// the previous pair's FMA.
template <class Pair, class Acc>
inline void AlternatePairs(int64_t pairs, Pair& pair, Acc& even, Acc& odd) {
  int64_t p = 0;
  for (; p + 2 <= pairs; p += 2) {
    pair(p, even);
    pair(p + 1, odd);
  }
  if (p < pairs) pair(p, even);
}

template <class Block, int R>
void RowPointers(const MatMulJob& job, int64_t m0, const Block* rows[R]) {
  for (int r = 0; r < R; ++r)
    rows[r] = reinterpret_cast<const Block*>(job.w + static_cast<size_t>(m0 + r) * job.row_bytes);
}

template <int R>
void DotQ8_0(const MatMulJob& job, const TokenActs& x, int64_t m0, float* out /*[R]*/) {
  const block_q8_0* rows[R];
  RowPointers<block_q8_0, R>(job, m0, rows);
  __m256 acc[R];
  for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_ps();
  const __m256i flip = _mm256_set1_epi8(static_cast<char>(0x80));
  // Two blocks per 512-bit vector: halves the conversions, scalings and FMAs per byte.
  // Even and odd pairs accumulate separately: one chain would wait on FMA latency every pair.
  __m512 acc2[2][R];
  for (int r = 0; r < R; ++r) acc2[0][r] = acc2[1][r] = _mm512_setzero_ps();
  const __m512i flip2 = _mm512_set1_epi8(static_cast<char>(0x80));
  const int64_t pairs = job.k / 64;
  auto pair = [&](int64_t p, __m512* a /*[R]*/) __attribute__((always_inline)) {
    const __m512i xv = _mm512_loadu_si512(x.qs + 64 * p);
    const __m512i bias = _mm512_loadu_si512(x.bias_pair + 16 * p);
    const __m512 dx = _mm512_loadu_ps(x.dx_pair + 16 * p);
    for (int r = 0; r < R; ++r) {
      const block_q8_0* blk = rows[r] + 2 * p;
      PrefetchAhead(blk, job.stream);  // 68 bytes per pair: about one line
      const __m512i w = _mm512_inserti64x4(
          _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk[0].qs))),
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk[1].qs)), 1);
      const __m512i dot = _mm512_dpbusd_epi32(bias, _mm512_xor_si512(w, flip2), xv);
      a[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot),
                             _mm512_mul_ps(PairScales(blk[0].d, blk[1].d), dx), a[r]);
    }
  };
  AlternatePairs(pairs, pair, acc2[0], acc2[1]);
  for (int64_t b = 2 * pairs; b < job.k / 32; ++b) {
    const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.qs + 32 * b));
    // (w + 128) · x = w · x + 128 Σx: start the lane sum at -128 Σx.
    const __m256i bias = LaneZero(-128 * (x.isum16[2 * b] + x.isum16[2 * b + 1]));
    const __m256 dx = _mm256_set1_ps(x.d[b]);
    for (int r = 0; r < R; ++r) {
      const __m256i wu = _mm256_xor_si256(
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(rows[r][b].qs)), flip);
      const __m256i dot = _mm256_dpbusd_epi32(bias, wu, xv);
      const __m256 scale = _mm256_mul_ps(_mm256_set1_ps(HalfToFloat(rows[r][b].d)), dx);
      acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), scale, acc[r]);
    }
  }
  for (int r = 0; r < R; ++r)
    out[r] = ReduceAdd(acc[r]) + _mm512_reduce_add_ps(_mm512_add_ps(acc2[0][r], acc2[1][r]));
}

template <int R>
void DotQ4_0(const MatMulJob& job, const TokenActs& x, int64_t m0, float* out /*[R]*/) {
  const block_q4_0* rows[R];
  RowPointers<block_q4_0, R>(job, m0, rows);
  __m256 acc[R];
  for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_ps();
  const __m256i low4 = _mm256_set1_epi8(0x0f);
  // The 16 quant bytes broadcast to both halves; the upper half shifted by 4 gives elements
  // 16..31 (high nibbles) after elements 0..15 (low nibbles), the order of x.
  const __m256i shifts = _mm256_setr_epi16(0, 0, 0, 0, 0, 0, 0, 0, 4, 4, 4, 4, 4, 4, 4, 4);
  // Two blocks per 512-bit vector, as in DotQ8_0.
  __m512 acc2[2][R];  // even and odd pairs, as in DotQ8_0
  for (int r = 0; r < R; ++r) acc2[0][r] = acc2[1][r] = _mm512_setzero_ps();
  const __m512i low4_2 = _mm512_set1_epi8(0x0f);
  const __m512i shifts2 = _mm512_inserti64x4(_mm512_castsi256_si512(shifts), shifts, 1);
  const int64_t pairs = job.k / 64;
  auto pair = [&](int64_t p, __m512* a /*[R]*/) __attribute__((always_inline)) {
    const __m512i xv = _mm512_loadu_si512(x.qs + 64 * p);
    const __m512i bias = _mm512_loadu_si512(x.bias_pair + 16 * p);
    const __m512 dx = _mm512_loadu_ps(x.dx_pair + 16 * p);
    for (int r = 0; r < R; ++r) {
      const block_q4_0* blk = rows[r] + 2 * p;
      if (p & 1) PrefetchAhead(blk, job.stream);  // 36 bytes per pair: one line every other pair
      const __m512i q = _mm512_inserti64x4(
          _mm512_castsi256_si512(_mm256_broadcastsi128_si256(
              _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk[0].qs)))),
          _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk[1].qs))),
          1);
      const __m512i wu = _mm512_and_si512(_mm512_srlv_epi16(q, shifts2), low4_2);
      const __m512i dot = _mm512_dpbusd_epi32(bias, wu, xv);
      a[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot),
                             _mm512_mul_ps(PairScales(blk[0].d, blk[1].d), dx), a[r]);
    }
  };
  AlternatePairs(pairs, pair, acc2[0], acc2[1]);
  for (int64_t b = 2 * pairs; b < job.k / 32; ++b) {
    const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.qs + 32 * b));
    const __m256i bias = LaneZero(-8 * (x.isum16[2 * b] + x.isum16[2 * b + 1]));
    const __m256 dx = _mm256_set1_ps(x.d[b]);
    for (int r = 0; r < R; ++r) {
      const __m256i q = _mm256_broadcastsi128_si256(
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(rows[r][b].qs)));
      const __m256i wu = _mm256_and_si256(_mm256_srlv_epi16(q, shifts), low4);
      const __m256i dot = _mm256_dpbusd_epi32(bias, wu, xv);
      const __m256 scale = _mm256_mul_ps(_mm256_set1_ps(HalfToFloat(rows[r][b].d)), dx);
      acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), scale, acc[r]);
    }
  }
  for (int r = 0; r < R; ++r)
    out[r] = ReduceAdd(acc[r]) + _mm512_reduce_add_ps(_mm512_add_ps(acc2[0][r], acc2[1][r]));
}

// The 8 six-bit scales and 8 six-bit minimums of a Q4_K super-block as 16 bytes (scales in
// bytes 0..7, minimums in 8..15). Sub-blocks 0..3 keep their 6 bits in the low bits of
// packed[0..7]; sub-blocks 4..7 keep their low 4 bits in packed[8..11] and their top 2 bits
// in the top bits of packed[0..7].
inline void UnpackQ4KScales(const uint8_t* packed /*[12]*/, uint32_t out[4]) {
  uint32_t a, b, c;
  std::memcpy(&a, packed, 4);
  std::memcpy(&b, packed + 4, 4);
  std::memcpy(&c, packed + 8, 4);
  out[0] = a & 0x3f3f3f3fu;
  out[1] = (c & 0x0f0f0f0fu) | (((a >> 6) & 0x03030303u) << 4);
  out[2] = b & 0x3f3f3f3fu;
  out[3] = ((c >> 4) & 0x0f0f0f0fu) | (((b >> 6) & 0x03030303u) << 4);
}

template <int R>
void DotQ4_K(const MatMulJob& job, const TokenActs& x, int64_t m0, float* out /*[R]*/) {
  const block_q4_K* rows[R];
  RowPointers<block_q4_K, R>(job, m0, rows);
  // One accumulator per product of a super-block: four independent FMA chains, not one.
  __m512 acc[4][R];
  __m256 min_acc[R];
  for (int r = 0; r < R; ++r) {
    for (int j = 0; j < 4; ++j) acc[j][r] = _mm512_setzero_ps();
    min_acc[r] = _mm256_setzero_ps();
  }
  const __m512i low4 = _mm512_set1_epi8(0x0f);
  // Lane patterns picking sub-block scales for the 4 products of a super-block: low nibbles of
  // chunks 0,1 (sub-blocks 0, 2), their high nibbles (1, 3), then chunks 2,3 (4, 6 and 5, 7).
  const __m512i pick[4] = {
      _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 2, 2, 2),
      _mm512_setr_epi32(1, 1, 1, 1, 1, 1, 1, 1, 3, 3, 3, 3, 3, 3, 3, 3),
      _mm512_setr_epi32(4, 4, 4, 4, 4, 4, 4, 4, 6, 6, 6, 6, 6, 6, 6, 6),
      _mm512_setr_epi32(5, 5, 5, 5, 5, 5, 5, 5, 7, 7, 7, 7, 7, 7, 7, 7)};
  for (int64_t i = 0; i < job.k / 256; ++i) {
    const int8_t* xq = x.qs_q4k + 256 * i;  // [256] in nibble order
    const __m512i xv[4] = {_mm512_loadu_si512(xq), _mm512_loadu_si512(xq + 64),
                           _mm512_loadu_si512(xq + 128), _mm512_loadu_si512(xq + 192)};
    const __m256 dx = _mm256_loadu_ps(x.d + 8 * i);
    const __m256 xsum = _mm256_loadu_ps(x.fsum32 + 8 * i);
    for (int r = 0; r < R; ++r) {
      const block_q4_K& blk = rows[r][i];
      PrefetchAhead(&blk, job.stream);  // 144 bytes per super-block: two lines and a quarter
      PrefetchAhead(reinterpret_cast<const uint8_t*>(&blk) + 64, job.stream);
      uint32_t sm[4];
      UnpackQ4KScales(blk.scales, sm);
      const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(sm));
      const __m256 sc = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(bytes));
      const __m256 mn = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(bytes, 8)));
      // d · scale_j · d_x(j) for the 8 sub-blocks.
      const __m512 scale = _mm512_castps256_ps512(
          _mm256_mul_ps(_mm256_mul_ps(sc, _mm256_set1_ps(HalfToFloat(blk.d))), dx));
      // The minimum of sub-block j contributes dmin · m_j · (sum of x over j).
      min_acc[r] = _mm256_fmadd_ps(_mm256_mul_ps(mn, _mm256_set1_ps(HalfToFloat(blk.dmin))),
                                   xsum, min_acc[r]);
      for (int half = 0; half < 2; ++half) {
        const __m512i q = _mm512_loadu_si512(blk.qs + 64 * half);
        const __m512i lo = _mm512_and_si512(q, low4);
        const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(q, 4), low4);
        const __m512i d_lo = _mm512_dpbusd_epi32(_mm512_setzero_si512(), lo, xv[2 * half]);
        const __m512i d_hi = _mm512_dpbusd_epi32(_mm512_setzero_si512(), hi, xv[2 * half + 1]);
        acc[2 * half][r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d_lo),
                                           _mm512_permutexvar_ps(pick[2 * half], scale), acc[2 * half][r]);
        acc[2 * half + 1][r] = _mm512_fmadd_ps(
            _mm512_cvtepi32_ps(d_hi), _mm512_permutexvar_ps(pick[2 * half + 1], scale),
            acc[2 * half + 1][r]);
      }
    }
  }
  for (int r = 0; r < R; ++r) {
    const __m512 sum = _mm512_add_ps(_mm512_add_ps(acc[0][r], acc[1][r]), _mm512_add_ps(acc[2][r], acc[3][r]));
    out[r] = _mm512_reduce_add_ps(sum) - ReduceAdd(min_acc[r]);
  }
}

// The four runs of 32 quants of one half (128 elements) of a Q6_K super-block, as unsigned
// 6-bit values (stored q + 32): low nibbles of ql[0..31], of ql[32..63], then the high
// nibbles of each, with bit pairs 0-1, 2-3, 4-5, 6-7 of qh[0..31] on top.
inline void UnpackQ6KHalf(const uint8_t* ql /*[64]*/, const uint8_t* qh /*[32]*/, __m256i q[4]) {
  const __m256i low4 = _mm256_set1_epi8(0x0f);
  const __m256i bits45 = _mm256_set1_epi8(0x30);
  const __m256i qla = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql));
  const __m256i qlb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql + 32));
  const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qh));
  q[0] = _mm256_or_si256(_mm256_and_si256(qla, low4),
                         _mm256_and_si256(_mm256_slli_epi16(h, 4), bits45));
  q[1] = _mm256_or_si256(_mm256_and_si256(qlb, low4),
                         _mm256_and_si256(_mm256_slli_epi16(h, 2), bits45));
  q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(qla, 4), low4),
                         _mm256_and_si256(h, bits45));
  q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(qlb, 4), low4),
                         _mm256_and_si256(_mm256_srli_epi16(h, 2), bits45));
}

template <int R>
void DotQ6_K(const MatMulJob& job, const TokenActs& x, int64_t m0, float* out /*[R]*/) {
  const block_q6_K* rows[R];
  RowPointers<block_q6_K, R>(job, m0, rows);
  __m256 acc[R];
  __m512 corr[R];  // Σ_j d · scale_j · (sum of x over 16-element sub-block j)
  for (int r = 0; r < R; ++r) {
    acc[r] = _mm256_setzero_ps();
    corr[r] = _mm512_setzero_ps();
  }
  // d_x per 16-element sub-block: sub-blocks 2b and 2b+1 share x block b.
  const __m512i pair_index = _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
  for (int64_t i = 0; i < job.k / 256; ++i) {
    const __m512 dx16 =
        _mm512_permutexvar_ps(pair_index, _mm512_castps256_ps512(_mm256_loadu_ps(x.d + 8 * i)));
    const __m512 xsum16 = _mm512_loadu_ps(x.fsum16 + 16 * i);
    const int8_t* xq = x.qs + 256 * i;  // [256]
    for (int r = 0; r < R; ++r) {
      const block_q6_K& blk = rows[r][i];
      for (int line = 0; line < 210; line += 64)  // 210 bytes per super-block
        PrefetchAhead(reinterpret_cast<const uint8_t*>(&blk) + line, job.stream);
      const __m512 sc = _mm512_mul_ps(
          _mm512_cvtepi32_ps(
              _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk.scales)))),
          _mm512_set1_ps(HalfToFloat(blk.d)));
      corr[r] = _mm512_fmadd_ps(sc, xsum16, corr[r]);
      const __m512 scale16 = _mm512_mul_ps(sc, dx16);  // d · scale_j · d_x per sub-block j
      for (int h = 0; h < 2; ++h) {
        __m256i q[4];
        UnpackQ6KHalf(blk.ql + 64 * h, blk.qh + 32 * h, q);
        for (int run = 0; run < 4; ++run) {
          const int j = 8 * h + 2 * run;  // the run's first 16-element sub-block
          const __m256i dot = _mm256_dpbusd_epi32(
              _mm256_setzero_si256(), q[run],
              _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + 128 * h + 32 * run)));
          // Lanes 0..3 summed the run's elements 0..15 (sub-block j), lanes 4..7 sub-block j+1.
          const __m512i idx =
              _mm512_setr_epi32(j, j, j, j, j + 1, j + 1, j + 1, j + 1, 0, 0, 0, 0, 0, 0, 0, 0);
          const __m256 s = _mm512_castps512_ps256(_mm512_permutexvar_ps(idx, scale16));
          acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), s, acc[r]);
        }
      }
    }
  }
  // Stored quants are q + 32: remove 32 · Σ_j d · scale_j · Σx_j.
  for (int r = 0; r < R; ++r) out[r] = ReduceAdd(acc[r]) - 32.0f * _mm512_reduce_add_ps(corr[r]);
}

template <int R>
void DecodeGroup(const MatMulJob& job, const DecodeActs& acts, int64_t m0) {
  float out[R];
  for (int64_t t = 0; t < job.n; ++t) {
    const TokenActs x = TokenAt(acts, job.k, t);
    switch (job.dtype) {
      case DType::kQ8_0: DotQ8_0<R>(job, x, m0, out); break;
      case DType::kQ4_0: DotQ4_0<R>(job, x, m0, out); break;
      case DType::kQ4_K: DotQ4_K<R>(job, x, m0, out); break;
      case DType::kQ6_K: DotQ6_K<R>(job, x, m0, out); break;
      default: return;
    }
    for (int r = 0; r < R; ++r) job.y[t * job.ldy + m0 + r] = out[r];
  }
}

}  // namespace

void QuantizeActsAvx512(const MatMulJob& job, int64_t t0, int64_t t1) {
  const DecodeActs a = DecodeActsAt(job.act, job.n, job.k);
  const int64_t k = job.k, pairs = k / 64;
  // The weights' constant offset: Q8_0 bytes are read +128, Q4_0 nibbles are q + 8.
  const int32_t offset = job.dtype == DType::kQ8_0 ? 128 : job.dtype == DType::kQ4_0 ? 8 : 0;
  for (int64_t t = t0; t < t1; ++t) {
    QuantizeRow(job.x + t * k, k, a.qs + t * k, a.d + t * (k / 32), a.isum16 + t * (k / 16),
                a.fsum16 + t * (k / 16), a.fsum32 + t * (k / 32));
    const float* d = a.d + t * (k / 32);
    const int32_t* isum16 = a.isum16 + t * (k / 16);
    for (int64_t p = 0; p < pairs; ++p) {
      float* dx = a.dx_pair + (t * pairs + p) * 16;
      int32_t* bias = a.bias_pair + (t * pairs + p) * 16;
      for (int lane = 0; lane < 16; ++lane) {
        const int64_t b = 2 * p + lane / 8;
        dx[lane] = d[b];
        bias[lane] = lane % 8 == 0 ? -offset * (isum16[2 * b] + isum16[2 * b + 1]) : 0;
      }
    }
    if (job.dtype == DType::kQ4_K) {
      // A 64-byte load of Q4_K quants holds blocks 2c, 2c+2 in its low nibbles and 2c+1, 2c+3
      // in its high nibbles: give x the same order so one 512-bit x load matches each.
      const int8_t* src = a.qs + t * k;
      int8_t* dst = a.qs_q4k + t * k;
      constexpr int kOrder[8] = {0, 2, 1, 3, 4, 6, 5, 7};
      for (int64_t b = 0; b < k / 32; ++b)
        std::memcpy(dst + 32 * b, src + 32 * ((b & ~int64_t{7}) + kOrder[b & 7]), 32);
    }
  }
}

void QuantDecodeRowsAvx512(const MatMulJob& job, int64_t m0, int64_t m1) {
  const DecodeActs acts = DecodeActsAt(job.act, job.n, job.k);
  // One row at a time: the weights are then read as one sequential stream, which the hardware
  // prefetcher follows at full speed. Interleaving 4 rows (to share x loads) made 4 short
  // streams and measured 3x slower from DRAM on Zen 5 (x is re-read from L1 instead).
  for (int64_t m = m0; m < m1; ++m) DecodeGroup<1>(job, acts, m);
}

}  // namespace fastgen::kernels::cpu
