// Int8 GEMM on AMX tiles (prefill) for weights with one scale per 32 elements: Q8_0, Q4_0, Q4_K,
// Q5_K. The products and their order are the VNNI GEMM's (quant_gemm_avx512.cc), so the results
// are the same bits; AMX only computes each block's integer products faster.
//
// Per block of 32 columns, one TDPBUSD multiplies a tile of 16 tokens × 32 unsigned x bytes
// (q + 128) by a tile of 32 × 16 rows of signed weights into 16 × 16 int32 sums: 8192
// multiply-adds in one instruction. The sums go through memory to the epilogue, which adds the
// row's bias (-128 Σw), converts, and folds d_w · d_x into each (token, row)'s float
// accumulator, exactly as the VNNI micro-kernel does at the end of each block; Q4_K and Q5_K
// then subtract dmin · m · Σx. The lanes are rows here (tokens there): a float product and an
// FMA per element either way, in the same order over the blocks.
//
// Weights come in panels of 64 rows over all of k (the shared packers, one 256-column chunk at a
// time), rearranged into AMX's B layout: per 16 rows and block, [8 × (16 rows × 4 bytes)].
// Tiles: tmm0 the sums, tmm1 x, tmm2 the weights; configured per call (palette 1).
// GCC 12's AVX-512 headers build _mm*_undefined_*() from a self-initialized variable, which
// -Wuninitialized reports inside the headers at -O3 (a false positive about the header).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cstring>

#include "kernels/cpu/act_layout.h"
#include "kernels/cpu/amx_tiles.h"
#include "kernels/cpu/kernels_avx512.h"
#include "kernels/cpu/quant_gemm_pack_avx512.h"

namespace fastgen::kernels::cpu {
namespace {

constexpr int64_t kAmxPanelRows = 64;  // rows per panel: 4 groups of 16

// The tile configuration (palette 1): tmm0 16 × 64 bytes (int32 sums of 16 tokens × 16 rows),
// tmm1 16 × 32 bytes (x: 16 tokens × one block), tmm2 8 × 64 bytes (one block of 16 rows,
// 4 bytes of a row per 4 columns).
// Two sets (tmm0-2, tmm3-5): block j + 1's product runs while block j's sums are stored and
// folded into the accumulators (the store waits on the product's latency otherwise).
void ConfigureTiles() {
  TileConfig c;
  for (int set = 0; set < 2; ++set) {
    c.colsb[3 * set] = 64;
    c.rows[3 * set] = 16;
    c.colsb[3 * set + 1] = 32;
    c.rows[3 * set + 1] = 16;
    c.colsb[3 * set + 2] = 64;
    c.rows[3 * set + 2] = 8;
  }
  LoadTileConfig(c);
}

// Scratch: the unpacked panel for one 256-column chunk (the packers' format), then the B layout
// and per-(row, block) scale, bias and minimum over all of k, then one tile of sums.
struct AmxScratch {
  Panel chunk;
  int8_t* b;       // [kAmxPanelRows / 16, k/32, 8, 16, 4]
  float* scale;    // [kAmxPanelRows / 16, k/32, 16]
  int32_t* bias;   // [kAmxPanelRows / 16, k/32, 16]
  float* min;      // [kAmxPanelRows / 16, k/32, 16]
  int32_t* sums;   // [2, 16, 16]: the two tile sets' sums
};

size_t ChunkBytes() { return PanelBytes(16); }  // the packers' panel; its accumulators go unused

AmxScratch ScratchAt(uint8_t* s, int64_t k) {
  AmxScratch a;
  a.chunk = PanelAt(s);
  s += AlignUp(ChunkBytes());
  const size_t blocks = static_cast<size_t>(k / 32);
  a.b = reinterpret_cast<int8_t*>(s);
  s += AlignUp(static_cast<size_t>(kAmxPanelRows) * static_cast<size_t>(k));
  a.scale = reinterpret_cast<float*>(s);
  s += AlignUp(static_cast<size_t>(kAmxPanelRows) * blocks * 4);
  a.bias = reinterpret_cast<int32_t*>(s);
  s += AlignUp(static_cast<size_t>(kAmxPanelRows) * blocks * 4);
  a.min = reinterpret_cast<float*>(s);
  s += AlignUp(static_cast<size_t>(kAmxPanelRows) * blocks * 4);
  a.sums = reinterpret_cast<int32_t*>(s);
  return a;
}

using PackFn = void (*)(const MatMulJob&, const Panel&, int64_t, int64_t, int64_t, int64_t);

// Packs rows [p0, p0 + rows) over all of k into the B layout; rows past `rows` are zeros.
template <bool kMin>
void PackPanel(const MatMulJob& job, const AmxScratch& a, int64_t p0, int64_t rows, PackFn pack) {
  const int64_t k = job.k, blocks = k / 32, groups = (rows + 15) / 16;
  if (rows % 16 != 0) {  // the last group's missing rows are zeros: they add nothing
    const int64_t g = rows / 16;
    std::memset(a.b + g * blocks * 8 * 64, 0, static_cast<size_t>(blocks * 8 * 64));
    for (float* v : {a.scale, a.min}) std::memset(v + g * blocks * 16, 0, static_cast<size_t>(blocks * 16) * 4);
    std::memset(a.bias + g * blocks * 16, 0, static_cast<size_t>(blocks * 16) * 4);
  }
  // Row lane of a group, 4 bytes at column 4q of block j: gathered 16 rows at a time.
  const __m512i row_offsets = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                                 _mm512_set1_epi32(static_cast<int>(kKc)));
  for (int64_t k0 = 0; k0 < k; k0 += kKc) {
    const int64_t kc = Min(kKc, k - k0);
    pack(job, a.chunk, p0, rows, k0, kc);
    for (int64_t g = 0; g < groups; ++g) {
      const int64_t lanes = Min(16, rows - 16 * g);
      const __mmask16 valid = static_cast<__mmask16>((1u << lanes) - 1);
      for (int64_t j = 0; j < kc / 32; ++j) {
        const int64_t blk = k0 / 32 + j;
        const int8_t* w = a.chunk.wq + (16 * g) * kKc + 32 * j;
        int8_t* dst = a.b + ((g * blocks + blk) * 8) * 64;
        for (int q = 0; q < 8; ++q)
          _mm512_storeu_si512(dst + q * 64,
                              _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), valid, row_offsets, w + 4 * q, 1));
        const size_t at = static_cast<size_t>((g * blocks + blk) * 16);
        for (int64_t lane = 0; lane < lanes; ++lane) {
          const int64_t r = 16 * g + lane;
          a.scale[at + lane] = a.chunk.scale[r * (kKc / 16) + j];
          a.bias[at + lane] = a.chunk.bias[r * (kKc / 16) + j];
          if constexpr (kMin) a.min[at + lane] = a.chunk.min[r * (kKc / 16) + j];
        }
      }
    }
  }
}

template <bool kMin>
void GemmRows(const MatMulJob& job, int64_t m0, int64_t m1, uint8_t* scratch, PackFn pack) {
  const int64_t k = job.k, blocks = k / 32, n = job.n;
  const AmxActs x = AmxActsAt(job.act, n, k);
  const AmxScratch a = ScratchAt(scratch, k);
  ConfigureTiles();
  for (int64_t p0 = m0; p0 < m1; p0 += kAmxPanelRows) {
    const int64_t rows = Min(kAmxPanelRows, m1 - p0);
    PackPanel<kMin>(job, a, p0, rows, pack);
    for (int64_t t0 = 0; t0 < n; t0 += 16) {
      const int64_t tokens = Min(16, n - t0);
      for (int64_t g = 0; g * 16 < rows; ++g) {
        __m512 cf[16];
        for (auto& c : cf) c = _mm512_setzero_ps();
        const uint8_t* xt = x.xa + t0 * k;
        const int8_t* bg = a.b + (g * blocks * 8) * 64;
        // Block j's product into tile set 0 (tmm0 = tmm1 · tmm2) or 1 (tmm3 = tmm4 · tmm5); GCC's
        // tile intrinsics take literal tile numbers.
        auto product0 = [&](int64_t j) __attribute__((always_inline)) {
          _tile_zero(0);
          _tile_loadd(1, xt + 32 * j, k);
          _tile_loadd(2, bg + j * 8 * 64, 64);
          _tile_dpbusd(0, 1, 2);
        };
        auto product1 = [&](int64_t j) __attribute__((always_inline)) {
          _tile_zero(3);
          _tile_loadd(4, xt + 32 * j, k);
          _tile_loadd(5, bg + j * 8 * 64, 64);
          _tile_dpbusd(3, 4, 5);
        };
        auto fold = [&](int set, int64_t j) __attribute__((always_inline)) {
          const int32_t* sums = a.sums + 256 * set;
          const size_t at = static_cast<size_t>((g * blocks + j) * 16);
          const __m512i bias = _mm512_loadu_si512(a.bias + at);
          const __m512 dw = _mm512_loadu_ps(a.scale + at);
          const float* xd = x.xd + t0 * blocks + j;
          for (int t = 0; t < 16; ++t) {
            const __m512i ci = _mm512_add_epi32(_mm512_loadu_si512(sums + 16 * t), bias);
            const __m512 s = _mm512_mul_ps(dw, _mm512_set1_ps(xd[t * blocks]));
            cf[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ci), s, cf[t]);
          }
          if constexpr (kMin) {
            const __m512 mn = _mm512_loadu_ps(a.min + at);
            const float* xs = x.xs + t0 * blocks + j;
            for (int t = 0; t < 16; ++t) cf[t] = _mm512_fnmadd_ps(mn, _mm512_set1_ps(xs[t * blocks]), cf[t]);
          }
        };
        product0(0);
        for (int64_t j = 0; j < blocks; j += 2) {
          if (j + 1 < blocks) product1(j + 1);
          _tile_stored(0, a.sums, 64);
          fold(0, j);
          if (j + 1 >= blocks) break;
          if (j + 2 < blocks) product0(j + 2);
          _tile_stored(3, a.sums + 256, 64);
          fold(1, j + 1);
        }
        const int64_t valid = Min(16, rows - 16 * g);
        const __mmask16 keep = static_cast<__mmask16>((1u << valid) - 1);
        for (int64_t t = 0; t < tokens; ++t)
          _mm512_mask_storeu_ps(job.y + (t0 + t) * job.ldy + p0 + 16 * g, keep, cf[t]);
      }
    }
  }
  _tile_release();
}

}  // namespace

bool AmxGemmSupports(DType t) {
  return t == DType::kQ8_0 || t == DType::kQ4_0 || t == DType::kQ4_K || t == DType::kQ5_K;
}

size_t QuantGemmActBytesAmx(const MatMulJob& job) { return AmxActBytes(job.n, job.k); }

// Quantizes each token per 32 elements exactly as QuantGemmPrepareAvx512 does, row-major.
void QuantGemmPrepareAmx(const MatMulJob& job, int64_t t0, int64_t t1) {
  const int64_t k = job.k, blocks = k / 32;
  const AmxActs x = AmxActsAt(job.act, job.n, job.k);
  for (int64_t t = t0; t < t1; ++t) {
    uint8_t* xa = x.xa + t * k;
    for (int64_t b = 0; b < blocks; ++b) {
      float db = 0.0f;
      int32_t sum0 = 0, sum1 = 0;
      if (t < job.n) {
        const float* xr = job.x + t * k + 32 * b;
        const __m512 v0 = _mm512_loadu_ps(xr);
        const __m512 v1 = _mm512_loadu_ps(xr + 16);
        const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
        db = amax / 127.0f;
        const __m512 id = _mm512_set1_ps(amax > 0.0f ? 127.0f / amax : 0.0f);
        const __m512i q0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, id));
        const __m512i q1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, id));
        const __m128i flip = _mm_set1_epi8(static_cast<char>(0x80));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(xa + 32 * b), _mm_xor_si128(_mm512_cvtsepi32_epi8(q0), flip));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(xa + 32 * b + 16), _mm_xor_si128(_mm512_cvtsepi32_epi8(q1), flip));
        sum0 = _mm512_reduce_add_epi32(q0);
        sum1 = _mm512_reduce_add_epi32(q1);
      } else {
        std::memset(xa + 32 * b, 0x80, 32);
      }
      x.xd[t * blocks + b] = db;
      x.xs[t * blocks + b] = db * static_cast<float>(sum0 + sum1);
    }
  }
}

size_t QuantGemmScratchBytesAmx(const MatMulJob& job) {
  const size_t blocks = static_cast<size_t>(job.k / 32);
  return AlignUp(ChunkBytes()) + AlignUp(static_cast<size_t>(kAmxPanelRows * job.k)) +
         3 * AlignUp(static_cast<size_t>(kAmxPanelRows) * blocks * 4) + 2 * 16 * 16 * 4;
}

void QuantGemmRowsAmx(const MatMulJob& job, int64_t m0, int64_t m1, uint8_t* scratch) {
  switch (job.dtype) {
    case DType::kQ8_0: GemmRows<false>(job, m0, m1, scratch, PackQ8_0); break;
    case DType::kQ4_0: GemmRows<false>(job, m0, m1, scratch, PackQ4_0); break;
    case DType::kQ4_K: GemmRows<true>(job, m0, m1, scratch, PackQ4_K); break;
    case DType::kQ5_K: GemmRows<true>(job, m0, m1, scratch, PackQ5_K); break;
    default: break;
  }
}

}  // namespace fastgen::kernels::cpu
