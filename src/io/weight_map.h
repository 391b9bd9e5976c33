// Formats end here: safetensors and GGUF readers both fill one WeightMap (tensor name ->
// TensorView over the memory-mapped file). Models look tensors up by name and never learn
// which format they came from.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/mapped_file.h"
#include "core/status.h"
#include "core/tensor.h"

namespace fastgen {

class WeightMap {
 public:
  // Fails if a tensor of that name is already present (sharded checkpoints must not overlap).
  Status Add(TensorView tensor);
  // Replaces or inserts (used when a model rewrites a tensor at load, e.g. a transpose).
  void Put(TensorView tensor) { tensors_[tensor.name] = std::move(tensor); }
  void Erase(const std::string& name) { tensors_.erase(name); }
  const TensorView* Find(std::string_view name) const;
  const std::map<std::string, TensorView, std::less<>>& tensors() const { return tensors_; }
  size_t size() const { return tensors_.size(); }

  // Keeps a mapping alive as long as the views into it.
  void KeepAlive(std::shared_ptr<MappedFile> file) { files_.push_back(std::move(file)); }
  // A zeroed buffer owned by the map, for the few tensors fastgen must transform at load.
  uint8_t* AllocateOwned(size_t nbytes);

  // Total bytes of all tensors (what generation reads per token, roughly).
  size_t TotalBytes() const;

 private:
  std::map<std::string, TensorView, std::less<>> tensors_;
  std::vector<std::shared_ptr<MappedFile>> files_;
  std::vector<std::unique_ptr<uint8_t[]>> owned_;
};

}  // namespace fastgen
