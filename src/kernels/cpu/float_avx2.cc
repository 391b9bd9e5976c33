// AVX2 + FMA + F16C kernels for float weights, and the float32 GEMM used for every dtype on AVX2.
//
// Decode: one weight row × up to 7 tokens per pass (DecodeRow), over activations interleaved in
// 8-float pieces (act_layout.h), batch-invariant as in float_avx512.cc.
// GEMM: tokens are the vector dimension, as in float_avx512.cc: a panel of weight rows is
// converted to float32 once (F16/BF16 widened, quantized types dequantized by the reference
// code, which is exact and amortized over all tokens), then a 6-row × 16-token micro-kernel
// (12 ymm accumulators of the 16 registers) broadcasts one weight per row per k.
#include <immintrin.h>

#include "kernels/cpu/act_layout.h"
#include "kernels/cpu/kernels_avx2.h"
#include "kernels/cpu/prefetch.h"
#include "kernels/cpu/vec_math_avx2.h"
#include "kernels/reference/dequant.h"

namespace fastgen::kernels::cpu {
namespace {

constexpr int kMicroRows = 6;
constexpr int64_t kPanelRows = 48;  // multiple of kMicroRows
constexpr int64_t kKc = 256;        // multiple of every block size (quantized panels)
constexpr int64_t kDecodeTileTokens = 7;  // most tokens per decode pass over a weight row (registers)
constexpr int64_t kDecodePrefetchBytes = 8192;  // software prefetch distance in the weight stream

inline int64_t Min(int64_t a, int64_t b) { return a < b ? a : b; }

// Widening loads of 8 consecutive weights at element i of a row (unaligned).
struct LoadF32 {
  static constexpr int64_t kBytes = 4;  // per weight
  static __m256 Load(const uint8_t* row, int64_t i) {
    return _mm256_loadu_ps(reinterpret_cast<const float*>(row) + i);
  }
  static float Scalar(const uint8_t* row, int64_t i) {
    float v;
    __builtin_memcpy(&v, row + 4 * i, 4);
    return v;
  }
};
struct LoadF16 {
  static constexpr int64_t kBytes = 2;  // per weight
  static __m256 Load(const uint8_t* row, int64_t i) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * i)));
  }
  static float Scalar(const uint8_t* row, int64_t i) {
    uint16_t h;
    __builtin_memcpy(&h, row + 2 * i, 2);
    return _cvtsh_ss(h);
  }
};
struct LoadBF16 {
  static constexpr int64_t kBytes = 2;  // per weight
  static __m256 Load(const uint8_t* row, int64_t i) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * i));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
  static float Scalar(const uint8_t* row, int64_t i) {
    uint16_t h;
    __builtin_memcpy(&h, row + 2 * i, 2);
    const uint32_t bits = static_cast<uint32_t>(h) << 16;
    float v;
    __builtin_memcpy(&v, &bits, 4);
    return v;
  }
};

// One weight row × T tokens: y[t0 + t, m] = W[m] · x[t0 + t], each weight vector widened once
// for all T tokens. One row at a time (2·T + 2 registers of the 16) reads the weights as one
// sequential stream: tiles of two interleaved rows read it 1.12x slower from DRAM at one token,
// and at 2 and 3 tokens (fg-target's 384-wide rows) made a verification pass cost 1.21-1.39x and
// 1.45-1.50x of a one-token pass, against 1.02-1.12x and 1.17-1.24x row by row (forward_bench
// fg-target -d 600, AVX2 EPYC, 3 runs each).
//
// Batch invariance, as in float_avx512.cc: every (row, token) sum has two accumulators, one
// over the even 8-blocks of k and one over the odd ones, in order, the zero-padded tail into
// the one its block belongs to; then their sum and ReduceLanes8, whose lane tree is the same for
// each source. So y does not depend on T, the pass, the thread split or n. (Two chains, not
// one: with a single accumulator one token's 384-wide rows waited on the FMA latency, 1.34x
// slower, forward_bench on fg-target.)
//
// xi: this tile's activations, [ceil(k/8), T, 8] (FloatDecodePrepareAvx2), or for one token x
// itself, its tail read masked.
template <class L, int T>
void DecodeRow(const MatMulJob& job, const float* xi, int64_t m, int64_t t0, bool prefetch, bool stream) {
  static_assert(2 * T + 2 <= 16, "accumulators, the weight and x must fit the 16 registers");
  constexpr int64_t kVecBytes = 8 * L::kBytes;
  const int64_t k = job.k, full = k / 8;
  const uint8_t* row = job.w + static_cast<size_t>(m) * job.row_bytes;  // [k]
  __m256 acc[2][T];
  for (int h = 0; h < 2; ++h)
    for (int t = 0; t < T; ++t) acc[h][t] = _mm256_setzero_ps();
  auto step = [&](int h, __m256 wv, const float* xb, bool masked, __m256i xmask) {
    for (int t = 0; t < T; ++t) {
      const __m256 xv = masked ? _mm256_maskload_ps(xb + 8 * t, xmask) : _mm256_loadu_ps(xb + 8 * t);
      acc[h][t] = _mm256_fmadd_ps(wv, xv, acc[h][t]);
    }
  };
  const __m256i all = _mm256_set1_epi32(-1);
  int64_t b = 0;
  for (; b + 2 <= full; b += 2) {
    if (prefetch)
      for (int64_t line = 0; line < 2 * kVecBytes; line += 64)
        PrefetchWeights(row + (b * kVecBytes + line + kDecodePrefetchBytes), stream);
    for (int h = 0; h < 2; ++h) step(h, L::Load(row, (b + h) * 8), xi + (b + h) * T * 8, false, all);
  }
  if (b < full) {  // an even block left
    step(0, L::Load(row, b * 8), xi + b * T * 8, false, all);
    ++b;
  }
  if (const int64_t left = k - full * 8; left > 0) {
    // The weight tail through a zero-padded copy; x's prepared padding is zero, and x used as is
    // is read masked.
    alignas(32) static constexpr int32_t kLanes[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    const __m256i xmask = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(left)),
                                             _mm256_load_si256(reinterpret_cast<const __m256i*>(kLanes)));
    alignas(32) uint8_t tail[32] = {};
    __builtin_memcpy(tail, row + full * kVecBytes, static_cast<size_t>(left * L::kBytes));
    step(static_cast<int>(full % 2), L::Load(tail, 0), xi + full * T * 8, true, xmask);
  }
  // 8 tokens' sums per transposing reduction (T <= 7: one).
  __m256 sums[8];
  for (int t = 0; t < 8; ++t) sums[t] = t < T ? _mm256_add_ps(acc[0][t], acc[1][t]) : _mm256_setzero_ps();
  alignas(32) float out[8];
  _mm256_store_ps(out, ReduceLanes8(sums));
  for (int t = 0; t < T; ++t) job.y[(t0 + t) * job.ldy + m] = out[t];
}

// Rows [m0, m1) × T tokens from t0, one row at a time (see DecodeRow).
template <class L, int T>
void DecodeRowRange(const MatMulJob& job, const float* xi, int64_t m0, int64_t m1, int64_t t0,
                    bool prefetch, bool stream) {
  for (int64_t m = m0; m < m1; ++m) DecodeRow<L, T>(job, xi, m, t0, prefetch, stream);
}

// T tokens: 1..kDecodeTileTokens.
template <class L>
void DecodeRowRangeN(const MatMulJob& job, const float* xi, int64_t m0, int64_t m1, int64_t t0,
                     int64_t T, bool prefetch, bool stream) {
  switch (T) {
    case 7: DecodeRowRange<L, 7>(job, xi, m0, m1, t0, prefetch, stream); break;
    case 6: DecodeRowRange<L, 6>(job, xi, m0, m1, t0, prefetch, stream); break;
    case 5: DecodeRowRange<L, 5>(job, xi, m0, m1, t0, prefetch, stream); break;
    case 4: DecodeRowRange<L, 4>(job, xi, m0, m1, t0, prefetch, stream); break;
    case 3: DecodeRowRange<L, 3>(job, xi, m0, m1, t0, prefetch, stream); break;
    case 2: DecodeRowRange<L, 2>(job, xi, m0, m1, t0, prefetch, stream); break;
    default: DecodeRowRange<L, 1>(job, xi, m0, m1, t0, prefetch, stream); break;
  }
}

template <class L>
void DecodeRows(const MatMulJob& job, int64_t m0, int64_t m1) {
  if (job.n == 1) {  // a streamed row is prefetched past L2 (see prefetch.h); others are left to the hardware
    DecodeRowRangeN<L>(job, job.x, m0, m1, 0, 1, job.stream, job.stream);
    return;
  }
  // Several passes reread each row block from L2, so only a single pass may stream past it.
  const bool stream = job.stream && FloatDecodePasses(job.n, job.k, kDecodeTileTokens).count == 1;
  const int64_t pieces = (job.k + 7) / 8;
  ForEachFloatDecodePass(job, m0, m1, kDecodeTileTokens,
                         [&job, stream, pieces](int64_t b0, int64_t b1, int64_t t0, int64_t T) {
                           const float* xi = reinterpret_cast<const float*>(job.act) + t0 * pieces * 8;
                           DecodeRowRangeN<L>(job, xi, b0, b1, t0, T, true, stream);
                         });
}

// Converts W[m0 .. m0+rows, k0 .. k0+kc] to float32 in panel[rows, kKc].
template <class L>
void PackFloat(const MatMulJob& job, int64_t m0, int64_t rows, int64_t k0, int64_t kc,
               float* panel) {
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* row = job.w + static_cast<size_t>(m0 + r) * job.row_bytes;
    float* dst = panel + r * kKc;
    int64_t i = 0;
    for (; i + 8 <= kc; i += 8) _mm256_storeu_ps(dst + i, L::Load(row, k0 + i));
    for (; i < kc; ++i) dst[i] = L::Scalar(row, k0 + i);
  }
}

void PackQuantized(const MatMulJob& job, int64_t m0, int64_t rows, int64_t k0, int64_t kc,
                   float* panel) {
  const DTypeInfo& info = Info(job.dtype);
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* row = job.w + static_cast<size_t>(m0 + r) * job.row_bytes;
    reference::DequantizeRow(job.dtype, row + k0 / info.block_elems * info.block_bytes,
                             panel + r * kKc, kc);
  }
}

// acc[r, 8v + lane] (+)= Σ_kk w[r, kk] · xt[kk, 8v + lane], r < R, v < 2; xt rows `width` apart.
template <int R>
void MicroKernel(const float* w /*[R, kKc]*/, const float* xt /*[kc, width]*/, int64_t width,
                 int64_t kc, float* acc /*[R, lda]*/, int64_t lda, bool first) {
  __m256 c[R][2];
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < 2; ++v)
      c[r][v] = first ? _mm256_setzero_ps() : _mm256_loadu_ps(acc + r * lda + 8 * v);
  for (int64_t kk = 0; kk < kc; ++kk) {
    const __m256 x0 = _mm256_loadu_ps(xt + kk * width), x1 = _mm256_loadu_ps(xt + kk * width + 8);
    for (int r = 0; r < R; ++r) {
      const __m256 wb = _mm256_broadcast_ss(w + r * kKc + kk);
      c[r][0] = _mm256_fmadd_ps(wb, x0, c[r][0]);
      c[r][1] = _mm256_fmadd_ps(wb, x1, c[r][1]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < 2; ++v) _mm256_storeu_ps(acc + r * lda + 8 * v, c[r][v]);
}

void MicroKernelR(int r, const float* w, const float* xt, int64_t width, int64_t kc, float* acc,
                  int64_t lda, bool first) {
  switch (r) {
    case 6: MicroKernel<6>(w, xt, width, kc, acc, lda, first); break;
    case 5: MicroKernel<5>(w, xt, width, kc, acc, lda, first); break;
    case 4: MicroKernel<4>(w, xt, width, kc, acc, lda, first); break;
    case 3: MicroKernel<3>(w, xt, width, kc, acc, lda, first); break;
    case 2: MicroKernel<2>(w, xt, width, kc, acc, lda, first); break;
    default: MicroKernel<1>(w, xt, width, kc, acc, lda, first); break;
  }
}

int64_t AccStride(int64_t n) { return GemmTokenBlocks(n) * kGemmTokens; }

void GemmRows(const MatMulJob& job, int64_t m0, int64_t m1, uint8_t* scratch,
              void (*pack)(const MatMulJob&, int64_t, int64_t, int64_t, int64_t, float*)) {
  const int64_t k = job.k, n = job.n;
  const int64_t n_blocks = GemmTokenBlocks(n);
  const int64_t lda = AccStride(n);
  float* panel = reinterpret_cast<float*>(scratch);  // [kPanelRows, kKc]
  float* acc = panel + kPanelRows * kKc;             // [kPanelRows, lda] partial sums over k
  for (int64_t p0 = m0; p0 < m1; p0 += kPanelRows) {
    const int64_t rows = Min(kPanelRows, m1 - p0);
    for (int64_t k0 = 0; k0 < k; k0 += kKc) {
      const int64_t kc = Min(kKc, k - k0);
      pack(job, p0, rows, k0, kc, panel);
      for (int64_t tb = 0; tb < n_blocks; ++tb) {
        const int64_t width = GemmBlockWidth(n, tb);
        const float* xt = reinterpret_cast<const float*>(job.act + tb * FloatGemmBlockBytes(k)) +
                          k0 * width;  // [kc, width]
        for (int64_t t = 0; t < width; t += 16) {
          for (int64_t r = 0; r < rows; r += kMicroRows) {
            MicroKernelR(static_cast<int>(Min(kMicroRows, rows - r)), panel + r * kKc, xt + t,
                         width, kc, acc + r * lda + tb * kGemmTokens + t, lda, k0 == 0);
          }
        }
      }
    }
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t t = 0; t < n; ++t) job.y[t * job.ldy + p0 + r] = acc[r * lda + t];
  }
}

}  // namespace

size_t FloatDecodeActBytesAvx2(const MatMulJob& job) { return FloatDecodeActBytes(job.n, job.k, 8); }

void FloatDecodePrepareAvx2(const MatMulJob& job, int64_t t_begin, int64_t t_end) {
  FloatDecodeInterleave(job.x, job.n, job.k, 8, kDecodeTileTokens, t_begin, t_end,
                        reinterpret_cast<float*>(job.act));
}

void FloatDecodeRowsAvx2(const MatMulJob& job, int64_t m0, int64_t m1) {
  switch (job.dtype) {
    case DType::kF32: DecodeRows<LoadF32>(job, m0, m1); break;
    case DType::kF16: DecodeRows<LoadF16>(job, m0, m1); break;
    case DType::kBF16: DecodeRows<LoadBF16>(job, m0, m1); break;
    default: break;
  }
}

// x^T per token block, zero-padded to the block width (the layout of act_layout.h).
void FloatGemmPrepareAvx2(const MatMulJob& job, int64_t tb0, int64_t tb1) {
  const int64_t k = job.k;
  for (int64_t tb = tb0; tb < tb1; ++tb) {
    const int64_t width = GemmBlockWidth(job.n, tb);
    const int64_t t_begin = tb * kGemmTokens;
    const int64_t t_count = Min(width, job.n - t_begin);
    float* xt = reinterpret_cast<float*>(job.act + tb * FloatGemmBlockBytes(k));  // [k, width]
    const float* xb = job.x + t_begin * k;  // [t_count, k]
    for (int64_t i = 0; i < k; ++i) {
      float* dst = xt + i * width;
      for (int64_t t = 0; t < t_count; ++t) dst[t] = xb[t * k + i];
      for (int64_t t = t_count; t < width; ++t) dst[t] = 0.0f;
    }
  }
}

size_t FloatGemmScratchBytesAvx2(const MatMulJob& job) {
  return static_cast<size_t>(kPanelRows * kKc + kPanelRows * AccStride(job.n)) * sizeof(float);
}

void FloatGemmRowsAvx2(const MatMulJob& job, int64_t m0, int64_t m1, uint8_t* scratch) {
  switch (job.dtype) {
    case DType::kF32: GemmRows(job, m0, m1, scratch, PackFloat<LoadF32>); break;
    case DType::kF16: GemmRows(job, m0, m1, scratch, PackFloat<LoadF16>); break;
    case DType::kBF16: GemmRows(job, m0, m1, scratch, PackFloat<LoadBF16>); break;
    default: GemmRows(job, m0, m1, scratch, PackQuantized); break;
  }
}

}  // namespace fastgen::kernels::cpu
