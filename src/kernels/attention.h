// Scaled dot-product attention of new queries against the KV cache.
#pragma once

#include <cstdint>

#include "core/thread_pool.h"

namespace fastgen::kernels {

struct AttentionArgs {
  const float* q = nullptr;  // [n, n_head, head_dim] queries, RoPE applied
  const float* k = nullptr;  // [n_kv, kv_stride] cache keys; head h of slot j at k + j*kv_stride + h*head_dim
  const float* v = nullptr;  // [n_kv, kv_stride] cache values, same layout
  float* out = nullptr;      // [n, n_head, head_dim]
  int64_t n = 0;             // queries
  int64_t n_head = 0;
  int64_t n_kv_head = 0;     // grouped-query attention: query head h reads kv head h / (n_head / n_kv_head)
  int64_t head_dim = 0;
  int64_t kv_stride = 0;     // floats between consecutive cache slots (n_kv_head * head_dim)
  int64_t n_kv = 0;          // valid cache slots
  const int32_t* q_slot = nullptr;  // [n] cache slot of each query: it sees slots <= q_slot (causal)
  int64_t window = 0;        // sliding window: slot j visible iff q_slot - j < window; 0 = unlimited
  float scale = 1.0f;        // usually 1/sqrt(head_dim)
};

// Splits (query, head) pairs across the pool.
void Attention(const AttentionArgs& a, ThreadPool& pool);

namespace reference {
// Computes output rows for query/head pairs [begin, end) of the flattened [n, n_head] range.
void AttentionRange(const AttentionArgs& a, int64_t begin, int64_t end);
}  // namespace reference

}  // namespace fastgen::kernels
