// The split-K attention work item (attention_split.h) written once over a vector width: the
// AVX-512 and AVX2 files instantiate it with their lane traits (V::kLanes = 16 or 8). Include
// only from those files: everything here has internal linkage (see matmul_job.h).
//
// Slots go in blocks of kLanes. A block's K and V rows are read from memory once and from L1 by
// every other head of the GQA group and every other query of the tile (prefill and verification
// take up to 8 consecutive queries per work item, so a long cache streams through once per 8
// queries rather than once per query). The block's scores for one head come out of kLanes
// dot-product accumulators through one transposing reduction (~3 operations per slot instead of
// a full horizontal sum each), the softmax weights through one vector exp, and the max and the
// rescaling of l and o happen once per block.
//
// V provides: Vec, Mask, kLanes; Zero, Set1, Load, Store, Add, Mul, Sub, Fmadd; ReduceLanes
// (lane j = sum of a[j]), Exp, HorizontalMax, HorizontalSum; FirstLanes(count),
// Causal(mask, first_slot, pos, window) (lanes whose slot first_slot + lane a query at position
// pos sees), None(mask), WhereOr(mask, v, fill), ZeroOutside(mask, v).
#pragma once

#include <algorithm>
#include <cmath>

#include "kernels/cpu/attention_split.h"

namespace fastgen::kernels::cpu {
namespace {

template <class V>
void AttendTile(const AttentionArgs& a, int64_t t0, int64_t nt, int64_t kvh, const SlotRange& r,
                PartialSoftmax* out) {
  constexpr int kBlock = V::kLanes;
  auto slot_at = [&r](int64_t i) -> int64_t { return r.slots ? r.slots[i] : r.first + i; };
  const int64_t group = a.n_head / a.n_kv_head, d = a.head_dim, nv = d / kBlock;
  for (int64_t s = 0; s < nt * group; ++s) {
    std::fill(out[s].o, out[s].o + d, 0.0f);
    out[s].m = -INFINITY;
    out[s].l = 0.0f;
  }
  alignas(64) float p[kBlock];
  for (int64_t b0 = 0; b0 < r.count; b0 += kBlock) {
    const int count = static_cast<int>(std::min<int64_t>(kBlock, r.count - b0));
    const typename V::Mask valid = V::FirstLanes(count);
    const float* krow[kBlock];  // [count] rows of this block, kv head kvh
    const float* vrow[kBlock];
    for (int j = 0; j < count; ++j) {
      const int64_t off = slot_at(b0 + j) * a.kv_stride + kvh * d;
      krow[j] = a.k + off;
      vrow[j] = a.v + off;
    }
    for (int64_t qi = 0; qi < nt; ++qi) {
      const int64_t t = t0 + qi;
      typename V::Mask visible = valid;
      if (nt > 1) {  // a tile shares one slot range; each query sees only its causal part of it
        visible = V::Causal(valid, static_cast<int32_t>(r.first + b0), a.q_slot[t], a.window);
        if (V::None(visible)) continue;
      }
      for (int64_t g = 0; g < group; ++g) {
        PartialSoftmax& ps = out[qi * group + g];
        const float* q = a.q + (t * a.n_head + kvh * group + g) * d;
        typename V::Vec acc[kBlock];
        for (int j = 0; j < kBlock; ++j) acc[j] = V::Zero();
        for (int j = 0; j < count; ++j)
          for (int64_t i = 0; i < nv; ++i)
            acc[j] = V::Fmadd(V::Load(q + kBlock * i), V::Load(krow[j] + kBlock * i), acc[j]);
        const typename V::Vec s =
            V::WhereOr(visible, V::Mul(V::ReduceLanes(acc), V::Set1(a.scale)), -INFINITY);
        const float m_new = std::max(ps.m, V::HorizontalMax(s));
        // Rescale what was accumulated under the old max once per block.
        const float rescale = ps.m == -INFINITY ? 0.0f : std::exp(ps.m - m_new);
        const typename V::Vec w = V::ZeroOutside(visible, V::Exp(V::Sub(s, V::Set1(m_new))));
        V::Store(p, w);
        ps.l = ps.l * rescale + V::HorizontalSum(w);
        ps.m = m_new;
        const typename V::Vec rs = V::Set1(rescale);
        for (int64_t i = 0; i < nv; ++i) {
          typename V::Vec o = V::Mul(V::Load(ps.o + kBlock * i), rs);
          for (int j = 0; j < count; ++j) o = V::Fmadd(V::Set1(p[j]), V::Load(vrow[j] + kBlock * i), o);
          V::Store(ps.o + kBlock * i, o);
        }
      }
    }
  }
}

}  // namespace
}  // namespace fastgen::kernels::cpu
