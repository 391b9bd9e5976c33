// F32 / F16 / BF16 weights with AVX-512: exact float32 products (F16 and BF16 widen exactly to
// float32), so these paths match the reference up to summation order.
//
// Decode, batch-invariant (DecodeTile): one token goes one weight row at a time (a single
// sequential stream, fastest from DRAM); several tokens go in tiles of a few consecutive rows ×
// up to 16 tokens per pass, vectors over k, each weight vector loaded and widened once for all
// the tile's tokens, whose activations are interleaved in 16-float pieces.
// GEMM: tokens are the vector dimension. A panel of kPanelRows weight rows × kKc columns is
// widened to float once into scratch and then multiplies every token block; the micro-kernel
// keeps 6 rows × 4 vectors (64 tokens) of accumulators in registers, broadcasting one weight
// per row per k and loading 4 vectors of x^T: 24 FMAs per 10 loads.
// GCC 12's AVX-512 headers build _mm*_undefined_*() from a self-initialized variable, which
// -Wuninitialized reports inside the headers at -O3 (a false positive about the header).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>

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
// Decode reads weights in units of kUnit vectors: unit c holds elements [16·kUnit·c, +16·kUnit)
// of a row, vector j of it multiplying activation piece kUnit·c + j (see DecodePieces).
struct LoadF32 {
  static constexpr int64_t kBytes = 4;  // per weight
  static constexpr int kUnit = 1;
  static void LoadUnit(const uint8_t* row, int64_t c, __m512* w) { w[0] = Load(row, 16 * c); }
  static void LoadUnitTail(const uint8_t* row, int64_t c, int64_t left, __m512* w) {
    w[0] = LoadMasked(row, 16 * c, static_cast<__mmask16>((1u << left) - 1));
  }
  static __m512 Load(const uint8_t* row, int64_t i) {
    return _mm512_loadu_ps(reinterpret_cast<const float*>(row) + i);
  }
  static __m512 LoadMasked(const uint8_t* row, int64_t i, __mmask16 mask) {
    return _mm512_maskz_loadu_ps(mask, reinterpret_cast<const float*>(row) + i);
  }
};
struct LoadF16 {
  static constexpr int64_t kBytes = 2;  // per weight
  static constexpr int kUnit = 1;
  static void LoadUnit(const uint8_t* row, int64_t c, __m512* w) { w[0] = Load(row, 16 * c); }
  static void LoadUnitTail(const uint8_t* row, int64_t c, int64_t left, __m512* w) {
    w[0] = LoadMasked(row, 16 * c, static_cast<__mmask16>((1u << left) - 1));
  }
  static __m512 Load(const uint8_t* row, int64_t i) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 2 * i)));
  }
  static __m512 LoadMasked(const uint8_t* row, int64_t i, __mmask16 mask) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask, row + 2 * i));
  }
};
// Decode takes BF16 in units of 32 weights split even / odd: a bf16 is the top half of its
// float32, so one AND and one shift widen 32 weights (zero-extending and shifting 16 at a time
// takes twice the instructions, which left the 3-token verification tile at 110 GFLOP/s from
// L2 against 150-190 for F16's single conversion, matmul_bench --hot). Its activations are
// prepared in the matching order, even elements of each 32 in one piece, odd in the next.
struct LoadBF16 {
  static constexpr int64_t kBytes = 2;  // per weight
  static constexpr int kUnit = 2;
  static void Split(__m512i v, __m512* w) {
    w[0] = _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));                               // even
    w[1] = _mm512_castsi512_ps(_mm512_and_si512(v, _mm512_set1_epi32(static_cast<int>(0xffff0000u))));  // odd
  }
  static void LoadUnit(const uint8_t* row, int64_t c, __m512* w) {
    Split(_mm512_loadu_si512(row + 64 * c), w);
  }
  static void LoadUnitTail(const uint8_t* row, int64_t c, int64_t left, __m512* w) {
    Split(_mm512_maskz_loadu_epi16(static_cast<__mmask32>((1ull << left) - 1), row + 64 * c), w);
  }
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

// R consecutive weight rows × T tokens: y[t0 + t, m + r] = W[m + r] · x[t0 + t]. Each weight
// vector is loaded and widened once and used for all T tokens, each activation vector for all R
// rows, so R·T FMA chains are in flight and a k-vector costs R + T loads for R·T FMAs (one row
// at a time, 3 tokens ran at a third of the FMA peak from cache, matmul_bench --hot).
//
// Batch invariance: every (row, token) sum is one accumulator over k in order, the masked tail
// last, then ReduceLanes16, whose lane tree is the same for each of its 16 sources. So y does
// not depend on R, T, the pass, the thread split or n: a token's outputs are the same bits
// whether it is decoded alone or verified among drafted tokens (and plain and speculative
// decoding compute the same logits).
//
// xi: the activations of this tile's tokens, [DecodePieces, T, 16] (FloatDecodePrepareAvx512;
// for one token of F32 / F16, x itself, its tail read masked).
template <class L, int R, int T>
void DecodeTile(const MatMulJob& job, const float* xi, int64_t m, int64_t t0, bool prefetch,
                bool stream) {
  static_assert(R * T <= 24, "accumulators, weights and x must fit the 32 vector registers");
  constexpr int U = L::kUnit;
  constexpr int64_t kUnitElems = 16 * U;
  constexpr int64_t kUnitBytes = kUnitElems * L::kBytes;
  const int64_t k = job.k;
  const int64_t full = k / kUnitElems;
  const uint8_t* row[R];
  for (int r = 0; r < R; ++r) row[r] = job.w + static_cast<size_t>(m + r) * job.row_bytes;  // [k]
  __m512 acc[R][T];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) acc[r][t] = _mm512_setzero_ps();
  for (int64_t c = 0; c < full; ++c) {
    // Once per cache line of each row. A pass over several tokens consumes weights too slowly
    // for the out-of-order window alone to keep enough lines in flight (the 384 -> 8192 head
    // from DRAM ran at half its in-cache speed at 10 tokens).
    if (prefetch && (c * kUnitBytes) % 64 == 0)
      for (int r = 0; r < R; ++r) PrefetchWeights(row[r] + (c * kUnitBytes + kDecodePrefetchBytes), stream);
    __m512 wv[R][U];
    for (int r = 0; r < R; ++r) L::LoadUnit(row[r], c, wv[r]);
    for (int j = 0; j < U; ++j) {
      const float* xb = xi + (c * U + j) * T * 16;
      for (int t = 0; t < T; ++t) {
        const __m512 xv = _mm512_loadu_ps(xb + 16 * t);
        for (int r = 0; r < R; ++r) acc[r][t] = _mm512_fmadd_ps(wv[r][j], xv, acc[r][t]);
      }
    }
  }
  if (const int64_t left = k - full * kUnitElems; left > 0) {
    // Masked weight tails. x: the prepared layout is zero-padded; x used as is (one token,
    // kUnit 1) is read masked too.
    const __mmask16 xmask = U == 1 ? static_cast<__mmask16>((1u << left) - 1) : static_cast<__mmask16>(0xffff);
    __m512 wv[R][U];
    for (int r = 0; r < R; ++r) L::LoadUnitTail(row[r], full, left, wv[r]);
    for (int j = 0; j < U; ++j) {
      const float* xb = xi + (full * U + j) * T * 16;
      for (int t = 0; t < T; ++t) {
        const __m512 xv = _mm512_maskz_loadu_ps(xmask, xb + 16 * t);
        for (int r = 0; r < R; ++r) acc[r][t] = _mm512_fmadd_ps(wv[r][j], xv, acc[r][t]);
      }
    }
  }
  // 16 sums per transposing reduction, token-major within the tile.
  constexpr int kSums = R * T;
  for (int s0 = 0; s0 < kSums; s0 += 16) {
    __m512 sums[16];
    for (int s = 0; s < 16; ++s) sums[s] = s0 + s < kSums ? acc[(s0 + s) % R][(s0 + s) / R] : _mm512_setzero_ps();
    alignas(64) float out[16];
    _mm512_store_ps(out, ReduceLanes16(sums));
    for (int s = 0; s < 16 && s0 + s < kSums; ++s)
      job.y[(t0 + (s0 + s) / R) * job.ldy + m + (s0 + s) % R] = out[s];
  }
}

// Rows [m0, m1) × T tokens from t0: tiles of R rows, the rows left over one at a time.
template <class L, int R, int T>
void DecodeRowRange(const MatMulJob& job, const float* xi, int64_t m0, int64_t m1, int64_t t0,
                    bool prefetch, bool stream) {
  int64_t m = m0;
  for (; m + R <= m1; m += R) DecodeTile<L, R, T>(job, xi, m, t0, prefetch, stream);
  for (; m < m1; ++m) DecodeTile<L, 1, T>(job, xi, m, t0, prefetch, stream);
}

// Rows per tile for T tokens (2..16): R·T >= 8 chains keep both FMA pipes busy through the FMA latency,
// with at most 24 accumulators (the weight vectors and x take the other registers).
template <class L>
void DecodeRowRangeN(const MatMulJob& job, const float* xi, int64_t m0, int64_t m1, int64_t t0,
                     int64_t T, bool prefetch, bool stream) {
  switch (T) {
    case 16: DecodeRowRange<L, 1, 16>(job, xi, m0, m1, t0, prefetch, stream); break;
    case 15: DecodeRowRange<L, 1, 15>(job, xi, m0, m1, t0, prefetch, stream); break;
    case 14: DecodeRowRange<L, 1, 14>(job, xi, m0, m1, t0, prefetch, stream); break;
    case 13: DecodeRowRange<L, 1, 13>(job, xi, m0, m1, t0, prefetch, stream); break;
    case 12: DecodeRowRange<L, 2, 12>(job, xi, m0, m1, t0, prefetch, stream); break;
    case 11: DecodeRowRange<L, 2, 11>(job, xi, m0, m1, t0, prefetch, stream); break;
    case 10: DecodeRowRange<L, 2, 10>(job, xi, m0, m1, t0, prefetch, stream); break;
    case 9: DecodeRowRange<L, 2, 9>(job, xi, m0, m1, t0, prefetch, stream); break;
    case 8: DecodeRowRange<L, 2, 8>(job, xi, m0, m1, t0, prefetch, stream); break;
    case 7: DecodeRowRange<L, 3, 7>(job, xi, m0, m1, t0, prefetch, stream); break;
    case 6: DecodeRowRange<L, 4, 6>(job, xi, m0, m1, t0, prefetch, stream); break;
    case 5: DecodeRowRange<L, 4, 5>(job, xi, m0, m1, t0, prefetch, stream); break;
    case 4: DecodeRowRange<L, 4, 4>(job, xi, m0, m1, t0, prefetch, stream); break;
    case 3: DecodeRowRange<L, 4, 3>(job, xi, m0, m1, t0, prefetch, stream); break;
    default: DecodeRowRange<L, 6, 2>(job, xi, m0, m1, t0, prefetch, stream); break;
  }
}

// One token, rows [m0, m1): each row's dot product runs to its end before the next row starts,
// so the weights are read as one sequential stream (interleaving tiles of 8 rows ran the
// 384 -> 8192 head 1.2-1.4x slower from DRAM), and the out-of-order window overlaps the rows'
// independent chains. The sums of up to 16 rows share one ReduceLanes16: the same arithmetic,
// per row, as DecodeTile's, which keeps the path batch-invariant.
template <class L>
void DecodeOneToken(const MatMulJob& job, const float* x, int64_t m0, int64_t m1) {
  constexpr int U = L::kUnit;
  constexpr int64_t kUnitElems = 16 * U;
  constexpr int64_t kUnitBytes = kUnitElems * L::kBytes;
  const int64_t k = job.k;
  const int64_t full = k / kUnitElems, left = k - full * kUnitElems;
  const __mmask16 xmask = U == 1 && left > 0 ? static_cast<__mmask16>((1u << left) - 1) : static_cast<__mmask16>(0xffff);
  for (int64_t g = m0; g < m1; g += 16) {
    const int rows = static_cast<int>(Min(16, m1 - g));
    __m512 sums[16];
    for (int r = 0; r < rows; ++r) {
      const uint8_t* row = job.w + static_cast<size_t>(g + r) * job.row_bytes;  // [k]
      __m512 acc = _mm512_setzero_ps();
      for (int64_t c = 0; c < full; ++c) {
        // Only a streamed row is prefetched: the hardware prefetcher alone follows one row at
        // full speed, but it fetches into L2, which a streamed row must not enter.
        if (job.stream && (c * kUnitBytes) % 64 == 0) PrefetchWeights(row + (c * kUnitBytes + kDecodePrefetchBytes), true);
        __m512 wv[U];
        L::LoadUnit(row, c, wv);
        for (int j = 0; j < U; ++j) acc = _mm512_fmadd_ps(wv[j], _mm512_loadu_ps(x + (c * U + j) * 16), acc);
      }
      if (left > 0) {
        __m512 wv[U];
        L::LoadUnitTail(row, full, left, wv);
        for (int j = 0; j < U; ++j) acc = _mm512_fmadd_ps(wv[j], _mm512_maskz_loadu_ps(xmask, x + (full * U + j) * 16), acc);
      }
      sums[r] = acc;
    }
    for (int r = rows; r < 16; ++r) sums[r] = _mm512_setzero_ps();
    alignas(64) float out[16];
    _mm512_store_ps(out, ReduceLanes16(sums));
    for (int r = 0; r < rows; ++r) job.y[g + r] = out[r];
  }
}

// Activation pieces of 16 floats per token for k-wide rows of a dtype: whole units.
int64_t DecodePieces(DType dtype, int64_t k) {
  const int64_t unit = dtype == DType::kBF16 ? LoadBF16::kUnit : 1;
  return (k + 16 * unit - 1) / (16 * unit) * unit;
}

// Whether x is used as is: one token of a dtype whose units are single vectors.
bool DecodeUsesXAsIs(const MatMulJob& job) { return job.n == 1 && job.dtype != DType::kBF16; }

template <class L>
void DecodeRows(const MatMulJob& job, int64_t m0, int64_t m1) {
  if (job.n == 1) {
    DecodeOneToken<L>(job, DecodeUsesXAsIs(job) ? job.x : reinterpret_cast<const float*>(job.act), m0, m1);
    return;
  }
  // Several passes reread each row block from L2, so only a single pass may stream past it.
  const bool stream = job.stream && FloatDecodePasses(job.n, job.k, kDecodeTileTokens).count == 1;
  const int64_t pieces = DecodePieces(job.dtype, job.k);
  ForEachFloatDecodePass(job, m0, m1, kDecodeTileTokens,
                         [&job, stream, pieces](int64_t b0, int64_t b1, int64_t t0, int64_t T) {
                           const float* xi = reinterpret_cast<const float*>(job.act) + t0 * pieces * 16;
                           DecodeRowRangeN<L>(job, xi, b0, b1, t0, T, true, stream);
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

size_t FloatDecodeActBytesAvx512(const MatMulJob& job) {
  if (DecodeUsesXAsIs(job)) return 0;
  return AlignUp(static_cast<size_t>(DecodePieces(job.dtype, job.k) * job.n * 16) * 4);
}

void FloatDecodePrepareAvx512(const MatMulJob& job, int64_t t_begin, int64_t t_end) {
  if (job.dtype != DType::kBF16) {
    FloatDecodeInterleave(job.x, job.n, job.k, 16, kDecodeTileTokens, t_begin, t_end, reinterpret_cast<float*>(job.act));
    return;
  }
  // BF16's layout (LoadBF16): per 32 elements, the even ones in one piece and the odd ones in the
  // next, zero-padded to whole pairs; the passes as in FloatDecodeInterleave. One token is
  // prepared for every decode matmul, so this is two permutes per 32 floats, not a scalar loop.
  const int64_t k = job.k, pieces = DecodePieces(job.dtype, k);
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
  const FloatDecodePasses passes(job.n, k, kDecodeTileTokens);
  float* act = reinterpret_cast<float*>(job.act);
  for (int64_t p = 0; p < passes.count; ++p) {
    const int64_t p0 = passes.Begin(p), p1 = passes.Begin(p + 1), width = p1 - p0;
    for (int64_t t = std::max(p0, t_begin); t < std::min(p1, t_end); ++t) {
      const float* xt = job.x + t * k;
      float* dst = act + (p0 * pieces + (t - p0)) * 16;  // piece b of token t at dst + b·width·16
      for (int64_t c = 0; c < pieces / 2; ++c) {
        const int64_t left = std::min<int64_t>(32, k - 32 * c);
        const __mmask16 m0 = left >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << left) - 1);
        const __mmask16 m1 = left >= 32 ? static_cast<__mmask16>(0xffff)
                             : left > 16 ? static_cast<__mmask16>((1u << (left - 16)) - 1)
                                         : static_cast<__mmask16>(0);
        const __m512 lo = _mm512_maskz_loadu_ps(m0, xt + 32 * c), hi = _mm512_maskz_loadu_ps(m1, xt + 32 * c + 16);
        _mm512_storeu_ps(dst + (2 * c) * width * 16, _mm512_permutex2var_ps(lo, even, hi));
        _mm512_storeu_ps(dst + (2 * c + 1) * width * 16, _mm512_permutex2var_ps(lo, odd, hi));
      }
    }
  }
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
