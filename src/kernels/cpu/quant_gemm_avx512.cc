// Quantized weights (Q8_0, Q4_0 and the K-quants Q2_K..Q6_K) in a cache-blocked int8 GEMM with
// AVX-512 VNNI (prefill).
//
// Tokens are the vector dimension: x is quantized to int8 per 32-element block and stored as
// unsigned bytes (q + 128) with 4 consecutive k of one token per 32-bit lane, 16 tokens per
// vector. A panel of weight rows is unpacked once into plain signed bytes plus a float scale and
// an int32 bias per scale block, then one vpdpbusd takes 4 k-steps for 16 tokens of one row,
// broadcasting 4 weight bytes: 64 multiply-adds per instruction, 4× an FP32 FMA. The +128 of
// x is removed by starting each block's sum at the bias -128 Σw. At the end of each scale
// block (32 elements; 16 for Q2_K, Q3_K, Q6_K) the int32 sums are scaled by d_w · d_x into
// float32 accumulators; Q2_K, Q4_K and Q5_K also subtract dmin · m · Σx there. Each output is
// one FMA chain over the scale blocks in order, in its own lane: a token's result does not
// depend on how many tokens the call has or where it sits among them.
//
// Micro-kernel: 3 rows × 4 vectors (64 tokens): 12 int32 and 12 float32 accumulators.
// GCC 12's AVX-512 headers build _mm*_undefined_*() from a self-initialized variable, which
// -Wuninitialized reports inside the headers at -O3 (a false positive about the header).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cstring>

#include "kernels/cpu/act_layout.h"
#include "kernels/cpu/kernels_avx512.h"
#include "kernels/cpu/quant_gemm_pack_avx512.h"
#include "kernels/reference/quant_blocks.h"

namespace fastgen::kernels::cpu {
namespace {

// acc[r, 16v + lane] (+)= Σ over kc of w[r, ·] · x[token 16v + lane, ·] for r < R, v < V, with
// scale blocks of S elements; kMin adds Q4_K's minimum term.
template <int R, int V, int S, bool kMin>
void MicroKernel(const Panel& p, int64_t r0, const GemmActs& x /*at k0*/, int64_t width,
                 int64_t kc, float* acc /*[R, lda]*/, int64_t lda, bool first) {
  __m512 cf[R][V];
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < V; ++v)
      cf[r][v] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(acc + r * lda + 16 * v);
  const int8_t* wq = p.wq + r0 * kKc;  // [R, kKc]
  for (int64_t j = 0; j < kc / S; ++j) {
    __m512i ci[R][V];
    for (int r = 0; r < R; ++r) {
      const __m512i b = _mm512_set1_epi32(p.bias[(r0 + r) * (kKc / 16) + j]);
      for (int v = 0; v < V; ++v) ci[r][v] = b;
    }
    const uint8_t* xu = x.xu + (j * S / 4) * width * 4;  // [S/4, width, 4]
    for (int g = 0; g < S / 4; ++g) {
      __m512i xv[V];
      for (int v = 0; v < V; ++v)
        xv[v] = _mm512_loadu_si512(xu + g * width * 4 + 64 * v);
      for (int r = 0; r < R; ++r) {
        int32_t w4;
        std::memcpy(&w4, wq + r * kKc + j * S + 4 * g, 4);
        const __m512i wb = _mm512_set1_epi32(w4);
        for (int v = 0; v < V; ++v) ci[r][v] = _mm512_dpbusd_epi32(ci[r][v], xv[v], wb);
      }
    }
    const int64_t xb = j * S / 32;  // x block of this scale block
    for (int v = 0; v < V; ++v) {
      const __m512 dx = _mm512_loadu_ps(x.xd + xb * width + 16 * v);
      for (int r = 0; r < R; ++r) {
        const __m512 s = _mm512_mul_ps(_mm512_set1_ps(p.scale[(r0 + r) * (kKc / 16) + j]), dx);
        cf[r][v] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ci[r][v]), s, cf[r][v]);
      }
      if constexpr (kMin) {
        // Σx over the scale block: per 32 (Q4_K, Q5_K) or per 16 (Q2_K).
        const __m512 xs = _mm512_loadu_ps((S == 16 ? x.xs16 + j * width : x.xs + xb * width) + 16 * v);
        for (int r = 0; r < R; ++r)
          cf[r][v] = _mm512_fnmadd_ps(_mm512_set1_ps(p.min[(r0 + r) * (kKc / 16) + j]), xs, cf[r][v]);
      }
    }
  }
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < V; ++v) _mm512_storeu_ps(acc + r * lda + 16 * v, cf[r][v]);
}

template <int S, bool kMin, int R>
void MicroKernelV(int v, const Panel& p, int64_t r0, const GemmActs& x, int64_t width, int64_t kc,
                  float* acc, int64_t lda, bool first) {
  switch (v) {
    case 4: MicroKernel<R, 4, S, kMin>(p, r0, x, width, kc, acc, lda, first); break;
    case 3: MicroKernel<R, 3, S, kMin>(p, r0, x, width, kc, acc, lda, first); break;
    case 2: MicroKernel<R, 2, S, kMin>(p, r0, x, width, kc, acc, lda, first); break;
    default: MicroKernel<R, 1, S, kMin>(p, r0, x, width, kc, acc, lda, first); break;
  }
}

template <int S, bool kMin>
void MicroKernelRV(int r, int v, const Panel& p, int64_t r0, const GemmActs& x, int64_t width,
                   int64_t kc, float* acc, int64_t lda, bool first) {
  switch (r) {
    case 3: MicroKernelV<S, kMin, 3>(v, p, r0, x, width, kc, acc, lda, first); break;
    case 2: MicroKernelV<S, kMin, 2>(v, p, r0, x, width, kc, acc, lda, first); break;
    default: MicroKernelV<S, kMin, 1>(v, p, r0, x, width, kc, acc, lda, first); break;
  }
}

template <int S, bool kMin>
void GemmRows(const MatMulJob& job, int64_t m0, int64_t m1, uint8_t* scratch,
              void (*pack)(const MatMulJob&, const Panel&, int64_t, int64_t, int64_t, int64_t)) {
  const int64_t k = job.k, n = job.n;
  const int64_t n_blocks = GemmTokenBlocks(n);
  const int64_t lda = AccStride(n);
  const Panel p = PanelAt(scratch);
  for (int64_t p0 = m0; p0 < m1; p0 += kPanelRows) {
    const int64_t rows = Min(kPanelRows, m1 - p0);
    for (int64_t k0 = 0; k0 < k; k0 += kKc) {
      const int64_t kc = Min(kKc, k - k0);
      pack(job, p, p0, rows, k0, kc);
      for (int64_t tb = 0; tb < n_blocks; ++tb) {
        const int64_t width = GemmBlockWidth(n, tb);
        GemmActs x = QuantGemmBlockAt(job.act, k, tb);
        x.xu += (k0 / 4) * width * 4;
        x.xd += (k0 / 32) * width;
        x.xs += (k0 / 32) * width;
        x.xs16 += (k0 / 16) * width;
        for (int64_t r = 0; r < rows; r += kMicroRows) {
          MicroKernelRV<S, kMin>(static_cast<int>(Min(kMicroRows, rows - r)),
                                 static_cast<int>(width / 16), p, r, x, width, kc,
                                 p.acc + r * lda + tb * kGemmTokens, lda, k0 == 0);
        }
      }
    }
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t t = 0; t < n; ++t) job.y[t * job.ldy + p0 + r] = p.acc[r * lda + t];
  }
}

}  // namespace

// Quantizes the tokens of each block per 32 elements and stores them transposed, + 128.
// Padding tokens get q = 0 (byte 128) and d = 0, so they contribute nothing.
void QuantGemmPrepareAvx512(const MatMulJob& job, int64_t tb0, int64_t tb1) {
  const int64_t k = job.k;
  for (int64_t tb = tb0; tb < tb1; ++tb) {
    const int64_t width = GemmBlockWidth(job.n, tb);
    const int64_t t_begin = tb * kGemmTokens;
    const int64_t t_count = Min(width, job.n - t_begin);
    const GemmActs g = QuantGemmBlockAt(job.act, k, tb);
    for (int64_t t = 0; t < width; ++t) {
      const float* xr = job.x + (t_begin + t) * k;  // [k], only for t < t_count
      for (int64_t b = 0; b < k / 32; ++b) {
        alignas(32) uint8_t bytes[32];
        float db = 0.0f;
        int32_t sum0 = 0, sum1 = 0;  // over elements 0..15 and 16..31
        if (t < t_count) {
          const __m512 v0 = _mm512_loadu_ps(xr + 32 * b);
          const __m512 v1 = _mm512_loadu_ps(xr + 32 * b + 16);
          const float amax =
              _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
          db = amax / 127.0f;
          const __m512 id = _mm512_set1_ps(amax > 0.0f ? 127.0f / amax : 0.0f);
          const __m512i q0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, id));
          const __m512i q1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, id));
          const __m128i flip = _mm_set1_epi8(static_cast<char>(0x80));
          _mm_store_si128(reinterpret_cast<__m128i*>(bytes),
                          _mm_xor_si128(_mm512_cvtsepi32_epi8(q0), flip));
          _mm_store_si128(reinterpret_cast<__m128i*>(bytes + 16),
                          _mm_xor_si128(_mm512_cvtsepi32_epi8(q1), flip));
          sum0 = _mm512_reduce_add_epi32(q0);
          sum1 = _mm512_reduce_add_epi32(q1);
        } else {
          std::memset(bytes, 0x80, sizeof(bytes));
        }
        for (int q = 0; q < 8; ++q)
          std::memcpy(g.xu + ((8 * b + q) * width + t) * 4, bytes + 4 * q, 4);
        g.xd[b * width + t] = db;
        g.xs[b * width + t] = db * static_cast<float>(sum0 + sum1);
        g.xs16[2 * b * width + t] = db * static_cast<float>(sum0);
        g.xs16[(2 * b + 1) * width + t] = db * static_cast<float>(sum1);
      }
    }
  }
}

size_t QuantGemmScratchBytesAvx512(const MatMulJob& job) { return PanelBytes(job.n); }

void QuantGemmRowsAvx512(const MatMulJob& job, int64_t m0, int64_t m1, uint8_t* scratch) {
  switch (job.dtype) {
    case DType::kQ8_0: GemmRows<32, false>(job, m0, m1, scratch, PackQ8_0); break;
    case DType::kQ4_0: GemmRows<32, false>(job, m0, m1, scratch, PackQ4_0); break;
    case DType::kQ4_K: GemmRows<32, true>(job, m0, m1, scratch, PackQ4_K); break;
    case DType::kQ6_K: GemmRows<16, false>(job, m0, m1, scratch, PackQ6_K); break;
    case DType::kQ2_K: GemmRows<16, true>(job, m0, m1, scratch, PackQ2_K); break;
    case DType::kQ3_K: GemmRows<16, false>(job, m0, m1, scratch, PackQ3_K); break;
    case DType::kQ5_K: GemmRows<32, true>(job, m0, m1, scratch, PackQ5_K); break;
    default: break;
  }
}

}  // namespace fastgen::kernels::cpu
