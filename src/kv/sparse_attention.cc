#include "kv/sparse_attention.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "kernels/elementwise.h"

namespace fastgen {

Expected<TidalSelector> TidalSelector::Create(const SparseAttentionConfig& config, int64_t n_layer,
                                              ThreadPool* pool) {
  if (config.top_k < 1) return InvalidArgument("--sparse-topk must be at least 1");
  TidalSelector s;
  s.config_ = config;
  s.n_layer_ = n_layer;
  s.pool_ = pool;
  std::vector<int32_t>& layers = s.config_.select_layers;
  if (layers.empty()) {
    if (n_layer < 2) return InvalidArgument("sparse attention needs a model of at least 2 layers");
    // The paper's layout scaled: dense layers 0 and 1 (fewer in a shallow model), selection at
    // the next one and again at 13/32 of the depth.
    const int32_t first = static_cast<int32_t>(std::min<int64_t>(2, n_layer / 4));
    layers.push_back(first);
    const int32_t middle = static_cast<int32_t>(n_layer * 13 / 32);
    if (middle > first + 1) layers.push_back(middle);
  }
  std::sort(layers.begin(), layers.end());
  for (size_t i = 0; i < layers.size(); ++i) {
    if (layers[i] < 0 || layers[i] >= n_layer)
      return InvalidArgument("--sparse-layers: layer " + std::to_string(layers[i]) + " outside [0, " +
                             std::to_string(n_layer) + ")");
    if (i > 0 && layers[i] == layers[i - 1])
      return InvalidArgument("--sparse-layers: layer " + std::to_string(layers[i]) + " is listed twice");
  }
  return s;
}

TidalSelector::Role TidalSelector::role(int64_t layer) const {
  const auto& layers = config_.select_layers;
  if (layers.empty() || layer < layers.front()) return Role::kDense;
  if (std::binary_search(layers.begin(), layers.end(), static_cast<int32_t>(layer))) return Role::kSelect;
  return Role::kSparse;
}

void TidalSelector::Select(const kernels::AttentionArgs& a) {
  const int64_t group = a.n_head / a.n_kv_head;
  const int64_t n_kv = a.n_kv;
  const int64_t count = std::min<int64_t>(a.q_slot[0], n_kv - 1) + 1;
  head_score_.resize(static_cast<size_t>(a.n_kv_head));
  logits_.resize(static_cast<size_t>(a.n_kv_head));
  // Each KV head's query heads into a score row of its own (run in parallel), then summed.
  const auto score_head = [&](int64_t kvh) {
    std::vector<double>& score = head_score_[static_cast<size_t>(kvh)];
    std::vector<float>& logits = logits_[static_cast<size_t>(kvh)];
    score.assign(static_cast<size_t>(count), 0.0);
    logits.resize(static_cast<size_t>(group * n_kv));
    kernels::reference::AttentionLogits(a, 0, kvh, logits.data());
    for (int64_t g = 0; g < group; ++g) {
      float* x = logits.data() + g * count;
      float mx = -INFINITY;
      for (int64_t j = 0; j < count; ++j) mx = std::max(mx, x[j]);
      if (!std::isfinite(mx)) continue;
      kernels::ExpShift(x, count, mx);  // SIMD exponentials; the sums in double
      double sum = 0;
      for (int64_t j = 0; j < count; ++j) sum += x[j];
      const double inv = 1.0 / sum;
      for (int64_t j = 0; j < count; ++j) score[static_cast<size_t>(j)] += x[j] * inv;
    }
  };
  if (pool_ != nullptr && a.n_kv_head > 1) {
    pool_->ParallelFor(a.n_kv_head, [&](int64_t b, int64_t e) { for (int64_t h = b; h < e; ++h) score_head(h); }, 1);
  } else {
    for (int64_t h = 0; h < a.n_kv_head; ++h) score_head(h);
  }
  score_.assign(static_cast<size_t>(count), 0.0);
  for (const auto& hs : head_score_)
    for (int64_t j = 0; j < count; ++j) score_[static_cast<size_t>(j)] += hs[static_cast<size_t>(j)];
  // The query's own slot is always read; the top_k others by score.
  const int64_t self = count - 1;
  order_.resize(static_cast<size_t>(std::max<int64_t>(self, 0)));
  std::iota(order_.begin(), order_.end(), 0);
  const int64_t k = std::min<int64_t>(config_.top_k, self);
  std::partial_sort(order_.begin(), order_.begin() + k, order_.end(), [&](int32_t x, int32_t y) {
    const double sx = score_[static_cast<size_t>(x)], sy = score_[static_cast<size_t>(y)];
    return sx != sy ? sx > sy : x < y;
  });
  mask_.assign(static_cast<size_t>(n_kv), 0);
  for (int64_t i = 0; i < k; ++i) mask_[static_cast<size_t>(order_[static_cast<size_t>(i)])] = 1;
  if (self >= 0) mask_[static_cast<size_t>(self)] = 1;
  if (static_cast<int64_t>(pos_.size()) < n_kv) {
    const size_t old = pos_.size();
    pos_.resize(static_cast<size_t>(n_kv));
    std::iota(pos_.begin() + static_cast<std::ptrdiff_t>(old), pos_.end(), static_cast<int32_t>(old));
  }
  selected_over_ = n_kv;
  selected_count_ = k + (self >= 0 ? 1 : 0);
}

std::vector<int32_t> TidalSelector::selected() const {
  std::vector<int32_t> out;
  for (size_t j = 0; j < mask_.size(); ++j)
    if (mask_[j]) out.push_back(static_cast<int32_t>(j));
  return out;
}

}  // namespace fastgen
