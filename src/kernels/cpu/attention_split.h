// Split-K (flash-decoding) attention: the pieces shared by the dispatcher and the SIMD chunk
// kernels.
#pragma once

#include <cstdint>

#include "kernels/attention.h"

namespace fastgen::kernels::cpu {

// Online-softmax state of one query head over a chunk of cache slots:
// the chunk's output is o / l, and chunks merge with weights l·exp(m − m_max).
struct PartialSoftmax {
  float m;   // largest score seen
  float l;   // Σ exp(score − m)
  float* o;  // [head_dim] Σ exp(score − m) · v
};

// Attends query t's heads of kv head `kvh` (the whole GQA group, out[0..group)) over cache
// slots [first, last]. Requires head_dim % 16 == 0 and no tree mask.
void AttendChunkAvx512(const AttentionArgs& a, int64_t t, int64_t kvh, int64_t first, int64_t last,
                       PartialSoftmax* out);

// The whole attention on the split-K path; false when this call is not eligible (tree masks,
// head_dim, ISA) and the caller should use the reference kernel.
bool SplitKAttention(const AttentionArgs& a, ThreadPool& pool);

}  // namespace fastgen::kernels::cpu
