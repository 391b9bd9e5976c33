#include "kernels/attention.h"

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

}  // namespace fastgen::kernels
