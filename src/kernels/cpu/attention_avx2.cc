// The split-K attention work item (attention_split.h) with AVX2 + FMA, for head_dim a multiple
// of 8: the AVX-512 kernel's structure with 8-slot blocks. A block's K and V rows are read once
// and reused from L1 by every head of the GQA group and every query of the tile; the 8 scores of
// a head come out of one transposing horizontal-add tree, the softmax weights out of one vector
// exp, and the max and rescaling happen once per block.
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "kernels/cpu/attention_split.h"
#include "kernels/cpu/vec_math_avx2.h"

namespace fastgen::kernels::cpu {
namespace {

constexpr int kBlock = 8;

// Lane j of the result = the sum of the 8 lanes of a[j].
inline __m256 Reduce8(const __m256 a[8]) {
  const __m256 t0 = _mm256_hadd_ps(a[0], a[1]), t1 = _mm256_hadd_ps(a[2], a[3]);
  const __m256 t2 = _mm256_hadd_ps(a[4], a[5]), t3 = _mm256_hadd_ps(a[6], a[7]);
  // u0 = [a0..a3 low-half sums, a0..a3 high-half sums], u1 the same for a4..a7
  const __m256 u0 = _mm256_hadd_ps(t0, t1), u1 = _mm256_hadd_ps(t2, t3);
  return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
}

inline float HorizontalMax(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}

inline float HorizontalSum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

}  // namespace

void AttendTileAvx2(const AttentionArgs& a, int64_t t0, int64_t nt, int64_t kvh, const SlotRange& r,
                    PartialSoftmax* out) {
  auto slot_at = [&r](int64_t i) -> int64_t { return r.slots ? r.slots[i] : r.first + i; };
  const int64_t group = a.n_head / a.n_kv_head, d = a.head_dim, nv = d / 8;
  for (int64_t s = 0; s < nt * group; ++s) {
    std::fill(out[s].o, out[s].o + d, 0.0f);
    out[s].m = -INFINITY;
    out[s].l = 0.0f;
  }
  const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  alignas(32) float p[kBlock];
  for (int64_t b0 = 0; b0 < r.count; b0 += kBlock) {
    const int count = static_cast<int>(std::min<int64_t>(kBlock, r.count - b0));
    const float* krow[kBlock];
    const float* vrow[kBlock];
    for (int j = 0; j < count; ++j) {
      const int64_t off = slot_at(b0 + j) * a.kv_stride + kvh * d;
      krow[j] = a.k + off;
      vrow[j] = a.v + off;
    }
    // Lanes < count hold slots of this block.
    const __m256i valid = _mm256_cmpgt_epi32(_mm256_set1_epi32(count), iota);
    const __m256i slots = _mm256_add_epi32(_mm256_set1_epi32(static_cast<int32_t>(r.first + b0)), iota);
    for (int64_t qi = 0; qi < nt; ++qi) {
      const int64_t t = t0 + qi;
      __m256i visible = valid;
      if (nt > 1) {  // a tile shares one slot range; each query sees only its causal part of it
        const int32_t pos = a.q_slot[t];
        visible = _mm256_andnot_si256(_mm256_cmpgt_epi32(slots, _mm256_set1_epi32(pos)), visible);
        if (a.window > 0)
          visible = _mm256_and_si256(visible, _mm256_cmpgt_epi32(slots, _mm256_set1_epi32(static_cast<int32_t>(pos - a.window))));
        if (_mm256_testz_si256(visible, visible)) continue;
      }
      const __m256 vmask = _mm256_castsi256_ps(visible);
      for (int64_t g = 0; g < group; ++g) {
        PartialSoftmax& ps = out[qi * group + g];
        const float* q = a.q + (t * a.n_head + kvh * group + g) * d;
        __m256 acc[kBlock];
        for (int j = 0; j < kBlock; ++j) acc[j] = _mm256_setzero_ps();
        for (int j = 0; j < count; ++j)
          for (int64_t i = 0; i < nv; ++i)
            acc[j] = _mm256_fmadd_ps(_mm256_loadu_ps(q + 8 * i), _mm256_loadu_ps(krow[j] + 8 * i), acc[j]);
        const __m256 s = _mm256_blendv_ps(_mm256_set1_ps(-INFINITY),
                                          _mm256_mul_ps(Reduce8(acc), _mm256_set1_ps(a.scale)), vmask);
        const float m_new = std::max(ps.m, HorizontalMax(s));
        const float rescale = ps.m == -INFINITY ? 0.0f : std::exp(ps.m - m_new);
        const __m256 w = _mm256_and_ps(vmask, Exp(_mm256_sub_ps(s, _mm256_set1_ps(m_new))));
        _mm256_store_ps(p, w);
        ps.l = ps.l * rescale + HorizontalSum(w);
        ps.m = m_new;
        const __m256 rs = _mm256_set1_ps(rescale);
        for (int64_t i = 0; i < nv; ++i) {
          __m256 o = _mm256_mul_ps(_mm256_loadu_ps(ps.o + 8 * i), rs);
          for (int j = 0; j < count; ++j)
            o = _mm256_fmadd_ps(_mm256_set1_ps(p[j]), _mm256_loadu_ps(vrow[j] + 8 * i), o);
          _mm256_storeu_ps(ps.o + 8 * i, o);
        }
      }
    }
  }
}

}  // namespace fastgen::kernels::cpu
