#include "kv/kv_cache.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>

#include "kernels/attention.h"
#include "kernels/reference/dequant.h"

namespace fastgen {

Expected<KvCache> KvCache::Create(const KvCacheShape& s) {
  if (s.n_layer <= 0 || s.n_kv_head <= 0 || s.head_dim <= 0 || s.capacity <= 0)
    return InvalidArgument("KV cache shape must be positive");
  if (!kernels::KvTypeSupported(s.type, s.head_dim))
    return InvalidArgument("KV cache type " + std::string(Name(s.type)) + " is not available for head size " +
                           std::to_string(s.head_dim) + " (types: f32, f16, q8_0 and q4_0 with head size a multiple of 32)");
  const std::optional<size_t> row = RowBytes(s.type, s.n_kv_head * s.head_dim);
  if (!row) return InvalidArgument("KV cache row size overflows");
  const double bytes = 2.0 * static_cast<double>(*row) * static_cast<double>(s.n_layer) * static_cast<double>(s.capacity);
  if (bytes > 256.0 * (1ull << 30))
    return InvalidArgument("KV cache of " + std::to_string(s.capacity) + " positions would need " +
                           std::to_string(static_cast<long long>(bytes / (1 << 20))) +
                           " MiB; lower the context size (-c)");
  KvCache c;
  c.shape_ = s;
  c.row_bytes_ = static_cast<int64_t>(*row);
  const size_t n = static_cast<size_t>(s.n_layer * s.capacity) * *row;
  try {
    c.k_.resize(n);
    c.v_.resize(n);
  } catch (const std::bad_alloc&) {
    return InvalidArgument("cannot allocate a KV cache of " + std::to_string(s.capacity) +
                           " positions; lower the context size (-c)");
  }
  return c;
}

float* KvCache::F32(uint8_t* p) {
  if (shape_.type != DType::kF32) {  // a caller bug, not an input error
    std::fprintf(stderr, "fastgen: float32 access to a %s KV cache\n", Name(shape_.type).data());
    std::abort();
  }
  return reinterpret_cast<float*>(p);
}

void KvCache::StoreRows(int64_t layer, int64_t start, int64_t n, const float* k, const float* v) {
  WriteKvSlots(*this, layer, {}, start, n, k, v);
}

void KvCache::LoadRows(int64_t layer, int64_t start, int64_t n, float* k, float* v) const {
  ReadKvSlots(const_cast<KvCache&>(*this), layer, {}, start, n, k, v);
}

void WriteKvSlots(KvStorage& kv, int64_t layer, std::span<const int32_t> blocks, int64_t start, int64_t n,
                  const float* k, const float* v) {
  const int64_t elems = kv.row_elems(), row = kv.row_bytes(), b = kv.block_tokens();
  uint8_t* kd = kv.key_data(layer);
  uint8_t* vd = kv.value_data(layer);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t r = KvRowOfSlot(blocks, b, start + i);
    if (kv.type() == DType::kF32) {
      std::memcpy(kd + r * row, k + i * elems, static_cast<size_t>(row));
      std::memcpy(vd + r * row, v + i * elems, static_cast<size_t>(row));
    } else {
      kernels::reference::QuantizeRow(kv.type(), k + i * elems, kd + r * row, elems);
      kernels::reference::QuantizeRow(kv.type(), v + i * elems, vd + r * row, elems);
    }
  }
}

void ReadKvSlots(KvStorage& kv, int64_t layer, std::span<const int32_t> blocks, int64_t start, int64_t n, float* k,
                 float* v) {
  const int64_t elems = kv.row_elems(), row = kv.row_bytes(), b = kv.block_tokens();
  for (int64_t i = 0; i < n; ++i) {
    const int64_t r = KvRowOfSlot(blocks, b, start + i);
    kernels::reference::DequantizeRow(kv.type(), kv.key_data(layer) + r * row, k + i * elems, elems);
    kernels::reference::DequantizeRow(kv.type(), kv.value_data(layer) + r * row, v + i * elems, elems);
  }
}

Status KvCache::CompactTail(int64_t base, std::span<const int32_t> keep) {
  if (base < 0 || base > length_)
    return InvalidArgument("KV compaction base " + std::to_string(base) + " outside [0, " +
                           std::to_string(length_) + "]");
  const int64_t tail = length_ - base;
  for (size_t i = 0; i < keep.size(); ++i) {
    if (keep[i] < 0 || keep[i] >= tail || (i > 0 && keep[i] <= keep[i - 1]))
      return InvalidArgument("KV compaction offsets must increase within [0, " + std::to_string(tail) + ")");
  }
  const int64_t row = row_bytes_;
  // keep is increasing and keep[i] >= i, so every destination is at or before its source and
  // after every source still to be read: an in-place forward copy never clobbers unread rows.
  for (int64_t l = 0; l < shape_.n_layer; ++l) {
    uint8_t* k = key_data(l);
    uint8_t* v = value_data(l);
    for (size_t i = 0; i < keep.size(); ++i) {
      const int64_t src = (base + keep[i]) * row, dst = (base + static_cast<int64_t>(i)) * row;
      if (src == dst) continue;
      std::memcpy(k + dst, k + src, static_cast<size_t>(row));
      std::memcpy(v + dst, v + src, static_cast<size_t>(row));
    }
  }
  length_ = base + static_cast<int64_t>(keep.size());
  return Status::Ok();
}

Status KvCache::EvictPerHead(int64_t kept, std::span<const int32_t> keep) {
  const int64_t heads = shape_.n_layer * shape_.n_kv_head;
  if (kept < 0 || kept > length_ || static_cast<int64_t>(keep.size()) != heads * kept)
    return InvalidArgument("KV eviction keeps " + std::to_string(kept) + " of " + std::to_string(length_) +
                           " slots with " + std::to_string(keep.size()) + " entries for " + std::to_string(heads) +
                           " layer heads");
  for (int64_t lh = 0; lh < heads; ++lh) {
    const int32_t* list = keep.data() + lh * kept;
    for (int64_t i = 0; i < kept; ++i)
      if (list[i] < 0 || list[i] >= length_ || (i > 0 && list[i] <= list[i - 1]))
        return InvalidArgument("KV eviction slots must increase within [0, " + std::to_string(length_) + ")");
  }
  // A head's part of a row is whole blocks (head_dim is a multiple of the compact types' block).
  const int64_t head_bytes = row_bytes_ / shape_.n_kv_head;
  for (int64_t l = 0; l < shape_.n_layer; ++l) {
    uint8_t* k = key_data(l);
    uint8_t* v = value_data(l);
    for (int64_t h = 0; h < shape_.n_kv_head; ++h) {
      const int32_t* list = keep.data() + (l * shape_.n_kv_head + h) * kept;
      // Increasing sources at or after their destinations: a forward copy reads before it writes.
      for (int64_t i = 0; i < kept; ++i) {
        if (list[i] == i) continue;
        const int64_t src = list[i] * row_bytes_ + h * head_bytes, dst = i * row_bytes_ + h * head_bytes;
        std::memcpy(k + dst, k + src, static_cast<size_t>(head_bytes));
        std::memcpy(v + dst, v + src, static_cast<size_t>(head_bytes));
      }
    }
  }
  evicted_ += length_ - kept;
  length_ = kept;
  return Status::Ok();
}

Status KvCache::CopyFrom(const KvCache& other) {
  if (other.shape_.n_layer != shape_.n_layer || other.row_bytes_ != row_bytes_ || other.shape_.capacity != shape_.capacity)
    return InvalidArgument("KvCache::CopyFrom: caches of different shapes");
  const size_t bytes = static_cast<size_t>(other.length_) * static_cast<size_t>(row_bytes_);
  for (int64_t l = 0; l < shape_.n_layer; ++l) {
    std::memcpy(key_data(l), other.key_data(l), bytes);
    std::memcpy(value_data(l), other.value_data(l), bytes);
  }
  length_ = other.length_;
  evicted_ = other.evicted_;
  return Status::Ok();
}

}  // namespace fastgen
