#include "io/gguf.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>
#include <set>
#include <utility>

namespace fastgen {
namespace {

constexpr uint64_t kDefaultAlignment = 32;
// A larger alignment than this is no real file's choice and would only let a hostile header
// push the data section far past the end of the file.
constexpr uint64_t kMaxAlignment = uint64_t{1} << 30;
constexpr uint32_t kMaxDims = 4;  // GGML_MAX_DIMS

struct GgmlTypeEntry {
  uint32_t id;
  std::string_view name;
  int64_t block_elems;
  int64_t block_bytes;
};

// Every ggml type id a GGUF file may carry today, with the block geometry of ggml's block
// structs (ggml-common.h). Ids 4, 5 and 31-33, 36-38 were retired by ggml and are unknown here.
constexpr std::array<GgmlTypeEntry, 31> kGgmlTypes = {{
    {0, "F32", 1, 4},         {1, "F16", 1, 2},          {2, "Q4_0", 32, 18},
    {3, "Q4_1", 32, 20},      {6, "Q5_0", 32, 22},       {7, "Q5_1", 32, 24},
    {8, "Q8_0", 32, 34},      {9, "Q8_1", 32, 36},       {10, "Q2_K", 256, 84},
    {11, "Q3_K", 256, 110},   {12, "Q4_K", 256, 144},    {13, "Q5_K", 256, 176},
    {14, "Q6_K", 256, 210},   {15, "Q8_K", 256, 292},    {16, "IQ2_XXS", 256, 66},
    {17, "IQ2_XS", 256, 74},  {18, "IQ3_XXS", 256, 98},  {19, "IQ1_S", 256, 50},
    {20, "IQ4_NL", 32, 18},   {21, "IQ3_S", 256, 110},   {22, "IQ2_S", 256, 82},
    {23, "IQ4_XS", 256, 136}, {24, "I8", 1, 1},          {25, "I16", 1, 2},
    {26, "I32", 1, 4},        {27, "I64", 1, 8},         {28, "F64", 1, 8},
    {29, "IQ1_M", 256, 56},   {30, "BF16", 1, 2},        {34, "TQ1_0", 256, 54},
    {35, "TQ2_0", 256, 66},
}};

const GgmlTypeEntry* FindGgmlType(uint32_t id) {
  for (const auto& e : kGgmlTypes)
    if (e.id == id) return &e;
  return nullptr;
}

bool IsIntegerType(GgufType t) {
  switch (t) {
    case GgufType::kUint8: case GgufType::kInt8: case GgufType::kUint16: case GgufType::kInt16:
    case GgufType::kUint32: case GgufType::kInt32: case GgufType::kUint64: case GgufType::kInt64:
      return true;
    default:
      return false;
  }
}
bool IsFloatType(GgufType t) { return t == GgufType::kFloat32 || t == GgufType::kFloat64; }

// Bytes a value of type t occupies at least; arrays of strings are checked against this before
// any element is read, so an absurd count fails before memory is reserved for it.
uint64_t MinEncodedSize(GgufType t) {
  switch (t) {
    case GgufType::kUint8: case GgufType::kInt8: case GgufType::kBool: return 1;
    case GgufType::kUint16: case GgufType::kInt16: return 2;
    case GgufType::kUint32: case GgufType::kInt32: case GgufType::kFloat32: return 4;
    case GgufType::kUint64: case GgufType::kInt64: case GgufType::kFloat64: return 8;
    case GgufType::kString: return 8;  // the length prefix
    case GgufType::kArray: return 12;  // element type + count
  }
  return 1;
}

// Reads little-endian fields from the mapping, never past its end. Every failure names the
// file and the field being read, so a hostile file's error says where it went wrong.
class Reader {
 public:
  Reader(const std::string& path, const uint8_t* data, size_t size)
      : path_(path), data_(data), size_(size) {}

  uint64_t pos() const { return pos_; }
  const std::string& path() const { return path_; }
  uint64_t remaining() const { return size_ - pos_; }

  Status Error(const std::string& field, const std::string& what) const {
    return CorruptFile(path_ + ": " + field + ": " + what + " (at byte " + std::to_string(pos_) +
                       " of " + std::to_string(size_) + ")");
  }

  template <typename T>
  Status Read(T* out, const std::string& field) {
    if (remaining() < sizeof(T)) return Error(field, "file ends inside this field");
    std::memcpy(out, data_ + pos_, sizeof(T));  // the host is little-endian like GGUF
    pos_ += sizeof(T);
    return Status::Ok();
  }

  Status ReadString(std::string* out, const std::string& field) {
    uint64_t len = 0;
    FG_RETURN_IF_ERROR(Read(&len, field + " (string length)"));
    if (len > remaining())
      return Error(field, "string length " + std::to_string(len) + " exceeds the " +
                              std::to_string(remaining()) + " bytes left in the file");
    out->assign(reinterpret_cast<const char*>(data_ + pos_), static_cast<size_t>(len));
    pos_ += len;
    return Status::Ok();
  }

 private:
  const std::string& path_;
  const uint8_t* data_;
  uint64_t size_;
  uint64_t pos_ = 0;
};

Status ReadInteger(Reader& r, GgufType t, int64_t* out, const std::string& field) {
  switch (t) {
    case GgufType::kUint8: { uint8_t v = 0; FG_RETURN_IF_ERROR(r.Read(&v, field)); *out = v; break; }
    case GgufType::kInt8: { int8_t v = 0; FG_RETURN_IF_ERROR(r.Read(&v, field)); *out = v; break; }
    case GgufType::kUint16: { uint16_t v = 0; FG_RETURN_IF_ERROR(r.Read(&v, field)); *out = v; break; }
    case GgufType::kInt16: { int16_t v = 0; FG_RETURN_IF_ERROR(r.Read(&v, field)); *out = v; break; }
    case GgufType::kUint32: { uint32_t v = 0; FG_RETURN_IF_ERROR(r.Read(&v, field)); *out = v; break; }
    case GgufType::kInt32: { int32_t v = 0; FG_RETURN_IF_ERROR(r.Read(&v, field)); *out = v; break; }
    case GgufType::kInt64: { int64_t v = 0; FG_RETURN_IF_ERROR(r.Read(&v, field)); *out = v; break; }
    case GgufType::kUint64: {
      uint64_t v = 0;
      FG_RETURN_IF_ERROR(r.Read(&v, field));
      if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        return r.Error(field, "uint64 value " + std::to_string(v) + " is out of range");
      *out = static_cast<int64_t>(v);
      break;
    }
    default:
      return r.Error(field, "not an integer type");
  }
  return Status::Ok();
}

Status ReadFloat(Reader& r, GgufType t, double* out, const std::string& field) {
  if (t == GgufType::kFloat32) {
    float v = 0;
    FG_RETURN_IF_ERROR(r.Read(&v, field));
    *out = v;
  } else {
    FG_RETURN_IF_ERROR(r.Read(out, field));
  }
  return Status::Ok();
}

Status ReadBool(Reader& r, bool* out, const std::string& field) {
  uint8_t v = 0;
  FG_RETURN_IF_ERROR(r.Read(&v, field));
  if (v > 1) return r.Error(field, "bool byte is " + std::to_string(v) + ", not 0 or 1");
  *out = v != 0;
  return Status::Ok();
}

Status ReadValueType(Reader& r, GgufType* out, const std::string& field) {
  uint32_t raw = 0;
  FG_RETURN_IF_ERROR(r.Read(&raw, field));
  if (raw > static_cast<uint32_t>(GgufType::kFloat64))
    return r.Error(field, "unknown value type " + std::to_string(raw));
  *out = static_cast<GgufType>(raw);
  return Status::Ok();
}

template <typename T, typename ReadOne>
Status ReadArrayElements(Reader& r, uint64_t count, std::vector<T>* out, ReadOne read_one) {
  out->reserve(static_cast<size_t>(count));
  for (uint64_t i = 0; i < count; ++i) {
    T v{};
    FG_RETURN_IF_ERROR(read_one(&v));
    out->push_back(std::move(v));
  }
  return Status::Ok();
}

Status ReadArray(Reader& r, GgufValue* value, const std::string& field) {
  FG_RETURN_IF_ERROR(ReadValueType(r, &value->array_type, field + " (array element type)"));
  const GgufType et = value->array_type;
  if (et == GgufType::kArray) return r.Error(field, "nested arrays are not supported");
  uint64_t count = 0;
  FG_RETURN_IF_ERROR(r.Read(&count, field + " (array length)"));
  if (count > r.remaining() / MinEncodedSize(et))
    return r.Error(field, "array of " + std::to_string(count) + " " +
                              std::string(GgufTypeName(et)) + " elements cannot fit in the " +
                              std::to_string(r.remaining()) + " bytes left");
  if (IsIntegerType(et)) {
    std::vector<int64_t> v;
    FG_RETURN_IF_ERROR(ReadArrayElements(r, count, &v, [&](int64_t* x) {
      return ReadInteger(r, et, x, field);
    }));
    value->value = std::move(v);
  } else if (IsFloatType(et)) {
    std::vector<double> v;
    FG_RETURN_IF_ERROR(ReadArrayElements(r, count, &v, [&](double* x) {
      return ReadFloat(r, et, x, field);
    }));
    value->value = std::move(v);
  } else if (et == GgufType::kBool) {
    std::vector<bool> v;
    v.reserve(static_cast<size_t>(count));
    for (uint64_t i = 0; i < count; ++i) {
      bool b = false;
      FG_RETURN_IF_ERROR(ReadBool(r, &b, field));
      v.push_back(b);
    }
    value->value = std::move(v);
  } else {  // strings
    std::vector<std::string> v;
    FG_RETURN_IF_ERROR(ReadArrayElements(r, count, &v, [&](std::string* s) {
      return r.ReadString(s, field);
    }));
    value->value = std::move(v);
  }
  return Status::Ok();
}

Status ReadValue(Reader& r, GgufValue* value, const std::string& field) {
  FG_RETURN_IF_ERROR(ReadValueType(r, &value->type, field + " (value type)"));
  const GgufType t = value->type;
  if (IsIntegerType(t)) {
    int64_t v = 0;
    FG_RETURN_IF_ERROR(ReadInteger(r, t, &v, field));
    value->value = v;
  } else if (IsFloatType(t)) {
    double v = 0;
    FG_RETURN_IF_ERROR(ReadFloat(r, t, &v, field));
    value->value = v;
  } else if (t == GgufType::kBool) {
    bool v = false;
    FG_RETURN_IF_ERROR(ReadBool(r, &v, field));
    value->value = v;
  } else if (t == GgufType::kString) {
    std::string v;
    FG_RETURN_IF_ERROR(r.ReadString(&v, field));
    value->value = std::move(v);
  } else {
    FG_RETURN_IF_ERROR(ReadArray(r, value, field));
  }
  return Status::Ok();
}

// Reads one tensor info and checks everything about it that does not depend on other tensors.
Status ReadTensorInfo(Reader& r, uint64_t index, uint64_t alignment, GgufTensorInfo* info) {
  const std::string where = "tensor info #" + std::to_string(index);
  FG_RETURN_IF_ERROR(r.ReadString(&info->name, where + " name"));
  if (info->name.empty()) return r.Error(where, "empty tensor name");
  const std::string field = "tensor '" + info->name + "'";
  uint32_t n_dims = 0;
  FG_RETURN_IF_ERROR(r.Read(&n_dims, field + " n_dims"));
  if (n_dims == 0 || n_dims > kMaxDims)
    return r.Error(field, "n_dims is " + std::to_string(n_dims) + ", expected 1 to 4");
  std::array<uint64_t, kMaxDims> ne{};
  uint64_t numel = 1;
  for (uint32_t d = 0; d < n_dims; ++d) {
    FG_RETURN_IF_ERROR(r.Read(&ne[d], field + " ne[" + std::to_string(d) + "]"));
    if (ne[d] == 0 || ne[d] > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      return r.Error(field, "dimension " + std::to_string(d) + " is " + std::to_string(ne[d]));
    if (numel > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / ne[d])
      return r.Error(field, "the number of elements overflows");
    numel *= ne[d];
  }
  FG_RETURN_IF_ERROR(r.Read(&info->ggml_type, field + " type"));
  FG_RETURN_IF_ERROR(r.Read(&info->offset, field + " offset"));
  // GGUF lists ne[0] (the contiguous dimension) first; PyTorch order lists it last.
  info->shape.assign(n_dims, 0);
  for (uint32_t d = 0; d < n_dims; ++d) info->shape[n_dims - 1 - d] = static_cast<int64_t>(ne[d]);

  const GgmlTypeEntry* type = FindGgmlType(info->ggml_type);
  if (type == nullptr)
    return Unsupported(r.path() + ": " + field + " has unknown ggml type " +
                       std::to_string(info->ggml_type));
  if (ne[0] % static_cast<uint64_t>(type->block_elems) != 0)
    return r.Error(field, "ne[0] = " + std::to_string(ne[0]) + " is not a multiple of the " +
                              std::string(type->name) + " block size " +
                              std::to_string(type->block_elems));
  const uint64_t blocks = numel / static_cast<uint64_t>(type->block_elems);
  if (blocks > std::numeric_limits<uint64_t>::max() / static_cast<uint64_t>(type->block_bytes))
    return r.Error(field, "the byte size overflows");
  info->nbytes = blocks * static_cast<uint64_t>(type->block_bytes);
  if (info->offset % alignment != 0)
    return r.Error(field, "offset " + std::to_string(info->offset) +
                              " is not a multiple of the alignment " + std::to_string(alignment));
  return Status::Ok();
}

Status TypeMismatch(const std::string& path, std::string_view key, const GgufValue& v,
                    const char* expected) {
  std::string got(GgufTypeName(v.type));
  if (v.type == GgufType::kArray) got += " of " + std::string(GgufTypeName(v.array_type));
  return InvalidArgument(path + ": metadata key '" + std::string(key) + "' is " + got +
                         ", expected " + expected);
}

}  // namespace

std::string_view GgufTypeName(GgufType t) {
  static constexpr std::array<std::string_view, 13> kNames = {
      "uint8", "int8", "uint16", "int16", "uint32", "int32", "float32",
      "bool",  "string", "array", "uint64", "int64", "float64"};
  const auto i = static_cast<size_t>(t);
  return i < kNames.size() ? kNames[i] : std::string_view("unknown");
}

std::optional<GgmlTypeLayout> GgmlLayout(uint32_t ggml_type) {
  const GgmlTypeEntry* e = FindGgmlType(ggml_type);
  if (e == nullptr) return std::nullopt;
  return GgmlTypeLayout{e->block_elems, e->block_bytes};
}

std::string GgmlTypeName(uint32_t ggml_type) {
  const GgmlTypeEntry* e = FindGgmlType(ggml_type);
  return e != nullptr ? std::string(e->name) : "type " + std::to_string(ggml_type);
}

std::optional<DType> DTypeFromGgml(uint32_t ggml_type) {
  switch (ggml_type) {
    case 0: return DType::kF32;
    case 1: return DType::kF16;
    case 2: return DType::kQ4_0;
    case 8: return DType::kQ8_0;
    case 10: return DType::kQ2_K;
    case 11: return DType::kQ3_K;
    case 12: return DType::kQ4_K;
    case 13: return DType::kQ5_K;
    case 14: return DType::kQ6_K;
    case 26: return DType::kI32;
    case 30: return DType::kBF16;
    default: return std::nullopt;
  }
}

uint32_t GgmlTypeOf(DType t) {
  switch (t) {
    case DType::kF32: return 0;
    case DType::kF16: return 1;
    case DType::kQ4_0: return 2;
    case DType::kQ8_0: return 8;
    case DType::kQ2_K: return 10;
    case DType::kQ3_K: return 11;
    case DType::kQ4_K: return 12;
    case DType::kQ5_K: return 13;
    case DType::kQ6_K: return 14;
    case DType::kI32: return 26;
    case DType::kBF16: return 30;
  }
  return 0;
}

Expected<GgufFile> GgufFile::Open(const std::string& path) {
  FG_ASSIGN_OR_RETURN(std::shared_ptr<MappedFile> mapped, MappedFile::Open(path));
  GgufFile f;
  f.path_ = path;
  Reader r(path, mapped->data(), mapped->size());

  std::array<char, 4> magic{};
  FG_RETURN_IF_ERROR(r.Read(&magic, "magic"));
  if (std::memcmp(magic.data(), "GGUF", 4) != 0)
    return CorruptFile(path + ": not a GGUF file (the magic is not \"GGUF\")");
  FG_RETURN_IF_ERROR(r.Read(&f.version_, "version"));
  if (f.version_ != 2 && f.version_ != 3)
    return Unsupported(path + ": GGUF version " + std::to_string(f.version_) +
                       " (fastgen reads versions 2 and 3)");
  uint64_t tensor_count = 0, kv_count = 0;
  FG_RETURN_IF_ERROR(r.Read(&tensor_count, "tensor_count"));
  FG_RETURN_IF_ERROR(r.Read(&kv_count, "metadata_kv_count"));
  // The smallest key/value is an empty key (8), a type (4) and a one-byte value; the smallest
  // tensor info is a length (8), n_dims (4), one dim (8), a type (4) and an offset (8).
  if (kv_count > r.remaining() / 13)
    return r.Error("metadata_kv_count", std::to_string(kv_count) + " pairs cannot fit in the file");
  if (tensor_count > r.remaining() / 32)
    return r.Error("tensor_count", std::to_string(tensor_count) + " tensors cannot fit in the file");

  for (uint64_t i = 0; i < kv_count; ++i) {
    std::string key;
    FG_RETURN_IF_ERROR(r.ReadString(&key, "metadata key #" + std::to_string(i)));
    if (key.empty()) return r.Error("metadata key #" + std::to_string(i), "empty key");
    if (f.metadata_.count(key) != 0) return r.Error("metadata key '" + key + "'", "duplicate key");
    GgufValue value;
    FG_RETURN_IF_ERROR(ReadValue(r, &value, "metadata key '" + key + "'"));
    f.metadata_.emplace(std::move(key), std::move(value));
  }

  if (const GgufValue* a = f.Find("general.alignment"); a != nullptr) {
    const int64_t* v = std::get_if<int64_t>(&a->value);
    if (v == nullptr || a->type == GgufType::kArray)
      return CorruptFile(path + ": metadata key 'general.alignment' is not an integer");
    const uint64_t al = static_cast<uint64_t>(*v);
    if (*v <= 0 || (al & (al - 1)) != 0 || al > kMaxAlignment)
      return CorruptFile(path + ": metadata key 'general.alignment' is " + std::to_string(*v) +
                         ", not a power of two up to 2^30");
    f.alignment_ = al;
  } else {
    f.alignment_ = kDefaultAlignment;
  }

  std::set<std::string, std::less<>> names;
  f.tensor_infos_.reserve(static_cast<size_t>(tensor_count));
  for (uint64_t i = 0; i < tensor_count; ++i) {
    GgufTensorInfo info;
    FG_RETURN_IF_ERROR(ReadTensorInfo(r, i, f.alignment_, &info));
    if (!names.insert(info.name).second)
      return r.Error("tensor '" + info.name + "'", "duplicate tensor name");
    f.tensor_infos_.push_back(std::move(info));
  }

  // The data section starts at the next multiple of the alignment. A file without tensors may
  // end before that padding, as nothing is read from the data section.
  const uint64_t pos = r.pos();
  const uint64_t pad = (f.alignment_ - pos % f.alignment_) % f.alignment_;
  f.data_offset_ = pos + pad;
  const uint64_t file_size = mapped->size();
  if (f.data_offset_ > file_size) {
    if (!f.tensor_infos_.empty())
      return CorruptFile(path + ": the file ends before its data section (offset " +
                         std::to_string(f.data_offset_) + ", size " + std::to_string(file_size) +
                         ")");
    f.data_offset_ = file_size;
  }
  const uint64_t data_size = file_size - f.data_offset_;
  for (const GgufTensorInfo& t : f.tensor_infos_) {
    if (t.offset > data_size || t.nbytes > data_size - t.offset)
      return CorruptFile(path + ": tensor '" + t.name + "' (bytes " + std::to_string(t.offset) +
                         " to " + std::to_string(t.offset) + " + " + std::to_string(t.nbytes) +
                         " of the data section) extends past the end of the file (data section "
                         "is " + std::to_string(data_size) + " bytes)");
  }
  // Overlapping tensors would let a write through one view corrupt another and are a sign of a
  // forged header; sorting by offset finds any overlap between neighbours.
  std::vector<const GgufTensorInfo*> by_offset;
  by_offset.reserve(f.tensor_infos_.size());
  for (const GgufTensorInfo& t : f.tensor_infos_) by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(),
            [](const GgufTensorInfo* a, const GgufTensorInfo* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const GgufTensorInfo* prev = by_offset[i - 1];
    if (prev->offset + prev->nbytes > by_offset[i]->offset)
      return CorruptFile(path + ": tensors '" + prev->name + "' and '" + by_offset[i]->name +
                         "' overlap in the data section");
  }
  f.file_ = std::move(mapped);
  return f;
}

const GgufValue* GgufFile::Find(std::string_view key) const {
  auto it = metadata_.find(key);
  return it == metadata_.end() ? nullptr : &it->second;
}

Expected<std::optional<std::string>> GgufFile::GetString(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return std::optional<std::string>();
  if (v->type != GgufType::kString) return TypeMismatch(path_, key, *v, "a string");
  return std::optional<std::string>(std::get<std::string>(v->value));
}

Expected<std::optional<int64_t>> GgufFile::GetInt(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return std::optional<int64_t>();
  if (!IsIntegerType(v->type)) return TypeMismatch(path_, key, *v, "an integer");
  return std::optional<int64_t>(std::get<int64_t>(v->value));
}

Expected<std::optional<double>> GgufFile::GetFloat(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return std::optional<double>();
  if (IsIntegerType(v->type))
    return std::optional<double>(static_cast<double>(std::get<int64_t>(v->value)));
  if (!IsFloatType(v->type)) return TypeMismatch(path_, key, *v, "a number");
  return std::optional<double>(std::get<double>(v->value));
}

Expected<std::optional<bool>> GgufFile::GetBool(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return std::optional<bool>();
  if (v->type != GgufType::kBool) return TypeMismatch(path_, key, *v, "a bool");
  return std::optional<bool>(std::get<bool>(v->value));
}

Expected<std::optional<std::vector<std::string>>> GgufFile::GetStringArray(
    std::string_view key) const {
  using R = std::optional<std::vector<std::string>>;
  const GgufValue* v = Find(key);
  if (v == nullptr) return R();
  if (v->type != GgufType::kArray || v->array_type != GgufType::kString)
    return TypeMismatch(path_, key, *v, "an array of strings");
  return R(std::get<std::vector<std::string>>(v->value));
}

Expected<std::optional<std::vector<int64_t>>> GgufFile::GetIntArray(std::string_view key) const {
  using R = std::optional<std::vector<int64_t>>;
  const GgufValue* v = Find(key);
  if (v == nullptr) return R();
  if (v->type != GgufType::kArray || !IsIntegerType(v->array_type))
    return TypeMismatch(path_, key, *v, "an array of integers");
  return R(std::get<std::vector<int64_t>>(v->value));
}

Expected<std::optional<std::vector<double>>> GgufFile::GetFloatArray(std::string_view key) const {
  using R = std::optional<std::vector<double>>;
  const GgufValue* v = Find(key);
  if (v == nullptr) return R();
  if (v->type == GgufType::kArray && IsIntegerType(v->array_type)) {
    const auto& ints = std::get<std::vector<int64_t>>(v->value);
    return R(std::vector<double>(ints.begin(), ints.end()));
  }
  if (v->type != GgufType::kArray || !IsFloatType(v->array_type))
    return TypeMismatch(path_, key, *v, "an array of numbers");
  return R(std::get<std::vector<double>>(v->value));
}

Status GgufFile::AddTensorsTo(WeightMap* out) const {
  if (file_ == nullptr) return Internal(path_ + ": GgufFile was not opened");
  // Everything is checked before the first tensor is added, so a failure leaves `out` as it was.
  std::vector<TensorView> views;
  views.reserve(tensor_infos_.size());
  const uint64_t data_size = file_->size() - data_offset_;
  for (const GgufTensorInfo& t : tensor_infos_) {
    const std::optional<DType> dtype = DTypeFromGgml(t.ggml_type);
    if (!dtype)
      return Unsupported(path_ + ": tensor '" + t.name + "' has ggml type " +
                         GgmlTypeName(t.ggml_type) + ", which fastgen does not support");
    const std::optional<size_t> nbytes = RowBytes(*dtype, TensorView{"", *dtype, t.shape}.numel());
    if (!nbytes || *nbytes != t.nbytes || t.offset > data_size || t.nbytes > data_size - t.offset)
      return CorruptFile(path_ + ": tensor '" + t.name + "' has an inconsistent size");
    if (out->Find(t.name) != nullptr)
      return CorruptFile(path_ + ": tensor '" + t.name + "' is already loaded from another file");
    TensorView v;
    v.name = t.name;
    v.dtype = *dtype;
    v.shape = t.shape;
    v.data = file_->data() + data_offset_ + t.offset;
    v.nbytes = static_cast<size_t>(t.nbytes);
    views.push_back(std::move(v));
  }
  for (TensorView& v : views) FG_RETURN_IF_ERROR(out->Add(std::move(v)));
  out->KeepAlive(file_);
  return Status::Ok();
}

}  // namespace fastgen
