#include "kv/eviction.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "kernels/elementwise.h"

namespace fastgen {
namespace {

// A counter-based hash (splitmix64's finalizer): the Gumbel noise of a (layer, head, query,
// key) is the same however the tokens were batched.
uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

}  // namespace

// Standard Gumbel noise -log(-log(u)), u uniform in (0, 1).
double GumbelNoise(uint64_t seed, int64_t layer, int64_t head, int64_t query_pos, int64_t slot) {
  uint64_t h = Mix(seed);
  h = Mix(h ^ static_cast<uint64_t>(layer));
  h = Mix(h ^ static_cast<uint64_t>(head));
  h = Mix(h ^ static_cast<uint64_t>(query_pos));
  h = Mix(h ^ static_cast<uint64_t>(slot));
  const double u = (static_cast<double>(h >> 11) + 0.5) * 0x1.0p-53;
  return -std::log(-std::log(u));
}

std::optional<EvictionKind> EvictionKindFromName(std::string_view name) {
  if (name == "none") return EvictionKind::kNone;
  if (name == "window") return EvictionKind::kWindow;
  if (name == "h2o") return EvictionKind::kH2O;
  if (name == "keyformer") return EvictionKind::kKeyformer;
  return std::nullopt;
}

std::string_view Name(EvictionKind kind) {
  switch (kind) {
    case EvictionKind::kNone: return "none";
    case EvictionKind::kWindow: return "window";
    case EvictionKind::kH2O: return "h2o";
    case EvictionKind::kKeyformer: return "keyformer";
  }
  return "?";
}

Expected<EvictionPolicy> ResolvePolicy(EvictionPolicy p) {
  if (p.kind == EvictionKind::kNone) return p;
  const std::string kind(Name(p.kind));
  if (p.budget < 1) return InvalidArgument("--kv-evict " + kind + " needs --kv-budget of at least 1 token");
  if (p.sinks < -1 || p.recent < -1) return InvalidArgument("--kv-sinks and --kv-recent must not be negative");
  if (p.sinks < 0) p.sinks = p.kind == EvictionKind::kWindow ? std::min<int64_t>(4, p.budget - 1) : 0;
  if (p.sinks >= p.budget)
    return InvalidArgument("--kv-sinks " + std::to_string(p.sinks) + " leaves no room in --kv-budget " +
                           std::to_string(p.budget) + " for the newest token");
  if (p.recent < 0) {
    switch (p.kind) {
      case EvictionKind::kWindow: p.recent = p.budget - p.sinks; break;
      case EvictionKind::kH2O: p.recent = std::max<int64_t>(1, p.budget / 2); break;
      default: p.recent = std::max<int64_t>(1, p.budget * 3 / 10); break;
    }
  }
  if (p.sinks + p.recent > p.budget)
    return InvalidArgument("--kv-budget " + std::to_string(p.budget) + " is smaller than --kv-sinks " +
                           std::to_string(p.sinks) + " plus the recent window (--kv-recent) " + std::to_string(p.recent));
  if (p.kind == EvictionKind::kWindow && p.sinks + p.recent < p.budget)
    return InvalidArgument("--kv-evict window keeps only sinks and recent tokens: --kv-sinks " + std::to_string(p.sinks) +
                           " plus --kv-recent " + std::to_string(p.recent) + " must equal --kv-budget " +
                           std::to_string(p.budget));
  if (p.kind != EvictionKind::kWindow && p.recent < 1)
    return InvalidArgument("--kv-evict " + kind + " needs a recent window (--kv-recent) of at least 1: the newest "
                           "token has received no attention yet");
  if (!(p.tau_init > 0) || !(p.tau_end > 0) || !std::isfinite(p.tau_init) || !std::isfinite(p.tau_end))
    return InvalidArgument("Keyformer temperatures must be positive and finite");
  return p;
}

std::vector<int32_t> ChooseKept(int64_t length, const EvictionPolicy& p, std::span<const double> scores) {
  std::vector<int32_t> kept;
  if (length <= p.budget) {
    kept.resize(static_cast<size_t>(length));
    std::iota(kept.begin(), kept.end(), 0);
    return kept;
  }
  const int64_t recent_from = length - p.recent;
  for (int32_t j = 0; j < p.sinks; ++j) kept.push_back(j);
  const int64_t heavy = p.budget - p.sinks - p.recent;
  if (heavy > 0) {
    std::vector<int32_t> middle;
    for (int64_t j = p.sinks; j < recent_from; ++j) middle.push_back(static_cast<int32_t>(j));
    const auto better = [&](int32_t a, int32_t b) {
      const double sa = scores[static_cast<size_t>(a)], sb = scores[static_cast<size_t>(b)];
      return sa != sb ? sa > sb : a < b;
    };
    std::partial_sort(middle.begin(), middle.begin() + heavy, middle.end(), better);
    middle.resize(static_cast<size_t>(heavy));
    std::sort(middle.begin(), middle.end());
    kept.insert(kept.end(), middle.begin(), middle.end());
  }
  for (int64_t j = recent_from; j < length; ++j) kept.push_back(static_cast<int32_t>(j));
  return kept;
}

int64_t EvictingCacheSlots(const EvictionPolicy& policy, int64_t positions) {
  return policy.budget + std::clamp<int64_t>(positions - policy.budget, 1, 256);
}

KvEvictor::KvEvictor(const EvictionPolicy& policy, int64_t n_layer, int64_t n_kv_head, ThreadPool* pool)
    : policy_(policy), n_layer_(n_layer), n_kv_head_(n_kv_head), pool_(pool),
      scores_(static_cast<size_t>(n_layer * n_kv_head)), logits_(static_cast<size_t>(n_kv_head)) {}

bool KvEvictor::wants_attention() const {
  return policy_.kind == EvictionKind::kH2O || policy_.kind == EvictionKind::kKeyformer;
}

void KvEvictor::Reset() {
  for (auto& s : scores_) s.clear();
  evicted_ = 0;
}

void KvEvictor::OnAttention(int64_t layer, const kernels::AttentionArgs& a) {
  if (!wants_attention() || layer < 0 || layer >= n_layer_ || a.n_kv_head != n_kv_head_) return;
  const int64_t group = a.n_head / a.n_kv_head;
  const bool keyformer = policy_.kind == EvictionKind::kKeyformer;
  // Each KV head's scores are its own: the heads run in parallel without sharing a write.
  const auto score_head = [&](int64_t kvh) {
    std::vector<double>& s = scores_[static_cast<size_t>(layer * n_kv_head_ + kvh)];
    s.resize(static_cast<size_t>(a.n_kv), 0.0);
    std::vector<float>& logits = logits_[static_cast<size_t>(kvh)];
    logits.resize(static_cast<size_t>(group * a.n_kv));
    for (int64_t t = 0; t < a.n; ++t) {
      const int64_t count = kernels::reference::AttentionLogits(a, t, kvh, logits.data());
      const int64_t query_pos = a.q_slot[t] + evicted_;
      double tau = policy_.tau_init;
      if (keyformer && policy_.horizon > 0)
        tau += (policy_.tau_end - policy_.tau_init) *
               std::min(1.0, static_cast<double>(query_pos) / static_cast<double>(policy_.horizon));
      for (int64_t g = 0; g < group; ++g) {
        float* x = logits.data() + g * count;
        const int64_t h = kvh * group + g;
        // H2O: softmax(x); Keyformer: softmax((x + noise) / τ). The exponentials in SIMD
        // float, the scores summed in double: they add up over thousands of queries.
        float mx = -INFINITY;
        for (int64_t j = 0; j < count; ++j) {
          if (keyformer && std::isfinite(x[j]))
            x[j] = static_cast<float>((x[j] + GumbelNoise(policy_.seed, layer, h, query_pos, j)) / tau);
          mx = std::max(mx, x[j]);
        }
        if (!std::isfinite(mx)) continue;
        kernels::ExpShift(x, count, mx);
        double sum = 0;
        for (int64_t j = 0; j < count; ++j) sum += x[j];
        const double inv = 1.0 / sum;
        for (int64_t j = 0; j < count; ++j) s[static_cast<size_t>(j)] += x[j] * inv;
      }
    }
  };
  if (pool_ != nullptr && n_kv_head_ > 1) {
    pool_->ParallelFor(n_kv_head_, [&](int64_t b, int64_t e) { for (int64_t h = b; h < e; ++h) score_head(h); }, 1);
  } else {
    for (int64_t h = 0; h < n_kv_head_; ++h) score_head(h);
  }
}

Expected<int64_t> KvEvictor::Enforce(KvCache& kv) {
  const int64_t length = kv.length();
  if (policy_.kind == EvictionKind::kNone || length <= policy_.budget) return int64_t{0};
  const int64_t kept = policy_.budget;
  keep_.resize(static_cast<size_t>(n_layer_ * n_kv_head_ * kept));
  for (int64_t lh = 0; lh < n_layer_ * n_kv_head_; ++lh) {
    std::vector<double>& s = scores_[static_cast<size_t>(lh)];
    s.resize(static_cast<size_t>(length), 0.0);  // a layer that reported no attention scores nothing
    const std::vector<int32_t> list = ChooseKept(length, policy_, s);
    if (static_cast<int64_t>(list.size()) != kept)  // a policy ResolvePolicy did not check
      return Internal("KV eviction chose " + std::to_string(list.size()) + " slots for a budget of " +
                      std::to_string(kept));
    std::copy(list.begin(), list.end(), keep_.begin() + lh * kept);
    for (int64_t i = 0; i < kept; ++i) s[static_cast<size_t>(i)] = s[static_cast<size_t>(list[static_cast<size_t>(i)])];
    s.resize(static_cast<size_t>(kept));
  }
  FG_RETURN_IF_ERROR(kv.EvictPerHead(kept, keep_));
  evicted_ += length - kept;
  return length - kept;
}

}  // namespace fastgen
