#include "kv/kv_cache.h"

#include <algorithm>
#include <new>
#include <string>

namespace fastgen {

Expected<KvCache> KvCache::Create(const KvCacheShape& s) {
  if (s.n_layer <= 0 || s.n_kv_head <= 0 || s.head_dim <= 0 || s.capacity <= 0)
    return InvalidArgument("KV cache shape must be positive");
  const double bytes = 2.0 * 4.0 * static_cast<double>(s.n_layer) * s.n_kv_head * s.head_dim * s.capacity;
  if (bytes > 256.0 * (1ull << 30))
    return InvalidArgument("KV cache of " + std::to_string(s.capacity) + " positions would need " +
                           std::to_string(static_cast<long long>(bytes / (1 << 20))) +
                           " MiB; lower the context size (-c)");
  KvCache c;
  c.shape_ = s;
  const size_t n = static_cast<size_t>(s.n_layer * s.capacity * s.n_kv_head * s.head_dim);
  try {
    c.k_.resize(n);
    c.v_.resize(n);
  } catch (const std::bad_alloc&) {
    return InvalidArgument("cannot allocate a KV cache of " + std::to_string(s.capacity) +
                           " positions; lower the context size (-c)");
  }
  return c;
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
  const int64_t row = row_floats();
  // keep is increasing and keep[i] >= i, so every destination is at or before its source and
  // after every source still to be read: an in-place forward copy never clobbers unread rows.
  for (int64_t l = 0; l < shape_.n_layer; ++l) {
    float* k = keys(l);
    float* v = values(l);
    for (size_t i = 0; i < keep.size(); ++i) {
      const int64_t src = (base + keep[i]) * row, dst = (base + static_cast<int64_t>(i)) * row;
      if (src == dst) continue;
      std::copy(k + src, k + src + row, k + dst);
      std::copy(v + src, v + src + row, v + dst);
    }
  }
  length_ = base + static_cast<int64_t>(keep.size());
  return Status::Ok();
}

}  // namespace fastgen
