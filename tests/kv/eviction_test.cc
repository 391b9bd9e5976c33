// KV eviction: the kept-slot rule, per-head compaction of the cache, and each policy (window,
// H2O, Keyformer) against a direct implementation of its paper's rule that tracks tokens by
// position on a recorded attention trace (random queries and keys, several layers and grouped
// KV heads, a batched prefill then one token at a time).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <vector>

#include "kv/eviction.h"

namespace fastgen {
namespace {

EvictionPolicy Resolved(EvictionKind kind, int64_t budget, int64_t sinks = -1, int64_t recent = -1) {
  EvictionPolicy p;
  p.kind = kind;
  p.budget = budget;
  p.sinks = sinks;
  p.recent = recent;
  auto r = ResolvePolicy(p);
  EXPECT_TRUE(r.ok()) << r.status().message();
  return r.ok() ? *r : p;
}

TEST(Eviction, PolicyDefaultsAndErrorsNameTheFlags) {
  EXPECT_EQ(Resolved(EvictionKind::kWindow, 100).sinks, 4);
  EXPECT_EQ(Resolved(EvictionKind::kWindow, 100).recent, 96);
  EXPECT_EQ(Resolved(EvictionKind::kH2O, 100).recent, 50);
  EXPECT_EQ(Resolved(EvictionKind::kH2O, 100).sinks, 0);
  EXPECT_EQ(Resolved(EvictionKind::kKeyformer, 100).recent, 30);
  EvictionPolicy p;
  p.kind = EvictionKind::kH2O;
  p.budget = 10;
  p.sinks = 4;
  p.recent = 8;
  auto r = ResolvePolicy(p);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("--kv-budget 10"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("--kv-sinks 4"), std::string::npos);
  p.budget = 0;
  EXPECT_NE(ResolvePolicy(p).status().message().find("--kv-budget"), std::string::npos);
  p = EvictionPolicy{};
  p.kind = EvictionKind::kWindow;
  p.budget = 10;
  p.sinks = 2;
  p.recent = 3;  // a window keeps nothing else: 2 + 3 must be the budget
  EXPECT_NE(ResolvePolicy(p).status().message().find("--kv-recent 3"), std::string::npos);
  p.kind = EvictionKind::kKeyformer;
  p.recent = 0;
  EXPECT_FALSE(ResolvePolicy(p).ok());
  // Sinks filling the budget (the window's default recent would be negative), and budgets too
  // small for the default split.
  p = EvictionPolicy{};
  p.kind = EvictionKind::kWindow;
  p.budget = 5;
  p.sinks = 10;
  EXPECT_NE(ResolvePolicy(p).status().message().find("--kv-sinks 10"), std::string::npos);
  p.sinks = 5;
  EXPECT_FALSE(ResolvePolicy(p).ok());
  EXPECT_EQ(Resolved(EvictionKind::kH2O, 1).recent, 1);
  EXPECT_EQ(Resolved(EvictionKind::kKeyformer, 3).recent, 1);
  EXPECT_EQ(Resolved(EvictionKind::kWindow, 1).sinks, 0);
  EXPECT_EQ(EvictionKindFromName("h2o"), EvictionKind::kH2O);
  EXPECT_FALSE(EvictionKindFromName("lru").has_value());
}

// ChooseKept against a different algorithm: drop the lowest-scored middle slot (the newest of
// equal ones) until the budget is met.
TEST(Eviction, ChooseKeptEqualsRemovingTheLowestOneByOne) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 300; ++trial) {
    const int64_t budget = 2 + static_cast<int64_t>(rng() % 20);
    const int64_t length = budget + 1 + static_cast<int64_t>(rng() % 30);
    const int64_t sinks = static_cast<int64_t>(rng() % 3), recent = 1 + static_cast<int64_t>(rng() % (budget - 1));
    if (sinks + recent > budget) continue;
    EvictionPolicy p = Resolved(EvictionKind::kH2O, budget, sinks, recent);
    std::vector<double> scores(static_cast<size_t>(length));
    for (double& s : scores) s = static_cast<double>(rng() % 8);  // many ties
    std::vector<int32_t> kept;
    for (int32_t j = 0; j < length; ++j) kept.push_back(j);
    while (static_cast<int64_t>(kept.size()) > budget) {
      int64_t worst = -1;
      for (int64_t i = sinks; i < static_cast<int64_t>(kept.size()) - recent; ++i)
        if (worst < 0 || scores[static_cast<size_t>(kept[static_cast<size_t>(i)])] <=
                             scores[static_cast<size_t>(kept[static_cast<size_t>(worst)])])
          worst = i;
      kept.erase(kept.begin() + worst);
    }
    EXPECT_EQ(ChooseKept(length, p, scores), kept) << "trial " << trial;
  }
  const EvictionPolicy w = Resolved(EvictionKind::kWindow, 6, 2);
  EXPECT_EQ(ChooseKept(10, w, {}), (std::vector<int32_t>{0, 1, 6, 7, 8, 9}));
  EXPECT_EQ(ChooseKept(4, w, {}), (std::vector<int32_t>{0, 1, 2, 3}));
}

TEST(Eviction, EvictPerHeadMovesEachHeadsRowsAndCountsPositions) {
  for (DType type : {DType::kF32, DType::kF16, DType::kQ8_0, DType::kQ4_0}) {
    const int64_t layers = 2, heads = 2, dim = 32, len = 7;
    auto kv = KvCache::Create({layers, heads, dim, 8, type});
    ASSERT_TRUE(kv.ok());
    std::vector<float> k(static_cast<size_t>(len * heads * dim)), v(k.size());
    for (size_t i = 0; i < k.size(); ++i) {
      k[i] = std::sin(0.37f * static_cast<float>(i));
      v[i] = std::cos(0.11f * static_cast<float>(i));
    }
    std::vector<float> k0(k.size()), v0(v.size());
    for (int64_t l = 0; l < layers; ++l) kv->StoreRows(l, 0, len, k.data(), v.data());
    kv->LoadRows(0, 0, len, k0.data(), v0.data());  // as stored (rounded by the type)
    kv->Advance(len);
    // layer 0: head 0 keeps 0,2,5  head 1 keeps 4,5,6; layer 1: 1,2,3 and 0,1,6
    const std::vector<int32_t> keep = {0, 2, 5, 4, 5, 6, 1, 2, 3, 0, 1, 6};
    ASSERT_TRUE(kv->EvictPerHead(3, keep).ok());
    EXPECT_EQ(kv->length(), 3);
    EXPECT_EQ(kv->evicted(), 4);
    for (int64_t l = 0; l < layers; ++l) {
      std::vector<float> k1(static_cast<size_t>(3 * heads * dim)), v1(k1.size());
      kv->LoadRows(l, 0, 3, k1.data(), v1.data());
      for (int64_t h = 0; h < heads; ++h)
        for (int64_t i = 0; i < 3; ++i) {
          const int64_t src = keep[static_cast<size_t>((l * heads + h) * 3 + i)];
          for (int64_t e = 0; e < dim; ++e) {
            EXPECT_EQ(k1[static_cast<size_t>((i * heads + h) * dim + e)], k0[static_cast<size_t>((src * heads + h) * dim + e)]);
            EXPECT_EQ(v1[static_cast<size_t>((i * heads + h) * dim + e)], v0[static_cast<size_t>((src * heads + h) * dim + e)]);
          }
        }
    }
    EXPECT_FALSE(kv->EvictPerHead(2, std::vector<int32_t>{1, 0, 0, 1, 0, 1, 0, 1}).ok());  // not increasing
    EXPECT_FALSE(kv->EvictPerHead(2, std::vector<int32_t>{0, 1}).ok());                    // too few lists
    EXPECT_FALSE(kv->EvictPerHead(2, std::vector<int32_t>{0, 3, 0, 1, 0, 1, 0, 1}).ok());  // past the length
    EXPECT_EQ(kv->length(), 3);
    kv->Clear();
    EXPECT_EQ(kv->evicted(), 0);
  }
}

// The trace: per layer and position, random keys (value element 0 of each head = the position,
// so a cache slot tells which token it holds) and queries.
struct Trace {
  int64_t layers = 2, kv_heads = 2, heads = 4, dim = 8, tokens = 40;
  std::vector<float> k, v, q;  // [layers, tokens, kv_heads|heads, dim]
  explicit Trace(uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> n(0.0f, 1.0f);
    k.resize(static_cast<size_t>(layers * tokens * kv_heads * dim));
    v.resize(k.size());
    q.resize(static_cast<size_t>(layers * tokens * heads * dim));
    for (float& x : k) x = 1.5f * n(rng);
    for (float& x : q) x = 1.5f * n(rng);
    for (int64_t i = 0; i < static_cast<int64_t>(v.size()); ++i)
      v[static_cast<size_t>(i)] = i % dim == 0 ? static_cast<float>(i / dim / kv_heads % tokens) : n(rng);
  }
  const float* K(int64_t l, int64_t p) const { return k.data() + (l * tokens + p) * kv_heads * dim; }
  const float* V(int64_t l, int64_t p) const { return v.data() + (l * tokens + p) * kv_heads * dim; }
  const float* Q(int64_t l, int64_t p) const { return q.data() + (l * tokens + p) * heads * dim; }
};

// The paper's rule tracked by token position: per layer and KV head, the kept positions in
// order and each position's accumulated score.
struct Direct {
  EvictionPolicy p;
  const Trace& tr;
  std::vector<std::vector<int64_t>> kept;  // [layer * kv_heads + h]
  std::vector<std::map<int64_t, double>> score;
  Direct(const EvictionPolicy& policy, const Trace& trace)
      : p(policy), tr(trace), kept(static_cast<size_t>(trace.layers * trace.kv_heads)),
        score(kept.size()) {}

  void Add(int64_t first, int64_t n) {
    const int64_t group = tr.heads / tr.kv_heads;
    for (auto& list : kept)
      for (int64_t pos = first; pos < first + n; ++pos) list.push_back(pos);
    for (int64_t l = 0; l < tr.layers; ++l)
      for (int64_t pos = first; pos < first + n; ++pos)
        for (int64_t h = 0; h < tr.heads; ++h) {
          const int64_t lh = l * tr.kv_heads + h / group;
          const std::vector<int64_t>& list = kept[static_cast<size_t>(lh)];
          std::vector<double> x;
          for (size_t j = 0; j < list.size() && list[j] <= pos; ++j) {
            double dot = 0;
            for (int64_t e = 0; e < tr.dim; ++e)
              dot += static_cast<double>(tr.Q(l, pos)[h * tr.dim + e]) * tr.K(l, list[j])[(h / group) * tr.dim + e];
            dot /= std::sqrt(static_cast<double>(tr.dim));
            if (p.kind == EvictionKind::kKeyformer) {
              const double tau = p.tau_init + (p.tau_end - p.tau_init) *
                                                  std::min(1.0, static_cast<double>(pos) / static_cast<double>(p.horizon));
              dot = (dot + GumbelNoise(p.seed, l, h, pos, static_cast<int64_t>(j))) / tau;
            }
            x.push_back(dot);
          }
          const double mx = *std::max_element(x.begin(), x.end());
          double sum = 0;
          for (double e : x) sum += std::exp(e - mx);
          for (size_t j = 0; j < x.size(); ++j) score[static_cast<size_t>(lh)][list[j]] += std::exp(x[j] - mx) / sum;
        }
  }
  void Evict() {
    for (size_t lh = 0; lh < kept.size(); ++lh) {
      std::vector<int64_t>& list = kept[lh];
      while (static_cast<int64_t>(list.size()) > p.budget) {
        // Drop the lowest-scored token outside the sinks and the recent window (the newest of equals).
        int64_t worst = -1;
        for (int64_t i = p.sinks; i < static_cast<int64_t>(list.size()) - p.recent; ++i)
          if (worst < 0 || score[lh][list[static_cast<size_t>(i)]] <= score[lh][list[static_cast<size_t>(worst)]])
            worst = i;
        list.erase(list.begin() + worst);
      }
    }
  }
};

void RunTrace(const EvictionPolicy& policy, int64_t prefill) {
  const Trace tr(11);
  KvEvictor ev(policy, tr.layers, tr.kv_heads);
  Direct direct(policy, tr);
  auto kv = KvCache::Create({tr.layers, tr.kv_heads, tr.dim, std::max(prefill, policy.budget) + 1, DType::kF32});
  ASSERT_TRUE(kv.ok());
  for (int64_t pos = 0; pos < tr.tokens;) {
    const int64_t n = pos == 0 ? prefill : 1;
    std::vector<int32_t> q_slot;
    for (int64_t t = 0; t < n; ++t) q_slot.push_back(static_cast<int32_t>(kv->length() + t));
    for (int64_t l = 0; l < tr.layers; ++l) {
      kv->StoreRows(l, kv->length(), n, tr.K(l, pos), tr.V(l, pos));
      kernels::AttentionArgs a;
      a.q = tr.Q(l, pos);
      a.k = kv->key_data(l);
      a.v = kv->value_data(l);
      a.n = n;
      a.n_head = tr.heads;
      a.n_kv_head = tr.kv_heads;
      a.head_dim = tr.dim;
      a.kv_stride = tr.kv_heads * tr.dim;
      a.n_kv = kv->length() + n;
      a.q_slot = q_slot.data();
      a.scale = 1.0f / std::sqrt(static_cast<float>(tr.dim));
      ev.OnAttention(l, a);
    }
    kv->Advance(n);
    direct.Add(pos, n);
    ASSERT_TRUE(ev.Enforce(*kv).ok());
    direct.Evict();
    pos += n;
    EXPECT_EQ(kv->length() + kv->evicted(), pos);
    // Every layer head holds the tokens the direct rule keeps, in order, with their scores.
    for (int64_t l = 0; l < tr.layers; ++l) {
      std::vector<float> keys(static_cast<size_t>(kv->length() * tr.kv_heads * tr.dim)), values(keys.size());
      kv->LoadRows(l, 0, kv->length(), keys.data(), values.data());
      for (int64_t h = 0; h < tr.kv_heads; ++h) {
        const auto& want = direct.kept[static_cast<size_t>(l * tr.kv_heads + h)];
        std::vector<int64_t> got;
        for (int64_t s = 0; s < kv->length(); ++s)
          got.push_back(static_cast<int64_t>(values[static_cast<size_t>((s * tr.kv_heads + h) * tr.dim)]));
        ASSERT_EQ(got, want) << Name(policy.kind) << " layer " << l << " head " << h << " after token " << pos;
        if (ev.wants_attention()) {
          const auto s = ev.scores(l, h);
          ASSERT_EQ(static_cast<int64_t>(s.size()), kv->length());
          for (size_t i = 0; i < want.size(); ++i)
            EXPECT_NEAR(s[i], direct.score[static_cast<size_t>(l * tr.kv_heads + h)][want[i]], 1e-5);
        }
      }
    }
  }
}

TEST(Eviction, WindowKeepsSinksAndRecentOnATrace) { RunTrace(Resolved(EvictionKind::kWindow, 10, 3), 6); }
TEST(Eviction, H2oKeepsTheDirectRulesHeavyHittersOnATrace) {
  RunTrace(Resolved(EvictionKind::kH2O, 12), 9);
  RunTrace(Resolved(EvictionKind::kH2O, 8, 1, 3), 20);  // a prefill past the budget, then sinks
}
TEST(Eviction, KeyformerKeepsTheDirectRulesKeyTokensOnATrace) {
  EvictionPolicy p = Resolved(EvictionKind::kKeyformer, 12);
  p.horizon = 40;
  p.seed = 5;
  RunTrace(p, 9);
}

TEST(Eviction, NoEvictionBelowTheBudget) {
  const EvictionPolicy p = Resolved(EvictionKind::kH2O, 16);
  KvEvictor ev(p, 1, 1);
  auto kv = KvCache::Create({1, 1, 8, 32, DType::kF32});
  ASSERT_TRUE(kv.ok());
  kv->Advance(16);
  auto r = ev.Enforce(*kv);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 0);
  EXPECT_EQ(kv->length(), 16);
  kv->Advance(3);
  EXPECT_EQ(*ev.Enforce(*kv), 3);
  EXPECT_EQ(kv->evicted(), 3);
}

}  // namespace
}  // namespace fastgen
