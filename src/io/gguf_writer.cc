#include "io/gguf_writer.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>

namespace fastgen {
namespace {

bool IsIntegerType(GgufType t) {
  switch (t) {
    case GgufType::kUint8: case GgufType::kInt8: case GgufType::kUint16: case GgufType::kInt16:
    case GgufType::kUint32: case GgufType::kInt32: case GgufType::kUint64: case GgufType::kInt64:
      return true;
    default:
      return false;
  }
}

// Whether v is representable in integer type t (uint64 values are limited to int64's range,
// as GgufValue stores them).
bool FitsIn(GgufType t, int64_t v) {
  switch (t) {
    case GgufType::kUint8: return v >= 0 && v <= 0xff;
    case GgufType::kInt8: return v >= -128 && v <= 127;
    case GgufType::kUint16: return v >= 0 && v <= 0xffff;
    case GgufType::kInt16: return v >= -32768 && v <= 32767;
    case GgufType::kUint32: return v >= 0 && v <= 0xffffffffLL;
    case GgufType::kInt32:
      return v >= std::numeric_limits<int32_t>::min() && v <= std::numeric_limits<int32_t>::max();
    case GgufType::kUint64: return v >= 0;
    case GgufType::kInt64: return true;
    default: return false;
  }
}

class Buffer {
 public:
  template <typename T>
  void Put(T v) {
    uint8_t raw[sizeof(T)];
    std::memcpy(raw, &v, sizeof(T));
    bytes_.insert(bytes_.end(), raw, raw + sizeof(T));
  }
  void PutString(const std::string& s) {
    Put<uint64_t>(s.size());
    bytes_.insert(bytes_.end(), s.begin(), s.end());
  }
  void PutInteger(GgufType t, int64_t v) {
    switch (t) {
      case GgufType::kUint8: Put(static_cast<uint8_t>(v)); break;
      case GgufType::kInt8: Put(static_cast<int8_t>(v)); break;
      case GgufType::kUint16: Put(static_cast<uint16_t>(v)); break;
      case GgufType::kInt16: Put(static_cast<int16_t>(v)); break;
      case GgufType::kUint32: Put(static_cast<uint32_t>(v)); break;
      case GgufType::kInt32: Put(static_cast<int32_t>(v)); break;
      case GgufType::kUint64: Put(static_cast<uint64_t>(v)); break;
      default: Put(v); break;
    }
  }
  void PutFloat(GgufType t, double v) {
    if (t == GgufType::kFloat32) Put(static_cast<float>(v)); else Put(v);
  }
  void PadTo(uint64_t alignment) {
    while (bytes_.size() % alignment != 0) bytes_.push_back(0);
  }
  std::vector<uint8_t>& bytes() { return bytes_; }

 private:
  std::vector<uint8_t> bytes_;
};

void PutValue(Buffer& b, const GgufValue& v) {
  b.Put(static_cast<uint32_t>(v.type));
  if (IsIntegerType(v.type)) {
    b.PutInteger(v.type, std::get<int64_t>(v.value));
  } else if (v.type == GgufType::kFloat32 || v.type == GgufType::kFloat64) {
    b.PutFloat(v.type, std::get<double>(v.value));
  } else if (v.type == GgufType::kBool) {
    b.Put(static_cast<uint8_t>(std::get<bool>(v.value) ? 1 : 0));
  } else if (v.type == GgufType::kString) {
    b.PutString(std::get<std::string>(v.value));
  } else {
    const GgufType et = v.array_type;
    b.Put(static_cast<uint32_t>(et));
    if (IsIntegerType(et)) {
      const auto& a = std::get<std::vector<int64_t>>(v.value);
      b.Put<uint64_t>(a.size());
      for (int64_t x : a) b.PutInteger(et, x);
    } else if (et == GgufType::kFloat32 || et == GgufType::kFloat64) {
      const auto& a = std::get<std::vector<double>>(v.value);
      b.Put<uint64_t>(a.size());
      for (double x : a) b.PutFloat(et, x);
    } else if (et == GgufType::kBool) {
      const auto& a = std::get<std::vector<bool>>(v.value);
      b.Put<uint64_t>(a.size());
      for (bool x : a) b.Put(static_cast<uint8_t>(x ? 1 : 0));
    } else {
      const auto& a = std::get<std::vector<std::string>>(v.value);
      b.Put<uint64_t>(a.size());
      for (const std::string& s : a) b.PutString(s);
    }
  }
}

// Checks that a value's variant alternative matches its declared type, so Serialize never
// meets a value it cannot write.
Status CheckValue(const std::string& key, const GgufValue& v) {
  const auto bad = [&](const std::string& why) {
    return InvalidArgument("GGUF metadata key '" + key + "': " + why);
  };
  if (static_cast<uint32_t>(v.type) > static_cast<uint32_t>(GgufType::kFloat64))
    return bad("unknown value type");
  if (IsIntegerType(v.type)) {
    const int64_t* i = std::get_if<int64_t>(&v.value);
    if (i == nullptr || !FitsIn(v.type, *i))
      return bad("value does not fit " + std::string(GgufTypeName(v.type)));
  } else if (v.type == GgufType::kFloat32 || v.type == GgufType::kFloat64) {
    if (!std::holds_alternative<double>(v.value)) return bad("expected a float value");
  } else if (v.type == GgufType::kBool) {
    if (!std::holds_alternative<bool>(v.value)) return bad("expected a bool value");
  } else if (v.type == GgufType::kString) {
    if (!std::holds_alternative<std::string>(v.value)) return bad("expected a string value");
  } else {
    const GgufType et = v.array_type;
    if (static_cast<uint32_t>(et) > static_cast<uint32_t>(GgufType::kFloat64))
      return bad("unknown array element type");
    if (et == GgufType::kArray) return bad("nested arrays are not allowed");
    if (IsIntegerType(et)) {
      const auto* a = std::get_if<std::vector<int64_t>>(&v.value);
      if (a == nullptr) return bad("expected integer elements");
      for (int64_t x : *a)
        if (!FitsIn(et, x)) return bad("element does not fit " + std::string(GgufTypeName(et)));
    } else if (et == GgufType::kFloat32 || et == GgufType::kFloat64) {
      if (!std::holds_alternative<std::vector<double>>(v.value)) return bad("expected floats");
    } else if (et == GgufType::kBool) {
      if (!std::holds_alternative<std::vector<bool>>(v.value)) return bad("expected bools");
    } else if (!std::holds_alternative<std::vector<std::string>>(v.value)) {
      return bad("expected strings");
    }
  }
  return Status::Ok();
}

}  // namespace

bool GgufWriter::HasKey(const std::string& key) const {
  for (const auto& [k, v] : metadata_)
    if (k == key) return true;
  return false;
}

Status GgufWriter::AddValue(const std::string& key, GgufValue value) {
  if (key.empty()) return InvalidArgument("GGUF metadata key is empty");
  if (HasKey(key)) return InvalidArgument("GGUF metadata key '" + key + "' added twice");
  FG_RETURN_IF_ERROR(CheckValue(key, value));
  metadata_.emplace_back(key, std::move(value));
  return Status::Ok();
}

Status GgufWriter::AddString(const std::string& key, std::string value) {
  return AddValue(key, GgufValue{GgufType::kString, GgufType::kUint32, std::move(value)});
}
Status GgufWriter::AddBool(const std::string& key, bool value) {
  return AddValue(key, GgufValue{GgufType::kBool, GgufType::kUint32, value});
}
Status GgufWriter::AddInt(const std::string& key, GgufType type, int64_t value) {
  if (!IsIntegerType(type)) return InvalidArgument("GGUF metadata key '" + key + "': not an integer type");
  return AddValue(key, GgufValue{type, GgufType::kUint32, value});
}
Status GgufWriter::AddFloat(const std::string& key, GgufType type, double value) {
  if (type != GgufType::kFloat32 && type != GgufType::kFloat64)
    return InvalidArgument("GGUF metadata key '" + key + "': not a float type");
  return AddValue(key, GgufValue{type, GgufType::kUint32, value});
}
Status GgufWriter::AddStringArray(const std::string& key, std::vector<std::string> values) {
  return AddValue(key, GgufValue{GgufType::kArray, GgufType::kString, std::move(values)});
}
Status GgufWriter::AddIntArray(const std::string& key, GgufType element_type,
                               std::vector<int64_t> values) {
  if (!IsIntegerType(element_type))
    return InvalidArgument("GGUF metadata key '" + key + "': not an integer element type");
  return AddValue(key, GgufValue{GgufType::kArray, element_type, std::move(values)});
}
Status GgufWriter::AddFloatArray(const std::string& key, GgufType element_type,
                                 std::vector<double> values) {
  if (element_type != GgufType::kFloat32 && element_type != GgufType::kFloat64)
    return InvalidArgument("GGUF metadata key '" + key + "': not a float element type");
  return AddValue(key, GgufValue{GgufType::kArray, element_type, std::move(values)});
}
Status GgufWriter::AddBoolArray(const std::string& key, std::vector<bool> values) {
  return AddValue(key, GgufValue{GgufType::kArray, GgufType::kBool, std::move(values)});
}

Status GgufWriter::SetAlignment(uint32_t alignment) {
  if (alignment == 0 || (alignment & (alignment - 1)) != 0)
    return InvalidArgument("GGUF alignment " + std::to_string(alignment) +
                           " is not a power of two");
  FG_RETURN_IF_ERROR(AddUint32("general.alignment", alignment));
  alignment_ = alignment;
  return Status::Ok();
}

Status GgufWriter::AddTensor(const std::string& name, DType dtype,
                             const std::vector<int64_t>& shape, const void* data,
                             size_t nbytes) {
  return AddTensorRaw(name, GgmlTypeOf(dtype), shape, data, nbytes);
}

Status GgufWriter::AddTensorRaw(const std::string& name, uint32_t ggml_type,
                                const std::vector<int64_t>& shape, const void* data,
                                size_t nbytes) {
  const std::string what = "GGUF tensor '" + name + "'";
  if (name.empty()) return InvalidArgument("GGUF tensor name is empty");
  for (const Tensor& t : tensors_)
    if (t.name == name) return InvalidArgument(what + " added twice");
  const std::optional<GgmlTypeLayout> layout = GgmlLayout(ggml_type);
  if (!layout) return InvalidArgument(what + ": unknown ggml type " + std::to_string(ggml_type));
  if (shape.empty() || shape.size() > 4) return InvalidArgument(what + ": needs 1 to 4 dims");
  uint64_t numel = 1;
  for (int64_t d : shape) {
    if (d <= 0 || numel > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) /
                              static_cast<uint64_t>(d))
      return InvalidArgument(what + ": bad shape " + ShapeString(shape));
    numel *= static_cast<uint64_t>(d);
  }
  if (shape.back() % layout->block_elems != 0)
    return InvalidArgument(what + ": innermost dimension is not a multiple of the block size");
  const uint64_t expected =
      numel / static_cast<uint64_t>(layout->block_elems) * static_cast<uint64_t>(layout->block_bytes);
  if (expected != nbytes)
    return InvalidArgument(what + ": " + std::to_string(nbytes) + " bytes given, shape needs " +
                           std::to_string(expected));
  Tensor t{name, ggml_type, shape, {}};
  const auto* p = static_cast<const uint8_t*>(data);
  t.data.assign(p, p + nbytes);
  tensors_.push_back(std::move(t));
  return Status::Ok();
}

std::vector<uint8_t> GgufWriter::HeaderBytes() const {
  Buffer b;
  b.Put<uint32_t>(0x46554747);  // "GGUF" read as a little-endian uint32
  b.Put<uint32_t>(3);
  b.Put<uint64_t>(tensors_.size());
  b.Put<uint64_t>(metadata_.size());
  for (const auto& [key, value] : metadata_) {
    b.PutString(key);
    PutValue(b, value);
  }
  // Offsets are relative to the data section; each tensor starts on an aligned boundary.
  uint64_t offset = 0;
  for (const Tensor& t : tensors_) {
    b.PutString(t.name);
    b.Put<uint32_t>(static_cast<uint32_t>(t.shape.size()));
    for (auto it = t.shape.rbegin(); it != t.shape.rend(); ++it) b.Put<uint64_t>(*it);
    b.Put<uint32_t>(t.ggml_type);
    b.Put<uint64_t>(offset);
    offset += t.data.size();
    offset += (alignment_ - offset % alignment_) % alignment_;
  }
  b.PadTo(alignment_);
  return std::move(b.bytes());
}

size_t GgufWriter::Padding(size_t n) const {
  return static_cast<size_t>((alignment_ - n % alignment_) % alignment_);
}

std::vector<uint8_t> GgufWriter::Serialize() const {
  std::vector<uint8_t> bytes = HeaderBytes();
  for (const Tensor& t : tensors_) {
    bytes.insert(bytes.end(), t.data.begin(), t.data.end());
    bytes.resize(bytes.size() + Padding(t.data.size()), 0);
  }
  return bytes;
}

Status GgufWriter::WriteFile(const std::string& path) const {
  // Streams tensor data instead of building the whole file in memory, which for a quantized
  // model would cost its full size a second time.
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "wb"), &std::fclose);
  if (!f) return IoError("cannot create " + path + ": " + std::strerror(errno));
  const auto write = [&](const void* p, size_t n) { return std::fwrite(p, 1, n, f.get()) == n; };
  const std::vector<uint8_t> header = HeaderBytes();
  bool ok = write(header.data(), header.size());
  const std::vector<uint8_t> zeros(static_cast<size_t>(alignment_), 0);
  for (const Tensor& t : tensors_) {
    if (!ok) break;
    ok = write(t.data.data(), t.data.size()) && write(zeros.data(), Padding(t.data.size()));
  }
  if (!ok) return IoError("cannot write " + path + ": " + std::strerror(errno));
  if (std::fclose(f.release()) != 0)
    return IoError("cannot write " + path + ": " + std::strerror(errno));
  return Status::Ok();
}

}  // namespace fastgen
