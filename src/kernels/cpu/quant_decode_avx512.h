// Helpers shared by the AVX-512 quantized decode files (quant_decode_avx512.cc for Q8_0 / Q4_0,
// kquant_decode_avx512.cc for the K-quants). Include only from AVX-512 kernel files: everything
// here has internal linkage (see matmul_job.h).
//
// Every dot-product kernel takes T tokens at once (DecodeTokens picks T = 1..4): the weight row
// is loaded, prefetched and unpacked once per block for all T, and each token then runs exactly
// the instructions it would run alone, into accumulators of its own. A token's result is
// therefore the same bits whichever tokens share its pass, so decoding stays batch-invariant at
// any batch size (plain decoding, speculative verification and the server's batched decode
// steps all agree), while a batch of tokens costs one weight stream and one unpacking per row.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "kernels/cpu/act_layout.h"
#include "kernels/cpu/prefetch.h"
#include "kernels/reference/quant_blocks.h"

namespace fastgen::kernels::cpu {
namespace {

inline float HalfToFloat(uint16_t h) { return _cvtsh_ss(h); }

// Software prefetch distance for the weight stream. The hardware prefetcher alone left the
// 4-bit kernels at ~0.8 of the read bandwidth; asking for the line 8 KiB ahead of the one in
// use keeps enough misses in flight: tg64 on the TinyLlama-shape Q4_0 model went from 57-59 to
// 65-67 tok/s at 4 KiB and 77-80 at 8 KiB (16 KiB: no better), and one thread from DRAM read
// above the plain-read bandwidth sample (matmul_bench -t 1).
constexpr int64_t kPrefetchBytes = 8192;
inline void PrefetchAhead(const void* p, bool stream) {
  PrefetchWeights(static_cast<const char*>(p) + kPrefetchBytes, stream);
}

inline float ReduceAdd(__m256 v) {
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 s2 = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(s2, _mm_movehdup_ps(s2)));
}

// An int32 vector holding `v` in lane 0 and zeros elsewhere.
inline __m256i LaneZero(int32_t v) { return _mm256_zextsi128_si256(_mm_cvtsi32_si128(v)); }

// One token's slice of DecodeActs.
struct TokenActs {
  const int8_t* qs;          // [k]
  const float* d;            // [k/32]
  const int32_t* isum16;     // [k/16]
  const float* fsum16;       // [k/16]
  const float* fsum32;       // [k/32]
  const float* dx_pair;      // [k/64, 16]
  const int32_t* bias_pair;  // [k/64, 16]
  const int8_t* qs_q4k;      // [k]
};

inline TokenActs TokenAt(const DecodeActs& a, int64_t k, int64_t t) {
  return {a.qs + t * k,           a.d + t * (k / 32),      a.isum16 + t * (k / 16),
          a.fsum16 + t * (k / 16), a.fsum32 + t * (k / 32), a.dx_pair + t * (k / 64) * 16,
          a.bias_pair + t * (k / 64) * 16, a.qs_q4k + t * k};
}

// [d_w(block 2p) × 8 lanes, d_w(block 2p+1) × 8 lanes] from the blocks' f16 scales.
inline __m512 PairScales(uint16_t d0, uint16_t d1) {
  const __m128 both = _mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int>(d0 | (uint32_t{d1} << 16))));
  return _mm512_permutexvar_ps(_mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1),
                               _mm512_castps128_ps512(both));
}

// Runs step(p, acc) for p in [0, count), even steps into `even` and odd ones into `odd`
// (unrolled by two, so both stay in registers): one accumulator would make every step wait on
// the previous step's FMA.
template <class Step, class Acc>
inline void AlternateSteps(int64_t count, Step& step, Acc& even, Acc& odd) {
  int64_t p = 0;
  for (; p + 2 <= count; p += 2) {
    step(p, even);
    step(p + 1, odd);
  }
  if (p < count) step(p, even);
}

// The 8 six-bit scales and 8 six-bit minimums of a Q4_K / Q5_K super-block as 16 bytes (scales
// in bytes 0..7, minimums in 8..15). Sub-blocks 0..3 keep their 6 bits in the low bits of
// packed[0..7]; sub-blocks 4..7 keep their low 4 bits in packed[8..11] and their top 2 bits in
// the top bits of packed[0..7].
inline void UnpackQ4KScales(const uint8_t* packed /*[12]*/, uint32_t out[4]) {
  uint32_t a, b, c;
  std::memcpy(&a, packed, 4);
  std::memcpy(&b, packed + 4, 4);
  std::memcpy(&c, packed + 8, 4);
  out[0] = a & 0x3f3f3f3fu;
  out[1] = (c & 0x0f0f0f0fu) | (((a >> 6) & 0x03030303u) << 4);
  out[2] = b & 0x3f3f3f3fu;
  out[3] = ((c >> 4) & 0x0f0f0f0fu) | (((b >> 6) & 0x03030303u) << 4);
}

// Tokens per pass of a decode kernel: enough to share each unpacked weight block among several
// tokens, few enough that every token's accumulators stay in registers.
constexpr int kDecodePassTokens = 4;

// Weight bytes of the row block that the passes of a many-token call share from L2.
constexpr int64_t kDecodeRowBlockBytesQ = 128 << 10;

// Calls dot.template operator()<T>(xs, m, out) over rows [m0, m1) and the job's tokens in passes
// of up to kDecodePassTokens, storing out[t] into y. One row at a time: the weights are read as
// one sequential stream, which the hardware prefetcher follows at full speed (interleaving 4
// rows to share x loads made 4 short streams and measured 3x slower from DRAM on Zen 5). With
// more tokens than one pass, rows go in blocks that stay in L2 and each pass runs over a whole
// block: a pass's activations then stay in L1 for the block's rows, where going through every
// pass row by row reread all the tokens' activations from L2 for each row (16 tokens took 2.5x
// the time of 8 on TinyLlama's 2048 -> 5632 Q4_0 product).
template <class Dot>
void DecodeTokens(const MatMulJob& job, const DecodeActs& acts, int64_t m0, int64_t m1, const Dot& dot) {
  TokenActs xs[kDecodePassTokens];
  float out[kDecodePassTokens];
  int64_t block = m1 - m0;
  if (job.n > kDecodePassTokens) {
    block = kDecodeRowBlockBytesQ / static_cast<int64_t>(job.row_bytes);
    if (block < 4) block = 4;
  }
  for (int64_t b0 = m0; b0 < m1; b0 += block) {
    const int64_t b1 = b0 + block < m1 ? b0 + block : m1;
    for (int64_t t0 = 0; t0 < job.n; t0 += kDecodePassTokens) {
      const int T = job.n - t0 < kDecodePassTokens ? static_cast<int>(job.n - t0) : kDecodePassTokens;
      for (int t = 0; t < T; ++t) xs[t] = TokenAt(acts, job.k, t0 + t);
      for (int64_t m = b0; m < b1; ++m) {
        switch (T) {
          case 1: dot.template operator()<1>(xs, m, out); break;
          case 2: dot.template operator()<2>(xs, m, out); break;
          case 3: dot.template operator()<3>(xs, m, out); break;
          default: dot.template operator()<4>(xs, m, out); break;
        }
        for (int t = 0; t < T; ++t) job.y[(t0 + t) * job.ldy + m] = out[t];
      }
    }
  }
}

template <class Block>
inline const Block* RowAt(const MatMulJob& job, int64_t m) {
  return reinterpret_cast<const Block*>(job.w + static_cast<size_t>(m) * job.row_bytes);
}

}  // namespace
}  // namespace fastgen::kernels::cpu
