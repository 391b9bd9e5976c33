// Attention over a staircase KV cache (kv/staircase.h): the slots a query reads come from
// several arrays of different types, split by the query's position. Each step's slots are one
// call of the ordinary attention kernels (with kv_begin and a ring's block table), and the
// calls merge exactly through their log-sum-exps.
#include <algorithm>
#include <limits>

#include "models/model.h"
#include "ops/ops.h"

namespace fastgen {

void Model::AttendStaircase(ops::Context& ctx, const ForwardPlan& plan, const KvCache& kv, int64_t layer,
                            const AttentionShape& shape, const float* q, float* out) {
  const PlanSequence& s = plan.seqs[0];  // one sequence: ForwardBatch refuses staircase caches
  const KvStaircase& stairs = kv.staircase();
  const size_t tiers = kv.tier_count();
  const int64_t n = s.count, heads = shape.n_head, q_row = heads * shape.head_dim;
  const int64_t written = s.start + s.count;
  KvTierView views[8];
  const size_t n_views = std::min<size_t>(tiers, 8);
  for (size_t i = 0; i < n_views; ++i) views[i] = kv.tier(i, layer, written);
  tier_out_.resize(static_cast<size_t>(n_views * n * q_row));
  tier_lse_.resize(static_cast<size_t>(n_views * n * heads));

  // Where each step begins for query t: starts[i] for steps 0 .. tiers - 2 (the last begins at 0).
  // Step i reads [starts[i], starts[i - 1]) (step 0 up to the query itself).
  const int64_t tree_cap = plan.is_tree() ? plan.tree_start : std::numeric_limits<int64_t>::max();
  auto starts_of = [&](int64_t t, int64_t* starts) {
    const int64_t pos = plan.positions[static_cast<size_t>(s.first + t)];
    int64_t newer = std::numeric_limits<int64_t>::max();
    for (size_t i = 0; i + 1 < n_views; ++i) {
      int64_t b = std::max(stairs.TierStart(i, pos), views[i].valid_from);
      if (i == 0) b = std::min(b, tree_cap);  // a token tree's nodes are all read from step 0
      b = std::min(b, newer);
      starts[i] = newer = b;
    }
  };

  attention_args_.clear();
  struct Run {
    int64_t t0, t1;
    int64_t starts[8];
  };
  thread_local std::vector<Run> runs;  // reused: decoding allocates nothing
  runs.clear();
  for (int64_t t = 0; t < n; ++t) {
    Run r{t, t + 1, {}};
    starts_of(t, r.starts);
    if (!runs.empty() && std::equal(r.starts, r.starts + n_views - 1, runs.back().starts)) {
      runs.back().t1 = t + 1;
    } else {
      runs.push_back(r);
    }
  }
  const int64_t tree_cols = plan.is_tree() ? written - plan.tree_start : 0;
  for (const Run& r : runs) {
    for (size_t i = 0; i < n_views; ++i) {
      const int64_t begin = i + 1 < n_views ? r.starts[i] : 0;
      const int64_t end = i == 0 ? written : r.starts[i - 1];
      if (i > 0 && begin >= end) continue;  // nothing of this step for these queries
      kernels::AttentionArgs& a = attention_args_.emplace_back();
      a.q = q + (s.first + r.t0) * q_row;
      a.k = views[i].k;
      a.v = views[i].v;
      a.kv_type = views[i].type;
      a.kv_stride = kv.row_elems();
      a.k_channel_scale = views[i].k_channel_scale;
      if (views[i].block_table != nullptr) {
        a.block_table = views[i].block_table;
        a.block_tokens = 16;
      }
      a.out = i == 0 ? out + (s.first + r.t0) * q_row : tier_out_.data() + (i * n + r.t0) * q_row;
      a.lse = tier_lse_.data() + (i * n + r.t0) * heads;
      a.n = r.t1 - r.t0;
      a.n_head = shape.n_head;
      a.n_kv_head = shape.n_kv_head;
      a.head_dim = shape.head_dim;
      a.n_kv = end;
      a.kv_begin = begin;
      // Chains: position = slot (a staircase evicts nothing); trees: the position, the mask
      // decides. Older steps' slots all precede every query, which sees them whole.
      a.q_slot = plan.positions.data() + s.first + r.t0;
      a.window = 0;  // sliding-window models are refused with a staircase
      if (i == 0 && plan.is_tree()) {
        a.tree_mask = plan.tree_mask.data() + r.t0 * tree_cols;
        a.tree_pos = plan.tree_pos.data();
        a.tree_start = plan.tree_start;
      }
      a.scale = shape.scale;
    }
  }
  // Every step of every run in one parallel region.
  ops::AttentionBatch(ctx, attention_args_);
  for (const Run& r : runs) {
    for (size_t i = 1; i < n_views; ++i) {
      const int64_t begin = i + 1 < n_views ? r.starts[i] : 0;
      if (begin >= r.starts[i - 1]) continue;
      kernels::MergeAttention(out + (s.first + r.t0) * q_row, tier_lse_.data() + r.t0 * heads,
                              tier_out_.data() + (i * n + r.t0) * q_row, tier_lse_.data() + (i * n + r.t0) * heads,
                              (r.t1 - r.t0) * heads, shape.head_dim);
    }
  }
}

}  // namespace fastgen
