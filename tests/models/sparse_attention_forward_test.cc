// TidalDecode inside a forward pass: in a decode step, a sparse layer's attention output is
// attention over exactly the slots the selection layer chose (computed here directly from the
// layer's queries, keys and values), and differs from full attention over the cache.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "kv/sparse_attention.h"
#include "models/model.h"
#include "test_util.h"

namespace fastgen {
namespace {

using testing::SharedPath;

// Checks every sparse layer's output of single-token passes against a direct computation.
class SparseChecker final : public kernels::AttentionObserver {
 public:
  explicit SparseChecker(const TidalSelector& s) : selector_(s) {}
  int checked = 0;
  double max_err = 0, min_full_diff = 1e30;

  void OnAttention(int64_t layer, const kernels::AttentionArgs& a) override {
    if (a.n != 1 || selector_.role(layer) != TidalSelector::Role::kSparse) return;
    ASSERT_EQ(a.kv_type, DType::kF32);
    const std::vector<int32_t> slots = selector_.selected();
    ASSERT_LT(static_cast<int64_t>(slots.size()), a.n_kv);
    const int64_t group = a.n_head / a.n_kv_head;
    double full_diff = 0;
    for (int64_t h = 0; h < a.n_head; ++h) {
      const float* q = a.q + h * a.head_dim;
      const int64_t kvh = h / group;
      const auto attend = [&](const std::vector<int32_t>& over, std::vector<double>* out) {
        std::vector<double> w;
        double mx = -1e300, z = 0;
        for (int32_t j : over) {
          const float* k = static_cast<const float*>(a.k) + j * a.kv_stride + kvh * a.head_dim;
          double dot = 0;
          for (int64_t e = 0; e < a.head_dim; ++e) dot += static_cast<double>(q[e]) * k[e];
          w.push_back(dot * a.scale);
          mx = std::max(mx, w.back());
        }
        for (double& x : w) z += (x = std::exp(x - mx));
        out->assign(static_cast<size_t>(a.head_dim), 0.0);
        for (size_t i = 0; i < over.size(); ++i) {
          const float* v = static_cast<const float*>(a.v) + over[i] * a.kv_stride + kvh * a.head_dim;
          for (int64_t e = 0; e < a.head_dim; ++e) (*out)[static_cast<size_t>(e)] += w[i] / z * v[e];
        }
      };
      std::vector<double> sparse, full;
      attend(slots, &sparse);
      std::vector<int32_t> all;
      for (int32_t j = 0; j < a.n_kv; ++j) all.push_back(j);
      attend(all, &full);
      for (int64_t e = 0; e < a.head_dim; ++e) {
        const double got = a.out[h * a.head_dim + e];
        max_err = std::max(max_err, std::abs(got - sparse[static_cast<size_t>(e)]));
        full_diff = std::max(full_diff, std::abs(got - full[static_cast<size_t>(e)]));
      }
    }
    min_full_diff = std::min(min_full_diff, full_diff);
    ++checked;
  }

 private:
  const TidalSelector& selector_;
};

TEST(SparseAttentionForward, SparseLayersAttendToExactlyTheSelectedSlots) {
  static ThreadPool pool(2);
  for (const char* file : {"gguf/llama.f32.gguf", "gguf/llama_tied_rope500k.f32.gguf"}) {
    auto model = LoadModel(SharedPath(file), &pool);
    ASSERT_TRUE(model.ok()) << model.status().message();
    Model& m = **model;
    if (m.config().sliding_window > 0) continue;  // a window masks inside the selection too
    SparseAttentionConfig c;
    c.top_k = 5;
    c.select_layers = {0};  // every later layer sparse
    auto sel = TidalSelector::Create(c, m.config().n_layer, &pool);
    ASSERT_TRUE(sel.ok());
    SparseChecker checker(*sel);
    m.set_sparse_attention(&*sel);
    m.set_attention_observer(&checker);
    auto kv = m.NewKvCache(64);
    ASSERT_TRUE(kv.ok());
    std::vector<int32_t> prompt;
    for (int i = 0; i < 30; ++i) prompt.push_back(1 + (i * 7) % 200);
    std::vector<float> logits;
    ASSERT_TRUE(m.Forward(prompt, *kv, LogitsMode::kLast, &logits).ok());  // dense prefill
    EXPECT_EQ(checker.checked, 0);
    for (int32_t t : {11, 42, 7}) ASSERT_TRUE(m.Forward(std::span<const int32_t>(&t, 1), *kv, LogitsMode::kLast, &logits).ok());
    m.set_sparse_attention(nullptr);
    m.set_attention_observer(nullptr);
    ASSERT_GT(m.config().n_layer, 1) << file;
    EXPECT_EQ(checker.checked, 3 * (m.config().n_layer - 1)) << file;
    EXPECT_LT(checker.max_err, 1e-5) << file;
    EXPECT_GT(checker.min_full_diff, 1e-4) << file;  // reading 6 of 31+ slots changes the output
  }
}

}  // namespace
}  // namespace fastgen
