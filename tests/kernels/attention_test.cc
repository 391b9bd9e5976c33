// The split-K attention against the scalar reference: decode (one query over long caches),
// prefill batches, grouped-query heads, sliding windows, and thread counts that force chunks.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "kernels/attention.h"
#include "kernels/cpu/isa.h"
#include "kernels/reference/dequant.h"

namespace fastgen::kernels {
namespace {

struct Shape {
  int64_t n, n_head, n_kv_head, head_dim, n_kv, window;
};

void Compare(const Shape& s, int threads, DType kv_type = DType::kF32) {
  std::mt19937 rng(static_cast<uint32_t>(s.n * 131 + s.n_kv * 7 + s.head_dim));
  std::normal_distribution<float> dist(0.0f, 1.0f);
  auto fill = [&](std::vector<float>& v, size_t n) {
    v.resize(n);
    for (auto& x : v) x = dist(rng);
  };
  std::vector<float> q, k, v;
  fill(q, static_cast<size_t>(s.n * s.n_head * s.head_dim));
  fill(k, static_cast<size_t>(s.n_kv * s.n_kv_head * s.head_dim));
  fill(v, static_cast<size_t>(s.n_kv * s.n_kv_head * s.head_dim));
  std::vector<int32_t> slot(static_cast<size_t>(s.n));
  for (int64_t t = 0; t < s.n; ++t) slot[static_cast<size_t>(t)] = static_cast<int32_t>(s.n_kv - s.n + t);
  AttentionArgs a;
  a.q = q.data();
  a.k = k.data();
  a.v = v.data();
  // A compact cache: the same rows converted, which both kernels read through their own
  // conversion (reference: the scalar dequantizer; fast path: SIMD per block).
  std::vector<uint8_t> k_bytes, v_bytes;
  if (kv_type != DType::kF32) {
    const int64_t row = s.n_kv_head * s.head_dim;
    const size_t row_bytes = *RowBytes(kv_type, row);
    k_bytes.resize(row_bytes * static_cast<size_t>(s.n_kv));
    v_bytes.resize(k_bytes.size());
    for (int64_t j = 0; j < s.n_kv; ++j) {
      ASSERT_TRUE(reference::QuantizeRow(kv_type, k.data() + j * row, k_bytes.data() + j * row_bytes, row));
      ASSERT_TRUE(reference::QuantizeRow(kv_type, v.data() + j * row, v_bytes.data() + j * row_bytes, row));
    }
    a.k = k_bytes.data();
    a.v = v_bytes.data();
    a.kv_type = kv_type;
  }
  a.n = s.n;
  a.n_head = s.n_head;
  a.n_kv_head = s.n_kv_head;
  a.head_dim = s.head_dim;
  a.kv_stride = s.n_kv_head * s.head_dim;
  a.n_kv = s.n_kv;
  a.q_slot = slot.data();
  a.window = s.window;
  a.scale = 1.0f / std::sqrt(static_cast<float>(s.head_dim));
  std::vector<float> want(q.size()), got(q.size(), 123.0f);
  a.out = want.data();
  reference::AttentionRange(a, 0, s.n * s.n_head);
  ThreadPool pool(threads);
  a.out = got.data();
  Attention(a, pool);
  double num = 0, den = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    num += (got[i] - want[i]) * static_cast<double>(got[i] - want[i]);
    den += want[i] * static_cast<double>(want[i]);
  }
  EXPECT_LT(std::sqrt(num / den), 1e-5) << "n=" << s.n << " heads=" << s.n_head << "/" << s.n_kv_head
                                        << " d=" << s.head_dim << " n_kv=" << s.n_kv << " window=" << s.window
                                        << " threads=" << threads << " kv " << Name(kv_type);
}

TEST(Attention, FastPathMatchesReference) {
  for (cpu::Isa isa : cpu::SupportedIsas()) {
    SCOPED_TRACE(std::string(cpu::IsaName(isa)));
    const cpu::Isa saved = cpu::ActiveIsa();
    ASSERT_TRUE(cpu::ForceIsa(isa));
    for (int threads : {1, 2, 3}) {
      // Head sizes 16 ... 256 reach every register-resident width (32, 64, 128, 256 with 16
      // lanes; 16 ... 128 with 8) and the runtime-length loops (16 and 80 with 16 lanes, 24, 80
      // and 256 with 8). GQA groups of 1 ... 16 heads split into calls of up to 8, 4, 2 or 1
      // heads (by head size and ISA) and every remainder: 7 = 4 + 3 at 64 dims, 5 = 2 + 2 + 1
      // at 128, 12 = 8 + 4 and 6 = 4 + 2 at 32.
      for (const Shape& s : {Shape{1, 6, 2, 64, 1, 0}, Shape{1, 6, 2, 64, 17, 0}, Shape{1, 32, 4, 64, 1000, 0},
                             Shape{1, 8, 8, 128, 5000, 0}, Shape{1, 4, 1, 16, 777, 100}, Shape{7, 6, 2, 64, 300, 0},
                             Shape{33, 4, 2, 32, 33, 0}, Shape{5, 4, 2, 16, 2100, 512}, Shape{1, 4, 2, 24, 50, 0},
                             Shape{64, 32, 4, 64, 64, 0}, Shape{20, 8, 2, 64, 900, 100}, Shape{12, 4, 4, 128, 12, 5},
                             Shape{9, 16, 1, 32, 3000, 0}, Shape{3, 4, 2, 256, 200, 0}, Shape{4, 6, 3, 80, 150, 0},
                             Shape{2, 14, 2, 64, 290, 0}, Shape{1, 10, 2, 128, 400, 0}, Shape{3, 12, 1, 32, 260, 0},
                             Shape{1, 12, 2, 32, 530, 0}})
        Compare(s, threads);
    }
    cpu::ForceIsa(saved);
  }
}

// F16, Q8_0 and Q4_0 caches: the split-K kernels convert each block's rows with SIMD; the reference
// converts with the scalar dequantizer. Both are exact conversions, so the results agree to
// float32 rounding of the attention itself.
TEST(Attention, CompactCacheMatchesReference) {
  for (cpu::Isa isa : cpu::SupportedIsas()) {
    SCOPED_TRACE(std::string(cpu::IsaName(isa)));
    const cpu::Isa saved = cpu::ActiveIsa();
    ASSERT_TRUE(cpu::ForceIsa(isa));
    for (DType type : {DType::kF16, DType::kQ8_0, DType::kQ4_0}) {
      for (int threads : {1, 2}) {
        for (const Shape& s : {Shape{1, 32, 4, 64, 1000, 0}, Shape{1, 6, 2, 64, 17, 0}, Shape{7, 6, 2, 64, 300, 0},
                               Shape{5, 4, 2, 32, 2100, 512}, Shape{3, 4, 2, 256, 200, 0}, Shape{2, 4, 4, 128, 70, 0},
                               Shape{1, 4, 1, 512, 40, 0}, Shape{2, 4, 2, 16, 90, 0}, Shape{1, 6, 3, 80, 150, 0}}) {
          if (!KvTypeSupported(type, s.head_dim)) continue;
          Compare(s, threads, type);
        }
      }
    }
    cpu::ForceIsa(saved);
  }
}

TEST(Attention, KvTypeSupport) {
  EXPECT_TRUE(KvTypeSupported(DType::kF32, 24));
  EXPECT_TRUE(KvTypeSupported(DType::kF16, 80));
  EXPECT_TRUE(KvTypeSupported(DType::kQ8_0, 64));
  EXPECT_FALSE(KvTypeSupported(DType::kQ8_0, 80));
  EXPECT_TRUE(KvTypeSupported(DType::kQ4_0, 64));
  EXPECT_FALSE(KvTypeSupported(DType::kQ4_0, 80));
  EXPECT_FALSE(KvTypeSupported(DType::kQ4_K, 256));
  EXPECT_FALSE(KvTypeSupported(DType::kBF16, 64));
}

// Token trees (speculative verification): a shared prefix plus tree nodes each query sees only
// along its ancestor path, with positions from depth.
TEST(Attention, TreeMaskMatchesReference) {
  std::mt19937 rng(7);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  for (cpu::Isa isa : cpu::SupportedIsas()) {
    SCOPED_TRACE(std::string(cpu::IsaName(isa)));
    const cpu::Isa saved = cpu::ActiveIsa();
    ASSERT_TRUE(cpu::ForceIsa(isa));
    for (int64_t prefix : {0, 5, 700}) {
      for (int64_t window : {0, 4, 300}) {
        const int64_t nodes = 9, n_head = 6, n_kv_head = 2, d = 32, n_kv = prefix + nodes;
        // Parents: -1 = attaches to the prefix.
        const std::vector<int32_t> parent = {-1, 0, 0, 1, 2, 2, -1, 6, 3};
        std::vector<int32_t> depth(nodes), pos(nodes);
        for (int64_t i = 0; i < nodes; ++i) depth[i] = parent[i] < 0 ? 0 : depth[parent[i]] + 1;
        for (int64_t i = 0; i < nodes; ++i) pos[i] = static_cast<int32_t>(prefix + depth[i]);
        std::vector<uint8_t> mask(nodes * nodes, 0);
        for (int64_t t = 0; t < nodes; ++t)
          for (int64_t m = t; m >= 0; m = parent[m]) mask[t * nodes + m] = 1;
        std::vector<float> q(nodes * n_head * d), k(n_kv * n_kv_head * d), v(k.size());
        for (auto* vec : {&q, &k, &v})
          for (auto& x : *vec) x = dist(rng);
        AttentionArgs a;
        a.q = q.data();
        a.k = k.data();
        a.v = v.data();
        a.n = nodes;
        a.n_head = n_head;
        a.n_kv_head = n_kv_head;
        a.head_dim = d;
        a.kv_stride = n_kv_head * d;
        a.n_kv = n_kv;
        a.q_slot = pos.data();
        a.window = window;
        a.tree_mask = mask.data();
        a.tree_pos = pos.data();
        a.tree_start = prefix;
        a.scale = 0.17f;
        std::vector<float> want(q.size()), got(q.size(), 5.0f);
        a.out = want.data();
        reference::AttentionRange(a, 0, nodes * n_head);
        ThreadPool pool(2);
        a.out = got.data();
        Attention(a, pool);
        for (size_t i = 0; i < want.size(); ++i)
          ASSERT_NEAR(got[i], want[i], 1e-5f) << "prefix " << prefix << " window " << window << " at " << i;
      }
    }
    cpu::ForceIsa(saved);
  }
}

}  // namespace
}  // namespace fastgen::kernels
