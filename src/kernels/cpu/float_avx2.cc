// AVX2 + FMA + F16C kernels for float weights, and the float32 GEMM used for every dtype on AVX2.
//
// Decode: one weight row at a time (one sequential DRAM stream) × up to 12 tokens per pass,
// over activations interleaved in 8-float pieces (act_layout.h), as in float_avx512.cc.
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
constexpr int64_t kDecodeTileTokens = 12;       // most tokens per decode pass over a weight row
constexpr int64_t kDecodePrefetchBytes = 8192;  // software prefetch distance in the weight stream

inline int64_t Min(int64_t a, int64_t b) { return a < b ? a : b; }

inline float ReduceAdd(__m256 v) {
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 s2 = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(s2, _mm_movehdup_ps(s2)));
}

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

// One token: y[m] = W[m] · x, 8-wide FMAs into 2 accumulators to hide FMA latency.
template <class L>
void DecodeRowOneToken(const MatMulJob& job, int64_t m) {
  const int64_t k = job.k;
  const uint8_t* row = job.w + static_cast<size_t>(m) * job.row_bytes;  // [k]
  const float* x = job.x;                                               // [k]
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= k; i += 16) {
    // A streamed row is prefetched past L2 (see prefetch.h); others are left to the hardware.
    if (job.stream)
      for (int64_t line = 0; line < 16 * L::kBytes; line += 64)
        PrefetchWeights(row + (i * L::kBytes + line + kDecodePrefetchBytes), true);
    acc0 = _mm256_fmadd_ps(L::Load(row, i), _mm256_loadu_ps(x + i), acc0);
    acc1 = _mm256_fmadd_ps(L::Load(row, i + 8), _mm256_loadu_ps(x + i + 8), acc1);
  }
  float s = ReduceAdd(_mm256_add_ps(acc0, acc1));
  for (; i < k; ++i) s += L::Scalar(row, i) * x[i];
  job.y[m] = s;
}

// Several tokens: y[t0 + t, m] = W[m] · x[t0 + t] for t < T <= 12, over the activations of its
// pass, interleaved in 8-float pieces (FloatDecodePasses in act_layout.h). Each weight vector
// is loaded and widened once and used for all T tokens; U accumulators per token keep T·U FMA
// chains in flight (at most 12 of the 16 ymm registers); transposing reductions turn them into
// the T sums.
template <class L, int T, int U>
void DecodeTile(const MatMulJob& job, int64_t m, int64_t t0, bool stream) {
  const int64_t k = job.k, full = k / 8;
  const uint8_t* row = job.w + static_cast<size_t>(m) * job.row_bytes;  // [k]
  const float* xi = reinterpret_cast<const float*>(job.act) + t0 * ((k + 7) / 8) * 8;  // [ceil(k/8), T, 8]
  __m256 acc[U][T];
  for (int u = 0; u < U; ++u)
    for (int t = 0; t < T; ++t) acc[u][t] = _mm256_setzero_ps();
  int64_t b = 0;
  for (; b + U <= full; b += U) {
    PrefetchWeights(row + (b * 8 * L::kBytes + kDecodePrefetchBytes), stream);
    for (int u = 0; u < U; ++u) {
      const __m256 wv = L::Load(row, (b + u) * 8);
      const float* xb = xi + (b + u) * T * 8;
      for (int t = 0; t < T; ++t) acc[u][t] = _mm256_fmadd_ps(wv, _mm256_load_ps(xb + 8 * t), acc[u][t]);
    }
  }
  for (; b < full; ++b) {
    const __m256 wv = L::Load(row, b * 8);
    const float* xb = xi + b * T * 8;
    for (int t = 0; t < T; ++t) acc[0][t] = _mm256_fmadd_ps(wv, _mm256_load_ps(xb + 8 * t), acc[0][t]);
  }
  if (full * 8 < k) {  // the weight tail through a zero-padded copy (x's padding is zero too)
    alignas(32) uint8_t tail[32] = {};
    __builtin_memcpy(tail, row + full * 8 * L::kBytes, static_cast<size_t>((k - full * 8) * L::kBytes));
    const __m256 wv = L::Load(tail, 0);
    const float* xb = xi + full * T * 8;
    for (int t = 0; t < T; ++t) acc[0][t] = _mm256_fmadd_ps(wv, _mm256_load_ps(xb + 8 * t), acc[0][t]);
  }
  __m256 sums[16];
  for (int t = 0; t < 16; ++t) sums[t] = _mm256_setzero_ps();
  for (int t = 0; t < T; ++t) {
    sums[t] = acc[0][t];
    for (int u = 1; u < U; ++u) sums[t] = _mm256_add_ps(sums[t], acc[u][t]);
  }
  alignas(32) float out[16];
  _mm256_store_ps(out, ReduceLanes8(sums));
  if (T > 8) _mm256_store_ps(out + 8, ReduceLanes8(sums + 8));
  for (int t = 0; t < T; ++t) job.y[(t0 + t) * job.ldy + m] = out[t];
}

// T tokens (2..12) of one row from t0.
template <class L>
void DecodeTileN(const MatMulJob& job, int64_t m, int64_t t0, int64_t T, bool stream) {
  switch (T) {
    case 12: DecodeTile<L, 12, 1>(job, m, t0, stream); break;
    case 11: DecodeTile<L, 11, 1>(job, m, t0, stream); break;
    case 10: DecodeTile<L, 10, 1>(job, m, t0, stream); break;
    case 9: DecodeTile<L, 9, 1>(job, m, t0, stream); break;
    case 8: DecodeTile<L, 8, 1>(job, m, t0, stream); break;
    case 7: DecodeTile<L, 7, 1>(job, m, t0, stream); break;
    case 6: DecodeTile<L, 6, 1>(job, m, t0, stream); break;
    case 5: DecodeTile<L, 5, 1>(job, m, t0, stream); break;
    case 4: DecodeTile<L, 4, 2>(job, m, t0, stream); break;
    case 3: DecodeTile<L, 3, 3>(job, m, t0, stream); break;
    default: DecodeTile<L, 2, 4>(job, m, t0, stream); break;
  }
}

// One row at a time (one sequential DRAM stream per thread).
template <class L>
void DecodeRows(const MatMulJob& job, int64_t m0, int64_t m1) {
  if (job.n == 1) {
    for (int64_t m = m0; m < m1; ++m) DecodeRowOneToken<L>(job, m);
    return;
  }
  // Several passes reread each row block from L2, so only a single pass may stream past it.
  const bool stream = job.stream && FloatDecodePasses(job.n, job.k, kDecodeTileTokens).count == 1;
  ForEachFloatDecodePass(job, m0, m1, kDecodeTileTokens, [&job, stream](int64_t m, int64_t t0, int64_t T) {
    DecodeTileN<L>(job, m, t0, T, stream);
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
