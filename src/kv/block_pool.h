// The serving runtime's KV memory: fixed-size blocks of slots shared by every sequence (paged
// attention), so memory goes to the tokens that exist rather than to each sequence's worst case.
//
// A block is free, in use (reference count > 0: held by one sequence's block table, or by several
// sharing a prefix), or cached: unused, but holding the keys and values of a full block of prompt
// tokens under a hash of (the previous block's hash, its token ids), so a later request with the
// same prefix takes it instead of recomputing it. Cached blocks are reused least recently
// released first when the free list runs out. Blocks shared by several sequences are read-only:
// a sequence about to write into one takes a private copy (copy-on-write, CopyBlock).
//
// Not thread-safe: the engine's scheduler thread owns it.
#pragma once

#include <cstdint>
#include <list>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

#include "core/dtype.h"
#include "core/status.h"
#include "kv/kv_storage.h"

namespace fastgen {

struct KvBlockPoolShape {
  int64_t n_layer = 0;
  int64_t n_kv_head = 0;
  int64_t head_dim = 0;
  int64_t block_tokens = 16;  // slots per block
  int64_t n_blocks = 0;
  DType type = DType::kF32;   // F32, F16 or Q8_0
};

// The hash of a full block of prompt tokens following the block hashed `previous` (0 for the
// first block): identical prefixes hash identically, different ones (almost surely) not.
uint64_t HashKvBlock(uint64_t previous, std::span<const int32_t> tokens);

class KvBlockPool final : public KvStorage {
 public:
  static Expected<KvBlockPool> Create(const KvBlockPoolShape& shape);

  int64_t n_layer() const override { return shape_.n_layer; }
  int64_t n_kv_head() const override { return shape_.n_kv_head; }
  int64_t head_dim() const override { return shape_.head_dim; }
  DType type() const override { return shape_.type; }
  int64_t block_tokens() const override { return shape_.block_tokens; }
  int64_t row_bytes() const override { return row_bytes_; }
  uint8_t* key_data(int64_t layer) override { return k_.data() + layer * layer_bytes(); }
  uint8_t* value_data(int64_t layer) override { return v_.data() + layer * layer_bytes(); }
  const KvBlockPoolShape& shape() const { return shape_; }
  int64_t n_blocks() const { return shape_.n_blocks; }
  size_t bytes() const { return k_.size() + v_.size(); }

  // A block for a sequence to write (reference count 1): a free one, else the least recently
  // released cached one (its hash is forgotten). nullopt when every block is in use.
  std::optional<int32_t> Allocate();
  // Blocks Allocate can still hand out: free plus cached.
  int64_t available() const { return static_cast<int64_t>(free_.size() + lru_.size()); }
  int64_t in_use() const { return shape_.n_blocks - available(); }
  int64_t cached() const { return static_cast<int64_t>(lru_.size()); }

  void Retain(int32_t block);
  // Drops one reference; at zero the block becomes cached (if it has a hash) or free.
  void Release(int32_t block);
  int32_t refcount(int32_t block) const { return refs_[static_cast<size_t>(block)]; }

  // The block holding a full block of prompt tokens with this hash, retained for the caller, or
  // nullopt (counted in hits() / misses()).
  std::optional<int32_t> Lookup(uint64_t hash);
  // Records that `block` (in use, full of prompt tokens) has this hash. A hash already held by
  // another block keeps that one.
  void Publish(int32_t block, uint64_t hash);
  int64_t hits() const { return hits_; }
  int64_t misses() const { return misses_; }

  // Copies every layer's rows of block `from` into block `to` (copy-on-write).
  void CopyBlock(int32_t from, int32_t to);

 private:
  int64_t layer_bytes() const { return shape_.n_blocks * shape_.block_tokens * row_bytes_; }
  void Forget(int32_t block);  // drops its hash

  KvBlockPoolShape shape_;
  int64_t row_bytes_ = 0;
  std::vector<uint8_t> k_;  // [n_layer, n_blocks · block_tokens, row_bytes]
  std::vector<uint8_t> v_;
  std::vector<int32_t> refs_;                 // [n_blocks]
  std::vector<int32_t> free_;                 // never hashed or forgotten: a stack
  std::list<int32_t> lru_;                    // cached (hashed, unreferenced), oldest first
  std::vector<std::list<int32_t>::iterator> lru_pos_;  // [n_blocks] valid while in lru_
  std::vector<uint8_t> in_lru_;               // [n_blocks]
  std::vector<std::optional<uint64_t>> hash_of_;       // [n_blocks]
  std::unordered_map<uint64_t, int32_t> by_hash_;
  int64_t hits_ = 0;
  int64_t misses_ = 0;
};

}  // namespace fastgen
