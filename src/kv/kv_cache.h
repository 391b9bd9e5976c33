// The key/value cache of one sequence: per layer, the keys and values of every position decoded
// so far, so each new token attends to the past without recomputing it. Rows are float32 by
// default (exact); F16 and Q8_0 halve and nearly quarter the memory and the bytes decoding reads
// per token at long contexts, at a rounding cost the golden tests measure.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/dtype.h"
#include "core/status.h"
#include "kv/kv_storage.h"

namespace fastgen {

struct KvCacheShape {
  int64_t n_layer = 0;
  int64_t n_kv_head = 0;
  int64_t head_dim = 0;
  int64_t capacity = 0;         // positions (the context length of this sequence)
  DType type = DType::kF32;     // element type: F32, F16, or Q8_0 (head_dim a multiple of 32)
};

// As a KvStorage it is one block of `capacity` slots: the rows of slot s are row s.
class KvCache final : public KvStorage {
 public:
  static Expected<KvCache> Create(const KvCacheShape& shape);

  const KvCacheShape& shape() const { return shape_; }
  DType type() const override { return shape_.type; }
  int64_t capacity() const { return shape_.capacity; }
  // Slots [0, length) hold valid entries.
  int64_t length() const { return length_; }
  int64_t row_bytes() const override { return row_bytes_; }
  int64_t n_layer() const override { return shape_.n_layer; }
  int64_t n_kv_head() const override { return shape_.n_kv_head; }
  int64_t head_dim() const override { return shape_.head_dim; }
  int64_t block_tokens() const override { return shape_.capacity; }

  // Layer l's keys / values: [capacity, n_kv_head, head_dim] elements of type().
  uint8_t* key_data(int64_t layer) override { return k_.data() + layer * layer_bytes(); }
  uint8_t* value_data(int64_t layer) override { return v_.data() + layer * layer_bytes(); }
  const uint8_t* key_data(int64_t layer) const { return k_.data() + layer * layer_bytes(); }
  const uint8_t* value_data(int64_t layer) const { return v_.data() + layer * layer_bytes(); }
  // The same as float32 rows; only for an F32 cache (a forward pass writes those in place).
  float* keys(int64_t layer) { return F32(key_data(layer)); }
  float* values(int64_t layer) { return F32(value_data(layer)); }

  // Writes slots [start, start + n) of layer l from float32 rows k, v: [n, n_kv_head, head_dim],
  // converted to type() (F16 rounds to nearest; Q8_0 as llama.cpp's reference quantizer).
  void StoreRows(int64_t layer, int64_t start, int64_t n, const float* k, const float* v);
  // Reads slots [start, start + n) of layer l back as float32 into k, v: [n, n_kv_head, head_dim].
  void LoadRows(int64_t layer, int64_t start, int64_t n, float* k, float* v) const;

  // Marks n more slots valid after a forward pass wrote them.
  void Advance(int64_t n) { length_ += n; }
  // Rolls the cache back to `length` slots (speculative rejection, prompt re-use). Entries past
  // it are dead and are overwritten by the next forward pass.
  void Truncate(int64_t length) { if (length < length_) length_ = length < 0 ? 0 : length; }
  void Clear() { length_ = evicted_ = 0; }
  // Makes this cache hold `other`'s first length() slots (same shape and type): a beam taking
  // over another's history. Copies only the valid rows of each layer.
  Status CopyFrom(const KvCache& other);
  // Tokens evicted so far (EvictPerHead): the next token's position in the text is
  // length() + evicted(), its slot length().
  int64_t evicted() const { return evicted_; }
  // KV eviction: keeps, in every layer and KV head separately, the `kept` slots listed for it
  // (keep[(layer * n_kv_head + head) * kept + i], increasing within each list), moved to slots
  // 0 .. kept - 1 of that head, and shortens the cache to `kept` slots. Each head may keep other
  // tokens; keys carry their positions (RoPE was applied when they were written), so attention
  // over the kept slots is attention over those tokens. Fails without touching the cache on a
  // list out of range or out of order.
  Status EvictPerHead(int64_t kept, std::span<const int32_t> keep);
  // Tree rollback: of the slots [base, length) a token-tree verification appended, keeps those
  // at base + keep[i] (strictly increasing offsets: an accepted root-to-leaf path), moving them
  // to be contiguous at base + i in every layer, and truncates to base + keep.size(). Fails
  // without touching the cache on offsets out of range or out of order.
  Status CompactTail(int64_t base, std::span<const int32_t> keep);
  size_t bytes() const { return k_.size() + v_.size(); }

 private:
  int64_t layer_bytes() const { return shape_.capacity * row_bytes_; }
  float* F32(uint8_t* p);
  KvCacheShape shape_;
  int64_t row_bytes_ = 0;
  int64_t length_ = 0;
  int64_t evicted_ = 0;
  std::vector<uint8_t> k_;  // [n_layer, capacity, row_bytes]
  std::vector<uint8_t> v_;
};

}  // namespace fastgen
