// A non-owning view of a weight tensor: dtype, shape and a pointer into a memory-mapped file
// (or a buffer owned by the WeightMap that produced it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace fastgen {

struct TensorView {
  std::string name;
  DType dtype = DType::kF32;
  // PyTorch order, outermost first: a Linear weight is [out_features, in_features].
  // (GGUF lists dimensions innermost first; the GGUF reader reverses them.)
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;
  size_t nbytes = 0;
  // A hint for the matmul kernels: the model reads this tensor once per forward pass and cannot
  // keep it in the last-level cache, so the kernels fetch it with non-temporal prefetches that
  // do not evict what the cache can hold (the KV cache, the other weights, a draft model).
  // Set by Model::set_stream_weights.
  bool stream = false;
  // The same weights also held 16 rows at a time, interleaved for the SIMD kernels
  // (kernels/cpu/repack.h): group g holds rows 16g .. 16g + 15, block by block. Null: only the
  // row-major `data`, which every other reader (the reference kernels, embedding lookups) uses.
  const uint8_t* packed = nullptr;
  size_t packed_group_bytes = 0;  // bytes of one group of 16 rows

  // A GPTQ / AWQ matrix converted at load (io/gptq_checkpoint.h): its codes in `dtype` with the
  // checkpoint's scales as block scales, plus the zero-point term as an offset per row and
  // group of `group_cols` stored columns, added as offset · Σ x over the group; and, for
  // act-order checkpoints, the input each stored column reads (x[input_order[j]]). Matrix
  // products honour both in ops::MatMul; DequantizeMatrixRow gives the true values. Null: none.
  const float* group_offsets = nullptr;  // [rows, cols / group_cols]
  int64_t group_cols = 0;
  const int32_t* input_order = nullptr;  // [cols]
  bool has_extras() const { return group_offsets != nullptr || input_order != nullptr; }

  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
  // A tensor viewed as a matrix: the innermost dimension is a row, the rest are rows.
  int64_t cols() const { return shape.empty() ? 1 : shape.back(); }
  int64_t rows() const { return cols() == 0 ? 0 : numel() / cols(); }
  size_t row_bytes() const { return rows() == 0 ? 0 : nbytes / static_cast<size_t>(rows()); }
  const uint8_t* row(int64_t r) const { return data + static_cast<size_t>(r) * row_bytes(); }

  // Rows [begin, begin + count) as a tensor of the same dtype, without copying: used to split
  // fused weights (Phi-3's qkv_proj and gate_up_proj, GPT-2's c_attn).
  // Interleaved weights come along when the slice starts on a group of 16 rows.
  TensorView RowSlice(int64_t begin, int64_t count, std::string slice_name) const {
    TensorView v = *this;
    v.name = std::move(slice_name);
    v.shape = {count, cols()};
    v.data = row(begin);
    v.nbytes = static_cast<size_t>(count) * row_bytes();
    if (group_offsets != nullptr) v.group_offsets = group_offsets + begin * (cols() / group_cols);
    if (packed != nullptr && begin % 16 == 0) {
      v.packed = packed + static_cast<size_t>(begin / 16) * packed_group_bytes;
    } else {
      v.packed = nullptr;
      v.packed_group_bytes = 0;
    }
    return v;
  }
};

std::string ShapeString(const std::vector<int64_t>& shape);  // "[384, 1024]"

}  // namespace fastgen
