// What a forward pass needs of wherever keys and values live: per layer, one array of rows (a
// row = one slot's keys or values of every KV head, in the storage's element type), grouped in
// blocks of block_tokens() slots. A sequence's slot s is row blocks[s / B] · B + s % B of that
// array, B = block_tokens(), through the sequence's block table. The dense KvCache of one
// sequence is a single block (no table needed); the serving runtime's KvBlockPool holds many
// sequences in blocks of 16, each with a table of its own.
#pragma once

#include <cstdint>
#include <span>

#include "core/dtype.h"

namespace fastgen {

class KvStorage {
 public:
  virtual ~KvStorage() = default;

  virtual int64_t n_layer() const = 0;
  virtual int64_t n_kv_head() const = 0;
  virtual int64_t head_dim() const = 0;
  virtual DType type() const = 0;  // F32, F16, Q8_0 or Q4_0
  virtual int64_t block_tokens() const = 0;
  virtual int64_t row_bytes() const = 0;
  int64_t row_elems() const { return n_kv_head() * head_dim(); }

  // Layer l's key / value rows, all blocks: [blocks · block_tokens, row_bytes].
  virtual uint8_t* key_data(int64_t layer) = 0;
  virtual uint8_t* value_data(int64_t layer) = 0;

  // Writes slots [start, start + n) of layer l from float32 rows k, v: [n, n_kv_head, head_dim]
  // (WriteKvSlots below; a staircase cache writes every step of it).
  virtual void WriteSlots(int64_t layer, std::span<const int32_t> blocks, int64_t start, int64_t n, const float* k,
                          const float* v);
};

// The row of `slot` through a block table (empty: the storage is one sequence's dense rows).
inline int64_t KvRowOfSlot(std::span<const int32_t> blocks, int64_t block_tokens, int64_t slot) {
  if (blocks.empty()) return slot;
  return static_cast<int64_t>(blocks[static_cast<size_t>(slot / block_tokens)]) * block_tokens + slot % block_tokens;
}

// Writes slots [start, start + n) of a sequence in layer l from float32 rows k, v:
// [n, n_kv_head, head_dim], converted to the storage's type (F16 rounds to nearest, Q8_0 and
// Q4_0 as llama.cpp's reference quantizers).
void WriteKvSlots(KvStorage& kv, int64_t layer, std::span<const int32_t> blocks, int64_t start, int64_t n,
                  const float* k, const float* v);

inline void KvStorage::WriteSlots(int64_t layer, std::span<const int32_t> blocks, int64_t start, int64_t n,
                                  const float* k, const float* v) {
  WriteKvSlots(*this, layer, blocks, start, n, k, v);
}
// Reads them back as float32.
void ReadKvSlots(KvStorage& kv, int64_t layer, std::span<const int32_t> blocks, int64_t start, int64_t n, float* k,
                 float* v);

}  // namespace fastgen
