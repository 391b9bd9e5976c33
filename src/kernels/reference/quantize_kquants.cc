// Q2_K, Q3_K and Q5_K quantization: the K-quants' block layouts filled by fastgen's own scale
// fits (the layouts are llama.cpp's; the bytes need not be llama-quantize's, as they are for
// Q8_0, Q4_0, Q4_K and Q6_K). Each takes an optional importance vector like the others.
#include <cmath>
#include <cstring>

#include "kernels/reference/dequant.h"
#include "kernels/reference/quant_blocks.h"
#include "kernels/reference/quant_pack.h"

namespace fastgen::kernels::reference::detail {


// Q5_K: Q4_K's scheme with 32 levels (ggml searches 16 scales from rmin -0.5).
void QuantizeQ5_K(const float* x, const float* imp, void* dst, int64_t blocks) {
  uint8_t L[kQK_K], Laux[32];
  float weights[32], mins[8], scales[8];
  for (int64_t i = 0; i < blocks; ++i, x += kQK_K, imp = imp ? imp + kQK_K : nullptr) {
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < 8; ++j) {
      float sum_x2 = 0;
      for (int l = 0; l < 32; ++l) sum_x2 += x[32 * j + l] * x[32 * j + l];
      const float av_x = std::sqrt(sum_x2 / 32);
      for (int l = 0; l < 32; ++l) weights[l] = imp ? imp[32 * j + l] : av_x + std::fabs(x[32 * j + l]);
      scales[j] = MakeQkx2Quants(32, 31, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, -0.5f, 0.1f, 15);
      max_scale = std::fmax(max_scale, scales[j]);
      max_min = std::fmax(max_min, mins[j]);
    }
    const float inv_scale = max_scale > 0 ? 63.0f / max_scale : 0.0f;
    const float inv_min = max_min > 0 ? 63.0f / max_min : 0.0f;
    block_q5_K b;
    std::memset(&b, 0, sizeof(b));
    int ls[8], lm[8];
    for (int j = 0; j < 8; ++j) {
      ls[j] = Clamp(NearestInt(inv_scale * scales[j]), 0, 63);
      lm[j] = Clamp(NearestInt(inv_min * mins[j]), 0, 63);
    }
    PackScaleMinK4(ls, lm, b.scales);
    b.d = F32ToF16(max_scale / 63.0f);
    b.dmin = F32ToF16(max_min / 63.0f);
    for (int j = 0; j < 8; ++j) {
      const float d = F16ToF32(b.d) * static_cast<float>(ls[j]);
      const float dm = F16ToF32(b.dmin) * static_cast<float>(lm[j]);
      for (int l = 0; l < 32; ++l)
        L[32 * j + l] = d == 0.0f ? 0 : static_cast<uint8_t>(Clamp(NearestInt((x[32 * j + l] + dm) / d), 0, 31));
    }
    PackQ5_K(L, b.qs, b.qh);
    StoreBlock(dst, i, b);
  }
}

// Q3_K: 16 groups of 16 with signed 6-bit scales (of the block's d) and codes in [-4, 3]:
// each group's scale by a symmetric fit weighted by x² (or the importance), then the scales
// quantized against the largest.
void QuantizeQ3_K(const float* x, const float* imp, void* dst, int64_t blocks) {
  int8_t L[kQK_K];
  float scales[16], w[16];
  for (int64_t i = 0; i < blocks; ++i, x += kQK_K, imp = imp ? imp + kQK_K : nullptr) {
    float max_scale = 0, amax = 0;
    for (int g = 0; g < 16; ++g) {
      for (int l = 0; l < 16; ++l) w[l] = imp ? imp[16 * g + l] : x[16 * g + l] * x[16 * g + l];
      scales[g] = WeightedSymmetricFit(16, 4, 3, x + 16 * g, w, L + 16 * g);
      if (std::fabs(scales[g]) > amax) {
        amax = std::fabs(scales[g]);
        max_scale = scales[g];
      }
    }
    block_q3_K b;
    std::memset(&b, 0, sizeof(b));
    int biased[16];
    if (amax < kGroupMaxEps) {
      for (int& v : biased) v = 32;
      PackQ3Scales(biased, b.scales);
      for (int e = 0; e < kQK_K; ++e) L[e] = 0;
      PackQ3_K(L, b.qs, b.hmask);
      StoreBlock(dst, i, b);
      continue;
    }
    const float iscale = -32.0f / max_scale;
    for (int g = 0; g < 16; ++g) biased[g] = Clamp(NearestInt(iscale * scales[g]), -32, 31) + 32;
    PackQ3Scales(biased, b.scales);
    b.d = F32ToF16(1.0f / iscale);
    for (int g = 0; g < 16; ++g) {
      const float d = F16ToF32(b.d) * static_cast<float>(biased[g] - 32);
      for (int l = 0; l < 16; ++l)
        L[16 * g + l] = static_cast<int8_t>(d == 0.0f ? 0 : Clamp(NearestInt(x[16 * g + l] / d), -4, 3));
    }
    PackQ3_K(L, b.qs, b.hmask);
    StoreBlock(dst, i, b);
  }
}

// Q2_K: 16 groups of 16, x ≈ d sc q - dmin m with 4-bit sc and m and codes in [0, 3]; each
// group fit as Q4_K's are (weights |x|, or the importance), the scales and mins quantized
// against their largest.
void QuantizeQ2_K(const float* x, const float* imp, void* dst, int64_t blocks) {
  uint8_t L[kQK_K], Laux[16];
  float weights[16], mins[16], scales[16];
  for (int64_t i = 0; i < blocks; ++i, x += kQK_K, imp = imp ? imp + kQK_K : nullptr) {
    float max_scale = 0, max_min = 0;
    for (int g = 0; g < 16; ++g) {
      for (int l = 0; l < 16; ++l) weights[l] = imp ? imp[16 * g + l] : std::fabs(x[16 * g + l]);
      scales[g] = MakeQkx2Quants(16, 3, x + 16 * g, weights, L + 16 * g, &mins[g], Laux, -0.5f, 0.1f, 15);
      max_scale = std::fmax(max_scale, scales[g]);
      max_min = std::fmax(max_min, mins[g]);
    }
    block_q2_K b;
    std::memset(&b, 0, sizeof(b));
    const float inv_scale = max_scale > 0 ? 15.0f / max_scale : 0.0f;
    const float inv_min = max_min > 0 ? 15.0f / max_min : 0.0f;
    for (int g = 0; g < 16; ++g) {
      const int ls = Clamp(NearestInt(inv_scale * scales[g]), 0, 15);
      const int lm = Clamp(NearestInt(inv_min * mins[g]), 0, 15);
      b.scales[g] = static_cast<uint8_t>(ls | (lm << 4));
    }
    b.d = F32ToF16(max_scale / 15.0f);
    b.dmin = F32ToF16(max_min / 15.0f);
    for (int g = 0; g < 16; ++g) {
      const float d = F16ToF32(b.d) * static_cast<float>(b.scales[g] & 0x0f);
      const float dm = F16ToF32(b.dmin) * static_cast<float>(b.scales[g] >> 4);
      for (int l = 0; l < 16; ++l)
        L[16 * g + l] = d == 0.0f ? 0 : static_cast<uint8_t>(Clamp(NearestInt((x[16 * g + l] + dm) / d), 0, 3));
    }
    PackQ2Bits(L, b.qs);
    StoreBlock(dst, i, b);
  }
}

}  // namespace fastgen::kernels::reference::detail
