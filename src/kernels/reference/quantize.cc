// Quantization following llama.cpp's reference (non-imatrix) quantizers, so that a row
// quantized here has the bytes llama-quantize would write for it: the same scale search, the
// same rounding (round-half-even in the K-quants, round-half-away in Q8_0, truncation after +8.5
// in Q4_0) and the same packing, for Q8_0, Q4_0, Q4_K and Q6_K (Q2_K, Q3_K and Q5_K:
// quantize_kquants.cc). Inputs with NaN or huge values do not invoke undefined
// float-to-int conversions; their blocks simply come out meaningless.
#include <cmath>
#include <cstring>

#include "kernels/reference/dequant.h"
#include "kernels/reference/quant_blocks.h"
#include "kernels/reference/quant_pack.h"

namespace fastgen::kernels::reference {
namespace {

using namespace detail;


void QuantizeQ8_0(const float* x, void* dst, int64_t blocks) {
  for (int64_t i = 0; i < blocks; ++i, x += kQK) {
    float amax = 0.0f;
    for (int j = 0; j < kQK; ++j) amax = std::fmax(amax, std::fabs(x[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    block_q8_0 b;
    b.d = F32ToF16(d);
    for (int j = 0; j < kQK; ++j) {
      const float v = std::round(x[j] * id);  // half away from zero, like roundf
      b.qs[j] = static_cast<int8_t>(std::isnan(v) ? 0 : std::fmax(-127.0f, std::fmin(127.0f, v)));
    }
    StoreBlock(dst, i, b);
  }
}

// Q4_0 scales by the signed value of largest magnitude so that it maps to -8 exactly, which
// uses the full 16-level range on the side where the extreme lies.
void QuantizeQ4_0(const float* x, const float* imp, void* dst, int64_t blocks) {
  for (int64_t i = 0; i < blocks; ++i, x += kQK, imp = imp ? imp + kQK : nullptr) {
    if (imp != nullptr) {
      int8_t L[kQK];
      const float d = WeightedSymmetricFit(kQK, 8, 7, x, imp, L);
      block_q4_0 b;
      b.d = F32ToF16(d);
      const float dr = F16ToF32(b.d);
      for (int j = 0; j < kQK; ++j) L[j] = static_cast<int8_t>(dr != 0.0f ? Clamp(NearestInt(x[j] / dr), -8, 7) : 0);
      PackQ4_0(L, b.qs);
      StoreBlock(dst, i, b);
      continue;
    }
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < kQK; ++j) {
      if (amax < std::fabs(x[j])) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    }
    const float d = max / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    block_q4_0 b;
    b.d = F32ToF16(d);
    for (int j = 0; j < kQK / 2; ++j) {
      // ggml truncates x * id + 8.5 toward zero and caps at 15; fmax/fmin keep the cast defined.
      const float v0 = std::fmin(15.0f, std::fmax(0.0f, x[j] * id + 8.5f));
      const float v1 = std::fmin(15.0f, std::fmax(0.0f, x[j + kQK / 2] * id + 8.5f));
      b.qs[j] = static_cast<uint8_t>(static_cast<int>(v0) | (static_cast<int>(v1) << 4));
    }
    StoreBlock(dst, i, b);
  }
}


// ggml's make_qx_quants with rmse_type 1 (weights x^2), as Q6_K uses it: a symmetric fit to
// [-nmax, nmax - 1] trying 18 scales around nmax / max. Stores L[i] = q + nmax.
float MakeQxQuants(int n, int nmax, const float* x, int8_t* L) {
  float max = 0, amax = 0;
  for (int i = 0; i < n; ++i) {
    const float ax = std::fabs(x[i]);
    if (ax > amax) {
      amax = ax;
      max = x[i];
    }
  }
  if (amax < kGroupMaxEps) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    return 0.0f;
  }
  float iscale = -static_cast<float>(nmax) / max;
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = Clamp(NearestInt(iscale * x[i]), -nmax, nmax - 1);
    L[i] = static_cast<int8_t>(l + nmax);
    const float w = x[i] * x[i];
    sumlx += w * x[i] * static_cast<float>(l);
    suml2 += w * static_cast<float>(l) * static_cast<float>(l);
  }
  float scale = suml2 != 0 ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = -(static_cast<float>(nmax) + 0.1f * static_cast<float>(is)) / max;
    sumlx = suml2 = 0;
    for (int i = 0; i < n; ++i) {
      const int l = Clamp(NearestInt(iscale * x[i]), -nmax, nmax - 1);
      const float w = x[i] * x[i];
      sumlx += w * x[i] * static_cast<float>(l);
      suml2 += w * static_cast<float>(l) * static_cast<float>(l);
    }
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      for (int i = 0; i < n; ++i)
        L[i] = static_cast<int8_t>(nmax + Clamp(NearestInt(iscale * x[i]), -nmax, nmax - 1));
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

void QuantizeQ4_K(const float* x, const float* imp, void* dst, int64_t blocks) {
  uint8_t L[kQK_K];
  uint8_t Laux[32];
  float weights[32];
  float mins[kQK_K / 32];
  float scales[kQK_K / 32];
  for (int64_t i = 0; i < blocks; ++i, x += kQK_K, imp = imp ? imp + kQK_K : nullptr) {
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < kQK_K / 32; ++j) {
      // Weights favour large-magnitude values over the group's RMS, as ggml's do; with an
      // importance vector, the columns' mean squared activations instead.
      float sum_x2 = 0;
      for (int l = 0; l < 32; ++l) sum_x2 += x[32 * j + l] * x[32 * j + l];
      const float av_x = std::sqrt(sum_x2 / 32);
      for (int l = 0; l < 32; ++l) weights[l] = imp ? imp[32 * j + l] : av_x + std::fabs(x[32 * j + l]);
      scales[j] = MakeQkx2Quants(32, 15, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, -1.0f,
                                 0.1f, 20);
      if (scales[j] > max_scale) max_scale = scales[j];
      if (mins[j] > max_min) max_min = mins[j];
    }
    const float inv_scale = max_scale > 0 ? 63.0f / max_scale : 0.0f;
    const float inv_min = max_min > 0 ? 63.0f / max_min : 0.0f;
    block_q4_K b;
    std::memset(&b, 0, sizeof(b));
    int ls[8], lm[8];
    for (int j = 0; j < kQK_K / 32; ++j) {
      ls[j] = Clamp(NearestInt(inv_scale * scales[j]), 0, 63);
      lm[j] = Clamp(NearestInt(inv_min * mins[j]), 0, 63);
    }
    PackScaleMinK4(ls, lm, b.scales);
    b.d = F32ToF16(max_scale / 63.0f);
    b.dmin = F32ToF16(max_min / 63.0f);
    // Requantize against the rounded 6-bit scales actually stored, as ggml does.
    for (int j = 0; j < kQK_K / 32; ++j) {
      int sc, m;
      UnpackScaleMinK4(b.scales, j, &sc, &m);
      const float d = F16ToF32(b.d) * static_cast<float>(sc);
      if (d == 0.0f) continue;
      const float dm = F16ToF32(b.dmin) * static_cast<float>(m);
      for (int l = 0; l < 32; ++l)
        L[32 * j + l] = static_cast<uint8_t>(Clamp(NearestInt((x[32 * j + l] + dm) / d), 0, 15));
    }
    PackQ4_K(L, b.qs);
    StoreBlock(dst, i, b);
  }
}

void QuantizeQ6_K(const float* x, const float* imp, void* dst, int64_t blocks) {
  int8_t L[kQK_K];
  float scales[kQK_K / 16];
  for (int64_t i = 0; i < blocks; ++i, x += kQK_K, imp = imp ? imp + kQK_K : nullptr) {
    float max_scale = 0, max_abs_scale = 0;
    for (int g = 0; g < kQK_K / 16; ++g) {
      scales[g] = imp ? WeightedSymmetricFit(16, 32, 31, x + 16 * g, imp + 16 * g, L + 16 * g)
                      : MakeQxQuants(16, 32, x + 16 * g, L + 16 * g);
      if (std::fabs(scales[g]) > max_abs_scale) {
        max_abs_scale = std::fabs(scales[g]);
        max_scale = scales[g];
      }
    }
    block_q6_K b;
    std::memset(&b, 0, sizeof(b));
    if (max_abs_scale < kGroupMaxEps) {  // an all-zero block (also catches NaN scales)
      StoreBlock(dst, i, b);
      continue;
    }
    const float iscale = -128.0f / max_scale;
    b.d = F32ToF16(1.0f / iscale);
    for (int g = 0; g < kQK_K / 16; ++g)
      b.scales[g] = static_cast<int8_t>(Clamp(NearestInt(iscale * scales[g]), -128, 127));
    for (int g = 0; g < kQK_K / 16; ++g) {
      const float d = F16ToF32(b.d) * static_cast<float>(b.scales[g]);
      if (d == 0.0f) continue;
      for (int l = 0; l < 16; ++l)
        L[16 * g + l] = static_cast<int8_t>(Clamp(NearestInt(x[16 * g + l] / d), -32, 31) + 32);
    }
    PackQ6_K(L, b.ql, b.qh);
    StoreBlock(dst, i, b);
  }
}

}  // namespace


bool CanQuantize(DType t) {
  switch (t) {
    case DType::kF32: case DType::kF16: case DType::kBF16: case DType::kQ8_0:
    case DType::kQ4_0: case DType::kQ2_K: case DType::kQ3_K: case DType::kQ4_K: case DType::kQ5_K:
    case DType::kQ6_K: return true;
    default: return false;
  }
}

bool QuantizeRow(DType t, const float* src, void* dst, int64_t n) { return QuantizeRowWeighted(t, src, nullptr, dst, n); }

bool QuantizeRowWeighted(DType t, const float* src, const float* imp, void* dst, int64_t n) {
  if (n < 0 || n % Info(t).block_elems != 0) return false;
  const int64_t blocks = n / Info(t).block_elems;
  auto* bytes = static_cast<uint8_t*>(dst);
  switch (t) {
    case DType::kF32:
      std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
      return true;
    case DType::kF16:
    case DType::kBF16:
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = t == DType::kF16 ? F32ToF16(src[i]) : F32ToBF16(src[i]);
        std::memcpy(bytes + 2 * i, &h, 2);
      }
      return true;
    case DType::kQ8_0: QuantizeQ8_0(src, dst, blocks); return true;
    case DType::kQ4_0: QuantizeQ4_0(src, imp, dst, blocks); return true;
    case DType::kQ2_K: QuantizeQ2_K(src, imp, dst, blocks); return true;
    case DType::kQ3_K: QuantizeQ3_K(src, imp, dst, blocks); return true;
    case DType::kQ4_K: QuantizeQ4_K(src, imp, dst, blocks); return true;
    case DType::kQ5_K: QuantizeQ5_K(src, imp, dst, blocks); return true;
    case DType::kQ6_K: QuantizeQ6_K(src, imp, dst, blocks); return true;
    default: return false;
  }
}

}  // namespace fastgen::kernels::reference
