// Element types of weights as they sit in checkpoint files. Quantized types are stored in
// blocks (GGUF specification layouts); a row of a quantized matrix is a whole number of blocks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace fastgen {

enum class DType : uint8_t {
  kF32,
  kF16,
  kBF16,
  kQ8_0,
  kQ4_0,
  kQ2_K,
  kQ3_K,
  kQ4_K,
  kQ5_K,
  kQ6_K,
  kI32,  // integer tensors in files (never a weight fastgen computes with)
};

struct DTypeInfo {
  std::string_view name;  // as GGUF / llama.cpp print it: "F32", "Q4_K"
  int64_t block_elems;    // elements per block (1 for plain types)
  int64_t block_bytes;    // bytes per block
};

const DTypeInfo& Info(DType t);
inline std::string_view Name(DType t) { return Info(t).name; }
bool IsQuantized(DType t);
std::optional<DType> DTypeFromName(std::string_view name);  // case-insensitive

// Bytes occupied by `n_elems` consecutive elements; nullopt if n_elems is not a multiple of the
// block size or the product overflows. Callers use this to validate file headers.
std::optional<size_t> RowBytes(DType t, int64_t n_elems);

// Scalar conversions shared by every kernel.
float F16ToF32(uint16_t h);
uint16_t F32ToF16(float f);
inline float BF16ToF32(uint16_t h) {
  uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  __builtin_memcpy(&f, &bits, 4);
  return f;
}
uint16_t F32ToBF16(float f);  // round to nearest even, NaN kept quiet

}  // namespace fastgen
