// A small GGUF version 3 writer: typed metadata (every value type, arrays included) and tensors
// in any ggml type, each tensor's data padded to the file's alignment. `fastgen quantize` writes
// its output with it, and the tests use it to build valid files they then break on purpose.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/status.h"
#include "io/gguf.h"

namespace fastgen {

class GgufWriter {
 public:
  // Metadata is written in the order it is added. Each Add* fails on a duplicate key, a value
  // that does not fit its declared type, or a type that does not match the call.
  Status AddValue(const std::string& key, GgufValue value);
  Status AddString(const std::string& key, std::string value);
  Status AddBool(const std::string& key, bool value);
  Status AddInt(const std::string& key, GgufType type, int64_t value);     // any integer type
  Status AddFloat(const std::string& key, GgufType type, double value);    // float32 or float64
  Status AddUint32(const std::string& key, uint32_t value) {
    return AddInt(key, GgufType::kUint32, value);
  }
  Status AddFloat32(const std::string& key, float value) {
    return AddFloat(key, GgufType::kFloat32, value);
  }
  Status AddStringArray(const std::string& key, std::vector<std::string> values);
  Status AddIntArray(const std::string& key, GgufType element_type, std::vector<int64_t> values);
  Status AddFloatArray(const std::string& key, GgufType element_type, std::vector<double> values);
  Status AddBoolArray(const std::string& key, std::vector<bool> values);

  // Sets general.alignment (a power of two) and records it as a uint32 metadata key.
  Status SetAlignment(uint32_t alignment);

  // Adds a tensor; `shape` is in PyTorch order (outermost first) and `data` must hold exactly
  // the bytes the shape needs in `dtype`. The bytes are copied.
  Status AddTensor(const std::string& name, DType dtype, const std::vector<int64_t>& shape,
                   const void* data, size_t nbytes);
  // The same for any ggml type id, including those fastgen cannot compute with (tests use it
  // to write files with unsupported types).
  Status AddTensorRaw(const std::string& name, uint32_t ggml_type,
                      const std::vector<int64_t>& shape, const void* data, size_t nbytes);

  // The whole file as bytes, or written to `path` (replacing it).
  std::vector<uint8_t> Serialize() const;
  Status WriteFile(const std::string& path) const;

 private:
  struct Tensor {
    std::string name;
    uint32_t ggml_type;
    std::vector<int64_t> shape;  // PyTorch order
    std::vector<uint8_t> data;
  };
  bool HasKey(const std::string& key) const;
  std::vector<uint8_t> HeaderBytes() const;  // everything before the data section
  size_t Padding(size_t n) const;            // zero bytes that align n

  uint64_t alignment_ = 32;
  std::vector<std::pair<std::string, GgufValue>> metadata_;
  std::vector<Tensor> tensors_;
};

}  // namespace fastgen
