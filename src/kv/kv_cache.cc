#include "kv/kv_cache.h"

#include <new>

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

}  // namespace fastgen
