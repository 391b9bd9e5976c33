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
//   xu [k/4, width, 4] uint8   x quantized to int8 per 32, plus 128
//   xd [k/32, width]   float   block scales
//   xs [k/32, width]   float   d * sum(q) per block (for K-quant minimums)
struct GemmActs {
  uint8_t* xu;
  float* xd;
  float* xs;
};
inline size_t QuantGemmBlockBytes(int64_t k) {
  return AlignUp(static_cast<size_t>(k * kGemmTokens)) +
         2 * AlignUp(static_cast<size_t>(k / 32 * kGemmTokens) * 4);
}
inline GemmActs QuantGemmBlockAt(uint8_t* act, int64_t k, int64_t tb) {
  uint8_t* base = act + static_cast<size_t>(tb) * QuantGemmBlockBytes(k);
  GemmActs g;
  g.xu = base;
  base += AlignUp(static_cast<size_t>(k * kGemmTokens));
  g.xd = reinterpret_cast<float*>(base);
  base += AlignUp(static_cast<size_t>(k / 32 * kGemmTokens) * 4);
  g.xs = reinterpret_cast<float*>(base);
  return g;
}

}  // namespace
}  // namespace fastgen::kernels::cpu
