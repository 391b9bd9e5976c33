#include "io/safetensors.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <set>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/mapped_file.h"

namespace fastgen {
namespace {

using nlohmann::json;

// Element sizes of the dtypes the safetensors format defines; F32, F16 and BF16 are
// computable, I32 is read for GPTQ / AWQ codes, the others are named in the kUnsupported error.
std::optional<uint64_t> SafetensorsElementSize(const std::string& dtype) {
  static const std::pair<const char*, uint64_t> kSizes[] = {
      {"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8}, {"U64", 8},
      {"I32", 4}, {"U32", 4}, {"I16", 2}, {"U16", 2}, {"I8", 1},  {"U8", 1},
      {"BOOL", 1}, {"F8_E4M3", 1}, {"F8_E5M2", 1}, {"F8_E8M0", 1}};
  for (const auto& [name, size] : kSizes)
    if (dtype == name) return size;
  return std::nullopt;
}

std::optional<DType> ComputableDType(const std::string& dtype) {
  if (dtype == "F32") return DType::kF32;
  if (dtype == "F16") return DType::kF16;
  if (dtype == "BF16") return DType::kBF16;
  if (dtype == "I32") return DType::kI32;  // GPTQ / AWQ packed codes (io/gptq_checkpoint.h)
  return std::nullopt;
}

bool FileExists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// A non-negative integer that fits uint64; JSON numbers may be negative, fractional or huge.
bool GetU64(const json& j, uint64_t* out) {
  if (j.is_number_unsigned()) {
    *out = j.get<uint64_t>();
    return true;
  }
  if (j.is_number_integer() && j.get<int64_t>() >= 0) {
    *out = static_cast<uint64_t>(j.get<int64_t>());
    return true;
  }
  return false;
}

struct Entry {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  uint64_t begin;  // relative to the data section
  uint64_t end;
};

Status ParseEntry(const std::string& path, const std::string& name, const json& v,
                  uint64_t data_size, Entry* e) {
  const std::string where = path + ": tensor '" + name + "'";
  if (!v.is_object()) return CorruptFile(where + ": header entry is not an object");
  const auto dt = v.find("dtype");
  const auto sh = v.find("shape");
  const auto off = v.find("data_offsets");
  if (dt == v.end() || !dt->is_string()) return CorruptFile(where + ": missing string 'dtype'");
  if (sh == v.end() || !sh->is_array()) return CorruptFile(where + ": missing array 'shape'");
  if (off == v.end() || !off->is_array() || off->size() != 2)
    return CorruptFile(where + ": 'data_offsets' is not a pair");
  const std::string dtype = dt->get<std::string>();
  const std::optional<uint64_t> elem = SafetensorsElementSize(dtype);
  if (!elem) return Unsupported(where + " has unknown dtype '" + dtype + "'");
  uint64_t numel = 1;
  e->shape.clear();
  for (const json& d : *sh) {
    uint64_t n = 0;
    if (!GetU64(d, &n) || n > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      return CorruptFile(where + ": shape holds a value that is not a dimension");
    if (n != 0 && numel > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / n)
      return CorruptFile(where + ": the number of elements overflows");
    numel *= n;
    e->shape.push_back(static_cast<int64_t>(n));
  }
  if (e->shape.size() > 8) return CorruptFile(where + ": more than 8 dimensions");
  if (!GetU64((*off)[0], &e->begin) || !GetU64((*off)[1], &e->end) || e->begin > e->end)
    return CorruptFile(where + ": 'data_offsets' is not an increasing pair of offsets");
  if (e->end > data_size)
    return CorruptFile(where + ": data_offsets [" + std::to_string(e->begin) + ", " +
                       std::to_string(e->end) + ") extend past the data section (" +
                       std::to_string(data_size) + " bytes)");
  if (numel > std::numeric_limits<uint64_t>::max() / *elem || numel * *elem != e->end - e->begin)
    return CorruptFile(where + ": shape " + ShapeString(e->shape) + " of " + dtype + " needs " +
                       std::to_string(numel) + " x " + std::to_string(*elem) +
                       " bytes but data_offsets span " + std::to_string(e->end - e->begin));
  const std::optional<DType> computable = ComputableDType(dtype);
  if (!computable)
    return Unsupported(where + " has dtype " + dtype + ", which fastgen does not support");
  e->name = name;
  e->dtype = *computable;
  return Status::Ok();
}

// Parses and checks the whole header before anything is added to `out`, then adds every
// tensor and reports their names (ReadSafetensorsDir checks them against the index).
Status ReadSafetensorsImpl(const std::string& path, WeightMap* out,
                           std::vector<std::string>* names) {
  FG_ASSIGN_OR_RETURN(std::shared_ptr<MappedFile> file, MappedFile::Open(path));
  const uint64_t size = file->size();
  if (size < 8) return CorruptFile(path + ": too short for a safetensors header length");
  uint64_t header_len = 0;
  std::memcpy(&header_len, file->data(), 8);  // little-endian, as is the host
  if (header_len > size - 8)
    return CorruptFile(path + ": header length " + std::to_string(header_len) +
                       " exceeds the file size " + std::to_string(size));
  const char* header = reinterpret_cast<const char*>(file->data() + 8);
  const uint64_t data_size = size - 8 - header_len;

  std::vector<Entry> entries;
  // nlohmann_json keeps only the last of duplicate keys, so the parser callback records every
  // top-level key to catch a tensor named twice.
  std::vector<std::string> keys;
  try {
    const json::parser_callback_t cb = [&keys](int depth, json::parse_event_t event, json& parsed) {
      if (depth == 1 && event == json::parse_event_t::key) keys.push_back(parsed.get<std::string>());
      return true;
    };
    const json j = json::parse(header, header + header_len, cb, /*allow_exceptions=*/false);
    if (j.is_discarded()) return CorruptFile(path + ": the header is not valid JSON");
    if (!j.is_object()) return CorruptFile(path + ": the header is not a JSON object");
    std::sort(keys.begin(), keys.end());
    const auto dup = std::adjacent_find(keys.begin(), keys.end());
    if (dup != keys.end()) return CorruptFile(path + ": tensor '" + *dup + "' appears twice");
    entries.reserve(j.size());
    for (const auto& [name, v] : j.items()) {
      if (name == "__metadata__") continue;  // free-form string map, not a tensor
      Entry e;
      FG_RETURN_IF_ERROR(ParseEntry(path, name, v, data_size, &e));
      entries.push_back(std::move(e));
    }
  } catch (const std::exception& e) {
    // Type errors on access and allocation failures end here: nothing escapes the API.
    return CorruptFile(path + ": cannot read the header: " + e.what());
  }

  std::vector<const Entry*> by_offset;
  for (const Entry& e : entries) by_offset.push_back(&e);
  std::sort(by_offset.begin(), by_offset.end(),
            [](const Entry* a, const Entry* b) { return a->begin < b->begin; });
  for (size_t i = 1; i < by_offset.size(); ++i)
    if (by_offset[i - 1]->end > by_offset[i]->begin)
      return CorruptFile(path + ": tensors '" + by_offset[i - 1]->name + "' and '" +
                         by_offset[i]->name + "' overlap in the data section");
  for (const Entry& e : entries)
    if (out->Find(e.name) != nullptr)
      return CorruptFile(path + ": tensor '" + e.name + "' is already loaded from another file");

  const uint8_t* data = file->data() + 8 + header_len;
  for (Entry& e : entries) {
    TensorView v;
    v.name = e.name;
    v.dtype = e.dtype;
    v.shape = std::move(e.shape);
    v.data = data + e.begin;
    v.nbytes = static_cast<size_t>(e.end - e.begin);
    if (names != nullptr) names->push_back(e.name);
    FG_RETURN_IF_ERROR(out->Add(std::move(v)));
  }
  out->KeepAlive(std::move(file));
  return Status::Ok();
}

// Reads model.safetensors.index.json: tensor name -> shard file name, and the shards in order of
// first appearance. Shard names must be plain file names inside the directory.
Status ReadIndex(const std::string& index_path, std::map<std::string, std::string>* weight_map,
                 std::vector<std::string>* shards) {
  FG_ASSIGN_OR_RETURN(std::string text, ReadTextFile(index_path, kConfigFileLimit));
  try {
    const json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) return CorruptFile(index_path + ": not a JSON object");
    const auto wm = j.find("weight_map");
    if (wm == j.end() || !wm->is_object())
      return CorruptFile(index_path + ": missing object 'weight_map'");
    std::set<std::string> seen;
    for (const auto& [name, shard] : wm->items()) {
      if (!shard.is_string())
        return CorruptFile(index_path + ": weight_map entry '" + name + "' is not a file name");
      const std::string s = shard.get<std::string>();
      if (s.empty() || s == "." || s == ".." || s.find('/') != std::string::npos ||
          s.find('\0') != std::string::npos)
        return CorruptFile(index_path + ": weight_map entry '" + name + "' names '" + s +
                           "', not a file in the model directory");
      (*weight_map)[name] = s;
      if (seen.insert(s).second) shards->push_back(s);
    }
  } catch (const std::exception& e) {
    return CorruptFile(index_path + ": cannot read the index: " + e.what());
  }
  return Status::Ok();
}

}  // namespace

Status ReadSafetensors(const std::string& path, WeightMap* out) {
  return ReadSafetensorsImpl(path, out, nullptr);
}

Status ReadSafetensorsDir(const std::string& dir, WeightMap* out) {
  const std::string index_path = dir + "/model.safetensors.index.json";
  if (!FileExists(index_path)) {
    const std::string single = dir + "/model.safetensors";
    if (!FileExists(single))
      return NotFound(dir + ": neither model.safetensors nor model.safetensors.index.json exists");
    return ReadSafetensors(single, out);
  }
  std::map<std::string, std::string> weight_map;
  std::vector<std::string> shards;
  FG_RETURN_IF_ERROR(ReadIndex(index_path, &weight_map, &shards));
  std::set<std::string> found;
  for (const std::string& shard : shards) {
    const std::string shard_path = dir + "/" + shard;
    std::vector<std::string> names;
    FG_RETURN_IF_ERROR(ReadSafetensorsImpl(shard_path, out, &names));
    for (const std::string& name : names) {
      const auto it = weight_map.find(name);
      if (it == weight_map.end())
        return CorruptFile(shard_path + ": tensor '" + name + "' is not listed in " + index_path);
      if (it->second != shard)
        return CorruptFile(shard_path + ": tensor '" + name + "' is listed in " + index_path +
                           " as stored in " + it->second);
      found.insert(name);
    }
  }
  for (const auto& [name, shard] : weight_map)
    if (found.count(name) == 0)
      return CorruptFile(dir + "/" + shard + ": tensor '" + name + "' listed in " + index_path +
                         " is missing");
  return Status::Ok();
}

}  // namespace fastgen
