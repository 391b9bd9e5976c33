// KvBlockPool: allocation, reference counts, the prefix cache (hash lookups, LRU reuse of
// released blocks, hashes forgotten on reuse) and copy-on-write copies.
#include <gtest/gtest.h>

#include <set>
#include <vector>

#include "kv/block_pool.h"

namespace fastgen {
namespace {

KvBlockPool MakePool(int64_t blocks, DType type = DType::kF32) {
  auto p = KvBlockPool::Create({2, 2, 32, 16, blocks, type});
  EXPECT_TRUE(p.ok()) << p.status().message();
  return std::move(*p);
}

TEST(KvBlockPool, AllocatesEveryBlockOnceThenRunsOut) {
  KvBlockPool pool = MakePool(5);
  std::set<int32_t> got;
  for (int i = 0; i < 5; ++i) {
    auto b = pool.Allocate();
    ASSERT_TRUE(b.has_value());
    EXPECT_TRUE(got.insert(*b).second);
    EXPECT_EQ(pool.refcount(*b), 1);
  }
  EXPECT_FALSE(pool.Allocate().has_value());
  EXPECT_EQ(pool.in_use(), 5);
  pool.Release(*got.begin());
  EXPECT_EQ(pool.available(), 1);
  EXPECT_EQ(pool.Allocate(), *got.begin());
}

TEST(KvBlockPool, SharedBlocksAreFreedByTheLastHolder) {
  KvBlockPool pool = MakePool(2);
  const int32_t b = *pool.Allocate();
  pool.Retain(b);
  EXPECT_EQ(pool.refcount(b), 2);
  pool.Release(b);
  EXPECT_EQ(pool.in_use(), 1);
  pool.Release(b);
  EXPECT_EQ(pool.in_use(), 0);
  pool.Release(b);  // one release too many is ignored, never negative
  EXPECT_EQ(pool.refcount(b), 0);
  EXPECT_EQ(pool.available(), 2);
}

TEST(KvBlockPool, PrefixHitsReturnThePublishedBlockUntilItIsReused) {
  KvBlockPool pool = MakePool(3);
  const std::vector<int32_t> a = {1, 2, 3}, b = {1, 2, 4};
  const uint64_t ha = HashKvBlock(0, a), hb = HashKvBlock(0, b);
  EXPECT_NE(ha, hb);
  EXPECT_NE(HashKvBlock(ha, a), HashKvBlock(0, a));  // the previous block is part of the key
  const int32_t x = *pool.Allocate();
  pool.Publish(x, ha);
  // In use: a lookup shares it.
  EXPECT_EQ(pool.Lookup(ha), x);
  EXPECT_EQ(pool.refcount(x), 2);
  EXPECT_FALSE(pool.Lookup(hb).has_value());
  EXPECT_EQ(pool.hits(), 1);
  EXPECT_EQ(pool.misses(), 1);
  pool.Release(x);
  pool.Release(x);
  // Released but cached: still found, and counted as available.
  EXPECT_EQ(pool.cached(), 1);
  EXPECT_EQ(pool.available(), 3);
  EXPECT_EQ(pool.Lookup(ha), x);
  EXPECT_EQ(pool.cached(), 0);
  pool.Release(x);
  // Free blocks go first; the cached one is reused last, and then forgets its hash.
  const int32_t y = *pool.Allocate(), z = *pool.Allocate();
  EXPECT_NE(y, x);
  EXPECT_NE(z, x);
  EXPECT_EQ(pool.Lookup(ha), x);
  pool.Release(x);
  EXPECT_EQ(*pool.Allocate(), x);
  EXPECT_FALSE(pool.Lookup(ha).has_value());
}

TEST(KvBlockPool, LeastRecentlyReleasedCachedBlockIsReusedFirst) {
  KvBlockPool pool = MakePool(3);
  std::vector<int32_t> blocks;
  for (int i = 0; i < 3; ++i) {
    blocks.push_back(*pool.Allocate());
    pool.Publish(blocks.back(), 100 + i);
  }
  pool.Release(blocks[1]);
  pool.Release(blocks[0]);
  pool.Release(blocks[2]);
  EXPECT_EQ(*pool.Allocate(), blocks[1]);
  EXPECT_FALSE(pool.Lookup(101).has_value());
  EXPECT_TRUE(pool.Lookup(100).has_value());
}

TEST(KvBlockPool, CopyBlockCopiesEveryLayer) {
  KvBlockPool pool = MakePool(2, DType::kF16);
  const int32_t a = *pool.Allocate(), b = *pool.Allocate();
  const size_t block_bytes = static_cast<size_t>(pool.block_tokens() * pool.row_bytes());
  for (int64_t l = 0; l < pool.n_layer(); ++l)
    for (size_t i = 0; i < block_bytes; ++i) {
      pool.key_data(l)[static_cast<size_t>(a) * block_bytes + i] = static_cast<uint8_t>(i + l);
      pool.value_data(l)[static_cast<size_t>(a) * block_bytes + i] = static_cast<uint8_t>(3 * i + l);
    }
  pool.CopyBlock(a, b);
  for (int64_t l = 0; l < pool.n_layer(); ++l)
    for (size_t i = 0; i < block_bytes; ++i) {
      ASSERT_EQ(pool.key_data(l)[static_cast<size_t>(b) * block_bytes + i], static_cast<uint8_t>(i + l));
      ASSERT_EQ(pool.value_data(l)[static_cast<size_t>(b) * block_bytes + i], static_cast<uint8_t>(3 * i + l));
    }
}

TEST(KvBlockPool, BadShapesAreRefused) {
  EXPECT_FALSE(KvBlockPool::Create({2, 2, 32, 10, 4, DType::kF32}).ok());   // not a multiple of 16
  EXPECT_FALSE(KvBlockPool::Create({2, 2, 30, 16, 4, DType::kQ8_0}).ok());  // head not a multiple of 32
  EXPECT_FALSE(KvBlockPool::Create({2, 2, 32, 16, 0, DType::kF32}).ok());
  EXPECT_FALSE(KvBlockPool::Create({1 << 20, 64, 128, 16, 1 << 20, DType::kF32}).ok());  // absurd size
}

}  // namespace
}  // namespace fastgen
