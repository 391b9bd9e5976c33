// F32 / F16 / BF16 weights with AVX-512: exact float32 products (F16 and BF16 widen exactly to
// float32), so these paths match the reference up to summation order.
//
// Decode: one weight row × up to 16 tokens per pass, vectors over k; each weight vector is loaded
// and widened once and used for every token, whose activations are interleaved in 16-float
// pieces. (One row at a time reads the weights as a single sequential stream, which measured
// fastest from DRAM.)
// GEMM: tokens are the vector dimension. A panel of kPanelRows weight rows × kKc columns is
// widened to float once into scratch and then multiplies every token block; the micro-kernel
// keeps 6 rows × 4 vectors (64 tokens) of accumulators in registers, broadcasting one weight
// per row per k and loading 4 vectors of x^T: 24 FMAs per 10 loads.
// GCC 12's AVX-512 headers build _mm*_undefined_*() from a self-initialized variable, which
// -Wuninitialized reports inside the headers at -O3 (a false positive about the header).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include "kernels/cpu/act_layout.h"
#include "kernels/cpu/kernels_avx512.h"
#include "kernels/cpu/prefetch.h"
#include "kernels/cpu/vec_math_avx512.h"

namespace fastgen::kernels::cpu {
namespace {

constexpr int64_t kPanelRows = 96;  // weight rows per packed panel (multiple of kMicroRows)
constexpr int kMicroRows = 6;
constexpr int64_t kDecodeTileTokens = 16;       // most tokens per decode pass over a weight row
constexpr int64_t kDecodePrefetchBytes = 8192;  // software prefetch distance in the weight stream
constexpr int64_t kKc = 128;  // k per panel: the x^T block [128, 64] floats = 32 KiB stays in L1

inline int64_t Min(int64_t a, int64_t b) { return a < b ? a : b; }

// Widening loads of 16 consecutive weights starting at element i of a row.
struct LoadF32 {
  static constexpr int64_t kBytes = 4;  // per weight
  static __m512 Load(const uint8_t* row, int64_t i) {
    return _mm512_loadu_ps(reinterpret_cast<const float*>(row) + i);
  }
  static __m512 LoadMasked(const uint8_t* row, int64_t i, __mmask16 mask) {
    return _mm512_maskz_loadu_ps(mask, reinterpret_cast<const float*>(row) + i);
  }
};
struct LoadF16 {
  static constexpr int64_t kBytes = 2;  // per weight
  static __m512 Load(const uint8_t* row, int64_t i) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 2 * i)));
  }
  static __m512 LoadMasked(const uint8_t* row, int64_t i, __mmask16 mask) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask, row + 2 * i));
  }
};
struct LoadBF16 {
  static constexpr int64_t kBytes = 2;  // per weight
  static __m512 Widen(__m256i h) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
  static __m512 Load(const uint8_t* row, int64_t i) {
    return Widen(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 2 * i)));
  }
  static __m512 LoadMasked(const uint8_t* row, int64_t i, __mmask16 mask) {
    return Widen(_mm256_maskz_loadu_epi16(mask, row + 2 * i));
  }
};

// One token: y[m] = W[m] · x with U independent accumulators over k (with one chain, a short
// row that sits in cache waits on FMA latency: fg-target's 384-wide rows ran at a third of the
// FMA throughput, matmul_bench --hot --shapes fg-target). x is used as is.
template <class L, int U>
void DecodeRowOneToken(const MatMulJob& job, int64_t m) {
  const int64_t k = job.k;
  const uint8_t* row = job.w + static_cast<size_t>(m) * job.row_bytes;  // [k]
  const float* x = job.x;                                               // [k]
  __m512 acc[U];
  for (int u = 0; u < U; ++u) acc[u] = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 16 * U <= k; i += 16 * U) {
    // Only a streamed row is prefetched: the hardware prefetcher alone follows one row at full
    // speed, but it fetches into L2, which a streamed row must not enter.
    if (job.stream)
      for (int64_t line = 0; line < 16 * U * L::kBytes; line += 64)
        PrefetchWeights(row + (i * L::kBytes + line + kDecodePrefetchBytes), true);
    for (int u = 0; u < U; ++u)
      acc[u] = _mm512_fmadd_ps(L::Load(row, i + 16 * u), _mm512_loadu_ps(x + i + 16 * u), acc[u]);
  }
  for (; i < k; i += 16) {  // whole vectors left over from the unrolling, then a masked tail
    const __mmask16 mask =
        k - i >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << (k - i)) - 1);
    acc[0] = _mm512_fmadd_ps(L::LoadMasked(row, i, mask), _mm512_maskz_loadu_ps(mask, x + i), acc[0]);
  }
  for (int u = 1; u < U; ++u) acc[0] = _mm512_add_ps(acc[0], acc[u]);
  job.y[m] = _mm512_reduce_add_ps(acc[0]);
}

// Several tokens: y[t0 + t, m] = W[m] · x[t0 + t] for t < T <= 16, over the activations of
// its pass, interleaved in 16-float pieces (FloatDecodePasses in act_layout.h). Each weight
// vector is loaded and widened once and used for all T tokens; U accumulators per token over k
// keep T·U FMA chains in flight; one transposing reduction turns the T accumulators into T sums.
template <class L, int T, int U>
void DecodeTile(const MatMulJob& job, int64_t m, int64_t t0, bool stream) {
  const int64_t k = job.k;
  const uint8_t* row = job.w + static_cast<size_t>(m) * job.row_bytes;  // [k]
  const int64_t full = k / 16;
  // This pass's activations: [ceil(k/16), T, 16] (FloatDecodePrepareAvx512).
  const float* xi = reinterpret_cast<const float*>(job.act) + t0 * ((k + 15) / 16) * 16;
  __m512 acc[U][T];
  for (int u = 0; u < U; ++u)
    for (int t = 0; t < T; ++t) acc[u][t] = _mm512_setzero_ps();
  int64_t b = 0;
  for (; b + U <= full; b += U) {
    // A pass over many tokens consumes weights too slowly for the out-of-order window alone to
    // keep enough lines in flight: the 384 -> 8192 head from DRAM ran at half its in-cache speed
    // at 10 tokens.
    PrefetchWeights(row + (b * 16 * L::kBytes + kDecodePrefetchBytes), stream);
    for (int u = 0; u < U; ++u) {
      const __m512 wv = L::Load(row, (b + u) * 16);
      const float* xb = xi + (b + u) * T * 16;
      for (int t = 0; t < T; ++t) acc[u][t] = _mm512_fmadd_ps(wv, _mm512_load_ps(xb + 16 * t), acc[u][t]);
    }
  }
  for (; b < full; ++b) {
    const __m512 wv = L::Load(row, b * 16);
    const float* xb = xi + b * T * 16;
    for (int t = 0; t < T; ++t) acc[0][t] = _mm512_fmadd_ps(wv, _mm512_load_ps(xb + 16 * t), acc[0][t]);
  }
  if (full * 16 < k) {  // masked weight tail; x's padding is zero
    const __m512 wv = L::LoadMasked(row, full * 16, static_cast<__mmask16>((1u << (k - full * 16)) - 1));
    const float* xb = xi + full * T * 16;
    for (int t = 0; t < T; ++t) acc[0][t] = _mm512_fmadd_ps(wv, _mm512_load_ps(xb + 16 * t), acc[0][t]);
  }
  __m512 sums[16];
  for (int t = 0; t < 16; ++t) sums[t] = _mm512_setzero_ps();
  for (int t = 0; t < T; ++t) {
    sums[t] = acc[0][t];
    for (int u = 1; u < U; ++u) sums[t] = _mm512_add_ps(sums[t], acc[u][t]);
  }
  alignas(64) float out[16];
  _mm512_store_ps(out, ReduceLanes16(sums));
  for (int t = 0; t < T; ++t) job.y[(t0 + t) * job.ldy + m] = out[t];
}

// T tokens (2..16) of one row from t0: as many FMA chains in flight as tokens, or more.
template <class L>
void DecodeTileN(const MatMulJob& job, int64_t m, int64_t t0, int64_t T, bool stream) {
  switch (T) {
    case 16: DecodeTile<L, 16, 1>(job, m, t0, stream); break;
    case 15: DecodeTile<L, 15, 1>(job, m, t0, stream); break;
    case 14: DecodeTile<L, 14, 1>(job, m, t0, stream); break;
    case 13: DecodeTile<L, 13, 1>(job, m, t0, stream); break;
    case 12: DecodeTile<L, 12, 1>(job, m, t0, stream); break;
    case 11: DecodeTile<L, 11, 1>(job, m, t0, stream); break;
    case 10: DecodeTile<L, 10, 1>(job, m, t0, stream); break;
    case 9: DecodeTile<L, 9, 1>(job, m, t0, stream); break;
    case 8: DecodeTile<L, 8, 1>(job, m, t0, stream); break;
    case 7: DecodeTile<L, 7, 1>(job, m, t0, stream); break;
    case 6: DecodeTile<L, 6, 1>(job, m, t0, stream); break;
    case 5: DecodeTile<L, 5, 1>(job, m, t0, stream); break;
    case 4: DecodeTile<L, 4, 2>(job, m, t0, stream); break;
    case 3: DecodeTile<L, 3, 2>(job, m, t0, stream); break;
    case 2: DecodeTile<L, 2, 4>(job, m, t0, stream); break;
    default: DecodeTile<L, 1, 4>(job, m, t0, stream); break;
  }
}

template <class L>
void DecodeRows(const MatMulJob& job, int64_t m0, int64_t m1) {
  // One row at a time: the weights are read as a single sequential stream, which measured
  // fastest from DRAM (see QuantDecodeRowsAvx512). Two rows sharing each x load ran 1.4-1.8x
  // slower on fg-target's shapes from DRAM at 5 tokens, though 1.5x faster from cache.
  if (job.n == 1) {
    for (int64_t m = m0; m < m1; ++m) DecodeRowOneToken<L, 4>(job, m);
    return;
  }
  // Several passes reread each row block from L2, so only a single pass may stream past it.
  const bool stream = job.stream && FloatDecodePasses(job.n, job.k, kDecodeTileTokens).count == 1;
  ForEachFloatDecodePass(job, m0, m1, kDecodeTileTokens, [&job, stream](int64_t m, int64_t t0, int64_t T) {
    DecodeTileN<L>(job, m, t0, T, stream);
  });
}

// Widens W[m0 .. m0+rows, k0 .. k0+kc] into panel[rows, kKc].
template <class L>
void PackPanel(const MatMulJob& job, int64_t m0, int64_t rows, int64_t k0, int64_t kc,
               float* panel) {
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* row = job.w + static_cast<size_t>(m0 + r) * job.row_bytes;
    float* dst = panel + r * kKc;
    int64_t i = 0;
    for (; i + 16 <= kc; i += 16) _mm512_storeu_ps(dst + i, L::Load(row, k0 + i));
    if (i < kc) {
      const __mmask16 mask = static_cast<__mmask16>((1u << (kc - i)) - 1);
      _mm512_mask_storeu_ps(dst + i, mask, L::LoadMasked(row, k0 + i, mask));
    }
  }
}

// acc[r, 16v + lane] (+)= Σ_kk w[r, kk] · xt[kk, 16v + lane] for r < R, v < V.
template <int R, int V>
void MicroKernel(const float* w /*[R, kKc]*/, const float* xt /*[kc, 16V]*/, int64_t kc,
                 float* acc /*[R, lda]*/, int64_t lda, bool first) {
  __m512 c[R][V];
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < V; ++v)
      c[r][v] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(acc + r * lda + 16 * v);
  for (int64_t kk = 0; kk < kc; ++kk) {
    __m512 xv[V];
    for (int v = 0; v < V; ++v) xv[v] = _mm512_loadu_ps(xt + kk * 16 * V + 16 * v);
    for (int r = 0; r < R; ++r) {
      const __m512 wb = _mm512_set1_ps(w[r * kKc + kk]);
      for (int v = 0; v < V; ++v) c[r][v] = _mm512_fmadd_ps(wb, xv[v], c[r][v]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < V; ++v) _mm512_storeu_ps(acc + r * lda + 16 * v, c[r][v]);
}

template <int R>
void MicroKernelV(int v, const float* w, const float* xt, int64_t kc, float* acc, int64_t lda,
                  bool first) {
  switch (v) {
    case 4: MicroKernel<R, 4>(w, xt, kc, acc, lda, first); break;
    case 3: MicroKernel<R, 3>(w, xt, kc, acc, lda, first); break;
    case 2: MicroKernel<R, 2>(w, xt, kc, acc, lda, first); break;
    default: MicroKernel<R, 1>(w, xt, kc, acc, lda, first); break;
  }
}

void MicroKernelRV(int r, int v, const float* w, const float* xt, int64_t kc, float* acc,
                   int64_t lda, bool first) {
  switch (r) {
    case 6: MicroKernelV<6>(v, w, xt, kc, acc, lda, first); break;
    case 5: MicroKernelV<5>(v, w, xt, kc, acc, lda, first); break;
    case 4: MicroKernelV<4>(v, w, xt, kc, acc, lda, first); break;
    case 3: MicroKernelV<3>(v, w, xt, kc, acc, lda, first); break;
    case 2: MicroKernelV<2>(v, w, xt, kc, acc, lda, first); break;
    default: MicroKernelV<1>(v, w, xt, kc, acc, lda, first); break;
  }
}

int64_t AccStride(int64_t n) { return GemmTokenBlocks(n) * kGemmTokens; }

template <class L>
void GemmRows(const MatMulJob& job, int64_t m0, int64_t m1, uint8_t* scratch) {
  const int64_t k = job.k, n = job.n;
  const int64_t n_blocks = GemmTokenBlocks(n);
  const int64_t lda = AccStride(n);
  float* panel = reinterpret_cast<float*>(scratch);  // [kPanelRows, kKc]
  float* acc = panel + kPanelRows * kKc;             // [kPanelRows, lda] partial sums over k
  for (int64_t p0 = m0; p0 < m1; p0 += kPanelRows) {
    const int64_t rows = Min(kPanelRows, m1 - p0);
    for (int64_t k0 = 0; k0 < k; k0 += kKc) {
      const int64_t kc = Min(kKc, k - k0);
      PackPanel<L>(job, p0, rows, k0, kc, panel);
      for (int64_t tb = 0; tb < n_blocks; ++tb) {
        const int64_t width = GemmBlockWidth(n, tb);
        const float* xt = reinterpret_cast<const float*>(job.act + tb * FloatGemmBlockBytes(k)) +
                          k0 * width;  // [kc, width]
        for (int64_t r = 0; r < rows; r += kMicroRows) {
          MicroKernelRV(static_cast<int>(Min(kMicroRows, rows - r)), static_cast<int>(width / 16),
                        panel + r * kKc, xt, kc, acc + r * lda + tb * kGemmTokens, lda, k0 == 0);
        }
      }
    }
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t t = 0; t < n; ++t) job.y[t * job.ldy + p0 + r] = acc[r * lda + t];
  }
}

}  // namespace

size_t FloatDecodeActBytesAvx512(const MatMulJob& job) { return FloatDecodeActBytes(job.n, job.k, 16); }

void FloatDecodePrepareAvx512(const MatMulJob& job, int64_t t_begin, int64_t t_end) {
  FloatDecodeInterleave(job.x, job.n, job.k, 16, kDecodeTileTokens, t_begin, t_end,
                        reinterpret_cast<float*>(job.act));
}

void FloatDecodeRowsAvx512(const MatMulJob& job, int64_t m0, int64_t m1) {
  switch (job.dtype) {
    case DType::kF32: DecodeRows<LoadF32>(job, m0, m1); break;
    case DType::kF16: DecodeRows<LoadF16>(job, m0, m1); break;
    case DType::kBF16: DecodeRows<LoadBF16>(job, m0, m1); break;
    default: break;
  }
}

// x^T per token block, zero-padded to the block width so padded tokens add nothing.
void FloatGemmPrepareAvx512(const MatMulJob& job, int64_t tb0, int64_t tb1) {
  const int64_t k = job.k;
  for (int64_t tb = tb0; tb < tb1; ++tb) {
    const int64_t width = GemmBlockWidth(job.n, tb);
    const int64_t t_begin = tb * kGemmTokens;
    const int64_t t_count = Min(width, job.n - t_begin);
    float* xt = reinterpret_cast<float*>(job.act + tb * FloatGemmBlockBytes(k));  // [k, width]
    const float* xb = job.x + t_begin * k;  // [t_count, k]
    // k outer, tokens inner: writes stream contiguously while reads walk t_count cached lines.
    for (int64_t i = 0; i < k; ++i) {
      float* dst = xt + i * width;
      for (int64_t t = 0; t < t_count; ++t) dst[t] = xb[t * k + i];
      for (int64_t t = t_count; t < width; ++t) dst[t] = 0.0f;
    }
  }
}

size_t FloatGemmScratchBytesAvx512(const MatMulJob& job) {
  return static_cast<size_t>(kPanelRows * kKc + kPanelRows * AccStride(job.n)) * sizeof(float);
}

void FloatGemmRowsAvx512(const MatMulJob& job, int64_t m0, int64_t m1, uint8_t* scratch) {
  switch (job.dtype) {
    case DType::kF32: GemmRows<LoadF32>(job, m0, m1, scratch); break;
    case DType::kF16: GemmRows<LoadF16>(job, m0, m1, scratch); break;
    case DType::kBF16: GemmRows<LoadBF16>(job, m0, m1, scratch); break;
    default: break;
  }
}

}  // namespace fastgen::kernels::cpu
