// Quantized weights times int8-quantized activations with AVX-512 VNNI, for small n (decode):
// per-row dot products, one weight row at a time, up to 4 tokens per pass over it
// (quant_decode_avx512.h). This file quantizes x and holds the Q8_0 and Q4_0 kernels; the
// K-quants are in kquant_decode_avx512.cc.
//
// x is quantized once per call to int8 in blocks of 32 with a float scale (QuantizeActsAvx512).
// Weights stay in their file format and are widened to bytes in registers; vpdpbusd multiplies
// unsigned weight bytes by signed x bytes, so signed Q8_0 weights are biased by +128 (an XOR)
// and every format's constant offset (128, 8, 32, 4) is taken back out through the block sums of
// x (an integer in one lane of the block's accumulator, or a float correction per sub-block).
// Each block's int32 sum is then scaled in float32 by d_w · d_x. Rounding x to 8 bits per block
// is the only approximation; matmul_test.cc measures it.
// Q8_0 and Q4_0 take two blocks per 512-bit vector: half the conversions, scalings and FMAs per
// weight byte, 1.7-1.8x the single-block ymm loop that the tails still use.
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

// One Q8_0 row against T tokens: out[t] = row · x_t.
template <int T>
void DotQ8_0(const MatMulJob& job, const TokenActs* x, int64_t m, float* out /*[T]*/) {
  const block_q8_0* row = RowAt<block_q8_0>(job, m);
  // Two blocks per 512-bit vector; even and odd pairs accumulate separately (one chain would
  // wait on FMA latency every pair). The tail blocks go through ymm.
  __m512 acc2[2][T];
  __m256 acc[T];
  for (int t = 0; t < T; ++t) {
    acc2[0][t] = acc2[1][t] = _mm512_setzero_ps();
    acc[t] = _mm256_setzero_ps();
  }
  const __m512i flip2 = _mm512_set1_epi8(static_cast<char>(0x80));
  const int64_t pairs = job.k / 64;
  auto pair = [&](int64_t p, __m512* a /*[T]*/) __attribute__((always_inline)) {
    const block_q8_0* blk = row + 2 * p;
    PrefetchAhead(blk, job.stream);  // 68 bytes per pair: about one line
    const __m512i w = _mm512_xor_si512(
        _mm512_inserti64x4(
            _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk[0].qs))),
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk[1].qs)), 1),
        flip2);
    const __m512 scales = PairScales(blk[0].d, blk[1].d);
    for (int t = 0; t < T; ++t) {
      const __m512i xv = _mm512_loadu_si512(x[t].qs + 64 * p);
      const __m512i bias = _mm512_loadu_si512(x[t].bias_pair + 16 * p);
      const __m512 dx = _mm512_loadu_ps(x[t].dx_pair + 16 * p);
      const __m512i dot = _mm512_dpbusd_epi32(bias, w, xv);
      a[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(scales, dx), a[t]);
    }
  };
  AlternateSteps(pairs, pair, acc2[0], acc2[1]);
  const __m256i flip = _mm256_set1_epi8(static_cast<char>(0x80));
  for (int64_t b = 2 * pairs; b < job.k / 32; ++b) {
    const __m256i wu = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row[b].qs)), flip);
    const __m256 dw = _mm256_set1_ps(HalfToFloat(row[b].d));
    for (int t = 0; t < T; ++t) {
      const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[t].qs + 32 * b));
      // (w + 128) · x = w · x + 128 Σx: start the lane sum at -128 Σx.
      const __m256i bias = LaneZero(-128 * (x[t].isum16[2 * b] + x[t].isum16[2 * b + 1]));
      const __m256i dot = _mm256_dpbusd_epi32(bias, wu, xv);
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), _mm256_mul_ps(dw, _mm256_set1_ps(x[t].d[b])), acc[t]);
    }
  }
  for (int t = 0; t < T; ++t)
    out[t] = ReduceAdd(acc[t]) + _mm512_reduce_add_ps(_mm512_add_ps(acc2[0][t], acc2[1][t]));
}

// One Q4_0 row against T tokens.
template <int T>
void DotQ4_0(const MatMulJob& job, const TokenActs* x, int64_t m, float* out /*[T]*/) {
  const block_q4_0* row = RowAt<block_q4_0>(job, m);
  // The 16 quant bytes broadcast to both halves of a 256-bit lane; the upper half shifted by 4
  // gives elements 16..31 (high nibbles) after elements 0..15 (low nibbles), the order of x.
  const __m256i shifts = _mm256_setr_epi16(0, 0, 0, 0, 0, 0, 0, 0, 4, 4, 4, 4, 4, 4, 4, 4);
  const __m512i shifts2 = _mm512_inserti64x4(_mm512_castsi256_si512(shifts), shifts, 1);
  const __m512i low4_2 = _mm512_set1_epi8(0x0f);
  __m512 acc2[2][T];  // even and odd pairs, as in DotQ8_0
  __m256 acc[T];
  for (int t = 0; t < T; ++t) {
    acc2[0][t] = acc2[1][t] = _mm512_setzero_ps();
    acc[t] = _mm256_setzero_ps();
  }
  const int64_t pairs = job.k / 64;
  auto pair = [&](int64_t p, __m512* a /*[T]*/) __attribute__((always_inline)) {
    const block_q4_0* blk = row + 2 * p;
    if (p & 1) PrefetchAhead(blk, job.stream);  // 36 bytes per pair: one line every other pair
    const __m512i q = _mm512_inserti64x4(
        _mm512_castsi256_si512(
            _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk[0].qs)))),
        _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk[1].qs))), 1);
    const __m512i wu = _mm512_and_si512(_mm512_srlv_epi16(q, shifts2), low4_2);
    const __m512 scales = PairScales(blk[0].d, blk[1].d);
    for (int t = 0; t < T; ++t) {
      const __m512i xv = _mm512_loadu_si512(x[t].qs + 64 * p);
      const __m512i bias = _mm512_loadu_si512(x[t].bias_pair + 16 * p);
      const __m512 dx = _mm512_loadu_ps(x[t].dx_pair + 16 * p);
      const __m512i dot = _mm512_dpbusd_epi32(bias, wu, xv);
      a[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(scales, dx), a[t]);
    }
  };
  AlternateSteps(pairs, pair, acc2[0], acc2[1]);
  const __m256i low4 = _mm256_set1_epi8(0x0f);
  for (int64_t b = 2 * pairs; b < job.k / 32; ++b) {
    const __m256i q = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row[b].qs)));
    const __m256i wu = _mm256_and_si256(_mm256_srlv_epi16(q, shifts), low4);
    const __m256 dw = _mm256_set1_ps(HalfToFloat(row[b].d));
    for (int t = 0; t < T; ++t) {
      const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[t].qs + 32 * b));
      const __m256i bias = LaneZero(-8 * (x[t].isum16[2 * b] + x[t].isum16[2 * b + 1]));
      const __m256i dot = _mm256_dpbusd_epi32(bias, wu, xv);
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), _mm256_mul_ps(dw, _mm256_set1_ps(x[t].d[b])), acc[t]);
    }
  }
  for (int t = 0; t < T; ++t)
    out[t] = ReduceAdd(acc[t]) + _mm512_reduce_add_ps(_mm512_add_ps(acc2[0][t], acc2[1][t]));
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
  switch (job.dtype) {
    case DType::kQ8_0:
      DecodeTokens(job, acts, m0, m1, [&job]<int T>(const TokenActs* x, int64_t m, float* out) {
        DotQ8_0<T>(job, x, m, out);
      });
      break;
    case DType::kQ4_0:
      DecodeTokens(job, acts, m0, m1, [&job]<int T>(const TokenActs* x, int64_t m, float* out) {
        DotQ4_0<T>(job, x, m, out);
      });
      break;
    default:
      KQuantDecodeRowsAvx512(job, m0, m1);
      break;
  }
}

}  // namespace fastgen::kernels::cpu
