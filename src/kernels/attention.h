// Scaled dot-product attention of new queries against the KV cache.
#pragma once

#include <cstdint>
#include <span>

#include "core/dtype.h"
#include "core/thread_pool.h"

namespace fastgen::kernels {

struct AttentionArgs {
  const float* q = nullptr;  // [n, n_head, head_dim] queries, RoPE applied
  // Cache keys and values, [n_kv, kv_stride] elements of kv_type each: element i of head h of
  // slot j is element j*kv_stride + h*head_dim + i (for Q8_0, in blocks of 32; see KvRow).
  const void* k = nullptr;
  const void* v = nullptr;
  DType kv_type = DType::kF32;  // F32, F16, or Q8_0 / Q4_0 with head_dim a multiple of 32
  float* out = nullptr;      // [n, n_head, head_dim]
  int64_t n = 0;             // queries
  int64_t n_head = 0;
  int64_t n_kv_head = 0;     // grouped-query attention: query head h reads kv head h / (n_head / n_kv_head)
  int64_t head_dim = 0;
  int64_t kv_stride = 0;     // elements between consecutive cache rows (n_kv_head * head_dim)
  // Paged caches (the serving runtime's KvBlockPool): slot s is row
  // block_table[s / block_tokens] · block_tokens + s % block_tokens of k and v. nullptr: row s.
  const int32_t* block_table = nullptr;
  int64_t block_tokens = 0;  // a multiple of 16 when block_table is set (16-slot kernel blocks never straddle two)
  int64_t n_kv = 0;          // valid cache slots
  // Slots before kv_begin are not attended: another call covers them (staircase KV
  // quantization keeps older slots in other arrays, of other types). Off a multiple of 16 it
  // moves the split-K blocks of its first chunk (results then depend on it, as on any range).
  int64_t kv_begin = 0;
  // Per-channel key scales (KIVI's keys, staircase step type q4_0c): key element c of slot s is
  // the stored element times k_channel_scale[(s / 64) · kv_stride + c]. Compact types and
  // dense caches (no block table) only.
  const float* k_channel_scale = nullptr;
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
  // Optional [n, n_head]: log Σ exp(score) over the slots each (query, head) attended (-inf for
  // none), so that attention over disjoint sets of slots merges exactly (MergeAttention).
  float* lse = nullptr;
};

// Attention over a union of disjoint slot sets from two calls' results: out, lse [rows] (rows
// of head_dim, one per (query, head)) become the merge of themselves with out2, lse2.
void MergeAttention(float* out, float* lse, const float* out2, const float* lse2, int64_t rows, int64_t head_dim);

// Sees each layer's attention of single-sequence chain passes (Model::set_attention_observer).
class AttentionObserver {
 public:
  virtual ~AttentionObserver() = default;
  // a.q holds the layer's queries (RoPE applied), a.k / a.v the cache with this pass's keys and
  // values written; query t sits at slot a.q_slot[t] and sees slots 0 .. a.q_slot[t].
  virtual void OnAttention(int64_t layer, const AttentionArgs& a) = 0;
};

// Whether attention reads a cache of type t: F32 always; F16 and Q8_0 (the compact cache
// types) when head_dim is a multiple of their block.
bool KvTypeSupported(DType t, int64_t head_dim);

// The cache row holding slot s (see AttentionArgs::block_table). Static: the SIMD kernel files
// use it too, and must not share an out-of-line copy compiled for their ISA (matmul_job.h).
static inline int64_t CacheRowOf(const AttentionArgs& a, int64_t slot) {
  if (a.block_table == nullptr) return slot;
  return static_cast<int64_t>(a.block_table[slot / a.block_tokens]) * a.block_tokens + slot % a.block_tokens;
}

// Start of cache element `elem` of an array of type t (elem at a block boundary).
static inline const uint8_t* KvRow(const void* base, DType t, int64_t elem) {
  const DTypeInfo& info = Info(t);
  return static_cast<const uint8_t*>(base) + elem / info.block_elems * info.block_bytes;
}

// Splits (query, head) pairs across the pool.
void Attention(const AttentionArgs& a, ThreadPool& pool);
// Independent calls (the sequences of a ragged batch) together, in as few parallel regions as
// possible; each call's output is the same bits as Attention gives it alone.
void AttentionBatch(std::span<const AttentionArgs> batch, ThreadPool& pool);

namespace reference {
// Computes output rows for query/head pairs [begin, end) of the flattened [n, n_head] range.
void AttentionRange(const AttentionArgs& a, int64_t begin, int64_t end);
// The scaled attention logits q·k·scale of causal-chain query t (no tree mask) against cache
// slots 0 .. q_slot[t] (those outside a sliding window are -inf), for the query heads of KV
// head kvh, into logits [n_head / n_kv_head, q_slot[t] + 1]; returns q_slot[t] + 1. For KV
// eviction policies that score cached tokens by the attention they receive; the attention
// itself is computed elsewhere.
int64_t AttentionLogits(const AttentionArgs& a, int64_t t, int64_t kvh, float* logits);
}  // namespace reference

}  // namespace fastgen::kernels
