#include "kv/block_pool.h"

#include <cstring>
#include <iterator>
#include <new>
#include <string>

#include "kernels/attention.h"

namespace fastgen {

uint64_t HashKvBlock(uint64_t previous, std::span<const int32_t> tokens) {
  // FNV-1a over the previous hash and the ids, then a 64-bit finalizer (splitmix64's): cheap,
  // and a chance collision of two different prefixes is ~2^-64 per pair.
  uint64_t h = 1469598103934665603ull ^ previous;
  auto mix = [&h](uint64_t v) {
    for (int i = 0; i < 8; ++i) {
      h ^= (v >> (8 * i)) & 0xff;
      h *= 1099511628211ull;
    }
  };
  mix(previous);
  mix(tokens.size());
  for (int32_t t : tokens) mix(static_cast<uint32_t>(t));
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebull;
  return h ^ (h >> 31);
}

Expected<KvBlockPool> KvBlockPool::Create(const KvBlockPoolShape& s) {
  if (s.n_layer <= 0 || s.n_kv_head <= 0 || s.head_dim <= 0 || s.block_tokens <= 0 || s.n_blocks <= 0)
    return InvalidArgument("KV block pool shape must be positive");
  if (s.block_tokens % 16 != 0)
    return InvalidArgument("KV blocks must hold a multiple of 16 slots (the attention kernels' block)");
  if (!kernels::KvTypeSupported(s.type, s.head_dim))
    return InvalidArgument("KV cache type " + std::string(Name(s.type)) + " is not available for head size " +
                           std::to_string(s.head_dim));
  const std::optional<size_t> row = RowBytes(s.type, s.n_kv_head * s.head_dim);
  if (!row) return InvalidArgument("KV row size overflows");
  const double bytes = 2.0 * static_cast<double>(*row) * static_cast<double>(s.n_layer) *
                       static_cast<double>(s.n_blocks) * static_cast<double>(s.block_tokens);
  if (bytes > 256.0 * (1ull << 30))
    return InvalidArgument("a KV pool of " + std::to_string(s.n_blocks * s.block_tokens) + " tokens would need " +
                           std::to_string(static_cast<long long>(bytes / (1 << 20))) + " MiB; lower -c");
  KvBlockPool p;
  p.shape_ = s;
  p.row_bytes_ = static_cast<int64_t>(*row);
  try {
    const size_t n = static_cast<size_t>(s.n_layer * s.n_blocks * s.block_tokens) * *row;
    p.k_.resize(n);
    p.v_.resize(n);
  } catch (const std::bad_alloc&) {
    return InvalidArgument("cannot allocate a KV pool of " + std::to_string(s.n_blocks * s.block_tokens) +
                           " tokens; lower -c");
  }
  const size_t nb = static_cast<size_t>(s.n_blocks);
  p.refs_.assign(nb, 0);
  p.lru_pos_.resize(nb);
  p.in_lru_.assign(nb, 0);
  p.hash_of_.assign(nb, std::nullopt);
  p.free_.reserve(nb);
  for (int64_t b = s.n_blocks - 1; b >= 0; --b) p.free_.push_back(static_cast<int32_t>(b));  // 0 first
  return p;
}

std::optional<int32_t> KvBlockPool::Allocate() {
  int32_t b;
  if (!free_.empty()) {
    b = free_.back();
    free_.pop_back();
  } else if (!lru_.empty()) {
    b = lru_.front();
    lru_.pop_front();
    in_lru_[static_cast<size_t>(b)] = 0;
    Forget(b);
  } else {
    return std::nullopt;
  }
  refs_[static_cast<size_t>(b)] = 1;
  return b;
}

void KvBlockPool::Retain(int32_t b) {
  const size_t i = static_cast<size_t>(b);
  if (refs_[i] == 0 && in_lru_[i]) {  // a cached block comes back into use
    lru_.erase(lru_pos_[i]);
    in_lru_[i] = 0;
  }
  ++refs_[i];
}

void KvBlockPool::Release(int32_t b) {
  const size_t i = static_cast<size_t>(b);
  if (refs_[i] <= 0) return;  // a caller bug; never let the count go negative
  if (--refs_[i] > 0) return;
  if (hash_of_[i]) {
    lru_.push_back(b);
    lru_pos_[i] = std::prev(lru_.end());
    in_lru_[i] = 1;
  } else {
    free_.push_back(b);
  }
}

std::optional<int32_t> KvBlockPool::Lookup(uint64_t hash) {
  const auto it = by_hash_.find(hash);
  if (it == by_hash_.end()) {
    ++misses_;
    return std::nullopt;
  }
  ++hits_;
  Retain(it->second);
  return it->second;
}

void KvBlockPool::Publish(int32_t b, uint64_t hash) {
  const size_t i = static_cast<size_t>(b);
  if (hash_of_[i] || by_hash_.count(hash)) return;
  hash_of_[i] = hash;
  by_hash_[hash] = b;
}

void KvBlockPool::Forget(int32_t b) {
  const size_t i = static_cast<size_t>(b);
  if (!hash_of_[i]) return;
  const auto it = by_hash_.find(*hash_of_[i]);
  if (it != by_hash_.end() && it->second == b) by_hash_.erase(it);
  hash_of_[i] = std::nullopt;
}

void KvBlockPool::CopyBlock(int32_t from, int32_t to) {
  const size_t bytes = static_cast<size_t>(shape_.block_tokens * row_bytes_);
  for (int64_t l = 0; l < shape_.n_layer; ++l) {
    std::memcpy(key_data(l) + static_cast<size_t>(to) * bytes, key_data(l) + static_cast<size_t>(from) * bytes, bytes);
    std::memcpy(value_data(l) + static_cast<size_t>(to) * bytes, value_data(l) + static_cast<size_t>(from) * bytes,
                bytes);
  }
}

}  // namespace fastgen
