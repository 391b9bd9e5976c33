// KV eviction: a sequence keeps at most `budget` cached tokens per layer and KV head, and
// drops the rest as it grows. Three rules from the research fastgen grows from:
//   window     StreamingLLM (Xiao et al. 2023): the first `sinks` tokens (attention sinks) and
//              the most recent ones;
//   h2o        Heavy-Hitter Oracle (Zhang et al. 2023): a recent window plus the tokens with the
//              largest attention received so far, accumulated over every query;
//   keyformer  Keyformer (Adnan et al. 2024): a recent window plus "key tokens" scored by the
//              accumulated Gumbel-softmax of the attention logits, exp((x_j + g_j) / τ) / Σ, with
//              Gumbel noise g and a temperature τ rising from τ_init to τ_end along the sequence.
// Scores and choices are per layer and KV head (H2O scores per head; grouped queries add their
// attention into their KV head), so each head keeps the tokens it attends to. A kept token keeps
// the position it has in the text: keys were rotated when written, and KvCache::evicted() moves
// later tokens' positions past the evicted ones.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "core/thread_pool.h"
#include "kernels/attention.h"
#include "kv/kv_cache.h"

namespace fastgen {

enum class EvictionKind { kNone, kWindow, kH2O, kKeyformer };

std::optional<EvictionKind> EvictionKindFromName(std::string_view name);  // none|window|h2o|keyformer
std::string_view Name(EvictionKind kind);

struct EvictionPolicy {
  EvictionKind kind = EvictionKind::kNone;
  int64_t budget = 0;   // tokens kept between steps, per layer and KV head
  int64_t sinks = -1;   // first tokens always kept; -1: 4 for window, 0 for h2o / keyformer
  int64_t recent = -1;  // newest tokens always kept; -1: window: the rest of the budget, h2o: half,
                        // keyformer: 30% (the paper's 20-30%)
  double tau_init = 1.0, tau_end = 2.0;  // Keyformer's temperature at the first / horizon-th token
  int64_t horizon = 0;                   // tokens over which τ rises (the sequence length)
  uint64_t seed = 0;                     // Keyformer's Gumbel noise
};

// Fills in the defaults and checks the numbers, naming the flags (--kv-budget, --kv-sinks,
// --kv-recent) in its errors.
Expected<EvictionPolicy> ResolvePolicy(EvictionPolicy policy);

// The slots a head keeps of `length` (> budget): [0, sinks), [length - recent, length), and of
// the slots between the budget - sinks - recent with the largest scores (ties: the older slot),
// in increasing order. `scores` has `length` entries (unused by the window rule).
std::vector<int32_t> ChooseKept(int64_t length, const EvictionPolicy& policy, std::span<const double> scores);

// Keyformer's Gumbel noise for query position `query_pos` of layer `layer`, query head `head`,
// against cache slot `slot`: a counter-based hash of them and the seed, so the noise is the same
// however the tokens were batched.
double GumbelNoise(uint64_t seed, int64_t layer, int64_t head, int64_t query_pos, int64_t slot);

// Slots of a dense cache decoding `positions` tokens under `policy`: the budget plus room for a
// prompt piece of up to 256 tokens or one decoded token (never less than budget + 1).
int64_t EvictingCacheSlots(const EvictionPolicy& policy, int64_t positions);

// Applies a resolved policy to one sequence's KvCache: as a kernels::AttentionObserver
// (Model::set_attention_observer) it accumulates each layer head's scores; Enforce evicts down
// to the budget.
class KvEvictor final : public kernels::AttentionObserver {
 public:
  // `pool` (optional) scores the KV heads in parallel.
  KvEvictor(const EvictionPolicy& policy, int64_t n_layer, int64_t n_kv_head, ThreadPool* pool = nullptr);

  const EvictionPolicy& policy() const { return policy_; }
  // Whether the rule reads attention (h2o, keyformer): then the model must report it.
  bool wants_attention() const;
  // A new sequence: scores cleared.
  void Reset();
  void OnAttention(int64_t layer, const kernels::AttentionArgs& a) override;
  // Evicts down to the budget when kv holds more; returns the tokens evicted per head.
  Expected<int64_t> Enforce(KvCache& kv);
  // Layer l, KV head h's accumulated score of each slot (tests).
  std::span<const double> scores(int64_t layer, int64_t head) const {
    return scores_[static_cast<size_t>(layer * n_kv_head_ + head)];
  }

 private:
  EvictionPolicy policy_;
  int64_t n_layer_, n_kv_head_;
  ThreadPool* pool_;
  int64_t evicted_ = 0;                     // tokens evicted so far (positions of the queries)
  std::vector<std::vector<double>> scores_;  // [n_layer * n_kv_head][slots]
  std::vector<std::vector<float>> logits_;  // [n_kv_head][group, slots] one query's
  std::vector<int32_t> keep_;
};

}  // namespace fastgen
