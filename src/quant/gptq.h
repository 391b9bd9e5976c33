// GPTQ (Frantar et al., 2022): quantizes a weight matrix column by column and pushes each
// column's rounding error onto the columns not yet quantized, weighted by the inverse Hessian
// of the layer's reconstruction error, H = Σ x xᵀ over the layer's inputs on calibration text.
// The codes land in GGUF's own block types (kernels/reference/quant_grid.h), so the result is
// an ordinary Q4_0 / Q4_K / Q6_K / Q8_0 matrix that every kernel and llama.cpp read as usual.
#pragma once

#include <cstdint>
#include <vector>

#include "core/dtype.h"
#include "core/status.h"
#include "core/thread_pool.h"

namespace fastgen::quant {

struct GptqOptions {
  // Added to H's diagonal, as a fraction of its mean (the paper's 1%): keeps H invertible
  // and the updates tame. Raised tenfold (up to three times) if H is still not positive definite.
  double damp = 0.01;
  // Quantize columns in decreasing order of H's diagonal (the paper's "act-order"). A GGUF
  // block's scales are then fixed before any update, from the original weights (static
  // groups): columns of one block are no longer visited together. Off: each block's scales
  // are chosen when its first column is reached, from the error-compensated weights.
  bool act_order = false;
};

struct GptqResult {
  std::vector<uint8_t> packed;  // [rows, RowBytes(type, cols)]
  double damp = 0;              // the dampening that made H positive definite
};

// W: [rows, cols] row-major float. gram: [cols, cols] row-major Σ x xᵀ (any positive
// multiple: only its shape matters); taken by value and overwritten. `type` must have a block
// grid (Q8_0, Q4_0, Q4_K, Q6_K) and cols must be a whole number of its blocks.
Expected<GptqResult> GptqQuantize(DType type, const float* w, int64_t rows, int64_t cols, std::vector<double> gram,
                                  const GptqOptions& options, ThreadPool& pool);

// The upper Cholesky factor U of H⁻¹ (H⁻¹ = UᵀU) for a symmetric positive definite H [n, n]
// (row-major, overwritten): row i of U is what column i's error is spread with. False if H is
// not positive definite.
bool InverseCholeskyUpper(std::vector<double>& h, int64_t n);

}  // namespace fastgen::quant
