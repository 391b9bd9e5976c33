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
#include "kv/staircase.h"

namespace fastgen {

struct KvCacheShape {
  int64_t n_layer = 0;
  int64_t n_kv_head = 0;
  int64_t head_dim = 0;
  int64_t capacity = 0;         // positions (the context length of this sequence)
  DType type = DType::kF32;     // element type: F32, F16, or Q8_0 (head_dim a multiple of 32)
};

// One step of a staircase cache as attention reads it (KvCache::tier).
struct KvTierView {
  const uint8_t* k = nullptr;  // layer's key rows, [rows, row_bytes] of `type`
  const uint8_t* v = nullptr;
  DType type = DType::kF32;
  const int32_t* block_table = nullptr;  // a ring: slot s is row table[s / 16] · 16 + s % 16; null: row s
  int64_t valid_from = 0;  // the step holds slots [valid_from, written)
  const float* k_channel_scale = nullptr;  // q4_0c: [slots / 64, row_elems] (kernels::AttentionArgs)
};

// As a KvStorage it is one block of `capacity` slots: the rows of slot s are row s.
class KvCache final : public KvStorage {
 public:
  static Expected<KvCache> Create(const KvCacheShape& shape);
  // Staircase KV quantization (kv/staircase.h): `shape.type` is ignored and every slot is kept
  // in each step's type, the last step densely, the others in rings; `max_append` is the most
  // slots one forward pass appends (the rings' slack).
  static Expected<KvCache> Create(const KvCacheShape& shape, const KvStaircase& staircase, int64_t max_append);
  const KvStaircase& staircase() const { return staircase_; }
  // The bytes such a cache allocates (what Create would make), without making it.
  static double StaircaseBytes(const KvCacheShape& shape, const KvStaircase& staircase, int64_t max_append);

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

  // Staircase KV quantization (shape().staircase): the steps' storage, written by WriteSlots.
  bool has_staircase() const { return !tiers_.empty(); }
  size_t tier_count() const { return tiers_.size(); }
  // Step i of layer l for a pass that has written slots up to `written` (its rings no longer
  // hold what those writes overwrote).
  KvTierView tier(size_t i, int64_t layer, int64_t written) const;
  // The most slots one forward pass may append: the capacity, or a staircase's max_append.
  int64_t max_append() const { return has_staircase() ? max_append_ : shape_.capacity; }
  void WriteSlots(int64_t layer, std::span<const int32_t> blocks, int64_t start, int64_t n, const float* k,
                  const float* v) override;

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
  void Advance(int64_t n);
  // Rolls the cache back to `length` slots (speculative rejection, prompt re-use). Entries past
  // it are dead and are overwritten by the next forward pass.
  void Truncate(int64_t length);
  void Clear() { Truncate(0); evicted_ = 0; }
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
  size_t bytes() const;

 private:
  // One step of a staircase: rows of its type for every slot (the last step) or a ring of
  // `rows` slots; slots [lo, hi) hold valid rows.
  struct Tier {
    DType type = DType::kF32;
    int64_t row_bytes = 0;
    int64_t rows = 0;
    std::vector<uint8_t> k, v;    // [n_layer, rows, row_bytes]
    std::vector<int32_t> table;   // ring: 16-slot block g -> g % (rows / 16); empty: dense
    int64_t lo = 0, hi = 0;
    // q4_0c: keys per channel over 64-slot groups, [n_layer, groups, row_elems] scales; a group's
    // keys are written when its last slot is.
    bool channel_keys = false;
    std::vector<float> scales;
    int64_t groups() const { return (rows + kStaircaseBlock - 1) / kStaircaseBlock; }
    // Layer l's scales of group g: [row_elems].
    float* GroupScales(int64_t layer, int64_t g, int64_t elems) { return scales.data() + (layer * groups() + g) * elems; }
    const float* GroupScales(int64_t layer, int64_t g, int64_t elems) const {
      return scales.data() + (layer * groups() + g) * elems;
    }
    int64_t RowOf(int64_t slot) const {
      return table.empty() ? slot : int64_t{table[static_cast<size_t>(slot / 16)]} * 16 + slot % 16;
    }
  };
  Status CreateTiers();
  static int64_t StepRows(const KvStaircase& staircase, size_t i, int64_t capacity, int64_t max_append);
  // Layer l's key of `slot` as float32 into k, from the most precise step holding it, for a
  // pass that wrote slots [pass_start, pass_end) (with the current hi / lo of each step).
  void ReadBestKey(int64_t layer, int64_t slot, int64_t pass_start, int64_t pass_end, float* k) const;
  // Writes the keys of 64-slot group g of a q4_0c step of layer l from the steps above it.
  void QuantizeChannelGroup(Tier& t, int64_t layer, int64_t g, int64_t pass_start, int64_t pass_end);
  int64_t layer_bytes() const { return shape_.capacity * row_bytes_; }
  float* F32(uint8_t* p);
  KvCacheShape shape_;
  int64_t row_bytes_ = 0;
  int64_t length_ = 0;
  int64_t evicted_ = 0;
  std::vector<uint8_t> k_;  // [n_layer, capacity, row_bytes]
  std::vector<uint8_t> v_;
  std::vector<Tier> tiers_;  // staircase steps, newest first
  KvStaircase staircase_;
  int64_t max_append_ = 0;
};

}  // namespace fastgen
