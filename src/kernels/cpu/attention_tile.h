// The split-K attention work item (attention_split.h) written once over a vector width: the
// AVX-512 and AVX2 files instantiate it with their lane traits (V::kLanes = 16 or 8). Include
// only from those files: everything here has internal linkage (see matmul_job.h).
//
// Slots go in blocks of kLanes. A block's K and V rows are read from memory once and from L1 by
// every other query of the tile (prefill and verification take up to 8 consecutive queries per
// work item, so a long cache streams through once per 8 queries rather than once per query);
// the heads of a GQA group go through each block together, sharing every K and V vector load
// (AttendGroup). The block's scores for one head come out of kLanes
// dot-product accumulators through one transposing reduction (~3 operations per slot instead of
// a full horizontal sum each), the softmax weights through one vector exp, and the max once per
// block; l and o are rescaled only in blocks that raise the max.
//
// V provides: Vec, Mask, kLanes, kRegisters (vector registers of the ISA); DecodeRows(type,
// src, count, n, dst) (count rows of n F16 or Q8_0 elements to float32 [count, n], exactly as
// the reference dequantizer); Zero, Set1, Load, Store, Add, Mul, Sub, Fmadd; ReduceLanes
// (lane j = sum of a[j]), Exp, HorizontalMax, HorizontalSum; FirstLanes(count),
// Causal(mask, first_slot, pos, window) (lanes whose slot first_slot + lane a query at position
// pos sees), None(mask), WhereOr(mask, v, fill), ZeroOutside(mask, v).
#pragma once

#include <algorithm>
#include <cmath>

#include "kernels/cpu/attention_split.h"

namespace fastgen::kernels::cpu {
namespace {

// Rescales what a state accumulated under its old max when a block raises it, and folds the
// block's weights w into l. After the first blocks the max rarely grows. (The skipped factor
// would be exp(0) = 1 exactly: no result changes.)
template <class V>
void RaiseMax(float m_new, typename V::Vec w, int64_t d, PartialSoftmax& ps) {
  constexpr int kBlock = V::kLanes;
  if (m_new != ps.m) {
    const float rescale = ps.m == -INFINITY ? 0.0f : std::exp(ps.m - m_new);
    ps.l *= rescale;
    const typename V::Vec rs = V::Set1(rescale);
    for (int64_t i = 0; i < d; i += kBlock) V::Store(ps.o + i, V::Mul(V::Load(ps.o + i), rs));
    ps.m = m_new;
  }
  ps.l += V::HorizontalSum(w);
}

// One block of count slots (K rows krow, V rows vrow) for G heads of one query that share a KV
// head (GQA), their states ps[0..G): scores, the running max, the softmax weights, l and o.
// q holds the G heads' queries one after another, head_dim = NV·kLanes floats each; the G·NV
// query vectors stay in registers. Each K and V vector is loaded once for all G heads (one head
// at a time loaded them G times, and its short dependency chains, dot product -> reduction ->
// max -> exp -> P·V, left the cores idle: fg-target's decode attention over 800 slots ran at
// ~20 cycles per slot and head). Every head's arithmetic is the same whatever G is, so the
// result does not depend on how the group is split.
template <class V, int NV, int G>
void AttendGroup(const float* q, float scale, int count, const float* const* krow, const float* const* vrow,
                 typename V::Mask visible, PartialSoftmax* ps) {
  constexpr int kBlock = V::kLanes;
  constexpr int64_t d = NV * kBlock;
  // Slot j's dot-product lanes for head g: a register, stored once (see ReduceLanes).
  typename V::Vec acc[G][kBlock];
  {
    typename V::Vec qv[G][NV];
    for (int g = 0; g < G; ++g)
      for (int i = 0; i < NV; ++i) qv[g][i] = V::Load(q + g * d + kBlock * i);
    for (int j = 0; j < count; ++j) {
      typename V::Vec kv[NV];
      for (int i = 0; i < NV; ++i) kv[i] = V::Load(krow[j] + kBlock * i);
      for (int g = 0; g < G; ++g) {
        typename V::Vec dot = V::Mul(qv[g][0], kv[0]);
        for (int i = 1; i < NV; ++i) dot = V::Fmadd(qv[g][i], kv[i], dot);
        acc[g][j] = dot;
      }
    }
  }
  alignas(64) float p[G][kBlock];
  for (int g = 0; g < G; ++g) {
    for (int j = count; j < kBlock; ++j) acc[g][j] = V::Zero();
    const typename V::Vec s = V::WhereOr(visible, V::Mul(V::ReduceLanes(acc[g]), V::Set1(scale)), -INFINITY);
    const float m_new = std::max(ps[g].m, V::HorizontalMax(s));
    const typename V::Vec w = V::ZeroOutside(visible, V::Exp(V::Sub(s, V::Set1(m_new))));
    V::Store(p[g], w);
    RaiseMax<V>(m_new, w, d, ps[g]);
  }
  // o += Σ_j p_j · v_j, slot by slot. With fewer than 8 accumulators (one head of 64 or fewer
  // dims) even and odd slots take separate chains, halving the FMA latency; both add in the
  // same order whatever the block, so results do not depend on where a chunk starts.
  constexpr bool kTwoChains = G * NV < 8;
  typename V::Vec o[G][NV], o2[kTwoChains ? G : 1][NV];
  for (int g = 0; g < G; ++g)
    for (int i = 0; i < NV; ++i) o[g][i] = V::Load(ps[g].o + kBlock * i);
  if constexpr (kTwoChains) {
    for (int g = 0; g < G; ++g)
      for (int i = 0; i < NV; ++i) o2[g][i] = V::Zero();
  }
  int j = 0;
  if constexpr (kTwoChains) {
    for (; j + 1 < count; j += 2) {
      typename V::Vec ve[NV], vo[NV];
      for (int i = 0; i < NV; ++i) {
        ve[i] = V::Load(vrow[j] + kBlock * i);
        vo[i] = V::Load(vrow[j + 1] + kBlock * i);
      }
      for (int g = 0; g < G; ++g) {
        const typename V::Vec pe = V::Set1(p[g][j]), po = V::Set1(p[g][j + 1]);
        for (int i = 0; i < NV; ++i) {
          o[g][i] = V::Fmadd(pe, ve[i], o[g][i]);
          o2[g][i] = V::Fmadd(po, vo[i], o2[g][i]);
        }
      }
    }
  }
  for (; j < count; ++j) {
    typename V::Vec vv[NV];
    for (int i = 0; i < NV; ++i) vv[i] = V::Load(vrow[j] + kBlock * i);
    for (int g = 0; g < G; ++g) {
      const typename V::Vec pj = V::Set1(p[g][j]);
      for (int i = 0; i < NV; ++i) o[g][i] = V::Fmadd(pj, vv[i], o[g][i]);
    }
  }
  for (int g = 0; g < G; ++g)
    for (int i = 0; i < NV; ++i) {
      if constexpr (kTwoChains) o[g][i] = V::Add(o[g][i], o2[g][i]);
      V::Store(ps[g].o + kBlock * i, o[g][i]);
    }
}

// Heads of one GQA group per AttendGroup call: as many as keep their query vectors in half the
// vector registers.
template <class V, int NV>
constexpr int GroupHeads() {
  constexpr int g = V::kRegisters / 2 / NV;
  return g < 1 ? 1 : g;
}

// The group's heads [0, group) of one query in calls of up to GroupHeads() heads.
template <class V, int NV>
void AttendGroupHeads(const float* q, int64_t group, float scale, int count, const float* const* krow,
                      const float* const* vrow, typename V::Mask visible, PartialSoftmax* ps) {
  constexpr int kMax = GroupHeads<V, NV>();
  // The remainder switch below covers 1..7 heads: enough for NV >= 2 at 32 registers (AttendTile
  // takes no NV of 1).
  static_assert(kMax <= 8, "AttendGroupHeads handles remainders of up to 7 heads");
  constexpr int64_t d = NV * V::kLanes;
  for (int64_t g0 = 0; g0 < group; g0 += kMax) {
    const int64_t left = group - g0;
    const float* qg = q + g0 * d;
    PartialSoftmax* pg = ps + g0;
    // Whole calls of kMax heads, then the rest in one call of its size.
    if (left >= kMax) {
      AttendGroup<V, NV, kMax>(qg, scale, count, krow, vrow, visible, pg);
    } else if constexpr (kMax > 1) {
      switch (left) {
        case 1: AttendGroup<V, NV, 1>(qg, scale, count, krow, vrow, visible, pg); break;
        case 2: if constexpr (kMax > 2) AttendGroup<V, NV, 2>(qg, scale, count, krow, vrow, visible, pg); break;
        case 3: if constexpr (kMax > 3) AttendGroup<V, NV, 3>(qg, scale, count, krow, vrow, visible, pg); break;
        case 4: if constexpr (kMax > 4) AttendGroup<V, NV, 4>(qg, scale, count, krow, vrow, visible, pg); break;
        case 5: if constexpr (kMax > 5) AttendGroup<V, NV, 5>(qg, scale, count, krow, vrow, visible, pg); break;
        case 6: if constexpr (kMax > 6) AttendGroup<V, NV, 6>(qg, scale, count, krow, vrow, visible, pg); break;
        default: if constexpr (kMax > 7) AttendGroup<V, NV, 7>(qg, scale, count, krow, vrow, visible, pg); break;
      }
    }
  }
}

// Head sizes without a compile-time vector count: one head at a time, q and o through memory.
template <class V>
void AttendBlock(const float* q, float scale, int64_t d, int count, const float* const* krow,
                 const float* const* vrow, typename V::Mask visible, PartialSoftmax& ps) {
  constexpr int kBlock = V::kLanes;
  const int64_t nv = d / kBlock;
  typename V::Vec acc[kBlock];
  for (int j = 0; j < count; ++j) {
    typename V::Vec dot = V::Mul(V::Load(q), V::Load(krow[j]));
    for (int64_t i = 1; i < nv; ++i) dot = V::Fmadd(V::Load(q + kBlock * i), V::Load(krow[j] + kBlock * i), dot);
    acc[j] = dot;
  }
  for (int j = count; j < kBlock; ++j) acc[j] = V::Zero();
  const typename V::Vec s = V::WhereOr(visible, V::Mul(V::ReduceLanes(acc), V::Set1(scale)), -INFINITY);
  const float m_new = std::max(ps.m, V::HorizontalMax(s));
  const typename V::Vec w = V::ZeroOutside(visible, V::Exp(V::Sub(s, V::Set1(m_new))));
  alignas(64) float p[kBlock];
  V::Store(p, w);
  RaiseMax<V>(m_new, w, d, ps);
  for (int64_t i = 0; i < nv; ++i) {
    typename V::Vec o = V::Load(ps.o + kBlock * i), o2 = V::Zero();
    int j = 0;
    for (; j + 1 < count; j += 2) {
      o = V::Fmadd(V::Set1(p[j]), V::Load(vrow[j] + kBlock * i), o);
      o2 = V::Fmadd(V::Set1(p[j + 1]), V::Load(vrow[j + 1] + kBlock * i), o2);
    }
    if (j < count) o = V::Fmadd(V::Set1(p[j]), V::Load(vrow[j] + kBlock * i), o);
    V::Store(ps.o + kBlock * i, V::Add(o, o2));
  }
}

template <class V, int NV>
void AttendTileNv(const AttentionArgs& a, int64_t t0, int64_t nt, int64_t kvh, const SlotRange& r,
                  PartialSoftmax* out) {
  constexpr int kBlock = V::kLanes;
  auto slot_at = [&r](int64_t i) -> int64_t { return r.slots ? r.slots[i] : r.first + i; };
  const int64_t group = a.n_head / a.n_kv_head, d = a.head_dim;
  for (int64_t s = 0; s < nt * group; ++s) {
    std::fill(out[s].o, out[s].o + d, 0.0f);
    out[s].m = -INFINITY;
    out[s].l = 0.0f;
  }
  // [kBlock, head_dim] K and V of the block when the cache is F16 or Q8_0 (head_dim <=
  // kMaxCompactHeadDim there, which SplitKAttention checks).
  alignas(64) float kbuf[kBlock * kMaxCompactHeadDim];
  alignas(64) float vbuf[kBlock * kMaxCompactHeadDim];
  for (int64_t b0 = 0; b0 < r.count; b0 += kBlock) {
    const int count = static_cast<int>(std::min<int64_t>(kBlock, r.count - b0));
    const typename V::Mask valid = V::FirstLanes(count);
    if (a.kv_type != DType::kF32 && b0 + kBlock < r.count) {
      // The conversion below is a pure load-store stream that waits on every row: fetch the
      // next block's rows while this block computes (q8_0 decode attention at 4096 slots,
      // TinyLlama shape: 11.5 -> 7.0 ms per token; float32 rows, read inside the FMA loops,
      // measured no gain from it).
      const int64_t next = std::min<int64_t>(kBlock, r.count - b0 - kBlock);
      const int64_t bytes = d / Info(a.kv_type).block_elems * Info(a.kv_type).block_bytes;
      for (int j = 0; j < next; ++j) {
        const int64_t off = CacheRowOf(a, slot_at(b0 + kBlock + j)) * a.kv_stride + kvh * d;
        const uint8_t* kp = KvRow(a.k, a.kv_type, off);
        const uint8_t* vp = KvRow(a.v, a.kv_type, off);
        for (int64_t c = 0; c < bytes; c += 64) {
          __builtin_prefetch(kp + c);
          __builtin_prefetch(vp + c);
        }
      }
    }
    const float* krow[kBlock];  // [count] rows of this block, kv head kvh
    const float* vrow[kBlock];
    if (a.kv_type == DType::kF32) {
      for (int j = 0; j < count; ++j) {
        const int64_t off = CacheRowOf(a, slot_at(b0 + j)) * a.kv_stride + kvh * d;
        krow[j] = static_cast<const float*>(a.k) + off;
        vrow[j] = static_cast<const float*>(a.v) + off;
      }
    } else {
      // Compact caches are converted once per block, and every head of the group and every
      // query of the tile reads the float32 rows from L1.
      const uint8_t* ksrc[kBlock];
      const uint8_t* vsrc[kBlock];
      for (int j = 0; j < count; ++j) {
        const int64_t off = CacheRowOf(a, slot_at(b0 + j)) * a.kv_stride + kvh * d;
        ksrc[j] = KvRow(a.k, a.kv_type, off);
        vsrc[j] = KvRow(a.v, a.kv_type, off);
        krow[j] = kbuf + j * d;
        vrow[j] = vbuf + j * d;
      }
      V::DecodeRows(a.kv_type, ksrc, count, d, kbuf);
      if (a.k_channel_scale != nullptr) {  // KIVI-style keys: per-channel scales of the slot's group
        for (int j = 0; j < count; ++j) {
          const float* sc = a.k_channel_scale + (slot_at(b0 + j) / 64) * a.kv_stride + kvh * d;
          float* row = kbuf + j * d;
          for (int64_t c = 0; c < d; ++c) row[c] *= sc[c];
        }
      }
      V::DecodeRows(a.kv_type, vsrc, count, d, vbuf);
    }
    for (int64_t qi = 0; qi < nt; ++qi) {
      const int64_t t = t0 + qi;
      typename V::Mask visible = valid;
      if (a.tree_mask == nullptr) {
        // A chain's range is shared by the tile and starts at a fixed block boundary (see
        // SplitKAttention): each query sees only its causal, windowed part of it.
        visible = V::Causal(valid, static_cast<int32_t>(r.first + b0), a.q_slot[t], a.window);
        if (V::None(visible)) continue;
      }
      const float* q = a.q + (t * a.n_head + kvh * group) * d;  // [group, head_dim]
      if constexpr (NV > 0) {
        AttendGroupHeads<V, NV>(q, group, a.scale, count, krow, vrow, visible, out + qi * group);
      } else {
        for (int64_t g = 0; g < group; ++g)
          AttendBlock<V>(q + g * d, a.scale, d, count, krow, vrow, visible, out[qi * group + g]);
      }
    }
  }
}

// Head sizes of common models get q and o in registers: 64 and 128 (and 32), whichever the
// vector width; others take the runtime-length loops.
template <class V>
void AttendTile(const AttentionArgs& a, int64_t t0, int64_t nt, int64_t kvh, const SlotRange& r,
                PartialSoftmax* out) {
  switch (a.head_dim / V::kLanes) {
    case 2: AttendTileNv<V, 2>(a, t0, nt, kvh, r, out); break;
    case 4: AttendTileNv<V, 4>(a, t0, nt, kvh, r, out); break;
    case 8: AttendTileNv<V, 8>(a, t0, nt, kvh, r, out); break;
    case 16: AttendTileNv<V, 16>(a, t0, nt, kvh, r, out); break;
    default: AttendTileNv<V, 0>(a, t0, nt, kvh, r, out); break;
  }
}

}  // namespace
}  // namespace fastgen::kernels::cpu
