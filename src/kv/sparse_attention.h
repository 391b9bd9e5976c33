// TidalDecode (Yang et al. 2024): position-persistent sparse attention for decoding. The tokens
// that get the most attention overlap strongly from one layer to the next, so a few "token
// selection" layers attend in full and pick the top-k cache slots by attention score, and every
// other layer attends only to the slots the last selection layer picked, reading a fraction of
// the cache. The first layers stay dense (the paper: two dense layers, selection at the third
// and again at a middle layer, 13 of 32 in Llama-3-8B), and so does prefill: only single-token
// decode steps go sparse.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/thread_pool.h"
#include "kernels/attention.h"

namespace fastgen {

struct SparseAttentionConfig {
  int64_t top_k = 0;                   // slots each sparse layer reads (the current token's added)
  std::vector<int32_t> select_layers;  // layers that attend in full and select; empty: the
                                       // paper's, scaled to the model ({2, n_layer·13/32})
};

class TidalSelector {
 public:
  enum class Role { kDense, kSelect, kSparse };

  // Checks the configuration against the model's depth (errors name --sparse-topk and
  // --sparse-layers) and fills in the default selection layers.
  // `pool` (optional) scores the KV heads in parallel.
  static Expected<TidalSelector> Create(const SparseAttentionConfig& config, int64_t n_layer,
                                        ThreadPool* pool = nullptr);

  const SparseAttentionConfig& config() const { return config_; }
  // Dense below the first selection layer; sparse above it, except at selection layers.
  Role role(int64_t layer) const;

  // After a selection layer's full attention of one decode query (a.n == 1, a causal chain):
  // scores each slot by its softmax attention summed over the query heads and keeps the top_k
  // (ties: the older slot) plus the query's own slot.
  void Select(const kernels::AttentionArgs& a);
  // Whether the last selection, made over `n_kv` slots, leaves out any of them (if not, the
  // sparse layers attend in full: the same computation as without sparse attention).
  bool Sparse(int64_t n_kv) const { return n_kv == selected_over_ && selected_count_ < n_kv; }
  // The selection as a token-tree mask over all slots (kernels::AttentionArgs with
  // tree_start 0): mask [n_kv] (1 = read), pos [n_kv] (slot j at position j).
  const uint8_t* mask() const { return mask_.data(); }
  const int32_t* pos() const { return pos_.data(); }
  // The selected slots of the last selection, increasing (tests).
  std::vector<int32_t> selected() const;

 private:
  SparseAttentionConfig config_;
  int64_t n_layer_ = 0;
  ThreadPool* pool_ = nullptr;
  int64_t selected_over_ = -1;  // n_kv of the last selection
  int64_t selected_count_ = 0;
  std::vector<double> score_;                 // [n_kv] summed over the KV heads' parts
  std::vector<std::vector<double>> head_score_;  // [n_kv_head][n_kv]
  std::vector<std::vector<float>> logits_;       // [n_kv_head][group, n_kv]
  std::vector<int32_t> order_;
  std::vector<uint8_t> mask_;
  std::vector<int32_t> pos_;
};

}  // namespace fastgen
