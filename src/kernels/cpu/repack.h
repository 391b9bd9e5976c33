// Weights interleaved 16 rows at a time, the layout the AVX-512 decode kernels for Q8_0 and Q4_0
// read (quant_decode16_avx512.cc; llama.cpp's CPU backend repacks Q4_0 in the same spirit).
//
// Row-major quantized weights give a decode kernel one row at a time: its lanes cover a row's
// blocks, so every block needs its own scale work and a horizontal sum at the end, about 11
// instructions per 64 weights. Interleaved, one 512-bit load holds 4 consecutive weights of 16
// rows, the lanes are the rows, x is broadcast, and a block's scale multiplies 16 rows at once:
// about 38 instructions per 512 weights for one token, and far fewer per extra token of a batch,
// which reuses the unpacked weights. Each row's result is still one fixed chain of per-block
// FMAs, the same for any number of tokens (batch invariance holds).
//
// Layout, per group of 16 rows (rows past m are zeros), per block of 32 columns in order:
//   Q8_0: d[16] (f16), then 8 × [16 rows × 4 bytes]: bytes 4j..4j+3 of each row for j = 0..7.
//   Q4_0: d[16] (f16), then 4 × [16 rows × 4 bytes]: bytes 4j..4j+3 of each row's 16 quant bytes
//         (low nibbles: columns 4j..4j+3; high nibbles: columns 16+4j..16+4j+3).
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/dtype.h"

namespace fastgen::kernels::cpu {

// Whether `t` has an interleaved layout and kernels for it on the active ISA.
bool RepackSupported(DType t);
// Bytes of one group of 16 rows of k columns.
size_t RepackedGroupBytes(DType t, int64_t k);
// Writes the interleaved copy of rows [m, k] (row_bytes apart) into out
// (ceil(m / 16) · RepackedGroupBytes bytes).
void Repack(DType t, const uint8_t* rows, int64_t m, int64_t k, size_t row_bytes, uint8_t* out);

}  // namespace fastgen::kernels::cpu
