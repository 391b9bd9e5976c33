// GGUF (llama.cpp's single-file format), version 2 and 3: header, typed metadata key/values,
// tensor infos and the aligned tensor data section. The whole file is memory-mapped and every
// length, count, offset and type read from it is checked before use: a hostile file yields an
// error naming the field or tensor, never an out-of-bounds read.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/mapped_file.h"
#include "core/status.h"
#include "io/weight_map.h"

namespace fastgen {

// GGUF metadata value types as numbered by the specification.
enum class GgufType : uint32_t {
  kUint8 = 0, kInt8 = 1, kUint16 = 2, kInt16 = 3, kUint32 = 4, kInt32 = 5, kFloat32 = 6,
  kBool = 7, kString = 8, kArray = 9, kUint64 = 10, kInt64 = 11, kFloat64 = 12,
};

// One metadata value. Integers of every width are widened to int64 (uint64 values above
// INT64_MAX are rejected as corrupt), floats to double. Arrays hold one element type.
struct GgufValue {
  GgufType type = GgufType::kUint32;
  GgufType array_type = GgufType::kUint32;  // element type when type == kArray
  std::variant<int64_t, double, bool, std::string, std::vector<int64_t>, std::vector<double>,
               std::vector<bool>, std::vector<std::string>>
      value;
};

struct GgufTensorInfo {
  std::string name;
  std::vector<int64_t> shape;  // PyTorch order (reversed from GGUF's ne[])
  uint32_t ggml_type = 0;      // raw ggml type id as stored
  uint64_t offset = 0;         // relative to the start of the data section
  uint64_t nbytes = 0;         // bytes the tensor occupies in the data section
};

class GgufFile {
 public:
  // Parses and validates the header, metadata and tensor infos of `path`.
  static Expected<GgufFile> Open(const std::string& path);

  uint32_t version() const { return version_; }
  const std::string& path() const { return path_; }
  uint64_t alignment() const { return alignment_; }
  const std::map<std::string, GgufValue, std::less<>>& metadata() const { return metadata_; }
  const std::vector<GgufTensorInfo>& tensor_infos() const { return tensor_infos_; }

  const GgufValue* Find(std::string_view key) const;
  // Typed getters: nullopt when the key is absent; an error Status when present with a type
  // that does not convert (e.g. a string where a number was expected), naming the key.
  Expected<std::optional<std::string>> GetString(std::string_view key) const;
  Expected<std::optional<int64_t>> GetInt(std::string_view key) const;   // any integer type
  Expected<std::optional<double>> GetFloat(std::string_view key) const;  // float or integer
  Expected<std::optional<bool>> GetBool(std::string_view key) const;
  Expected<std::optional<std::vector<std::string>>> GetStringArray(std::string_view key) const;
  Expected<std::optional<std::vector<int64_t>>> GetIntArray(std::string_view key) const;
  Expected<std::optional<std::vector<double>>> GetFloatArray(std::string_view key) const;

  // Adds every tensor as a TensorView over the mapping (no copy) and keeps the mapping alive
  // in `out`. Fails, naming the tensor, on an unsupported ggml type, a size or offset outside
  // the file, a misaligned offset, or overlapping tensors.
  Status AddTensorsTo(WeightMap* out) const;

 private:
  std::string path_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;  // absolute offset of the data section
  std::map<std::string, GgufValue, std::less<>> metadata_;
  std::vector<GgufTensorInfo> tensor_infos_;
  std::shared_ptr<MappedFile> file_;
};

// ggml type id <-> fastgen DType for the types fastgen computes with.
std::optional<DType> DTypeFromGgml(uint32_t ggml_type);
uint32_t GgmlTypeOf(DType t);
std::string GgmlTypeName(uint32_t ggml_type);  // "Q5_1", or "type 42" when unknown

// Block geometry of every ggml type id GGUF files use, supported by fastgen or not, so that the
// reader can check sizes and overlaps of every tensor. nullopt for ids it does not know.
struct GgmlTypeLayout {
  int64_t block_elems;  // elements per block
  int64_t block_bytes;  // bytes per block
};
std::optional<GgmlTypeLayout> GgmlLayout(uint32_t ggml_type);

std::string_view GgufTypeName(GgufType t);  // "uint32", "string", ...

}  // namespace fastgen
