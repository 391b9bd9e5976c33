// Software prefetch of a weight stream, shared by the per-ISA decode kernels. Include only from
// kernel files (internal linkage, see matmul_job.h).
//
// A stream the model cannot keep in the last-level cache (MatMulJob::stream) is fetched with
// the non-temporal hint: on the CPUs measured it then passes through L1 without being written
// into L2 and L3 as it is evicted, so it does not push out what those caches can hold from one
// token to the next: the KV cache, activations and a draft model's weights. fg-target (30 MB
// of bf16 matrices, 32 MB L3) decoded a token after 400 in 0.49 ms with it against 0.60 ms
// without (forward_bench --stream off,on; Model::set_stream_weights decides which models).
#pragma once

#include <immintrin.h>

namespace fastgen::kernels::cpu {
namespace {

inline void PrefetchWeights(const void* p, bool stream) {
  if (stream) {
    _mm_prefetch(static_cast<const char*>(p), _MM_HINT_NTA);
  } else {
    _mm_prefetch(static_cast<const char*>(p), _MM_HINT_T0);
  }
}

}  // namespace
}  // namespace fastgen::kernels::cpu
