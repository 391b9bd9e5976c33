// Decode of several tokens at once (the server's batched steps) on Q8_0 and Q4_0 weights
// interleaved 16 rows at a time (repack.h), with the block products on AMX tiles.
//
// The interleaved layout is already AMX's B layout: per block of 32 columns, 8 lines of 64 bytes,
// line j holding 4 consecutive weights of each of the 16 rows. Q8_0 blocks are loaded as tiles
// straight from the packed copy; Q4_0 blocks are unpacked into 8 lines of signed bytes (nibble - 8)
// first, once for all the tokens. One TDPBSSD (signed x · signed w) gives the 16 tokens × 16 rows
// integer sums of the block.
//
// Everything after the integer sums is the AVX-512 decode kernel's arithmetic
// (quant_decode16_avx512.cc): the same int8 activations (DecodeActs), the same exact int32 sum per
// (token, row, block), the same float scale d_w · d_x, one FMA per block into the (token, row)
// accumulator, blocks in order from zero. So the results are the same bits, and a token decoded
// in a batch that takes this path equals the token decoded alone on the VNNI kernel: the server's
// batch invariance holds while its 16-sequence steps run on the tile unit.
//
// Tiles (palette 1), two sets so block j + 1's product runs while block j's sums are stored and
// block j - 1's folded:
// tmm0/tmm3 sums [T tokens x 16 rows int32], tmm1/tmm4 x [T x 32 bytes], tmm2/tmm5 weights [8 x 64].
// GCC 12's AVX-512 headers build _mm*_undefined_*() from a self-initialized variable, which
// -Wuninitialized reports inside the headers at -O3 (a false positive about the header).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "kernels/cpu/act_layout.h"
#include "kernels/cpu/amx_tiles.h"
#include "kernels/cpu/kernels_avx512.h"
#include "kernels/cpu/prefetch.h"

namespace fastgen::kernels::cpu {
namespace {

constexpr int kTileTokens = 16;

void ConfigureTiles(int tokens) {
  TileConfig c;
  for (int set = 0; set < 2; ++set) {
    c.colsb[3 * set] = 64;  // sums: 16 rows of int32 per token
    c.rows[3 * set] = static_cast<uint8_t>(tokens);
    c.colsb[3 * set + 1] = 32;  // x: one block of int8 per token
    c.rows[3 * set + 1] = static_cast<uint8_t>(tokens);
    c.colsb[3 * set + 2] = 64;  // weights: 8 lines of 16 rows x 4 bytes
    c.rows[3 * set + 2] = 8;
  }
  LoadTileConfig(c);
}

// Per-thread scratch: two unpacked Q4_0 blocks (one per tile set) and two tiles of sums.
struct Scratch {
  uint8_t* w;     // [2, 8, 64]
  int32_t* sums;  // [2, 16, 16]
};
constexpr size_t kScratchBytes = 2 * 512 + 2 * 1024;
Scratch ScratchAt(uint8_t* s) { return {s, reinterpret_cast<int32_t*>(s + 1024)}; }

// One group of 16 rows against T (<= 16) tokens from t0: out[t] holds the rows' results. T is a
// template argument so that the accumulators stay in registers.
template <DType kType, int T>
void Group(const MatMulJob& job, const DecodeActs& acts, const uint8_t* group, int64_t t0, const Scratch& sc,
           __m512 (&out)[T]) {
  constexpr int kQuantBytes = kType == DType::kQ8_0 ? 32 : 16;
  constexpr size_t kBlockBytes = 32 + 16 * kQuantBytes;
  const int64_t k = job.k, blocks = k / 32;
  for (auto& o : out) o = _mm512_setzero_ps();
  const int8_t* xq = acts.qs + t0 * k;
  const float* xd = acts.d + t0 * blocks;
  const __m512i low4 = _mm512_set1_epi8(0x0f);
  const __m512i eight = _mm512_set1_epi8(8);
  // The block's weights as tile B: Q8_0 in place, Q4_0 unpacked into the set's buffer.
  auto weights = [&](int64_t b, int set) __attribute__((always_inline)) -> const uint8_t* {
    const uint8_t* blk = group + static_cast<size_t>(b) * kBlockBytes;
    for (size_t line = 0; line < kBlockBytes; line += 64) PrefetchWeights(blk + line + 4096, job.stream);
    if constexpr (kType == DType::kQ8_0) {
      return blk + 32;
    } else {
      uint8_t* w = sc.w + 512 * set;
      for (int j = 0; j < 4; ++j) {
        const __m512i q = _mm512_loadu_si512(blk + 32 + 64 * j);
        // columns 4j..4j+3, then 16+4j..16+4j+3
        _mm512_storeu_si512(w + 64 * j, _mm512_sub_epi8(_mm512_and_si512(q, low4), eight));
        _mm512_storeu_si512(w + 64 * (4 + j), _mm512_sub_epi8(_mm512_and_si512(_mm512_srli_epi16(q, 4), low4), eight));
      }
      return w;
    }
  };
  // GCC's tile intrinsics take literal tile numbers: one lambda per set.
  auto product0 = [&](int64_t b) __attribute__((always_inline)) {
    const uint8_t* w = weights(b, 0);
    _tile_zero(0);
    _tile_loadd(1, xq + 32 * b, k);
    _tile_loadd(2, w, 64);
    _tile_dpbssd(0, 1, 2);
  };
  auto product1 = [&](int64_t b) __attribute__((always_inline)) {
    const uint8_t* w = weights(b, 1);
    _tile_zero(3);
    _tile_loadd(4, xq + 32 * b, k);
    _tile_loadd(5, w, 64);
    _tile_dpbssd(3, 4, 5);
  };
  auto fold = [&](int set, int64_t b) __attribute__((always_inline)) {
    const int32_t* sums = sc.sums + 256 * set;
    const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256(
        reinterpret_cast<const __m256i*>(group + static_cast<size_t>(b) * kBlockBytes)));
    for (int t = 0; t < T; ++t) {
      const __m512i ci = _mm512_loadu_si512(sums + 16 * t);
      const __m512 s = _mm512_mul_ps(dw, _mm512_set1_ps(xd[t * blocks + b]));
      out[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ci), s, out[t]);
    }
  };
  // Block b's product is in tile set b % 2 and its sums go to buffer b % 2; the sums folded while
  // block b is stored are block b - 1's, stored an iteration earlier (reading a tile's sums right
  // after storing them waits for the store to reach the cache).
  product0(0);
  if (blocks > 1) product1(1);
  _tile_stored(0, sc.sums, 64);
  for (int64_t b = 1; b < blocks; ++b) {
    if (b & 1) {
      if (b + 1 < blocks) product0(b + 1);
      _tile_stored(3, sc.sums + 256, 64);
      fold(0, b - 1);
    } else {
      if (b + 1 < blocks) product1(b + 1);
      _tile_stored(0, sc.sums, 64);
      fold(1, b - 1);
    }
  }
  fold(static_cast<int>((blocks - 1) & 1), blocks - 1);
}

template <DType kType, int T>
void Pass(const MatMulJob& job, const DecodeActs& acts, int64_t m0, int64_t m1, int64_t t0, const Scratch& sc) {
  for (int64_t g = m0 / 16; g * 16 < m1; ++g) {
    __m512 out[T];
    Group<kType, T>(job, acts, job.packed + static_cast<size_t>(g) * job.packed_group_bytes, t0, sc, out);
    const int64_t lo = std::max(m0, g * 16), hi = std::min(m1, g * 16 + 16);
    const __mmask16 keep = static_cast<__mmask16>(((1u << (hi - g * 16)) - 1) & ~((1u << (lo - g * 16)) - 1));
    for (int t = 0; t < T; ++t) _mm512_mask_storeu_ps(job.y + (t0 + t) * job.ldy + g * 16, keep, out[t]);
  }
}

template <DType kType, int... Ts>
void PassDispatch(std::integer_sequence<int, Ts...>, int tokens, const MatMulJob& job, const DecodeActs& acts,
                  int64_t m0, int64_t m1, int64_t t0, const Scratch& sc) {
  ((tokens == Ts + 1 ? Pass<kType, Ts + 1>(job, acts, m0, m1, t0, sc) : void()), ...);
}
template <DType kType>
void PassOf(int tokens, const MatMulJob& job, const DecodeActs& acts, int64_t m0, int64_t m1, int64_t t0,
            const Scratch& sc) {
  PassDispatch<kType>(std::make_integer_sequence<int, kTileTokens>{}, tokens, job, acts, m0, m1, t0, sc);
}

// Rows in blocks that stay in L2 while every pass of 16 tokens runs over them (as the VNNI
// kernel does), so more than 16 tokens still read each weight from memory once.
constexpr size_t kRowBlockBytes = 192 << 10;

template <DType kType>
void Rows(const MatMulJob& job, int64_t m0, int64_t m1, const Scratch& sc) {
  const DecodeActs acts = DecodeActsAt(job.act, job.n, job.k);
  const int64_t block = job.n > kTileTokens
                            ? std::max<int64_t>(16, static_cast<int64_t>(kRowBlockBytes / job.packed_group_bytes) * 16)
                            : m1 - m0 + 16;
  int configured = 0;
  for (int64_t b0 = m0; b0 < m1;) {
    const int64_t b1 = std::min(m1, (b0 / 16) * 16 + block);
    for (int64_t t0 = 0; t0 < job.n; t0 += kTileTokens) {
      const int tokens = static_cast<int>(std::min<int64_t>(kTileTokens, job.n - t0));
      if (tokens != configured) {
        ConfigureTiles(tokens);
        configured = tokens;
      }
      PassOf<kType>(tokens, job, acts, b0, b1, t0, sc);
    }
    b0 = b1;
  }
  _tile_release();
}

}  // namespace

size_t Decode16ScratchBytesAmx() { return kScratchBytes; }

void Decode16RowsAmx(const MatMulJob& job, int64_t m0, int64_t m1, uint8_t* scratch) {
  const Scratch sc = ScratchAt(scratch);
  if (job.dtype == DType::kQ8_0) {
    Rows<DType::kQ8_0>(job, m0, m1, sc);
  } else {
    Rows<DType::kQ4_0>(job, m0, m1, sc);
  }
}

}  // namespace fastgen::kernels::cpu
