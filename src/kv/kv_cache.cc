#include "kv/kv_cache.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>

#include "kernels/attention.h"
#include "kernels/reference/dequant.h"

namespace fastgen {

Expected<KvCache> KvCache::Create(const KvCacheShape& s) { return Create(s, {}, 0); }

Expected<KvCache> KvCache::Create(const KvCacheShape& s, const KvStaircase& staircase, int64_t max_append) {
  if (s.n_layer <= 0 || s.n_kv_head <= 0 || s.head_dim <= 0 || s.capacity <= 0)
    return InvalidArgument("KV cache shape must be positive");
  for (const KvStaircaseStep& st : staircase.steps)
    if (!kernels::KvTypeSupported(st.type, s.head_dim))
      return InvalidArgument("--kv-staircase: type " + std::string(Name(st.type)) + " is not available for head size " +
                             std::to_string(s.head_dim) + " (q8_0 and q4_0 need a multiple of 32)");
  if (!kernels::KvTypeSupported(s.type, s.head_dim))
    return InvalidArgument("KV cache type " + std::string(Name(s.type)) + " is not available for head size " +
                           std::to_string(s.head_dim) + " (types: f32, f16, q8_0 and q4_0 with head size a multiple of 32)");
  const std::optional<size_t> row = RowBytes(s.type, s.n_kv_head * s.head_dim);
  if (!row) return InvalidArgument("KV cache row size overflows");
  if (!staircase.empty()) {  // sized by its steps (CreateTiers checks the total)
    KvCache c;
    c.shape_ = s;
    c.staircase_ = staircase;
    c.max_append_ = max_append;
    FG_RETURN_IF_ERROR(c.CreateTiers());
    return c;
  }
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

int64_t KvCache::StepRows(const KvStaircase& staircase, size_t i, int64_t capacity, int64_t max_append) {
  if (i + 1 >= staircase.steps.size()) return capacity;
  // Every slot a pass's queries read from this step, and its own writes: the step's cumulative
  // tokens, a block of aging slack and the largest append, in 16-slot blocks; a ring that would
  // hold the whole context is stored densely instead.
  return std::min(capacity, (staircase.Cumulative(i) + kStaircaseBlock + max_append + 15) / 16 * 16);
}

double KvCache::StaircaseBytes(const KvCacheShape& shape, const KvStaircase& staircase, int64_t max_append) {
  const int64_t elems = shape.n_kv_head * shape.head_dim;
  double total = 0;
  for (size_t i = 0; i < staircase.steps.size(); ++i) {
    const KvStaircaseStep& st = staircase.steps[i];
    const double rows = static_cast<double>(StepRows(staircase, i, shape.capacity, max_append));
    total += 2.0 * rows * static_cast<double>(*RowBytes(st.type, elems)) * static_cast<double>(shape.n_layer);
    if (st.channel_keys)
      total += std::ceil(rows / kStaircaseBlock) * static_cast<double>(elems * shape.n_layer) * sizeof(float);
  }
  return total;
}

Status KvCache::CreateTiers() {
  const KvCacheShape& s = shape_;
  if (max_append_ < 1) return InvalidArgument("staircase KV cache: max_append must be positive");
  if (staircase_.steps.size() < 2 || staircase_.steps.size() > 8)
    return InvalidArgument("--kv-staircase: 2 to 8 steps");
  const int64_t elems = s.n_kv_head * s.head_dim;
  const size_t steps = staircase_.steps.size();
  shape_.type = staircase_.steps[0].type;  // the type a pass writes first (type())
  row_bytes_ = static_cast<int64_t>(*RowBytes(shape_.type, elems));
  double total = 0;
  try {
    for (size_t i = 0; i < steps; ++i) {
      Tier t;
      t.type = staircase_.steps[i].type;
      t.channel_keys = staircase_.steps[i].channel_keys;
      t.row_bytes = static_cast<int64_t>(*RowBytes(t.type, elems));
      t.rows = StepRows(staircase_, i, s.capacity, max_append_);
      if (t.rows < s.capacity) {  // a ring: 16-slot block g is ring block g mod (rows / 16)
        t.table.resize(static_cast<size_t>((s.capacity + 15) / 16));
        for (size_t g = 0; g < t.table.size(); ++g) t.table[g] = static_cast<int32_t>(g % static_cast<size_t>(t.rows / 16));
      }
      total += 2.0 * static_cast<double>(t.rows) * static_cast<double>(t.row_bytes) * static_cast<double>(s.n_layer);
      if (total > 256.0 * (1ull << 30))
        return InvalidArgument("KV cache of " + std::to_string(s.capacity) + " positions would need " +
                               std::to_string(static_cast<long long>(total / (1 << 20))) +
                               " MiB; lower the context size (-c)");
      t.k.resize(static_cast<size_t>(s.n_layer * t.rows * t.row_bytes));
      t.v.resize(t.k.size());
      if (t.channel_keys) {
        if (!t.table.empty()) return InvalidArgument("--kv-staircase: q4_0c must be a step held densely (the last)");
        t.scales.assign(static_cast<size_t>(s.n_layer * t.groups() * elems), 1.0f);
      }
      tiers_.push_back(std::move(t));
    }
  } catch (const std::bad_alloc&) {
    return InvalidArgument("cannot allocate a KV cache of " + std::to_string(s.capacity) +
                           " positions; lower the context size (-c)");
  }
  return Status::Ok();
}

KvTierView KvCache::tier(size_t i, int64_t layer, int64_t written) const {
  const Tier& t = tiers_[i];
  KvTierView view;
  view.k = t.k.data() + layer * t.rows * t.row_bytes;
  view.v = t.v.data() + layer * t.rows * t.row_bytes;
  view.type = t.type;
  view.block_table = t.table.empty() ? nullptr : t.table.data();
  // The pass's own writes overwrote the ring's rows of slots [written - n - rows, written - rows).
  const int64_t lo = t.table.empty() ? t.lo : std::max(t.lo, written - t.rows);
  view.valid_from = lo;
  if (t.channel_keys)
    view.k_channel_scale = t.GroupScales(layer, 0, row_elems());
  return view;
}

void KvCache::ReadBestKey(int64_t layer, int64_t slot, int64_t pass_start, int64_t pass_end, float* k) const {
  const int64_t elems = row_elems();
  for (size_t i = 0; i < tiers_.size(); ++i) {
    const Tier& t = tiers_[i];
    const bool last = i + 1 == tiers_.size();
    bool held;
    if (t.channel_keys) {
      held = slot < pass_start || last;  // its own older groups (a lost ring's fallback)
    } else {
      const int64_t lo = t.table.empty() ? t.lo : std::max(t.lo, pass_end - t.rows);
      held = (slot >= pass_start && slot < pass_end) || (slot >= lo && slot < t.hi && slot < pass_start);
    }
    if (!held && !last) continue;
    const int64_t at = layer * t.rows * t.row_bytes + t.RowOf(slot) * t.row_bytes;
    kernels::reference::DequantizeRow(t.type, t.k.data() + at, k, elems);
    if (t.channel_keys) {
      const float* sc = t.GroupScales(layer, slot / kStaircaseBlock, elems);
      for (int64_t c = 0; c < elems; ++c) k[c] *= sc[c];
    }
    return;
  }
}

void KvCache::QuantizeChannelGroup(Tier& t, int64_t layer, int64_t g, int64_t pass_start, int64_t pass_end) {
  const int64_t elems = row_elems(), first = g * kStaircaseBlock;
  std::vector<float> keys(static_cast<size_t>(kStaircaseBlock * elems));  // [64, elems]
  for (int64_t j = 0; j < kStaircaseBlock; ++j) ReadBestKey(layer, first + j, pass_start, pass_end, keys.data() + j * elems);
  float* sc = t.GroupScales(layer, g, elems);
  for (int64_t c = 0; c < elems; ++c) {
    float big = 0;
    for (int64_t j = 0; j < kStaircaseBlock; ++j) big = std::max(big, std::abs(keys[static_cast<size_t>(j * elems + c)]));
    sc[c] = big > 0 ? big : 1.0f;
  }
  uint8_t* kd = t.k.data() + layer * t.rows * t.row_bytes;
  for (int64_t j = 0; j < kStaircaseBlock; ++j) {
    float* row = keys.data() + j * elems;
    for (int64_t c = 0; c < elems; ++c) row[c] /= sc[c];
    kernels::reference::QuantizeRow(t.type, row, kd + t.RowOf(first + j) * t.row_bytes, elems);
  }
}

void KvCache::WriteSlots(int64_t layer, std::span<const int32_t> blocks, int64_t start, int64_t n, const float* k,
                         const float* v) {
  if (tiers_.empty()) {
    WriteKvSlots(*this, layer, blocks, start, n, k, v);
    return;
  }
  // Every step receives every slot, each quantized from the float32 rows; a q4_0c step's keys
  // go in whole groups, from the steps above it (written first), when a group's last slot is.
  const int64_t elems = row_elems();
  for (Tier& t : tiers_) {
    uint8_t* kd = t.k.data() + layer * t.rows * t.row_bytes;
    uint8_t* vd = t.v.data() + layer * t.rows * t.row_bytes;
    for (int64_t i = 0; i < n; ++i) {
      const int64_t r = t.RowOf(start + i);
      if (!t.channel_keys) kernels::reference::QuantizeRow(t.type, k + i * elems, kd + r * t.row_bytes, elems);
      kernels::reference::QuantizeRow(t.type, v + i * elems, vd + r * t.row_bytes, elems);
    }
    if (!t.channel_keys) continue;
    for (int64_t g = start / kStaircaseBlock; (g + 1) * kStaircaseBlock <= start + n; ++g)
      if ((g + 1) * kStaircaseBlock - 1 >= start) QuantizeChannelGroup(t, layer, g, start, start + n);
  }
}

void KvCache::Advance(int64_t n) {
  length_ += n;
  for (Tier& t : tiers_) {
    t.hi = length_;
    if (!t.table.empty()) t.lo = std::max(t.lo, t.hi - t.rows);
  }
}

void KvCache::Truncate(int64_t length) {
  if (length >= length_) return;
  length_ = length < 0 ? 0 : length;
  for (Tier& t : tiers_) {
    t.hi = std::min(t.hi, length_);
    t.lo = std::min(t.lo, t.hi);
  }
}

size_t KvCache::bytes() const {
  size_t total = k_.size() + v_.size();
  for (const Tier& t : tiers_) total += t.k.size() + t.v.size() + t.scales.size() * sizeof(float);
  return total;
}

float* KvCache::F32(uint8_t* p) {
  if (shape_.type != DType::kF32 || !tiers_.empty()) {  // a caller bug, not an input error
    std::fprintf(stderr, "fastgen: float32 access to a %s KV cache\n", Name(shape_.type).data());
    std::abort();
  }
  return reinterpret_cast<float*>(p);
}

void KvCache::StoreRows(int64_t layer, int64_t start, int64_t n, const float* k, const float* v) {
  WriteSlots(layer, {}, start, n, k, v);
}

void KvCache::LoadRows(int64_t layer, int64_t start, int64_t n, float* k, float* v) const {
  if (tiers_.empty()) {
    ReadKvSlots(const_cast<KvCache&>(*this), layer, {}, start, n, k, v);
    return;
  }
  // A staircase: each slot from the most precise step still holding it (the last holds all).
  const int64_t elems = row_elems();
  for (int64_t i = 0; i < n; ++i) {
    const int64_t slot = start + i;
    size_t ti = 0;
    while (ti + 1 < tiers_.size() && !(slot >= tiers_[ti].lo && slot < tiers_[ti].hi)) ++ti;
    const Tier& t = tiers_[ti];
    const int64_t at = layer * t.rows * t.row_bytes + t.RowOf(slot) * t.row_bytes;
    kernels::reference::DequantizeRow(t.type, t.k.data() + at, k + i * elems, elems);
    kernels::reference::DequantizeRow(t.type, t.v.data() + at, v + i * elems, elems);
    if (t.channel_keys) {
      const float* sc = t.GroupScales(layer, slot / kStaircaseBlock, elems);
      for (int64_t c = 0; c < elems; ++c) k[i * elems + c] *= sc[c];
    }
  }
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
  for (Tier& t : tiers_) {  // a staircase: the tail is recent, in every step's ring
    for (int64_t l = 0; l < shape_.n_layer; ++l) {
      uint8_t* k = t.k.data() + l * t.rows * t.row_bytes;
      uint8_t* v = t.v.data() + l * t.rows * t.row_bytes;
      for (size_t i = 0; i < keep.size(); ++i) {
        const int64_t src = t.RowOf(base + keep[i]) * t.row_bytes;
        const int64_t dst = t.RowOf(base + static_cast<int64_t>(i)) * t.row_bytes;
        if (src == dst) continue;
        std::memcpy(k + dst, k + src, static_cast<size_t>(t.row_bytes));
        std::memcpy(v + dst, v + src, static_cast<size_t>(t.row_bytes));
      }
    }
  }
  if (!tiers_.empty()) {
    const int64_t end = base + static_cast<int64_t>(keep.size());
    Truncate(end);
    // A q4_0c group completed inside the tail was written from the rows before the move.
    for (Tier& t : tiers_) {
      if (!t.channel_keys) continue;
      for (int64_t l = 0; l < shape_.n_layer; ++l)
        for (int64_t g = base / kStaircaseBlock; (g + 1) * kStaircaseBlock <= end; ++g)
          QuantizeChannelGroup(t, l, g, end, end);
    }
    return Status::Ok();
  }
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
  if (!tiers_.empty()) return InvalidArgument("KV eviction does not combine with --kv-staircase");
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
  if (other.shape_.n_layer != shape_.n_layer || other.row_bytes_ != row_bytes_ || other.shape_.capacity != shape_.capacity ||
      other.tiers_.size() != tiers_.size())
    return InvalidArgument("KvCache::CopyFrom: caches of different shapes");
  if (!tiers_.empty()) {
    for (size_t i = 0; i < tiers_.size(); ++i) {
      if (tiers_[i].rows != other.tiers_[i].rows || tiers_[i].type != other.tiers_[i].type)
        return InvalidArgument("KvCache::CopyFrom: caches of different staircases");
      tiers_[i].k = other.tiers_[i].k;
      tiers_[i].v = other.tiers_[i].v;
      tiers_[i].scales = other.tiers_[i].scales;
      tiers_[i].lo = other.tiers_[i].lo;
      tiers_[i].hi = other.tiers_[i].hi;
    }
    length_ = other.length_;
    evicted_ = other.evicted_;
    return Status::Ok();
  }
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
