#include "io/weight_map.h"

namespace fastgen {

Status WeightMap::Add(TensorView tensor) {
  if (tensors_.count(tensor.name) != 0)
    return CorruptFile("tensor '" + tensor.name + "' appears more than once");
  std::string name = tensor.name;
  tensors_.emplace(std::move(name), std::move(tensor));
  return Status::Ok();
}

const TensorView* WeightMap::Find(std::string_view name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

uint8_t* WeightMap::AllocateOwned(size_t nbytes) {
  owned_.push_back(std::make_unique<uint8_t[]>(nbytes == 0 ? 1 : nbytes));
  return owned_.back().get();
}

size_t WeightMap::TotalBytes() const {
  size_t total = 0;
  for (const auto& [name, t] : tensors_) total += t.nbytes;
  return total;
}

}  // namespace fastgen
