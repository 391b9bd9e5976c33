// Causal attention with AVX-512 for head_dim a multiple of 16, split along the KV sequence
// (flash-decoding): each work item covers one (query, kv head, slot chunk) and keeps an online
// softmax — running max m, running sum l, and the unnormalized output o — for every query head
// of its GQA group, so each cached K and V row is read once per group. Partial results are
// merged afterwards with log-sum-exp weights. Splitting the sequence is what lets one decoded
// token (n = 1, a handful of heads) use every core on a long context.
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "kernels/cpu/attention_split.h"

namespace fastgen::kernels::cpu {
namespace {

inline float Dot(const float* a, const float* b, int64_t d) {
  __m512 acc = _mm512_setzero_ps();
  for (int64_t i = 0; i < d; i += 16) acc = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc);
  return _mm512_reduce_add_ps(acc);
}

// o = o * scale + p * v
inline void ScaleAxpy(float* o, float scale, float p, const float* v, int64_t d) {
  const __m512 s = _mm512_set1_ps(scale), pv = _mm512_set1_ps(p);
  for (int64_t i = 0; i < d; i += 16)
    _mm512_storeu_ps(o + i, _mm512_fmadd_ps(pv, _mm512_loadu_ps(v + i), _mm512_mul_ps(s, _mm512_loadu_ps(o + i))));
}

}  // namespace

void AttendChunkAvx512(const AttentionArgs& a, int64_t t, int64_t kvh, const SlotRange& r,
                       PartialSoftmax* out) {
  const int64_t first = 0, last = r.count - 1;  // indices into the range; SlotAt maps to slots
  auto slot_at = [&r](int64_t i) -> int64_t { return r.slots ? r.slots[i] : r.first + i; };
  const int64_t group = a.n_head / a.n_kv_head, d = a.head_dim;
  constexpr int64_t kBlock = 64;  // scores of a block of slots, so the max updates once per block
  float scores[kBlock];
  for (int64_t g = 0; g < group; ++g) {
    PartialSoftmax& p = out[g];
    const float* q = a.q + (t * a.n_head + kvh * group + g) * d;
    std::fill(p.o, p.o + d, 0.0f);
    p.m = -INFINITY;
    p.l = 0.0f;
    for (int64_t b0 = first; b0 <= last; b0 += kBlock) {
      const int64_t b1 = std::min(last + 1, b0 + kBlock);
      float block_max = -INFINITY;
      for (int64_t j = b0; j < b1; ++j) {
        const float s = Dot(q, a.k + slot_at(j) * a.kv_stride + kvh * d, d) * a.scale;
        scores[j - b0] = s;
        block_max = std::max(block_max, s);
      }
      const float m_new = std::max(p.m, block_max);
      // Rescale what was accumulated under the old max once per block.
      const float rescale = p.m == -INFINITY ? 0.0f : std::exp(p.m - m_new);
      p.l *= rescale;
      bool first_in_block = true;
      for (int64_t j = b0; j < b1; ++j) {
        const float w = std::exp(scores[j - b0] - m_new);
        p.l += w;
        ScaleAxpy(p.o, first_in_block ? rescale : 1.0f, w, a.v + slot_at(j) * a.kv_stride + kvh * d, d);
        first_in_block = false;
      }
      p.m = m_new;
    }
  }
}

}  // namespace fastgen::kernels::cpu
