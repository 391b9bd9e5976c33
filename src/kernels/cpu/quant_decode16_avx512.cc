// Decode on Q8_0 and Q4_0 weights interleaved 16 rows at a time (repack.h), AVX-512 VNNI.
//
// The 16 lanes of a register are 16 output rows. Per block of 32 columns, each 512-bit load
// holds 4 consecutive weights of all 16 rows; x's matching 4 bytes are broadcast and vpdpbusd
// adds the 4 products into each row's lane. After the block's 32 columns, the int32 sums are
// scaled by d_w (16 rows) · d_x and added into the rows' float accumulators: one FMA chain per
// (row, token) over the blocks in order, whatever else the call holds, so a token's result is
// the same bits alone or in a batch of any size. Up to 4 tokens share each unpacked block.
//
// vpdpbusd takes unsigned bytes times signed ones: Q4_0 nibbles are unsigned (q + 8, the 8
// taken back out through x's block sum: -8 Σx starts the lane sum) and Q8_0 bytes are flipped
// to q + 128 (-128 Σx).
// GCC 12's AVX-512 headers build _mm*_undefined_*() from a self-initialized variable, which
// -Wuninitialized reports inside the headers at -O3 (a false positive about the header).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels/cpu/act_layout.h"
#include "kernels/cpu/kernels_avx512.h"
#include "kernels/cpu/prefetch.h"

namespace fastgen::kernels::cpu {
namespace {

constexpr int kPassTokens = 4;

inline __m512i Broadcast4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

// One group of 16 rows against T tokens: out[t] holds the 16 rows' results.
template <DType kType, int T>
void Group(const MatMulJob& job, const DecodeActs& acts, const uint8_t* group, int64_t t0, __m512 (&out)[T]) {
  constexpr int kQuantBytes = kType == DType::kQ8_0 ? 32 : 16;
  constexpr int kLoads = kQuantBytes / 4;            // 512-bit loads of quants per block
  constexpr size_t kBlockBytes = 32 + 16 * kQuantBytes;
  constexpr int32_t kOffset = kType == DType::kQ8_0 ? 128 : 8;
  const int64_t k = job.k, blocks = k / 32;
  for (int t = 0; t < T; ++t) out[t] = _mm512_setzero_ps();
  const int8_t* xq[T];
  const float* xd[T];
  const int32_t* xs[T];
  for (int t = 0; t < T; ++t) {
    xq[t] = acts.qs + (t0 + t) * k;
    xd[t] = acts.d + (t0 + t) * (k / 32);
    xs[t] = acts.isum16 + (t0 + t) * (k / 16);
  }
  const __m512i low4 = _mm512_set1_epi8(0x0f);
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  for (int64_t b = 0; b < blocks; ++b) {
    const uint8_t* blk = group + static_cast<size_t>(b) * kBlockBytes;
    for (size_t line = 0; line < kBlockBytes; line += 64) PrefetchWeights(blk + line + 4096, job.stream);
    const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk)));
    // The block's weights as unsigned bytes, [16 rows x 4 columns] per register, columns in x's order.
    __m512i w[8];
    for (int j = 0; j < kLoads; ++j) {
      const __m512i q = _mm512_loadu_si512(blk + 32 + 64 * j);
      if constexpr (kType == DType::kQ8_0) {
        w[j] = _mm512_xor_si512(q, flip);  // columns 4j..4j+3
      } else {
        w[j] = _mm512_and_si512(q, low4);                             // columns 4j..4j+3
        w[4 + j] = _mm512_and_si512(_mm512_srli_epi16(q, 4), low4);  // columns 16+4j..16+4j+3
      }
    }
    for (int t = 0; t < T; ++t) {
      const int8_t* x = xq[t] + 32 * b;
      // Two chains of four: a lone chain of eight waits on vpdpbusd's latency at one token.
      __m512i a0 = _mm512_set1_epi32(-kOffset * (xs[t][2 * b] + xs[t][2 * b + 1]));
      __m512i a1 = _mm512_setzero_si512();
      for (int j = 0; j < 8; j += 2) {
        a0 = _mm512_dpbusd_epi32(a0, w[j], Broadcast4(x + 4 * j));
        a1 = _mm512_dpbusd_epi32(a1, w[j + 1], Broadcast4(x + 4 * (j + 1)));
      }
      const __m512 s = _mm512_mul_ps(dw, _mm512_set1_ps(xd[t][b]));
      out[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(a0, a1)), s, out[t]);
    }
  }
}

template <DType kType, int T>
void Pass(const MatMulJob& job, const DecodeActs& acts, int64_t m0, int64_t m1, int64_t t0) {
  for (int64_t g = m0 / 16; g * 16 < m1; ++g) {
    __m512 out[T];
    Group<kType, T>(job, acts, job.packed + static_cast<size_t>(g) * job.packed_group_bytes, t0, out);
    // Lanes of rows inside [m0, m1) only: a range need not start or end on a group.
    const int64_t lo = std::max(m0, g * 16), hi = std::min(m1, g * 16 + 16);
    const __mmask16 keep = static_cast<__mmask16>(((1u << (hi - g * 16)) - 1) & ~((1u << (lo - g * 16)) - 1));
    for (int t = 0; t < T; ++t) _mm512_mask_storeu_ps(job.y + (t0 + t) * job.ldy + g * 16, keep, out[t]);
  }
}

// Weight bytes of the row block that all token passes run over before the next (it stays in
// L2): more tokens than one pass then read each weight from memory once.
constexpr size_t kRowBlockBytes = 192 << 10;

template <DType kType>
void Rows(const MatMulJob& job, int64_t m0, int64_t m1) {
  const DecodeActs acts = DecodeActsAt(job.act, job.n, job.k);
  // Blocks of whole groups (the first may start inside one): one block when one pass does.
  const int64_t block = job.n > kPassTokens
                            ? std::max<int64_t>(16, static_cast<int64_t>(kRowBlockBytes / job.packed_group_bytes) * 16)
                            : m1 - m0 + 16;
  for (int64_t b0 = m0; b0 < m1;) {
    const int64_t b1 = std::min(m1, (b0 / 16) * 16 + block);
    for (int64_t t0 = 0; t0 < job.n; t0 += kPassTokens) {
      switch (std::min<int64_t>(kPassTokens, job.n - t0)) {
        case 1: Pass<kType, 1>(job, acts, b0, b1, t0); break;
        case 2: Pass<kType, 2>(job, acts, b0, b1, t0); break;
        case 3: Pass<kType, 3>(job, acts, b0, b1, t0); break;
        default: Pass<kType, 4>(job, acts, b0, b1, t0); break;
      }
    }
    b0 = b1;
  }
}

}  // namespace

void Decode16RowsAvx512(const MatMulJob& job, int64_t m0, int64_t m1) {
  if (job.dtype == DType::kQ8_0) {
    Rows<DType::kQ8_0>(job, m0, m1);
  } else {
    Rows<DType::kQ4_0>(job, m0, m1);
  }
}

}  // namespace fastgen::kernels::cpu
