// The split-K attention work item (attention_split.h) written once over a vector width: the
// AVX-512 and AVX2 files instantiate it with their lane traits (V::kLanes = 16 or 8). Include
// only from those files: everything here has internal linkage (see matmul_job.h).
//
// Slots go in blocks of kLanes. A block's K and V rows are read from memory once and from L1 by
// every other head of the GQA group and every other query of the tile (prefill and verification
// take up to 8 consecutive queries per work item, so a long cache streams through once per 8
// queries rather than once per query). The block's scores for one head come out of kLanes
// dot-product accumulators through one transposing reduction (~3 operations per slot instead of
// a full horizontal sum each), the softmax weights through one vector exp, and the max once per
// block; l and o are rescaled only in blocks that raise the max.
//
// V provides: Vec, Mask, kLanes; DecodeRows(type, src, count, n, dst) (count rows of n F16 or
// Q8_0 elements to float32 [count, n], exactly as the reference dequantizer); Zero, Set1, Load, Store, Add, Mul, Sub, Fmadd; ReduceLanes
// (lane j = sum of a[j]), Exp, HorizontalMax, HorizontalSum; FirstLanes(count),
// Causal(mask, first_slot, pos, window) (lanes whose slot first_slot + lane a query at position
// pos sees), None(mask), WhereOr(mask, v, fill), ZeroOutside(mask, v).
#pragma once

#include <algorithm>
#include <cmath>

#include "kernels/cpu/attention_split.h"

namespace fastgen::kernels::cpu {
namespace {

// One block of count slots (K rows krow, V rows vrow) for one (query, head) state: scores, the
// running max, the softmax weights, l and o. NV is head_dim / kLanes when the caller knows it
// at compile time (q and the output row then stay in registers across the block's slots), 0
// otherwise.
template <class V, int NV>
void AttendBlock(const float* q, float scale, int64_t d, int count, const float* const* krow,
                 const float* const* vrow, typename V::Mask visible, PartialSoftmax& ps) {
  constexpr int kBlock = V::kLanes;
  const int64_t nv = NV > 0 ? NV : d / kBlock;
  // Each slot's dot product accumulates in a register and is stored once (accumulating into
  // acc[j] in place kept it in memory, and every FMA waited on a store-to-load forward).
  typename V::Vec acc[kBlock];
  if constexpr (NV > 0) {
    typename V::Vec qv[NV];
    for (int i = 0; i < NV; ++i) qv[i] = V::Load(q + kBlock * i);
    for (int j = 0; j < count; ++j) {
      typename V::Vec dot = V::Mul(qv[0], V::Load(krow[j]));
      for (int i = 1; i < NV; ++i) dot = V::Fmadd(qv[i], V::Load(krow[j] + kBlock * i), dot);
      acc[j] = dot;
    }
  } else {
    for (int j = 0; j < count; ++j) {
      typename V::Vec dot = V::Mul(V::Load(q), V::Load(krow[j]));
      for (int64_t i = 1; i < nv; ++i) dot = V::Fmadd(V::Load(q + kBlock * i), V::Load(krow[j] + kBlock * i), dot);
      acc[j] = dot;
    }
  }
  for (int j = count; j < kBlock; ++j) acc[j] = V::Zero();
  const typename V::Vec s = V::WhereOr(visible, V::Mul(V::ReduceLanes(acc), V::Set1(scale)), -INFINITY);
  const float m_new = std::max(ps.m, V::HorizontalMax(s));
  const typename V::Vec w = V::ZeroOutside(visible, V::Exp(V::Sub(s, V::Set1(m_new))));
  alignas(64) float p[kBlock];
  V::Store(p, w);
  // What was accumulated under the old max is rescaled when the max grows, which after the
  // first blocks is rare. (The skipped factor would be exp(0) = 1 exactly: no result changes.)
  if (m_new != ps.m) {
    const float rescale = ps.m == -INFINITY ? 0.0f : std::exp(ps.m - m_new);
    ps.l *= rescale;
    const typename V::Vec rs = V::Set1(rescale);
    for (int64_t i = 0; i < nv; ++i) V::Store(ps.o + kBlock * i, V::Mul(V::Load(ps.o + kBlock * i), rs));
    ps.m = m_new;
  }
  ps.l += V::HorizontalSum(w);
  // Two chains over the slots (even, odd) halve the FMA latency; both paths add in the same
  // order, so they give the same result.
  if constexpr (NV > 0) {
    typename V::Vec o[NV], o2[NV];
    for (int i = 0; i < NV; ++i) {
      o[i] = V::Load(ps.o + kBlock * i);
      o2[i] = V::Zero();
    }
    int j = 0;
    for (; j + 1 < count; j += 2) {
      const typename V::Vec pe = V::Set1(p[j]), po = V::Set1(p[j + 1]);
      for (int i = 0; i < NV; ++i) {
        o[i] = V::Fmadd(pe, V::Load(vrow[j] + kBlock * i), o[i]);
        o2[i] = V::Fmadd(po, V::Load(vrow[j + 1] + kBlock * i), o2[i]);
      }
    }
    if (j < count) {
      const typename V::Vec pe = V::Set1(p[j]);
      for (int i = 0; i < NV; ++i) o[i] = V::Fmadd(pe, V::Load(vrow[j] + kBlock * i), o[i]);
    }
    for (int i = 0; i < NV; ++i) V::Store(ps.o + kBlock * i, V::Add(o[i], o2[i]));
  } else {
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
        const int64_t off = slot_at(b0 + kBlock + j) * a.kv_stride + kvh * d;
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
        const int64_t off = slot_at(b0 + j) * a.kv_stride + kvh * d;
        krow[j] = static_cast<const float*>(a.k) + off;
        vrow[j] = static_cast<const float*>(a.v) + off;
      }
    } else {
      // Compact caches are converted once per block, and every head of the group and every
      // query of the tile reads the float32 rows from L1.
      const uint8_t* ksrc[kBlock];
      const uint8_t* vsrc[kBlock];
      for (int j = 0; j < count; ++j) {
        const int64_t off = slot_at(b0 + j) * a.kv_stride + kvh * d;
        ksrc[j] = KvRow(a.k, a.kv_type, off);
        vsrc[j] = KvRow(a.v, a.kv_type, off);
        krow[j] = kbuf + j * d;
        vrow[j] = vbuf + j * d;
      }
      V::DecodeRows(a.kv_type, ksrc, count, d, kbuf);
      V::DecodeRows(a.kv_type, vsrc, count, d, vbuf);
    }
    for (int64_t qi = 0; qi < nt; ++qi) {
      const int64_t t = t0 + qi;
      typename V::Mask visible = valid;
      if (nt > 1) {  // a tile shares one slot range; each query sees only its causal part of it
        visible = V::Causal(valid, static_cast<int32_t>(r.first + b0), a.q_slot[t], a.window);
        if (V::None(visible)) continue;
      }
      for (int64_t g = 0; g < group; ++g) {
        const float* q = a.q + (t * a.n_head + kvh * group + g) * d;
        AttendBlock<V, NV>(q, a.scale, d, count, krow, vrow, visible, out[qi * group + g]);
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
