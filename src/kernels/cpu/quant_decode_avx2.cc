// Q8_0 / Q4_0 / Q4_K / Q6_K decode with AVX2: the scheme of quant_decode_avx512.cc (x quantized
// to int8 per 32-element block once per call, weights widened to bytes in registers, one weight
// row at a time) with vpmaddubsw + vpmaddwd in place of VNNI's vpdpbusd. vpmaddubsw saturates
// pairs at ±32767, so the unsigned operand must stay small: Q4_0/Q4_K (0..15) and Q6_K (0..63)
// quants are unsigned as stored, and Q8_0 uses |w| against x with w's sign.
#include <immintrin.h>

#include <cstring>

#include "kernels/cpu/act_layout.h"
#include "kernels/cpu/kernels_avx2.h"
#include "kernels/reference/quant_blocks.h"

namespace fastgen::kernels::cpu {
namespace {

inline float HalfToFloat(uint16_t h) { return _cvtsh_ss(h); }

inline float ReduceAdd(__m256 v) {
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 s2 = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(s2, _mm_movehdup_ps(s2)));
}

inline int32_t ReduceAdd(__m256i v) {
  const __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  const __m128i s2 = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
  return _mm_cvtsi128_si32(_mm_add_epi32(s2, _mm_shuffle_epi32(s2, 0xb1)));
}

// Σ over groups of 4 bytes of u8 · s8, as 8 int32 lanes.
inline __m256i DotU8S8(__m256i u, __m256i s) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

inline __m256i LaneZero(int32_t v) { return _mm256_setr_epi32(v, 0, 0, 0, 0, 0, 0, 0); }

void QuantizeRow(const float* x /*[k]*/, int64_t k, int8_t* qs /*[k]*/, float* d /*[k/32]*/,
                 int32_t* isum16 /*[k/16]*/, float* fsum16 /*[k/16]*/, float* fsum32 /*[k/32]*/) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  // vpackss works within 128-bit lanes; this puts the 4-byte groups back in element order.
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  for (int64_t b = 0; b < k / 32; ++b) {
    __m256 v[4];
    __m256 amax = _mm256_setzero_ps();
    for (int j = 0; j < 4; ++j) {
      v[j] = _mm256_loadu_ps(x + 32 * b + 8 * j);
      amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign, v[j]));
    }
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    const float a = _mm_cvtss_f32(m);
    const float db = a / 127.0f;
    const __m256 id = _mm256_set1_ps(a > 0.0f ? 127.0f / a : 0.0f);
    __m256i q[4];
    for (int j = 0; j < 4; ++j) q[j] = _mm256_cvtps_epi32(_mm256_mul_ps(v[j], id));
    const __m256i bytes = _mm256_permutevar8x32_epi32(
        _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3])), order);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(qs + 32 * b), bytes);
    const int32_t s0 = ReduceAdd(_mm256_add_epi32(q[0], q[1]));
    const int32_t s1 = ReduceAdd(_mm256_add_epi32(q[2], q[3]));
    d[b] = db;
    isum16[2 * b] = s0;
    isum16[2 * b + 1] = s1;
    fsum16[2 * b] = db * static_cast<float>(s0);
    fsum16[2 * b + 1] = db * static_cast<float>(s1);
    fsum32[b] = db * static_cast<float>(s0 + s1);
  }
}

struct TokenActs {
  const int8_t* qs;       // [k]
  const float* d;         // [k/32]
  const int32_t* isum16;  // [k/16]
  const float* fsum16;    // [k/16]
  const float* fsum32;    // [k/32]
};

inline __m256i LoadBytes(const void* p) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}

float DotQ4_0(const block_q4_0* row, const TokenActs& x, int64_t k) {
  __m256 acc = _mm256_setzero_ps();
  const __m256i low4 = _mm256_set1_epi8(0x0f);
  for (int64_t b = 0; b < k / 32; ++b) {
    const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row[b].qs));
    const __m256i w = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), low4);
    const __m256i dot = _mm256_add_epi32(DotU8S8(w, LoadBytes(x.qs + 32 * b)),
                                         LaneZero(-8 * (x.isum16[2 * b] + x.isum16[2 * b + 1])));
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), _mm256_set1_ps(HalfToFloat(row[b].d) * x.d[b]),
                          acc);
  }
  return ReduceAdd(acc);
}

// See quant_decode_avx512.cc: 8 scales in bytes 0..7, 8 minimums in bytes 8..15.
inline void UnpackQ4KScales(const uint8_t* packed /*[12]*/, uint8_t out[16]) {
  uint32_t a, b, c, o[4];
  std::memcpy(&a, packed, 4);
  std::memcpy(&b, packed + 4, 4);
  std::memcpy(&c, packed + 8, 4);
  o[0] = a & 0x3f3f3f3fu;
  o[1] = (c & 0x0f0f0f0fu) | (((a >> 6) & 0x03030303u) << 4);
  o[2] = b & 0x3f3f3f3fu;
  o[3] = ((c >> 4) & 0x0f0f0f0fu) | (((b >> 6) & 0x03030303u) << 4);
  std::memcpy(out, o, 16);
}

float DotQ4_K(const block_q4_K* row, const TokenActs& x, int64_t k) {
  __m256 acc = _mm256_setzero_ps();
  float min_sum = 0.0f;
  const __m256i low4 = _mm256_set1_epi8(0x0f);
  for (int64_t i = 0; i < k / 256; ++i) {
    const block_q4_K& blk = row[i];
    uint8_t sm[16];
    UnpackQ4KScales(blk.scales, sm);
    const float d = HalfToFloat(blk.d), dmin = HalfToFloat(blk.dmin);
    for (int c = 0; c < 4; ++c) {
      const int j = 8 * static_cast<int>(i) + 2 * c;  // x block of the low nibbles
      const __m256i q = LoadBytes(blk.qs + 32 * c);
      const __m256i lo = DotU8S8(_mm256_and_si256(q, low4), LoadBytes(x.qs + 32 * j));
      const __m256i hi = DotU8S8(_mm256_and_si256(_mm256_srli_epi16(q, 4), low4),
                                 LoadBytes(x.qs + 32 * (j + 1)));
      acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(lo), _mm256_set1_ps(d * sm[2 * c] * x.d[j]), acc);
      acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(hi), _mm256_set1_ps(d * sm[2 * c + 1] * x.d[j + 1]),
                            acc);
      min_sum += dmin * (sm[8 + 2 * c] * x.fsum32[j] + sm[8 + 2 * c + 1] * x.fsum32[j + 1]);
    }
  }
  return ReduceAdd(acc) - min_sum;
}

float DotQ6_K(const block_q6_K* row, const TokenActs& x, int64_t k) {
  __m256 acc = _mm256_setzero_ps();
  float corr = 0.0f;  // Σ_j d · scale_j · (sum of x over sub-block j), to remove the +32
  const __m256i low4 = _mm256_set1_epi8(0x0f);
  const __m256i bits45 = _mm256_set1_epi8(0x30);
  for (int64_t i = 0; i < k / 256; ++i) {
    const block_q6_K& blk = row[i];
    const float d = HalfToFloat(blk.d);
    float s16[16];  // d · scale_j · d_x per 16-element sub-block j
    for (int j = 0; j < 16; ++j) {
      const float ds = d * static_cast<float>(blk.scales[j]);
      s16[j] = ds * x.d[8 * i + j / 2];
      corr += ds * x.fsum16[16 * i + j];
    }
    for (int h = 0; h < 2; ++h) {
      const __m256i qla = LoadBytes(blk.ql + 64 * h);
      const __m256i qlb = LoadBytes(blk.ql + 64 * h + 32);
      const __m256i qh = LoadBytes(blk.qh + 32 * h);
      // Runs of 32 elements: see UnpackQ6KHalf in kquant_decode_avx512.cc.
      const __m256i q[4] = {
          _mm256_or_si256(_mm256_and_si256(qla, low4),
                          _mm256_and_si256(_mm256_slli_epi16(qh, 4), bits45)),
          _mm256_or_si256(_mm256_and_si256(qlb, low4),
                          _mm256_and_si256(_mm256_slli_epi16(qh, 2), bits45)),
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(qla, 4), low4),
                          _mm256_and_si256(qh, bits45)),
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(qlb, 4), low4),
                          _mm256_and_si256(_mm256_srli_epi16(qh, 2), bits45)),
      };
      for (int run = 0; run < 4; ++run) {
        const int j = 8 * h + 2 * run;
        const __m256i dot = DotU8S8(q[run], LoadBytes(x.qs + 256 * i + 128 * h + 32 * run));
        // Lanes 0..3 cover sub-block j, lanes 4..7 sub-block j + 1.
        const __m256 s = _mm256_set_m128(_mm_set1_ps(s16[j + 1]), _mm_set1_ps(s16[j]));
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), s, acc);
      }
    }
  }
  return ReduceAdd(acc) - 32.0f * corr;
}

// Q8_0 row m × tokens [t0, t0 + T). Each (row, token) sum has two accumulators, one over the
// even 32-blocks of k and one over the odd ones, in order, then their sum and ReduceAdd — the
// same arithmetic whatever T, so a token's bits do not depend on the batch (batch invariance).
// A weight block is loaded, its |w| taken and its scale widened once for all T tokens; the two
// chains hide the FMA latency that a single one waited on (fg-draft's matrices stay in the
// caches and were bound by it). One row at a time: the weights are read as one sequential
// stream, which two interleaved rows read up to 1.7x slower from DRAM (matmul_bench, TinyLlama
// shapes).
template <int T>
void DotQ8_0Tile(const MatMulJob& job, int64_t m, const DecodeActs& a, int64_t t0) {
  const int64_t k = job.k, blocks = k / 32;
  const auto* row = reinterpret_cast<const block_q8_0*>(job.w + static_cast<size_t>(m) * job.row_bytes);
  __m256 acc[2][T];
  for (int h = 0; h < 2; ++h)
    for (int t = 0; t < T; ++t) acc[h][t] = _mm256_setzero_ps();
  auto step = [&](int h, int64_t b) {
    const __m256i w = LoadBytes(row[b].qs);
    const __m256i aw = _mm256_abs_epi8(w);
    const float dw = HalfToFloat(row[b].d);
    for (int t = 0; t < T; ++t) {
      const int64_t tt = t0 + t;
      const __m256i dot = DotU8S8(aw, _mm256_sign_epi8(LoadBytes(a.qs + tt * k + 32 * b), w));
      acc[h][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), _mm256_set1_ps(dw * a.d[tt * blocks + b]),
                                  acc[h][t]);
    }
  };
  int64_t b = 0;
  for (; b + 2 <= blocks; b += 2) {
    step(0, b);
    step(1, b + 1);
  }
  if (b < blocks) step(0, b);
  for (int t = 0; t < T; ++t) job.y[(t0 + t) * job.ldy + m] = ReduceAdd(_mm256_add_ps(acc[0][t], acc[1][t]));
}

void DotQ8_0Row(const MatMulJob& job, int64_t m, const DecodeActs& a) {
  int64_t t0 = 0;
  for (; t0 + 4 <= job.n; t0 += 4) DotQ8_0Tile<4>(job, m, a, t0);
  switch (job.n - t0) {
    case 3: DotQ8_0Tile<3>(job, m, a, t0); break;
    case 2: DotQ8_0Tile<2>(job, m, a, t0); break;
    case 1: DotQ8_0Tile<1>(job, m, a, t0); break;
    default: break;
  }
}

float DotRow(const MatMulJob& job, int64_t m, const TokenActs& x) {
  const uint8_t* row = job.w + static_cast<size_t>(m) * job.row_bytes;
  switch (job.dtype) {
    case DType::kQ4_0: return DotQ4_0(reinterpret_cast<const block_q4_0*>(row), x, job.k);
    case DType::kQ4_K: return DotQ4_K(reinterpret_cast<const block_q4_K*>(row), x, job.k);
    case DType::kQ6_K: return DotQ6_K(reinterpret_cast<const block_q6_K*>(row), x, job.k);
    default: return 0.0f;
  }
}

}  // namespace

void QuantizeActsAvx2(const MatMulJob& job, int64_t t0, int64_t t1) {
  const DecodeActs a = DecodeActsAt(job.act, job.n, job.k);
  const int64_t k = job.k;
  for (int64_t t = t0; t < t1; ++t) {
    QuantizeRow(job.x + t * k, k, a.qs + t * k, a.d + t * (k / 32), a.isum16 + t * (k / 16),
                a.fsum16 + t * (k / 16), a.fsum32 + t * (k / 32));
  }
}

void QuantDecodeRowsAvx2(const MatMulJob& job, int64_t m0, int64_t m1) {
  const DecodeActs a = DecodeActsAt(job.act, job.n, job.k);
  const int64_t k = job.k;
  if (job.dtype == DType::kQ8_0) {
    for (int64_t m = m0; m < m1; ++m) DotQ8_0Row(job, m, a);
    return;
  }
  for (int64_t m = m0; m < m1; ++m) {
    for (int64_t t = 0; t < job.n; ++t) {
      const TokenActs x = {a.qs + t * k, a.d + t * (k / 32), a.isum16 + t * (k / 16),
                           a.fsum16 + t * (k / 16), a.fsum32 + t * (k / 32)};
      job.y[t * job.ldy + m] = DotRow(job, m, x);
    }
  }
}

}  // namespace fastgen::kernels::cpu
