#include "kernels/attention.h"

#include <algorithm>
#include <cmath>

#include "kernels/cpu/attention_split.h"

namespace fastgen::kernels {

bool KvTypeSupported(DType t, int64_t head_dim) {
  switch (t) {
    case DType::kF32: return true;
    case DType::kF16: return head_dim > 0;
    case DType::kQ8_0:
    case DType::kQ4_0: return head_dim > 0 && head_dim % Info(t).block_elems == 0;
    default: return false;
  }
}

void Attention(const AttentionArgs& a, ThreadPool& pool) {
  if (a.n <= 0) return;
  if (a.n_head / a.n_kv_head <= 64 && cpu::SplitKAttention(a, pool)) return;
  pool.ParallelFor(a.n * a.n_head, [&](int64_t b, int64_t e) { reference::AttentionRange(a, b, e); });
}

void AttentionBatch(std::span<const AttentionArgs> batch, ThreadPool& pool) {
  bool split = true;
  for (const AttentionArgs& a : batch) split = split && a.n_head / a.n_kv_head <= 64;
  if (split && cpu::SplitKAttentionBatch(batch, pool)) return;
  for (const AttentionArgs& a : batch) Attention(a, pool);
}

void MergeAttention(float* out, float* lse, const float* out2, const float* lse2, int64_t rows, int64_t head_dim) {
  for (int64_t r = 0; r < rows; ++r) {
    const float a = lse[r], b = lse2[r];
    if (b == -INFINITY) continue;
    float* o = out + r * head_dim;
    const float* o2 = out2 + r * head_dim;
    if (a == -INFINITY) {
      std::copy(o2, o2 + head_dim, o);
      lse[r] = b;
      continue;
    }
    const float big = std::max(a, b), wa = std::exp(a - big), wb = std::exp(b - big), inv = 1.0f / (wa + wb);
    for (int64_t i = 0; i < head_dim; ++i) o[i] = (wa * o[i] + wb * o2[i]) * inv;
    lse[r] = big + std::log(wa + wb);
  }
}

}  // namespace fastgen::kernels
