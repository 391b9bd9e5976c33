// Packing of codes into the GGUF block layouts and the scale fits the quantizers share.
#include "kernels/reference/quant_pack.h"

#include "kernels/reference/quant_blocks.h"

namespace fastgen::kernels::reference::detail {

// Packing of codes into the block layouts (shared by the quantizers below and PackBlockCodes).
// Q4_0: codes in [-8, 7]; element j in the low nibble of qs[j], element j + 16 in the high one.
void PackQ4_0(const int8_t* q, uint8_t* qs) {
  for (int j = 0; j < kQK / 2; ++j)
    qs[j] = static_cast<uint8_t>((q[j] + 8) | ((q[j + kQK / 2] + 8) << 4));
}
// Q4_K: codes in [0, 15]; each 64 elements share 32 bytes, the first 32 in the low nibbles.
void PackQ4_K(const uint8_t* L, uint8_t* qs) {
  for (int pair = 0; pair < 4; ++pair)
    for (int l = 0; l < 32; ++l) qs[32 * pair + l] = static_cast<uint8_t>(L[64 * pair + l] | (L[64 * pair + 32 + l] << 4));
}
// Q6_K: codes + 32 in [0, 63]; 4 low bits in ql, 2 high bits in qh, 128 elements per half.
void PackQ6_K(const int8_t* L, uint8_t* ql_all, uint8_t* qh_all) {
  for (int half = 0; half < 2; ++half) {
    const int8_t* q = L + 128 * half;
    uint8_t* ql = ql_all + 64 * half;
    uint8_t* qh = qh_all + 32 * half;
    for (int l = 0; l < 32; ++l) {
      ql[l] = static_cast<uint8_t>((q[l] & 0x0f) | ((q[l + 64] & 0x0f) << 4));
      ql[l + 32] = static_cast<uint8_t>((q[l + 32] & 0x0f) | ((q[l + 96] & 0x0f) << 4));
      qh[l] = static_cast<uint8_t>((q[l] >> 4) | ((q[l + 32] >> 4) << 2) | ((q[l + 64] >> 4) << 4) |
                                   ((q[l + 96] >> 4) << 6));
    }
  }
}

// The importance-weighted symmetric fit of n values to codes in [-nneg, npos]: the scale
// minimising Σ w (x - s q)², searched over 21 candidate grids around the one that maps the
// value of largest magnitude to the end of the range on its side (then least squares for s
// given the codes). Used when an importance vector (the mean squared activation of each input
// column over calibration text) says which columns matter: llama.cpp's imatrix quantization
// does the same kind of search. Stores the codes in L and returns the scale (0: all zero).
float WeightedSymmetricFit(int n, int nneg, int npos, const float* x, const float* w, int8_t* L) {
  float amax = 0, max = 0;
  for (int i = 0; i < n; ++i)
    if (std::fabs(x[i]) > amax) {
      amax = std::fabs(x[i]);
      max = x[i];
    }
  for (int i = 0; i < n; ++i) L[i] = 0;
  if (amax < kGroupMaxEps) return 0.0f;
  float best_scale = 0, best_err = 0;
  for (int i = 0; i < n; ++i) best_err += w[i] * x[i] * x[i];  // all-zero codes
  int8_t cand[256];
  for (int is = -10; is <= 10; ++is) {
    // The extreme value goes to -nneg (largest range side) scaled by 1 + is/10 steps of 0.1.
    const float iscale = -(static_cast<float>(nneg) + 0.1f * static_cast<float>(is)) / max;
    double sxl = 0, sll = 0;
    for (int i = 0; i < n; ++i) {
      const int l = Clamp(NearestInt(iscale * x[i]), -nneg, npos);
      cand[i] = static_cast<int8_t>(l);
      sxl += static_cast<double>(w[i]) * x[i] * l;
      sll += static_cast<double>(w[i]) * l * l;
    }
    if (sll <= 0) continue;
    const float scale = static_cast<float>(sxl / sll);
    float err = 0;
    for (int i = 0; i < n; ++i) {
      const float diff = x[i] - scale * static_cast<float>(cand[i]);
      err += w[i] * diff * diff;
    }
    if (err < best_err) {
      best_err = err;
      best_scale = scale;
      for (int i = 0; i < n; ++i) L[i] = cand[i];
    }
  }
  return best_scale;
}


// The float expressions keep ggml's evaluation order so that results match bit for bit.
// ggml's make_qkx2_quants: an asymmetric scale/min fit of n values to [0, nmax], trying
// nstep + 1 candidate scales around the min-max one and keeping the best weighted squared
// error. Returns the scale and stores -min in *the_min.
float MakeQkx2Quants(int n, int nmax, const float* x, const float* weights, uint8_t* L,
                     float* the_min, uint8_t* Laux, float rmin, float rdelta, int nstep) {
  float min = x[0], max = x[0];
  float sum_w = weights[0];
  float sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    if (x[i] < min) min = x[i];
    if (x[i] > max) max = x[i];
    sum_w += weights[i];
    sum_x += weights[i] * x[i];
  }
  if (min > 0) min = 0;
  if (max == min) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    *the_min = -min;
    return 0.0f;
  }
  float iscale = static_cast<float>(nmax) / (max - min);
  float scale = 1.0f / iscale;
  float best_error = 0.0f;
  for (int i = 0; i < n; ++i) {
    L[i] = static_cast<uint8_t>(Clamp(NearestInt(iscale * (x[i] - min)), 0, nmax));
    const float diff = scale * L[i] + min - x[i];
    best_error += weights[i] * (diff * diff);
  }
  for (int is = 0; is <= nstep; ++is) {
    iscale = (rmin + rdelta * static_cast<float>(is) + static_cast<float>(nmax)) / (max - min);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      const int l = Clamp(NearestInt(iscale * (x[i] - min)), 0, nmax);
      Laux[i] = static_cast<uint8_t>(l);
      const float w = weights[i];
      sum_l += w * static_cast<float>(l);
      sum_l2 += w * static_cast<float>(l) * static_cast<float>(l);
      sum_xl += w * static_cast<float>(l) * x[i];
    }
    const float D = sum_w * sum_l2 - sum_l * sum_l;
    if (D > 0) {
      float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
      float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
      if (this_min > 0) {
        this_min = 0;
        this_scale = sum_xl / sum_l2;
      }
      float error = 0;
      for (int i = 0; i < n; ++i) {
        const float diff = this_scale * Laux[i] + this_min - x[i];
        error += weights[i] * (diff * diff);
      }
      if (error < best_error) {
        for (int i = 0; i < n; ++i) L[i] = Laux[i];
        best_error = error;
        scale = this_scale;
        min = this_min;
      }
    }
  }
  *the_min = -min;
  return scale;
}


// The 6-bit scale/min packing of Q4_K and Q5_K (ggml's get_scale_min_k4, inverted): groups
// 0-3 in the low 6 bits of bytes 0-7, groups 4-7 as nibbles of bytes 8-11 with their top 2
// bits in the top of bytes 0-7.
void PackScaleMinK4(const int* ls, const int* lm, uint8_t* scales) {
  std::memset(scales, 0, kKScaleBytes);
  for (int j = 0; j < 8; ++j) {
    if (j < 4) {
      scales[j] = static_cast<uint8_t>(ls[j]);
      scales[j + 4] = static_cast<uint8_t>(lm[j]);
    } else {
      scales[j + 4] = static_cast<uint8_t>((ls[j] & 0x0f) | ((lm[j] & 0x0f) << 4));
      scales[j - 4] |= static_cast<uint8_t>((ls[j] >> 4) << 6);
      scales[j] |= static_cast<uint8_t>((lm[j] >> 4) << 6);
    }
  }
}

void UnpackScaleMinK4(const uint8_t* scales, int j, int* sc, int* m) {
  if (j < 4) {
    *sc = scales[j] & 63;
    *m = scales[j + 4] & 63;
  } else {
    *sc = (scales[j + 4] & 0x0f) | ((scales[j - 4] >> 6) << 4);
    *m = (scales[j + 4] >> 4) | ((scales[j] >> 6) << 4);
  }
}

// Q5_K codes in [0, 31]: low 4 bits as Q4_K's nibbles, the fifth bit of element l of group g
// (32 elements each) in bit g of qh[l].
void PackQ5_K(const uint8_t* L, uint8_t* qs, uint8_t* qh) {
  std::memset(qh, 0, kQK_K / 8);
  uint8_t low[kQK_K];
  for (int j = 0; j < kQK_K; ++j) {
    low[j] = L[j] & 0x0f;
    if (L[j] > 15) qh[j % 32] |= static_cast<uint8_t>(1 << (j / 32));
  }
  PackQ4_K(low, qs);
}

// Q2_K / Q3_K element order: element e = 128 half + 32 plane + 16 sub + l lives in byte
// 32 half + 16 sub + l of qs, bits 2 plane .. 2 plane + 1; Q3_K's high bit in bit
// 4 half + plane of hmask[16 sub + l].
void PackQ2Bits(const uint8_t* L2, uint8_t* qs) {
  std::memset(qs, 0, kQK_K / 4);
  for (int e = 0; e < kQK_K; ++e) {
    const int half = e / 128, plane = (e % 128) / 32, rest = e % 32;
    qs[32 * half + rest] |= static_cast<uint8_t>((L2[e] & 3) << (2 * plane));
  }
}
void PackQ3_K(const int8_t* q, uint8_t* qs, uint8_t* hmask) {  // codes in [-4, 3]
  uint8_t low[kQK_K];
  std::memset(hmask, 0, kQK_K / 8);
  for (int e = 0; e < kQK_K; ++e) {
    const int u = q[e] + 4;  // 0..7; the high bit set means "do not subtract 4"
    low[e] = static_cast<uint8_t>(u & 3);
    if (u & 4) hmask[e % 32] |= static_cast<uint8_t>(1 << (4 * (e / 128) + (e % 128) / 32));
  }
  PackQ2Bits(low, qs);
}
// The 16 Q3_K scales, 6 bits each, biased by 32 (the inverse of Q3KScale in dequant.cc).
void PackQ3Scales(const int* biased, uint8_t* s) {
  std::memset(s, 0, 12);
  for (int j = 0; j < 16; ++j) {
    const int v = biased[j];
    if (j < 8)
      s[j] |= static_cast<uint8_t>(v & 0x0f);
    else
      s[j - 8] |= static_cast<uint8_t>((v & 0x0f) << 4);
    s[8 + j % 4] |= static_cast<uint8_t>(((v >> 4) & 3) << (2 * (j / 4)));
  }
}
int UnpackQ3Scale(const uint8_t* s, int j) {
  const int low = j < 8 ? (s[j] & 0x0f) : (s[j - 8] >> 4);
  const int high = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
  return (low | (high << 4)) - 32;
}

}  // namespace fastgen::kernels::reference::detail
