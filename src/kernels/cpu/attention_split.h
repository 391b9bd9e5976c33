// Split-K (flash-decoding) attention: the pieces shared by the dispatcher and the SIMD chunk
// kernels.
#pragma once

#include <cstdint>
#include <span>

#include "kernels/attention.h"

namespace fastgen::kernels::cpu {

// Online-softmax state of one query head over a chunk of cache slots:
// the chunk's output is o / l, and chunks merge with weights l·exp(m − m_max).
struct PartialSoftmax {
  float m;   // largest score seen
  float l;   // Σ exp(score − m)
  float* o;  // [head_dim] Σ exp(score − m) · v
};

// The cache slots one work item attends: `count` consecutive slots from `first`, or, when
// `slots` is set, the listed ones (a token tree's visible nodes), in increasing order.
struct SlotRange {
  int64_t first = 0;
  int64_t count = 0;
  const int32_t* slots = nullptr;  // [count]
};

// The largest head_dim the split-K kernels take for F16 and Q8_0 caches (they convert a block's
// rows into stack buffers of this width); larger heads use the reference kernel.
constexpr int64_t kMaxCompactHeadDim = 256;

// Attends queries [t0, t0 + nt) of kv head `kvh`, each with its whole GQA group (out[i·group + g]
// for query t0 + i), over the slots of `r`. For chains (`r` contiguous) the tile shares `r` and
// each query sees the part its causal mask and sliding window allow; for a token tree's query
// (nt = 1) `r` is exactly what it sees. Requires head_dim % 16 == 0.
void AttendTileAvx512(const AttentionArgs& a, int64_t t0, int64_t nt, int64_t kvh, const SlotRange& r,
                      PartialSoftmax* out);
// The same with AVX2 + FMA; requires head_dim % 8 == 0.
void AttendTileAvx2(const AttentionArgs& a, int64_t t0, int64_t nt, int64_t kvh, const SlotRange& r,
                    PartialSoftmax* out);

// The whole attention on the split-K path (AVX-512, or AVX2); false when this call is not
// eligible (head_dim, ISA) and the caller should use the reference kernel. Token trees split their shared prefix
// like a chain and attend their visible tree nodes as one more chunk.
bool SplitKAttention(const AttentionArgs& a, ThreadPool& pool);
// Several independent calls (the sequences of a ragged batch) in one parallel region: each
// call's result is the same bits as SplitKAttention gives it alone. False (nothing done) when
// any call is not eligible.
bool SplitKAttentionBatch(std::span<const AttentionArgs> batch, ThreadPool& pool);

}  // namespace fastgen::kernels::cpu
