// The key/value cache of one sequence: per layer, float32 keys and values for every position
// decoded so far, so each new token attends to the past without recomputing it.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/status.h"

namespace fastgen {

struct KvCacheShape {
  int64_t n_layer = 0;
  int64_t n_kv_head = 0;
  int64_t head_dim = 0;
  int64_t capacity = 0;  // positions (the context length of this sequence)
};

class KvCache {
 public:
  static Expected<KvCache> Create(const KvCacheShape& shape);

  const KvCacheShape& shape() const { return shape_; }
  int64_t capacity() const { return shape_.capacity; }
  // Slots [0, length) hold valid entries.
  int64_t length() const { return length_; }
  int64_t row_floats() const { return shape_.n_kv_head * shape_.head_dim; }

  float* keys(int64_t layer) { return k_.data() + layer * layer_floats(); }      // [capacity, n_kv_head, head_dim]
  float* values(int64_t layer) { return v_.data() + layer * layer_floats(); }    // [capacity, n_kv_head, head_dim]
  const float* keys(int64_t layer) const { return k_.data() + layer * layer_floats(); }
  const float* values(int64_t layer) const { return v_.data() + layer * layer_floats(); }

  // Marks n more slots valid after a forward pass wrote them.
  void Advance(int64_t n) { length_ += n; }
  // Rolls the cache back to `length` slots (speculative rejection, prompt re-use). Entries past
  // it are dead and are overwritten by the next forward pass.
  void Truncate(int64_t length) { if (length < length_) length_ = length < 0 ? 0 : length; }
  void Clear() { length_ = 0; }
  // Tree rollback: of the slots [base, length) a token-tree verification appended, keeps those
  // at base + keep[i] (strictly increasing offsets: an accepted root-to-leaf path), moving them
  // to be contiguous at base + i in every layer, and truncates to base + keep.size(). Fails
  // without touching the cache on offsets out of range or out of order.
  Status CompactTail(int64_t base, std::span<const int32_t> keep);
  size_t bytes() const { return (k_.size() + v_.size()) * sizeof(float); }

 private:
  int64_t layer_floats() const { return shape_.capacity * row_floats(); }
  KvCacheShape shape_;
  int64_t length_ = 0;
  std::vector<float> k_;
  std::vector<float> v_;
};

}  // namespace fastgen
