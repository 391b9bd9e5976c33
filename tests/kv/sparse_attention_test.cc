// TidalDecode's token selection: the layer layout scaled to the model, its errors, and the
// selected slots against a direct computation (softmax per query head in double, summed over
// heads, top-k with the older slot first among equals, the query's own slot always read).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "kv/sparse_attention.h"

namespace fastgen {
namespace {

TidalSelector Make(int64_t top_k, int64_t n_layer, std::vector<int32_t> layers = {}) {
  SparseAttentionConfig c;
  c.top_k = top_k;
  c.select_layers = std::move(layers);
  auto s = TidalSelector::Create(c, n_layer);
  EXPECT_TRUE(s.ok()) << s.status().message();
  return std::move(*s);
}

TEST(TidalDecode, LayerLayoutScaledToTheModel) {
  EXPECT_EQ(Make(64, 32).config().select_layers, (std::vector<int32_t>{2, 13}));  // the paper's Llama-3-8B
  EXPECT_EQ(Make(64, 8).config().select_layers, (std::vector<int32_t>{2}));
  EXPECT_EQ(Make(64, 4).config().select_layers, (std::vector<int32_t>{1}));
  const TidalSelector s = Make(64, 32);
  EXPECT_EQ(s.role(0), TidalSelector::Role::kDense);
  EXPECT_EQ(s.role(1), TidalSelector::Role::kDense);
  EXPECT_EQ(s.role(2), TidalSelector::Role::kSelect);
  EXPECT_EQ(s.role(3), TidalSelector::Role::kSparse);
  EXPECT_EQ(s.role(13), TidalSelector::Role::kSelect);
  EXPECT_EQ(s.role(31), TidalSelector::Role::kSparse);
  EXPECT_EQ(Make(8, 6, {4, 1}).config().select_layers, (std::vector<int32_t>{1, 4}));

  SparseAttentionConfig c;
  EXPECT_NE(TidalSelector::Create(c, 8).status().message().find("--sparse-topk"), std::string::npos);
  c.top_k = 4;
  c.select_layers = {8};
  EXPECT_NE(TidalSelector::Create(c, 8).status().message().find("--sparse-layers: layer 8 outside [0, 8)"),
            std::string::npos);
  c.select_layers = {3, 3};
  EXPECT_NE(TidalSelector::Create(c, 8).status().message().find("twice"), std::string::npos);
}

TEST(TidalDecode, SelectsTheTopKByAttentionSummedOverHeads) {
  const int64_t kv_heads = 2, heads = 6, dim = 16, n_kv = 50;
  std::mt19937 rng(3);
  std::normal_distribution<float> n(0.0f, 1.0f);
  std::vector<float> k(static_cast<size_t>(n_kv * kv_heads * dim)), v(k.size()), q(static_cast<size_t>(heads * dim));
  for (float& x : k) x = 2 * n(rng);
  for (float& x : v) x = n(rng);
  for (float& x : q) x = n(rng);
  const int32_t q_slot = n_kv - 1;
  kernels::AttentionArgs a;
  a.q = q.data();
  a.k = k.data();
  a.v = v.data();
  a.n = 1;
  a.n_head = heads;
  a.n_kv_head = kv_heads;
  a.head_dim = dim;
  a.kv_stride = kv_heads * dim;
  a.n_kv = n_kv;
  a.q_slot = &q_slot;
  a.scale = 0.25f;
  for (int64_t top_k : {1, 7, 20, 49, 200}) {
    TidalSelector s = Make(top_k, 8);
    s.Select(a);
    // Direct: the attention each slot receives, summed over the query heads.
    std::vector<double> score(static_cast<size_t>(n_kv), 0.0);
    for (int64_t h = 0; h < heads; ++h) {
      const int64_t kvh = h / (heads / kv_heads);
      std::vector<double> x(static_cast<size_t>(n_kv));
      for (int64_t j = 0; j < n_kv; ++j) {
        double dot = 0;
        for (int64_t e = 0; e < dim; ++e) dot += static_cast<double>(q[static_cast<size_t>(h * dim + e)]) *
                                                  k[static_cast<size_t>((j * kv_heads + kvh) * dim + e)];
        x[static_cast<size_t>(j)] = dot * 0.25;
      }
      const double mx = *std::max_element(x.begin(), x.end());
      double z = 0;
      for (double e : x) z += std::exp(e - mx);
      for (int64_t j = 0; j < n_kv; ++j) score[static_cast<size_t>(j)] += std::exp(x[static_cast<size_t>(j)] - mx) / z;
    }
    std::vector<int32_t> order(static_cast<size_t>(n_kv - 1));
    for (int32_t j = 0; j < n_kv - 1; ++j) order[static_cast<size_t>(j)] = j;
    std::stable_sort(order.begin(), order.end(),
                     [&](int32_t x, int32_t y) { return score[static_cast<size_t>(x)] > score[static_cast<size_t>(y)]; });
    order.resize(static_cast<size_t>(std::min<int64_t>(top_k, n_kv - 1)));
    order.push_back(q_slot);
    std::sort(order.begin(), order.end());
    EXPECT_EQ(s.selected(), order) << "top " << top_k;
    EXPECT_EQ(s.Sparse(n_kv), top_k < n_kv - 1) << "top " << top_k;
    EXPECT_FALSE(s.Sparse(n_kv + 1));  // a selection is for the step it was made in
  }
}

}  // namespace
}  // namespace fastgen
