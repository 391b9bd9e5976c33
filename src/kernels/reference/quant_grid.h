// The quantization grid of one block of a GGUF block type, for quantizers that choose each
// element's code themselves (GPTQ feeds each column's rounding error forward, so its codes are
// not the nearest to the original weights): element j of a block may take the values
// scale[j / sub] * q + offset[j / sub] for integer codes q in [qmin, qmax]. The block's header
// (its scales and minimums) is chosen first, then codes are packed into it.
#pragma once

#include <cstdint>

#include "core/dtype.h"

namespace fastgen::kernels::reference {

struct BlockGrid {
  int sub = 32;        // elements sharing one scale
  int qmin = 0, qmax = 0;
  float scale[16] = {};
  float offset[16] = {};
};

// Q8_0, Q4_0, Q4_K and Q6_K.
bool HasBlockGrid(DType t);

// Quantizes one block of x (Info(t).block_elems values) into `block` as QuantizeRowWeighted
// does — header and nearest codes — and returns its grid.
bool ChooseBlockGrid(DType t, const float* x, const float* importance, uint8_t* block, BlockGrid* grid);
// The grid of an already quantized block.
BlockGrid ReadBlockGrid(DType t, const uint8_t* block);

// The code nearest to x for element j, clamped to the grid; *value (optional) receives its
// dequantized value, as DequantizeRow computes it.
int GridCode(const BlockGrid& g, int j, float x, float* value);

// Writes codes (block_elems of them, each in the grid's range) into a block whose header is
// already set, leaving the header as it is.
bool PackBlockCodes(DType t, const int* codes, uint8_t* block);

}  // namespace fastgen::kernels::reference
