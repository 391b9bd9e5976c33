#include "kernels/cpu/attention_split.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/isa.h"

namespace fastgen::kernels::cpu {
namespace {

// Slots per chunk at least: below this the merge costs more than the parallelism gains.
constexpr int64_t kMinChunk = 256;
// Queries per work item for chains (prefill, verification): they share each K/V block load.
constexpr int64_t kTile = 8;
constexpr int64_t kMaxStates = 512;  // PartialSoftmax per item: tile × GQA group

// Chains split the cache at fixed slots: 256-slot chunks up to slot 4096, 1024-slot chunks
// beyond. A query then meets the same chunks and the same 16-slot blocks whether it runs alone
// or in a chain of any length (the chain's other slots are masked out of its blocks, and chunks
// it cannot see are left empty), so its output is the same bits: plain and speculative decoding
// agree exactly, and a prompt gives the same keys, values and logits however it is split into
// chunks (the serving runtime's chunked prefill, a prefix taken from the cache). (Chunks sized
// by the call's own span moved with the chain's length.)
constexpr int64_t kFixedChunkSmall = 256, kFixedChunkLarge = 1024, kFixedChunkSwitch = 4096;
constexpr int64_t FixedChunkBegin(int64_t c) {
  const int64_t small = kFixedChunkSwitch / kFixedChunkSmall;
  return c <= small ? c * kFixedChunkSmall : kFixedChunkSwitch + (c - small) * kFixedChunkLarge;
}
constexpr int64_t FixedChunkOf(int64_t slot) {
  return slot < kFixedChunkSwitch ? slot / kFixedChunkSmall
                                  : kFixedChunkSwitch / kFixedChunkSmall + (slot - kFixedChunkSwitch) / kFixedChunkLarge;
}

struct SplitPlan {
  int64_t tile;    // queries per item
  int64_t tiles;   // ceil(n / tile)
  int64_t chunks;  // per (tile, kv head)
  int64_t items;   // tiles * n_kv_head * chunks
  bool fixed;      // chunks at fixed slots: chunk c is [FixedChunkBegin(lo + c), FixedChunkBegin(lo + c + 1))
  int64_t lo;      // the first fixed chunk any query sees
};

SplitPlan Plan(const AttentionArgs& a, int threads, int64_t group) {
  SplitPlan p;
  // Token trees: one query per item (each sees its own tree nodes).
  p.tile = a.tree_mask ? 1 : std::max<int64_t>(1, std::min(kTile, kMaxStates / group));
  p.tiles = (a.n + p.tile - 1) / p.tile;
  const int64_t pairs = p.tiles * a.n_kv_head;
  p.fixed = a.tree_mask == nullptr;
  p.lo = 0;
  if (p.fixed) {
    int64_t lo_pos = a.q_slot[0], hi_pos = a.q_slot[0];
    for (int64_t t = 1; t < a.n; ++t) {
      lo_pos = std::min<int64_t>(lo_pos, a.q_slot[t]);
      hi_pos = std::max<int64_t>(hi_pos, a.q_slot[t]);
    }
    const int64_t first = std::max(a.kv_begin, a.window > 0 ? std::max<int64_t>(0, lo_pos - a.window + 1) : 0);
    const int64_t last = std::max<int64_t>(first, std::min<int64_t>(hi_pos, a.n_kv - 1));
    p.lo = FixedChunkOf(first);
    p.chunks = FixedChunkOf(last) - p.lo + 1;
  } else {
    // Enough items to give every thread several, but chunks no shorter than kMinChunk slots.
    p.chunks = 1;
    const int64_t want = 4 * threads;
    if (pairs < want) p.chunks = std::max<int64_t>(1, std::min((want + pairs - 1) / pairs, a.n_kv / kMinChunk));
  }
  p.items = pairs * p.chunks;
  return p;
}

}  // namespace

namespace {

using TileFn = void (*)(const AttentionArgs&, int64_t, int64_t, int64_t, const SlotRange&, PartialSoftmax*);

TileFn TileKernel(const AttentionArgs& a) {
  TileFn attend = nullptr;
  if (ActiveIsa() == Isa::kAvx512 && a.head_dim % 16 == 0) attend = AttendTileAvx512;
  if (ActiveIsa() == Isa::kAvx2 && a.head_dim % 8 == 0) attend = AttendTileAvx2;
  if (attend == nullptr) return nullptr;
  if (a.kv_type != DType::kF32 && (a.head_dim > kMaxCompactHeadDim || !KvTypeSupported(a.kv_type, a.head_dim)))
    return nullptr;
  if (a.n_head / a.n_kv_head > kMaxStates) return nullptr;
  return attend;
}

// One call's share of a batch: its plan and where its items and partial states start.
struct CallPlan {
  const AttentionArgs* a;
  TileFn attend;
  SplitPlan plan;
  int64_t prefix_chunks;
  int64_t group, d;
  int64_t first_item;  // in the batch's item numbering
  int64_t first_head;  // in the batch's (query, head) numbering
  size_t ml_at, outs_at;  // offsets of its partial states in the batch's buffers
  float* ml;           // [n, n_head, chunks, 2]
  float* outs;         // [n, n_head, chunks, head_dim]
};

// Work item i of one call: one tile of queries, one kv head, one chunk of slots.
void RunItem(const CallPlan& c, int64_t i) {
  const AttentionArgs& a = *c.a;
  PartialSoftmax parts[kMaxStates];
  const int64_t chunk = i % c.plan.chunks, pair = i / c.plan.chunks;
  const int64_t t0 = (pair / a.n_kv_head) * c.plan.tile, kvh = pair % a.n_kv_head;
  const int64_t nt = std::min(c.plan.tile, a.n - t0);
  SlotRange range;
  thread_local std::vector<int32_t> tree_slots;
  if (a.tree_mask != nullptr && chunk == c.plan.chunks - 1) {
    // Tree nodes visible to query t0 (tiles of one): its ancestors and itself, within the window.
    const int64_t cols = a.n_kv - a.tree_start, pos = a.q_slot[t0];
    if (static_cast<int64_t>(tree_slots.size()) < cols) tree_slots.resize(static_cast<size_t>(cols));
    const uint8_t* row = a.tree_mask + t0 * cols;
    for (int64_t m = 0; m < cols; ++m)
      if (row[m] && (a.window <= 0 || pos - a.tree_pos[m] < a.window))
        tree_slots[static_cast<size_t>(range.count++)] = static_cast<int32_t>(a.tree_start + m);
    range.slots = tree_slots.data();
  } else {
    // A contiguous span: the causal past of the tile's chain queries (the union of what
    // they see: the kernel masks each query's part), or a tree's shared prefix.
    int64_t lo_pos = a.q_slot[t0], hi_pos = a.q_slot[t0];
    for (int64_t t = t0 + 1; t < t0 + nt; ++t) {
      lo_pos = std::min<int64_t>(lo_pos, a.q_slot[t]);
      hi_pos = std::max<int64_t>(hi_pos, a.q_slot[t]);
    }
    const int64_t last = a.tree_mask ? std::min(a.tree_start, a.n_kv) - 1 : std::min(hi_pos, a.n_kv - 1);
    const int64_t pos = a.tree_mask ? a.q_slot[t0] : lo_pos;
    const int64_t first = std::max(a.kv_begin, a.window > 0 ? std::max<int64_t>(0, pos - a.window + 1) : 0);
    if (c.plan.fixed) {
      // Blocks at multiples of 16 from the chunk's fixed start; the kernel masks each
      // query's window and causal limit inside them.
      // (A kv_begin off the 16-slot grid starts the range exactly there: no query may see the
      // slots below it, which belong to another call.)
      const int64_t begin = std::max({FixedChunkBegin(c.plan.lo + chunk), first / 16 * 16, a.kv_begin});
      const int64_t end = std::min(FixedChunkBegin(c.plan.lo + chunk + 1), last + 1);
      range.first = begin;
      range.count = std::max<int64_t>(0, end - begin);
    } else {
      const int64_t span = std::max<int64_t>(0, last - first + 1);
      range.first = first + span * chunk / c.prefix_chunks;
      range.count = first + span * (chunk + 1) / c.prefix_chunks - range.first;
    }
  }
  auto state_of = [&](int64_t qi, int64_t g) { return ((t0 + qi) * a.n_head + kvh * c.group + g) * c.plan.chunks + chunk; };
  for (int64_t qi = 0; qi < nt; ++qi)
    for (int64_t g = 0; g < c.group; ++g) parts[qi * c.group + g].o = c.outs + state_of(qi, g) * c.d;
  if (range.count > 0) c.attend(a, t0, nt, kvh, range, parts);
  for (int64_t qi = 0; qi < nt; ++qi) {
    for (int64_t g = 0; g < c.group; ++g) {
      // An empty chunk (short span, no visible nodes) or one the query's mask hides
      // entirely contributes nothing: m = -inf.
      const PartialSoftmax& ps = parts[qi * c.group + g];
      const int64_t state = state_of(qi, g);
      c.ml[2 * state] = range.count > 0 ? ps.m : -INFINITY;
      c.ml[2 * state + 1] = range.count > 0 ? ps.l : 0.0f;
    }
  }
}

// Merges the chunks of (query, head) th of one call: out = Σ_c w_c o_c / Σ_c w_c l_c,
// w_c = exp(m_c − M).
void MergeHead(const CallPlan& c, int64_t th) {
  const int64_t d = c.d, chunks = c.plan.chunks;
  float* out = c.a->out + th * d;
  const float* m_l = c.ml + 2 * th * chunks;
  float big = -INFINITY;
  for (int64_t k = 0; k < chunks; ++k) big = std::max(big, m_l[2 * k]);
  std::fill(out, out + d, 0.0f);
  if (c.a->lse != nullptr) c.a->lse[th] = -INFINITY;
  if (big == -INFINITY) return;  // nothing visible
  float denom = 0.0f;
  for (int64_t k = 0; k < chunks; ++k) {
    if (m_l[2 * k] == -INFINITY) continue;
    const float w = std::exp(m_l[2 * k] - big);
    denom += w * m_l[2 * k + 1];
    const float* o = c.outs + (th * chunks + k) * d;
    for (int64_t i = 0; i < d; ++i) out[i] += w * o[i];
  }
  const float inv = 1.0f / denom;
  for (int64_t i = 0; i < d; ++i) out[i] *= inv;
  if (c.a->lse != nullptr) c.a->lse[th] = big + std::log(denom);
}

// The call of a batch holding global index `at` (items or heads, by `first`).
template <class First>
size_t CallOf(const std::vector<CallPlan>& calls, int64_t at, First first) {
  size_t lo = 0, hi = calls.size();
  while (hi - lo > 1) {
    const size_t mid = (lo + hi) / 2;
    if (first(calls[mid]) <= at) lo = mid; else hi = mid;
  }
  return lo;
}

}  // namespace

bool SplitKAttention(const AttentionArgs& a, ThreadPool& pool) {
  return SplitKAttentionBatch(std::span<const AttentionArgs>(&a, 1), pool);
}

bool SplitKAttentionBatch(std::span<const AttentionArgs> batch, ThreadPool& pool) {
  for (const AttentionArgs& a : batch)
    if (TileKernel(a) == nullptr) return false;
  // Plans first, then the partial states of every call in two buffers. Grown once per thread
  // that dispatches and reused, so decoding allocates nothing.
  thread_local std::vector<CallPlan> calls;
  calls.clear();
  size_t states = 0, out_floats = 0;
  int64_t items = 0, heads = 0;
  for (const AttentionArgs& a : batch) {
    if (a.n <= 0) continue;
    CallPlan c{};
    c.a = &a;
    c.attend = TileKernel(a);
    c.group = a.n_head / a.n_kv_head;
    c.d = a.head_dim;
    c.plan = Plan(a, pool.size(), c.group);
    c.prefix_chunks = c.plan.chunks;
    if (a.tree_mask != nullptr) {  // one more chunk per (query, kv head): its visible tree nodes
      c.plan.chunks += 1;
      c.plan.items = c.plan.tiles * a.n_kv_head * c.plan.chunks;
    }
    c.first_item = items;
    c.first_head = heads;
    items += c.plan.items;
    heads += a.n * a.n_head;
    c.ml_at = states * 2;
    c.outs_at = out_floats;
    const size_t call_states = static_cast<size_t>(a.n * a.n_head * c.plan.chunks);
    states += call_states;
    out_floats += call_states * static_cast<size_t>(c.d);
    calls.push_back(c);
  }
  if (calls.empty()) return true;
  thread_local std::vector<float> ml, outs;
  if (ml.size() < 2 * states) ml.resize(2 * states);
  if (outs.size() < out_floats) outs.resize(out_floats);
  for (CallPlan& c : calls) {
    c.ml = ml.data() + c.ml_at;
    c.outs = outs.data() + c.outs_at;
  }
  // One parallel region over the items of every call (the server's batch of sequences would
  // otherwise pay a region, and its wait for the slowest thread, per sequence and layer). The
  // plans are thread_local: lambdas reach the dispatching thread's copy through a pointer.
  const std::vector<CallPlan>* plans = &calls;
  pool.ParallelFor(items, [plans](int64_t i0, int64_t i1) {
    size_t c = CallOf(*plans, i0, [](const CallPlan& p) { return p.first_item; });
    for (int64_t i = i0; i < i1; ++i) {
      while (c + 1 < plans->size() && (*plans)[c + 1].first_item <= i) ++c;
      RunItem((*plans)[c], i - (*plans)[c].first_item);
    }
  });
  auto merge = [plans](int64_t h0, int64_t h1) {
    size_t c = CallOf(*plans, h0, [](const CallPlan& p) { return p.first_head; });
    for (int64_t h = h0; h < h1; ++h) {
      while (c + 1 < plans->size() && (*plans)[c + 1].first_head <= h) ++c;
      MergeHead((*plans)[c], h - (*plans)[c].first_head);
    }
  };
  if (static_cast<size_t>(out_floats) < (1u << 15)) {
    merge(0, heads);
  } else {
    pool.ParallelFor(heads, [m = &merge](int64_t h0, int64_t h1) { (*m)(h0, h1); });
  }
  return true;
}

}  // namespace fastgen::kernels::cpu
