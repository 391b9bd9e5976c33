#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/attention.h"
#include "kernels/reference/elementwise.h"

namespace fastgen::kernels::reference {

void AttentionRange(const AttentionArgs& a, int64_t begin, int64_t end) {
  const int64_t group = a.n_head / a.n_kv_head;
  std::vector<float> scores(static_cast<size_t>(a.n_kv));  // [n_kv] one query's logits
  for (int64_t qh = begin; qh < end; ++qh) {
    const int64_t t = qh / a.n_head, h = qh % a.n_head, kvh = h / group;
    const float* q = a.q + (t * a.n_head + h) * a.head_dim;
    float* out = a.out + (t * a.n_head + h) * a.head_dim;
    const int64_t last = std::min<int64_t>(a.q_slot[t], a.n_kv - 1);
    const int64_t first = a.window > 0 ? std::max<int64_t>(0, last - a.window + 1) : 0;
    const int64_t count = last - first + 1;
    std::fill(out, out + a.head_dim, 0.0f);
    if (count <= 0) continue;
    for (int64_t j = first; j <= last; ++j) {
      const float* k = a.k + j * a.kv_stride + kvh * a.head_dim;
      float dot = 0.0f;
      for (int64_t i = 0; i < a.head_dim; ++i) dot += q[i] * k[i];
      scores[static_cast<size_t>(j - first)] = dot * a.scale;
    }
    Softmax(scores.data(), count);
    for (int64_t j = first; j <= last; ++j) {
      const float w = scores[static_cast<size_t>(j - first)];
      const float* v = a.v + j * a.kv_stride + kvh * a.head_dim;
      for (int64_t i = 0; i < a.head_dim; ++i) out[i] += w * v[i];
    }
  }
}

}  // namespace fastgen::kernels::reference

namespace fastgen::kernels {

void Attention(const AttentionArgs& a, ThreadPool& pool) {
  pool.ParallelFor(a.n * a.n_head,
                   [&](int64_t b, int64_t e) { reference::AttentionRange(a, b, e); });
}

}  // namespace fastgen::kernels
