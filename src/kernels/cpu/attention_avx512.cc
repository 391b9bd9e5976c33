// Causal attention with AVX-512 for head_dim a multiple of 16, split along the KV sequence
// (flash-decoding): each work item covers one (query, kv head, slot chunk) and keeps an online
// softmax — running max m, running sum l, and the unnormalized output o — for every query head
// of its GQA group. Partial results are merged afterwards with log-sum-exp weights. Splitting
// the sequence is what lets one decoded token (n = 1, a handful of heads) use every core on a
// long context.
//
// Slots go in blocks of 16. A block's K and V rows are read from memory once and from L1 by
// every other head of the group and every other query of the tile (prefill and verification
// take up to 8 consecutive queries per work item, so a long cache streams through once per 8
// queries rather than once per query). The 16 scores of a head come out of 16 dot-product
// accumulators through one transposing reduction (~3 operations per slot instead of a full
// horizontal sum each), the softmax weights through one vector exp per block, and the max and
// the rescaling of l and o happen once per block.
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "kernels/cpu/attention_split.h"
#include "kernels/cpu/vec_math_avx512.h"

namespace fastgen::kernels::cpu {
namespace {

constexpr int kBlock = 16;

// Lane j of the result = the sum of the 16 lanes of a[j]: a transposing tree of unpacks and
// shuffles, 45 operations for 16 sums.
inline __m512 Reduce16(__m512 a[16]) {
  __m512 v[8], w[4], z[2];
  for (int k = 0; k < 8; ++k)  // per 128-bit lane: a[2k] partials in positions 0, 2; a[2k+1] in 1, 3
    v[k] = _mm512_add_ps(_mm512_unpacklo_ps(a[2 * k], a[2 * k + 1]), _mm512_unpackhi_ps(a[2 * k], a[2 * k + 1]));
  for (int k = 0; k < 4; ++k)  // per 128-bit lane: sources 4k .. 4k+3 in order
    w[k] = _mm512_add_ps(_mm512_shuffle_ps(v[2 * k], v[2 * k + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                         _mm512_shuffle_ps(v[2 * k], v[2 * k + 1], _MM_SHUFFLE(3, 2, 3, 2)));
  for (int k = 0; k < 2; ++k)  // 128-bit lanes: sources 8k..8k+3 (two halves), 8k+4..8k+7 (two halves)
    z[k] = _mm512_add_ps(_mm512_shuffle_f32x4(w[2 * k], w[2 * k + 1], _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm512_shuffle_f32x4(w[2 * k], w[2 * k + 1], _MM_SHUFFLE(3, 1, 3, 1)));
  return _mm512_add_ps(_mm512_shuffle_f32x4(z[0], z[1], _MM_SHUFFLE(2, 0, 2, 0)),
                       _mm512_shuffle_f32x4(z[0], z[1], _MM_SHUFFLE(3, 1, 3, 1)));
}

}  // namespace

void AttendTileAvx512(const AttentionArgs& a, int64_t t0, int64_t nt, int64_t kvh, const SlotRange& r,
                      PartialSoftmax* out) {
  auto slot_at = [&r](int64_t i) -> int64_t { return r.slots ? r.slots[i] : r.first + i; };
  const int64_t group = a.n_head / a.n_kv_head, d = a.head_dim, nv = d / 16;
  for (int64_t s = 0; s < nt * group; ++s) {
    std::fill(out[s].o, out[s].o + d, 0.0f);
    out[s].m = -INFINITY;
    out[s].l = 0.0f;
  }
  const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  alignas(64) float p[kBlock];
  for (int64_t b0 = 0; b0 < r.count; b0 += kBlock) {
    const int count = static_cast<int>(std::min<int64_t>(kBlock, r.count - b0));
    const __mmask16 valid = static_cast<__mmask16>((1u << count) - 1);
    const float* krow[kBlock];  // [count] rows of this block, kv head kvh
    const float* vrow[kBlock];
    for (int j = 0; j < count; ++j) {
      const int64_t off = slot_at(b0 + j) * a.kv_stride + kvh * d;
      krow[j] = a.k + off;
      vrow[j] = a.v + off;
    }
    // The block's slots, for the causal mask and window of each query of a tile.
    const __m512i slots = _mm512_add_epi32(_mm512_set1_epi32(static_cast<int32_t>(r.first + b0)), iota);
    for (int64_t qi = 0; qi < nt; ++qi) {
      const int64_t t = t0 + qi;
      __mmask16 visible = valid;
      if (nt > 1) {  // a tile shares one slot range; each query sees only its causal part of it
        const int32_t pos = a.q_slot[t];
        visible &= _mm512_cmple_epi32_mask(slots, _mm512_set1_epi32(pos));
        if (a.window > 0)
          visible &= _mm512_cmpgt_epi32_mask(slots, _mm512_set1_epi32(static_cast<int32_t>(pos - a.window)));
        if (visible == 0) continue;
      }
      for (int64_t g = 0; g < group; ++g) {
        PartialSoftmax& ps = out[qi * group + g];
        const float* q = a.q + (t * a.n_head + kvh * group + g) * d;
        __m512 acc[kBlock];
        for (int j = 0; j < kBlock; ++j) acc[j] = _mm512_setzero_ps();
        for (int j = 0; j < count; ++j)
          for (int64_t i = 0; i < nv; ++i)
            acc[j] = _mm512_fmadd_ps(_mm512_loadu_ps(q + 16 * i), _mm512_loadu_ps(krow[j] + 16 * i), acc[j]);
        const __m512 s =
            _mm512_mask_mul_ps(_mm512_set1_ps(-INFINITY), visible, Reduce16(acc), _mm512_set1_ps(a.scale));
        const float m_new = std::max(ps.m, _mm512_reduce_max_ps(s));
        // Rescale what was accumulated under the old max once per block.
        const float rescale = ps.m == -INFINITY ? 0.0f : std::exp(ps.m - m_new);
        const __m512 w = _mm512_maskz_mov_ps(visible, Exp(_mm512_sub_ps(s, _mm512_set1_ps(m_new))));
        _mm512_store_ps(p, w);
        ps.l = ps.l * rescale + _mm512_reduce_add_ps(w);
        ps.m = m_new;
        const __m512 rs = _mm512_set1_ps(rescale);
        for (int64_t i = 0; i < nv; ++i) {
          __m512 o = _mm512_mul_ps(_mm512_loadu_ps(ps.o + 16 * i), rs);
          for (int j = 0; j < count; ++j)
            o = _mm512_fmadd_ps(_mm512_set1_ps(p[j]), _mm512_loadu_ps(vrow[j] + 16 * i), o);
          _mm512_storeu_ps(ps.o + 16 * i, o);
        }
      }
    }
  }
}

}  // namespace fastgen::kernels::cpu
