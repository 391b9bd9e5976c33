// The weight panels of the AVX-512 int8 GEMMs (quant_gemm_avx512.cc with VNNI, quant_gemm_amx.cc
// with AMX tiles): a panel of rows unpacked, one k-chunk at a time, into plain signed bytes with a
// float scale, an int32 bias (-128 Σw: x arrives as q + 128) and, for the K-quants with minimums,
// dmin · m per scale block. Both GEMMs consume the same panels, so they compute the same
// products from the same integers. Include only from AVX-512 kernel files (internal linkage, see
// matmul_job.h).
#pragma once

#include <immintrin.h>

#include <cstring>

#include "kernels/cpu/act_layout.h"
#include "kernels/cpu/matmul_job.h"
#include "kernels/reference/quant_blocks.h"

namespace fastgen::kernels::cpu {
namespace {

constexpr int kMicroRows = 3;
constexpr int64_t kPanelRows = 96;  // multiple of kMicroRows
constexpr int64_t kKc = 256;        // k per panel: a multiple of every block size

inline int64_t Min(int64_t a, int64_t b) { return a < b ? a : b; }
inline float HalfToFloat(uint16_t h) { return _cvtsh_ss(h); }

// The packed weight panel in scratch, followed by the accumulators.
struct Panel {
  int8_t* wq;       // [kPanelRows, kKc] weights as signed bytes
  float* scale;     // [kPanelRows, kKc/16] per scale block: d_w (× the sub-block scale)
  int32_t* bias;    // [kPanelRows, kKc/16] per scale block: -128 · Σ wq
  float* min;       // [kPanelRows, kKc/16] Q2_K, Q4_K, Q5_K: dmin · m per scale block
  float* acc;       // [kPanelRows, lda] float32 partial sums over k
};

inline int64_t AccStride(int64_t n) { return GemmTokenBlocks(n) * kGemmTokens; }

inline Panel PanelAt(uint8_t* scratch) {
  Panel p;
  p.wq = reinterpret_cast<int8_t*>(scratch);
  scratch += kPanelRows * kKc;
  p.scale = reinterpret_cast<float*>(scratch);
  scratch += kPanelRows * (kKc / 16) * 4;
  p.bias = reinterpret_cast<int32_t*>(scratch);
  scratch += kPanelRows * (kKc / 16) * 4;
  p.min = reinterpret_cast<float*>(scratch);
  scratch += kPanelRows * (kKc / 16) * 4;
  p.acc = reinterpret_cast<float*>(scratch);
  return p;
}

inline size_t PanelBytes(int64_t n) {
  return static_cast<size_t>(kPanelRows * kKc + kPanelRows * (kKc / 16) * 8 +
                             kPanelRows * (kKc / 16) * 4 + kPanelRows * AccStride(n) * 4);
}

// Σ of signed bytes over 32 / 16 elements (sad against zero counts the +128-biased bytes).
inline int32_t SumS8(__m256i v) {
  const __m256i s = _mm256_sad_epu8(_mm256_xor_si256(v, _mm256_set1_epi8(static_cast<char>(0x80))),
                                    _mm256_setzero_si256());
  const __m128i t = _mm_add_epi64(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
  return static_cast<int32_t>(_mm_cvtsi128_si64(t) + _mm_extract_epi64(t, 1)) - 128 * 32;
}
inline int32_t SumS8(__m128i v) {
  const __m128i s =
      _mm_sad_epu8(_mm_xor_si128(v, _mm_set1_epi8(static_cast<char>(0x80))), _mm_setzero_si128());
  return static_cast<int32_t>(_mm_cvtsi128_si64(s) + _mm_extract_epi64(s, 1)) - 128 * 16;
}

// Stores 32 signed weights of scale block j (32 elements) of row r.
inline void Put32(const Panel& p, int64_t r, int64_t j, __m256i w, float scale) {
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(p.wq + r * kKc + 32 * j), w);
  p.scale[r * (kKc / 16) + j] = scale;
  p.bias[r * (kKc / 16) + j] = -128 * SumS8(w);
}

// Row `r`'s quant bytes of block `b` and its f16 scale, from the interleaved copy (repack.h).
template <int kQuantBytes>
inline void Interleaved(const MatMulJob& job, int64_t r, int64_t b, uint8_t* qs, uint16_t* d) {
  const uint8_t* blk = job.packed + static_cast<size_t>(r / 16) * job.packed_group_bytes +
                       static_cast<size_t>(b) * (32 + 16 * kQuantBytes);
  const int lane = static_cast<int>(r % 16);
  std::memcpy(d, blk + 2 * lane, 2);
  for (int j = 0; j < kQuantBytes / 4; ++j) std::memcpy(qs + 4 * j, blk + 32 + 64 * j + 4 * lane, 4);
}

inline void PackQ8_0(const MatMulJob& job, const Panel& p, int64_t p0, int64_t rows, int64_t k0,
              int64_t kc) {
  if (job.packed != nullptr) {
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < kc / 32; ++j) {
        alignas(32) uint8_t qs[32];
        uint16_t d;
        Interleaved<32>(job, p0 + r, k0 / 32 + j, qs, &d);
        Put32(p, r, j, _mm256_load_si256(reinterpret_cast<const __m256i*>(qs)), HalfToFloat(d));
      }
    return;
  }
  for (int64_t r = 0; r < rows; ++r) {
    const block_q8_0* blk = reinterpret_cast<const block_q8_0*>(
        job.w + static_cast<size_t>(p0 + r) * job.row_bytes) + k0 / 32;
    for (int64_t j = 0; j < kc / 32; ++j)
      Put32(p, r, j, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk[j].qs)),
            HalfToFloat(blk[j].d));
  }
}

inline void PackQ4_0(const MatMulJob& job, const Panel& p, int64_t p0, int64_t rows, int64_t k0,
              int64_t kc) {
  const __m256i shifts = _mm256_setr_epi16(0, 0, 0, 0, 0, 0, 0, 0, 4, 4, 4, 4, 4, 4, 4, 4);
  if (job.packed != nullptr) {
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < kc / 32; ++j) {
        alignas(16) uint8_t qs[16];
        uint16_t d;
        Interleaved<16>(job, p0 + r, k0 / 32 + j, qs, &d);
        const __m256i q = _mm256_broadcastsi128_si256(_mm_load_si128(reinterpret_cast<const __m128i*>(qs)));
        const __m256i w = _mm256_sub_epi8(_mm256_and_si256(_mm256_srlv_epi16(q, shifts), _mm256_set1_epi8(0x0f)),
                                          _mm256_set1_epi8(8));
        Put32(p, r, j, w, HalfToFloat(d));
      }
    return;
  }
  for (int64_t r = 0; r < rows; ++r) {
    const block_q4_0* blk = reinterpret_cast<const block_q4_0*>(
        job.w + static_cast<size_t>(p0 + r) * job.row_bytes) + k0 / 32;
    for (int64_t j = 0; j < kc / 32; ++j) {
      const __m256i q = _mm256_broadcastsi128_si256(
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk[j].qs)));
      const __m256i w = _mm256_sub_epi8(
          _mm256_and_si256(_mm256_srlv_epi16(q, shifts), _mm256_set1_epi8(0x0f)),
          _mm256_set1_epi8(8));
      Put32(p, r, j, w, HalfToFloat(blk[j].d));
    }
  }
}

// See quant_decode_avx512.cc: scales in bytes 0..7, minimums in bytes 8..15.
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

inline void PackQ4_K(const MatMulJob& job, const Panel& p, int64_t p0, int64_t rows, int64_t k0,
              int64_t kc) {
  const __m256i low4 = _mm256_set1_epi8(0x0f);
  for (int64_t r = 0; r < rows; ++r) {
    const block_q4_K* blk = reinterpret_cast<const block_q4_K*>(
        job.w + static_cast<size_t>(p0 + r) * job.row_bytes) + k0 / 256;
    for (int64_t i = 0; i < kc / 256; ++i) {
      uint8_t sm[16];
      UnpackQ4KScales(blk[i].scales, sm);
      const float d = HalfToFloat(blk[i].d), dmin = HalfToFloat(blk[i].dmin);
      for (int c = 0; c < 4; ++c) {
        const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk[i].qs + 32 * c));
        const int64_t j = 8 * i + 2 * c;  // sub-block of the low nibbles
        Put32(p, r, j, _mm256_and_si256(q, low4), d * sm[2 * c]);
        Put32(p, r, j + 1, _mm256_and_si256(_mm256_srli_epi16(q, 4), low4), d * sm[2 * c + 1]);
        p.min[r * (kKc / 16) + j] = dmin * sm[8 + 2 * c];
        p.min[r * (kKc / 16) + j + 1] = dmin * sm[8 + 2 * c + 1];
      }
    }
  }
}

inline void PackQ6_K(const MatMulJob& job, const Panel& p, int64_t p0, int64_t rows, int64_t k0,
              int64_t kc) {
  const __m256i low4 = _mm256_set1_epi8(0x0f);
  const __m256i bits45 = _mm256_set1_epi8(0x30);
  const __m256i offset = _mm256_set1_epi8(32);
  for (int64_t r = 0; r < rows; ++r) {
    const block_q6_K* blk = reinterpret_cast<const block_q6_K*>(
        job.w + static_cast<size_t>(p0 + r) * job.row_bytes) + k0 / 256;
    for (int64_t i = 0; i < kc / 256; ++i) {
      const float d = HalfToFloat(blk[i].d);
      for (int h = 0; h < 2; ++h) {
        const uint8_t* ql = blk[i].ql + 64 * h;
        const __m256i qla = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql));
        const __m256i qlb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql + 32));
        const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk[i].qh + 32 * h));
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
          const __m256i w = _mm256_sub_epi8(q[run], offset);
          const int64_t e = 256 * i + 128 * h + 32 * run;  // first element within the panel
          const int64_t j = e / 16;                         // its 16-element scale block
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(p.wq + r * kKc + e), w);
          p.scale[r * (kKc / 16) + j] = d * static_cast<float>(blk[i].scales[8 * h + 2 * run]);
          p.scale[r * (kKc / 16) + j + 1] =
              d * static_cast<float>(blk[i].scales[8 * h + 2 * run + 1]);
          p.bias[r * (kKc / 16) + j] = -128 * SumS8(_mm256_castsi256_si128(w));
          p.bias[r * (kKc / 16) + j + 1] = -128 * SumS8(_mm256_extracti128_si256(w, 1));
        }
      }
    }
  }
}

// Stores 16 signed weights of scale block j (16 elements) of row r.
inline void Put16(const Panel& p, int64_t r, int64_t j, __m128i w, float scale) {
  _mm_storeu_si128(reinterpret_cast<__m128i*>(p.wq + r * kKc + 16 * j), w);
  p.scale[r * (kKc / 16) + j] = scale;
  p.bias[r * (kKc / 16) + j] = -128 * SumS8(w);
}

// Bits [s, s + width) of each byte of 32 bytes, as bytes (see kquant_decode_avx512.cc).
inline __m256i BitPlane(__m256i v, int s, uint8_t mask) {
  return _mm256_and_si256(_mm256_srl_epi64(v, _mm_cvtsi32_si128(s)), _mm256_set1_epi8(static_cast<char>(mask)));
}

// Q2_K: 16 sub-blocks of 16, q in 0..3 from bit pairs of qs (32 bytes per 128 elements, two
// bits deeper for each next 32), 4-bit scale and minimum per sub-block.
inline void PackQ2_K(const MatMulJob& job, const Panel& p, int64_t p0, int64_t rows, int64_t k0, int64_t kc) {
  for (int64_t r = 0; r < rows; ++r) {
    const block_q2_K* blk =
        reinterpret_cast<const block_q2_K*>(job.w + static_cast<size_t>(p0 + r) * job.row_bytes) + k0 / 256;
    for (int64_t i = 0; i < kc / 256; ++i) {
      const float d = HalfToFloat(blk[i].d), dmin = HalfToFloat(blk[i].dmin);
      for (int run = 0; run < 8; ++run) {  // 32 elements each
        const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk[i].qs + 32 * (run / 4)));
        const __m256i w = BitPlane(q, 2 * (run % 4), 0x03);
        for (int half = 0; half < 2; ++half) {
          const int g = 2 * run + half;  // sub-block within the super-block
          const __m128i w16 = half ? _mm256_extracti128_si256(w, 1) : _mm256_castsi256_si128(w);
          const int64_t j = 16 * i + g;
          Put16(p, r, j, w16, d * static_cast<float>(blk[i].scales[g] & 0x0f));
          p.min[r * (kKc / 16) + j] = dmin * static_cast<float>(blk[i].scales[g] >> 4);
        }
      }
    }
  }
}

// The 16 Q3_K scales (signed, stored + 32): see kernels/reference/dequant.cc.
inline int Q3KScale(const uint8_t* s, int j) {
  const int low = j < 8 ? (s[j] & 0x0f) : (s[j - 8] >> 4);
  const int high = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
  return (low | (high << 4)) - 32;
}

// Q3_K: Q2_K's low bits plus a high bit per element in hmask (clear: minus 4), q in -4..3 as
// signed bytes; signed 6-bit scale per sub-block of 16.
inline void PackQ3_K(const MatMulJob& job, const Panel& p, int64_t p0, int64_t rows, int64_t k0, int64_t kc) {
  for (int64_t r = 0; r < rows; ++r) {
    const block_q3_K* blk =
        reinterpret_cast<const block_q3_K*>(job.w + static_cast<size_t>(p0 + r) * job.row_bytes) + k0 / 256;
    for (int64_t i = 0; i < kc / 256; ++i) {
      const float d = HalfToFloat(blk[i].d);
      const __m256i hm = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk[i].hmask));
      for (int run = 0; run < 8; ++run) {
        const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk[i].qs + 32 * (run / 4)));
        const __m256i low = BitPlane(q, 2 * (run % 4), 0x03);
        const __m256i high = BitPlane(hm, run, 0x01);
        const __m256i w = _mm256_sub_epi8(_mm256_or_si256(low, _mm256_slli_epi16(high, 2)), _mm256_set1_epi8(4));
        for (int half = 0; half < 2; ++half) {
          const int g = 2 * run + half;
          const __m128i w16 = half ? _mm256_extracti128_si256(w, 1) : _mm256_castsi256_si128(w);
          Put16(p, r, 16 * i + g, w16, d * static_cast<float>(Q3KScale(blk[i].scales, g)));
        }
      }
    }
  }
}

// Q5_K: Q4_K's nibbles plus a fifth bit per element in qh, q in 0..31; scales and minimums as
// Q4_K.
inline void PackQ5_K(const MatMulJob& job, const Panel& p, int64_t p0, int64_t rows, int64_t k0, int64_t kc) {
  const __m256i low4 = _mm256_set1_epi8(0x0f);
  for (int64_t r = 0; r < rows; ++r) {
    const block_q5_K* blk =
        reinterpret_cast<const block_q5_K*>(job.w + static_cast<size_t>(p0 + r) * job.row_bytes) + k0 / 256;
    for (int64_t i = 0; i < kc / 256; ++i) {
      uint8_t sm[16];
      UnpackQ4KScales(blk[i].scales, sm);
      const float d = HalfToFloat(blk[i].d), dmin = HalfToFloat(blk[i].dmin);
      const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk[i].qh));
      for (int c = 0; c < 4; ++c) {
        const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk[i].qs + 32 * c));
        for (int nib = 0; nib < 2; ++nib) {
          const int g = 2 * c + nib;  // sub-block of 32
          const __m256i low = _mm256_and_si256(nib ? _mm256_srli_epi16(q, 4) : q, low4);
          const __m256i w = _mm256_or_si256(low, _mm256_slli_epi16(BitPlane(qh, g, 0x01), 4));
          const int64_t j = 8 * i + g;
          Put32(p, r, j, w, d * sm[g]);
          p.min[r * (kKc / 16) + j] = dmin * sm[8 + g];
        }
      }
    }
  }
}

}  // namespace
}  // namespace fastgen::kernels::cpu
