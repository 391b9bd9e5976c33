// Copies a GGUF file with edits: keys dropped or replaced, tensors dropped, replaced or added.
// Tests use it to turn a valid model into one whose metadata and weights disagree in exactly
// one way.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "io/gguf.h"
#include "io/gguf_writer.h"

namespace fastgen::testing {

struct GgufTensorData {
  DType dtype;
  std::vector<int64_t> shape;  // PyTorch order
  std::vector<uint8_t> bytes;
};

struct GgufEdits {
  std::set<std::string> drop_keys;
  std::map<std::string, GgufValue> set_keys;  // replaced in place, or appended when new
  std::set<std::string> drop_tensors;
  // Called for each kept tensor; may change its data (e.g. keep fewer rows).
  std::function<void(const std::string& name, GgufTensorData& t)> edit_tensor;
  std::map<std::string, GgufTensorData> add_tensors;
};

inline Status CopyGguf(const std::string& src, const std::string& dst, const GgufEdits& e) {
  FG_ASSIGN_OR_RETURN(GgufFile in, GgufFile::Open(src));
  WeightMap weights;
  FG_RETURN_IF_ERROR(in.AddTensorsTo(&weights));
  GgufWriter w;
  for (const auto& [key, value] : in.metadata()) {
    if (e.drop_keys.count(key) || key == "general.alignment") continue;
    auto it = e.set_keys.find(key);
    FG_RETURN_IF_ERROR(w.AddValue(key, it != e.set_keys.end() ? it->second : value));
  }
  for (const auto& [key, value] : e.set_keys)
    if (!in.metadata().count(key)) FG_RETURN_IF_ERROR(w.AddValue(key, value));
  for (const GgufTensorInfo& info : in.tensor_infos()) {
    if (e.drop_tensors.count(info.name)) continue;
    const TensorView* t = weights.Find(info.name);
    GgufTensorData d{t->dtype, t->shape, std::vector<uint8_t>(t->data, t->data + t->nbytes)};
    if (e.edit_tensor) e.edit_tensor(info.name, d);
    FG_RETURN_IF_ERROR(w.AddTensor(info.name, d.dtype, d.shape, d.bytes.data(), d.bytes.size()));
  }
  for (const auto& [name, d] : e.add_tensors)
    FG_RETURN_IF_ERROR(w.AddTensor(name, d.dtype, d.shape, d.bytes.data(), d.bytes.size()));
  return w.WriteFile(dst);
}

inline GgufValue IntValue(int64_t v, GgufType type = GgufType::kUint32) { return GgufValue{type, type, v}; }
inline GgufValue StringValue(std::string v) { return GgufValue{GgufType::kString, GgufType::kUint32, std::move(v)}; }

}  // namespace fastgen::testing
