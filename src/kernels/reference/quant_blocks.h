// Block layouts of the quantized types, named and laid out as in the GGUF specification
// (ggml's block_q8_0, block_q4_K, ...). Every kernel (reference, SIMD) reads these structs.
#pragma once

#include <cstdint>

namespace fastgen {

constexpr int kQK = 32;    // elements per Q8_0 / Q4_0 block
constexpr int kQK_K = 256; // elements per K-quant super-block
constexpr int kKScaleBytes = 12;

struct block_q8_0 {
  uint16_t d;        // f16 scale
  int8_t qs[kQK];    // x = d * q
};
static_assert(sizeof(block_q8_0) == 34);

struct block_q4_0 {
  uint16_t d;            // f16 scale
  uint8_t qs[kQK / 2];   // element j in low nibble of qs[j], element j+16 in the high nibble; x = d * (q - 8)
};
static_assert(sizeof(block_q4_0) == 18);

struct block_q2_K {
  uint8_t scales[kQK_K / 16];  // 4-bit scale (low) and 4-bit min (high) per 16 elements
  uint8_t qs[kQK_K / 4];       // 2-bit quants
  uint16_t d;                  // f16 super-block scale for scales
  uint16_t dmin;               // f16 super-block scale for mins
};
static_assert(sizeof(block_q2_K) == 84);

struct block_q3_K {
  uint8_t hmask[kQK_K / 8];  // high bit of each 3-bit quant
  uint8_t qs[kQK_K / 4];     // low 2 bits
  uint8_t scales[12];        // 16 6-bit scales
  uint16_t d;                // f16 super-block scale
};
static_assert(sizeof(block_q3_K) == 110);

struct block_q4_K {
  uint16_t d;                     // f16 super-block scale for scales
  uint16_t dmin;                  // f16 super-block scale for mins
  uint8_t scales[kKScaleBytes];   // 8 6-bit scales and 8 6-bit mins
  uint8_t qs[kQK_K / 2];          // 4-bit quants
};
static_assert(sizeof(block_q4_K) == 144);

struct block_q5_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[kKScaleBytes];
  uint8_t qh[kQK_K / 8];  // high bit of each 5-bit quant
  uint8_t qs[kQK_K / 2];  // low 4 bits
};
static_assert(sizeof(block_q5_K) == 176);

struct block_q6_K {
  uint8_t ql[kQK_K / 2];      // low 4 bits
  uint8_t qh[kQK_K / 4];      // high 2 bits
  int8_t scales[kQK_K / 16];  // 8-bit scales per 16 elements
  uint16_t d;                 // f16 super-block scale
};
static_assert(sizeof(block_q6_K) == 210);

}  // namespace fastgen
