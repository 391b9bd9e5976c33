// Where each SIMD kernel file finds the activations it prepared (quantized or repacked x) inside
// MatMulJob::act. Shared by the AVX2 and AVX-512 files, which use identical layouts.
//
// Decode (per-row dot products) on quantized weights: x quantized to int8 per 32-element block,
// symmetric, d = max|x| / 127 (llama.cpp's q8_0 scheme, with a float32 scale), plus block sums
// so that weight offsets (Q4_0's 8, Q6_K's 32) and K-quant minimums cost one multiply per block.
//
// GEMM (prefill): tokens are the vector dimension, so x is repacked per block of kGemmTokens
// tokens with the token index innermost. Float weights: x^T as float. Quantized weights: x as
// unsigned bytes (q + 128, the operand vpdpbusd wants unsigned) in groups of 4 consecutive k.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/cpu/matmul_job.h"

namespace fastgen::kernels::cpu {
namespace {  // internal linkage: see matmul_job.h on why kernel files share no inline symbols

constexpr int64_t kGemmTokens = 64;  // tokens per GEMM token block (4 AVX-512 vectors)

constexpr size_t AlignUp(size_t v) { return (v + 63) & ~size_t{63}; }

// Decode, quantized weights, for n tokens.
struct DecodeActs {
  int8_t* qs;       // [n, k]
  float* d;         // [n, k/32] block scales
  int32_t* isum16;  // [n, k/16] sums of qs over 16 elements
  float* fsum16;    // [n, k/16] d * isum16: sums of the dequantized x over 16 elements
  float* fsum32;    // [n, k/32] the same over 32 elements
  // For AVX-512 kernels that take two 32-blocks per 512-bit vector (8 lanes each):
  float* dx_pair;       // [n, k/64, 16] d of block 2p in lanes 0..7, of block 2p+1 in 8..15
  int32_t* bias_pair;   // [n, k/64, 16] -offset·Σq of block 2p in lane 0, of 2p+1 in lane 8
  // qs in Q4_K's nibble order, blocks 0,2,1,3,4,6,5,7 of every 256 (filled for Q4_K only).
  int8_t* qs_q4k;       // [n, k]
};

inline size_t DecodeActsBytes(int64_t n, int64_t k) {
  const size_t nk = static_cast<size_t>(n * k);
  const size_t pairs = static_cast<size_t>(n * (k / 64));
  return AlignUp(nk) + AlignUp(nk / 32 * 4) + AlignUp(nk / 16 * 4) * 2 + AlignUp(nk / 32 * 4) +
         2 * AlignUp(pairs * 64) + AlignUp(nk);
}

inline DecodeActs DecodeActsAt(uint8_t* base, int64_t n, int64_t k) {
  const size_t nk = static_cast<size_t>(n * k);
  DecodeActs a;
  a.qs = reinterpret_cast<int8_t*>(base);
  base += AlignUp(nk);
  a.d = reinterpret_cast<float*>(base);
  base += AlignUp(nk / 32 * 4);
  a.isum16 = reinterpret_cast<int32_t*>(base);
  base += AlignUp(nk / 16 * 4);
  a.fsum16 = reinterpret_cast<float*>(base);
  base += AlignUp(nk / 16 * 4);
  a.fsum32 = reinterpret_cast<float*>(base);
  base += AlignUp(nk / 32 * 4);
  const size_t pairs = static_cast<size_t>(n * (k / 64));
  a.dx_pair = reinterpret_cast<float*>(base);
  base += AlignUp(pairs * 64);
  a.bias_pair = reinterpret_cast<int32_t*>(base);
  base += AlignUp(pairs * 64);
  a.qs_q4k = reinterpret_cast<int8_t*>(base);
  return a;
}

inline int64_t GemmTokenBlocks(int64_t n) { return (n + kGemmTokens - 1) / kGemmTokens; }
// Tokens held by token block tb: whole blocks of 64, the last one rounded up to 16 (one vector).
inline int64_t GemmBlockWidth(int64_t n, int64_t tb) {
  const int64_t left = n - tb * kGemmTokens;
  if (left >= kGemmTokens) return kGemmTokens;
  return (left + 15) / 16 * 16;
}

// GEMM, float weights: token block tb is xt[k, width] at act + tb * FloatGemmBlockBytes(k).
inline size_t FloatGemmBlockBytes(int64_t k) {
  return AlignUp(static_cast<size_t>(k * kGemmTokens) * 4);
}

// GEMM, quantized weights: token block tb holds
//   xu   [k/4, width, 4] uint8   x quantized to int8 per 32, plus 128
//   xd   [k/32, width]   float   block scales
//   xs   [k/32, width]   float   d * sum(q) per block (for K-quant minimums per 32: Q4_K, Q5_K)
//   xs16 [k/16, width]   float   the same per 16 elements (Q2_K's minimums)
struct GemmActs {
  uint8_t* xu;
  float* xd;
  float* xs;
  float* xs16;
};
inline size_t QuantGemmBlockBytes(int64_t k) {
  return AlignUp(static_cast<size_t>(k * kGemmTokens)) +
         2 * AlignUp(static_cast<size_t>(k / 32 * kGemmTokens) * 4) +
         AlignUp(static_cast<size_t>(k / 16 * kGemmTokens) * 4);
}
inline GemmActs QuantGemmBlockAt(uint8_t* act, int64_t k, int64_t tb) {
  uint8_t* base = act + static_cast<size_t>(tb) * QuantGemmBlockBytes(k);
  GemmActs g;
  g.xu = base;
  base += AlignUp(static_cast<size_t>(k * kGemmTokens));
  g.xd = reinterpret_cast<float*>(base);
  base += AlignUp(static_cast<size_t>(k / 32 * kGemmTokens) * 4);
  g.xs = reinterpret_cast<float*>(base);
  base += AlignUp(static_cast<size_t>(k / 32 * kGemmTokens) * 4);
  g.xs16 = reinterpret_cast<float*>(base);
  return g;
}

// GEMM on AMX tiles (quant_gemm_amx.cc): tokens are tile rows, so x is row-major per token,
// quantized exactly as for the VNNI GEMM:
//   xa [n16, k]    uint8   q + 128
//   xd [n16, k/32] float   block scales
//   xs [n16, k/32] float   d * Σq per block (K-quant minimums)
// with n16 = n rounded up to 16 (the padding tokens: q = 0, d = 0).
struct AmxActs {
  uint8_t* xa;
  float* xd;
  float* xs;
};
inline int64_t AmxTokens(int64_t n) { return (n + 15) / 16 * 16; }
inline size_t AmxActBytes(int64_t n, int64_t k) {
  const size_t n16 = static_cast<size_t>(AmxTokens(n));
  return AlignUp(n16 * static_cast<size_t>(k)) + 2 * AlignUp(n16 * static_cast<size_t>(k / 32) * 4);
}
inline AmxActs AmxActsAt(uint8_t* act, int64_t n, int64_t k) {
  const size_t n16 = static_cast<size_t>(AmxTokens(n));
  AmxActs a;
  a.xa = act;
  act += AlignUp(n16 * static_cast<size_t>(k));
  a.xd = reinterpret_cast<float*>(act);
  act += AlignUp(n16 * static_cast<size_t>(k / 32) * 4);
  a.xs = reinterpret_cast<float*>(act);
  return a;
}

// Decode on float weights for n >= 2 tokens: the tokens go in passes over each weight row, of
// near-equal size and as few as the ISA's tile width (max_tile) and L1 allow: a pass's
// activations (tokens × k floats) are reread for every row, so they must stay in L1 (at 12
// tokens, fg-target's 1024-wide down projection ran at half speed from L2). Pass p covers
// tokens [Begin(p), Begin(p + 1)); its activations are interleaved in pieces of `lanes` floats,
// [ceil(k/lanes), T, lanes] at Begin(p) · ceil(k/lanes) · lanes floats, the k tail zero-padded
// (token rows k floats apart would alias in L1 when k is a multiple of 1024, and so would passes
// interleaved with each other).
constexpr int64_t kDecodeMinTileTokens = 4;         // fewest tokens per pass, however long the rows
constexpr int64_t kDecodeActFloatsL1 = 10240;       // activations a pass keeps in L1: 40 KiB
constexpr int64_t kDecodeRowBlockBytes = 256 << 10; // weights per row block of a multi-pass decode

struct FloatDecodePasses {
  FloatDecodePasses(int64_t n, int64_t k, int64_t max_tile)
      : n(n), count((n + MaxTokens(k, max_tile) - 1) / MaxTokens(k, max_tile)) {}
  static int64_t MaxTokens(int64_t k, int64_t max_tile) {
    const int64_t fit = kDecodeActFloatsL1 / k;
    return fit < kDecodeMinTileTokens ? kDecodeMinTileTokens : fit > max_tile ? max_tile : fit;
  }
  int64_t Begin(int64_t p) const { return n * p / count; }
  int64_t n, count;
};

inline size_t FloatDecodeActBytes(int64_t n, int64_t k, int64_t lanes) {
  return n < 2 ? 0 : AlignUp(static_cast<size_t>((k + lanes - 1) / lanes * n * lanes) * 4);
}

// Writes tokens [t_begin, t_end) of x into the interleaved layout above.
inline void FloatDecodeInterleave(const float* x, int64_t n, int64_t k, int64_t lanes, int64_t max_tile,
                                  int64_t t_begin, int64_t t_end, float* act) {
  const int64_t pieces = (k + lanes - 1) / lanes;
  const FloatDecodePasses passes(n, k, max_tile);
  for (int64_t p = 0; p < passes.count; ++p) {
    const int64_t t0 = passes.Begin(p), t1 = passes.Begin(p + 1);
    float* xi = act + t0 * pieces * lanes;  // [pieces, t1 - t0, lanes]
    for (int64_t t = t0 > t_begin ? t0 : t_begin; t < t1 && t < t_end; ++t) {
      const float* xt = x + t * k;
      for (int64_t b = 0; b < pieces; ++b) {
        float* dst = xi + (b * (t1 - t0) + t - t0) * lanes;
        for (int64_t l = 0; l < lanes; ++l) dst[l] = b * lanes + l < k ? xt[b * lanes + l] : 0.0f;
      }
    }
  }
}

// Calls tile(b0, b1, t0, T) for rows [b0, b1) of [m0, m1) and every pass. With several passes,
// rows go in blocks that stay in L2, so only the first pass over a block reads its weights from
// memory.
template <class Tile>
void ForEachFloatDecodePass(const MatMulJob& job, int64_t m0, int64_t m1, int64_t max_tile, Tile tile) {
  const FloatDecodePasses passes(job.n, job.k, max_tile);
  int64_t block = m1 - m0;
  if (passes.count > 1) {
    block = kDecodeRowBlockBytes / static_cast<int64_t>(job.row_bytes);
    if (block < 16) block = 16;
  }
  for (int64_t b0 = m0; b0 < m1; b0 += block) {
    const int64_t b1 = b0 + block < m1 ? b0 + block : m1;
    for (int64_t p = 0; p < passes.count; ++p) {
      const int64_t t0 = passes.Begin(p), t1 = passes.Begin(p + 1);
      tile(b0, b1, t0, t1 - t0);
    }
  }
}

}  // namespace
}  // namespace fastgen::kernels::cpu
