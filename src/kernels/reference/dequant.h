// Scalar reference conversions between stored weight types and float32: the oracle every SIMD
// kernel is tested against, and the path that makes every supported type computable.
#pragma once

#include <cstdint>

#include "core/dtype.h"
#include "core/tensor.h"

namespace fastgen::kernels::reference {

// Converts n elements of type t starting at src to float32. n must be a multiple of the type's
// block size (callers validate shapes at load time).
void DequantizeRow(DType t, const void* src, float* dst, int64_t n);

// Row r of a weight matrix as the values it stands for: DequantizeRow plus a converted GPTQ /
// AWQ matrix's zero-point offsets and column order (TensorView::group_offsets, input_order).
// out: [cols], in the model's input order.
void DequantizeMatrixRow(const TensorView& w, int64_t r, float* out);

// Converts n float32 values to type t (round-to-nearest as llama.cpp's reference quantizers do).
// Supported for F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K; returns false for other types.
bool QuantizeRow(DType t, const float* src, void* dst, int64_t n);
// The same, with each column's importance (e.g. its mean squared activation over calibration
// text) weighting the scale searches of Q4_0, Q4_K and Q6_K: they minimise Σ imp (x - x̂)²
// instead of llama.cpp's default weights. Q8_0 and the float types ignore it. `importance`
// [n] may be null (then exactly QuantizeRow).
bool QuantizeRowWeighted(DType t, const float* src, const float* importance, void* dst, int64_t n);
// Whether QuantizeRow writes type t.
bool CanQuantize(DType t);

}  // namespace fastgen::kernels::reference
