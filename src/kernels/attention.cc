#include "kernels/attention.h"

#include "kernels/cpu/attention_split.h"

namespace fastgen::kernels {

void Attention(const AttentionArgs& a, ThreadPool& pool) {
  if (a.n <= 0) return;
  if (a.n_head / a.n_kv_head <= 64 && cpu::SplitKAttention(a, pool)) return;
  pool.ParallelFor(a.n * a.n_head, [&](int64_t b, int64_t e) { reference::AttentionRange(a, b, e); });
}

}  // namespace fastgen::kernels
