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
  const int32_t* q_slot = nullptr;  // [n] cache slot of each query: it sees slots <= q_slot (causal);
                                    // with a tree mask: the query's position instead
  int64_t window = 0;        // sliding window: slot j visible iff q_slot - j < window; 0 = unlimited
                             // (with a tree mask: position difference, see tree_pos)
  // Token trees (speculative verification). When tree_mask is set, slots [0, tree_start) are a
  // shared prefix every query sees, and slots [tree_start, n_kv) are tree nodes that query t sees
  // iff tree_mask[t * (n_kv - tree_start) + (slot - tree_start)] != 0 (its ancestors and itself).
  // Prefix slot j sits at position j; tree node slots at tree_pos[slot - tree_start], which the
  // sliding window compares with the query's position.
  const uint8_t* tree_mask = nullptr;  // [n, n_kv - tree_start]
  const int32_t* tree_pos = nullptr;   // [n_kv - tree_start]
  int64_t tree_start = 0;
  float scale = 1.0f;        // usually 1/sqrt(head_dim)
};

// Splits (query, head) pairs across the pool.
void Attention(const AttentionArgs& a, ThreadPool& pool);

namespace reference {
// Computes output rows for query/head pairs [begin, end) of the flattened [n, n_head] range.
void AttentionRange(const AttentionArgs& a, int64_t begin, int64_t end);
}  // namespace reference

}  // namespace fastgen::kernels
