// Staircase KV quantization's pieces: the spec parser and its errors, the step boundaries by
// query position, the cache's rings (writes, rollback, a truncation past what a ring holds), and
// attention split at kv_begin merging back into attention over the whole cache.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/attention.h"
#include "kernels/reference/dequant.h"
#include "kv/kv_cache.h"
#include "kv/staircase.h"

namespace fastgen {
namespace {

TEST(KvStaircaseSpec, ParsesAndNamesTheFlagInErrors) {
  auto s = KvStaircase::Parse("f16:256,q8_0:2048,q4_0");
  ASSERT_TRUE(s.ok()) << s.status().message();
  ASSERT_EQ(s->steps.size(), 3u);
  EXPECT_EQ(s->steps[0].type, DType::kF16);
  EXPECT_EQ(s->steps[1].tokens, 2048);
  EXPECT_EQ(s->steps[2].tokens, -1);
  EXPECT_EQ(s->ToString(), "f16:256,q8_0:2048,q4_0");
  EXPECT_EQ(s->Cumulative(1), 2304);
  auto c = KvStaircase::Parse("f16:128,q4_0c");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_TRUE(c->steps[1].channel_keys);
  EXPECT_EQ(c->steps[1].type, DType::kQ4_0);
  EXPECT_EQ(c->ToString(), "f16:128,q4_0c");
  // q4_0c's per-channel scales: 4 bytes per key channel per 64 tokens.
  EXPECT_NEAR(c->BytesPerToken(64, 128 + 640), (128 * 2.0 * 128 + 640 * (2.0 * 36 + 4.0)) / 768, 1e-9);
  for (const char* bad : {"", "q4_0", "f16:256", "f16,q4_0", "f16:abc,q4_0", "f16:10,q4_0", "q5_0:256,q4_0",
                          "f16:256,q4_0:100", "f16:256,,q4_0", "f16:-64,q4_0", "q4_0c:256,q4_0",
                          "f16:64,f16:64,f16:64,f16:64,f16:64,f16:64,f16:64,f16:64,q4_0"}) {
    auto r = KvStaircase::Parse(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_NE(r.status().message().find("--kv-staircase"), std::string::npos) << r.status().message();
    }
  }
}

TEST(KvStaircaseSpec, StepsBeginOnBlocksByTheQueryPosition) {
  auto s = KvStaircase::Parse("f16:64,q8_0:128,q4_0");
  ASSERT_TRUE(s.ok());
  // Step 0 holds the newest 64..127 tokens; below it step 1 holds 128 more (in blocks of 64).
  EXPECT_EQ(s->TierStart(0, 0), 0);
  EXPECT_EQ(s->TierStart(0, 126), 0);    // 127 tokens, all in step 0
  EXPECT_EQ(s->TierStart(0, 127), 64);   // 128 tokens: the oldest block ages
  EXPECT_EQ(s->TierStart(0, 190), 64);
  EXPECT_EQ(s->TierStart(0, 191), 128);
  EXPECT_EQ(s->TierStart(1, 191), 0);
  EXPECT_EQ(s->TierStart(1, 255), 64);
  for (int64_t p = 0; p < 2000; ++p) {
    const int64_t b0 = s->TierStart(0, p), b1 = s->TierStart(1, p);
    EXPECT_EQ(b0 % kStaircaseBlock, 0);
    EXPECT_LE(b1, b0);
    if (p + 1 >= 64) {
      EXPECT_GE(p + 1 - b0, 64);
      EXPECT_LT(p + 1 - b0, 128);
    }
  }
  // Bytes per token at 8192 tokens: 64 f16 + 128 q8_0 + the rest q4_0, keys and values of 256 elements.
  const double f16 = 2.0 * 512, q8 = 2.0 * 272, q4 = 2.0 * 144;
  EXPECT_NEAR(s->BytesPerToken(256, 8192), (64 * f16 + 128 * q8 + 8000 * q4) / 8192, 1e-9);
}

KvCacheShape Shape(int64_t capacity) { return {2, 2, 32, capacity, DType::kF32}; }

TEST(KvStaircaseCache, RingsHoldTheRecentSlotsAndTruncationFallsBackToOlderSteps) {
  auto spec = KvStaircase::Parse("f32:64,q4_0");
  ASSERT_TRUE(spec.ok());
  auto kv = KvCache::Create(Shape(4096), *spec, 16);  // ring of 64 + 64 + 16 = 144 slots
  ASSERT_TRUE(kv.ok()) << kv.status().message();
  ASSERT_EQ(kv->tier_count(), 2u);
  EXPECT_NE(kv->tier(0, 0, 0).block_table, nullptr);
  EXPECT_EQ(kv->tier(1, 0, 0).block_table, nullptr);
  EXPECT_LT(kv->bytes(), size_t{4096} * 2 * 2 * 64 * 4 / 4);  // far less than an f32 cache
  const int64_t elems = 64;
  std::mt19937 rng(3);
  std::normal_distribution<float> nd;
  std::vector<float> rows(static_cast<size_t>(1000 * elems));
  for (float& x : rows) x = nd(rng);
  for (int64_t at = 0; at < 1000; at += 10) {
    for (int64_t l = 0; l < 2; ++l) kv->StoreRows(l, at, 10, rows.data() + at * elems, rows.data() + at * elems);
    kv->Advance(10);
  }
  std::vector<float> k(elems), v(elems), q4(elems);
  std::vector<uint8_t> block(static_cast<size_t>(elems));
  auto q4_of = [&](int64_t slot) {
    kernels::reference::QuantizeRow(DType::kQ4_0, rows.data() + slot * elems, block.data(), elems);
    kernels::reference::DequantizeRow(DType::kQ4_0, block.data(), q4.data(), elems);
    return q4;
  };
  // The newest slots come back exactly (the f32 ring), older ones as q4_0.
  kv->LoadRows(1, 990, 1, k.data(), v.data());
  EXPECT_EQ(std::vector<float>(rows.begin() + 990 * elems, rows.begin() + 991 * elems), k);
  kv->LoadRows(1, 100, 1, k.data(), v.data());
  EXPECT_EQ(q4_of(100), k);
  EXPECT_EQ(kv->tier(0, 0, 1000).valid_from, 1000 - 144);
  // Rolling back inside the ring keeps the rows; further back, the ring's lost slots come from q4_0.
  kv->Truncate(950);
  EXPECT_EQ(kv->length(), 950);
  kv->LoadRows(0, 949, 1, k.data(), v.data());
  EXPECT_EQ(std::vector<float>(rows.begin() + 949 * elems, rows.begin() + 950 * elems), k);
  kv->Truncate(300);
  kv->LoadRows(0, 299, 1, k.data(), v.data());
  EXPECT_EQ(q4_of(299), k);
  // Rewriting slots after the truncation makes them the ring's again.
  for (int64_t l = 0; l < 2; ++l) kv->StoreRows(l, 300, 10, rows.data() + 500 * elems, rows.data() + 500 * elems);
  kv->Advance(10);
  kv->LoadRows(0, 305, 1, k.data(), v.data());
  EXPECT_EQ(std::vector<float>(rows.begin() + 505 * elems, rows.begin() + 506 * elems), k);
}

// Attention over [0, n) equals attention over [0, b) merged with attention over [b, n) through
// the log-sum-exps, for the reference and the split-K kernels.
TEST(KvStaircaseAttention, SplitAtKvBeginMergesToTheWhole) {
  ThreadPool pool(2);
  const int64_t n_kv = 700, n_head = 4, n_kv_head = 2, d = 64, nq = 3;
  std::mt19937 rng(5);
  std::normal_distribution<float> nd;
  std::vector<float> k(static_cast<size_t>(n_kv * n_kv_head * d)), v(k.size()), q(static_cast<size_t>(nq * n_head * d));
  for (float& x : k) x = nd(rng);
  for (float& x : v) x = nd(rng);
  for (float& x : q) x = nd(rng);
  std::vector<int32_t> slots = {697, 698, 699};
  auto args = [&](float* out, float* lse, int64_t begin, int64_t end) {
    kernels::AttentionArgs a;
    a.q = q.data();
    a.k = k.data();
    a.v = v.data();
    a.out = out;
    a.lse = lse;
    a.n = nq;
    a.n_head = n_head;
    a.n_kv_head = n_kv_head;
    a.head_dim = d;
    a.kv_stride = n_kv_head * d;
    a.n_kv = end;
    a.kv_begin = begin;
    a.q_slot = slots.data();
    a.scale = 0.125f;
    return a;
  };
  const size_t outs = static_cast<size_t>(nq * n_head * d), lses = static_cast<size_t>(nq * n_head);
  for (bool split : {false, true}) {
    std::vector<float> whole(outs), whole_lse(lses), a_out(outs), a_lse(lses), b_out(outs), b_lse(lses);
    auto run = [&](const kernels::AttentionArgs& a) {
      if (split) {
        kernels::Attention(a, pool);
      } else {
        kernels::reference::AttentionRange(a, 0, a.n * a.n_head);
      }
    };
    run(args(whole.data(), whole_lse.data(), 0, n_kv));
    run(args(a_out.data(), a_lse.data(), 0, 320));
    run(args(b_out.data(), b_lse.data(), 320, n_kv));
    kernels::MergeAttention(b_out.data(), b_lse.data(), a_out.data(), a_lse.data(), nq * n_head, d);
    for (size_t i = 0; i < outs; ++i) ASSERT_NEAR(b_out[i], whole[i], 1e-5) << (split ? "split-K " : "reference ") << i;
    for (size_t i = 0; i < lses; ++i) ASSERT_NEAR(b_lse[i], whole_lse[i], 1e-4) << (split ? "split-K " : "reference ") << i;
    // The lse itself: log Σ exp(score) over every slot, computed directly for one head.
    double sum = 0;
    for (int64_t j = 0; j <= slots[0]; ++j) {  // query 0 sees slots up to its own
      double dot = 0;
      for (int64_t e = 0; e < d; ++e) dot += static_cast<double>(q[static_cast<size_t>(e)]) * k[static_cast<size_t>(j * n_kv_head * d + e)];
      sum += std::exp(dot * 0.125);
    }
    EXPECT_NEAR(whole_lse[0], std::log(sum), 1e-3);
  }
}

}  // namespace
}  // namespace fastgen
