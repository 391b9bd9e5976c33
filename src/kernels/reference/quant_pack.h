// Shared pieces of the reference quantizers (quantize.cc, quantize_kquants.cc) and the block
// grids (quant_grid.cc): rounding, packing of codes into the GGUF block layouts, and the
// scale fits. Internal to kernels/reference.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

namespace fastgen::kernels::reference::detail {


// Groups whose largest magnitude is below this are stored as zeros (ggml's GROUP_MAX_EPS).
inline constexpr float kGroupMaxEps = 1e-15f;

// Round to nearest, ties to even, as ggml's nearest_int does with its 1.5 * 2^23 trick; values
// outside its domain (and NaN) are clamped rather than converted with undefined behaviour.
inline int NearestInt(float v) {
  if (!(std::fabs(v) <= 4194303.0f)) return std::isnan(v) ? 0 : (v > 0 ? 4194303 : -4194303);
  return static_cast<int>(std::nearbyint(v));
}

inline int Clamp(int v, int lo, int hi) { return v < lo ? lo : (v > hi ? hi : v); }

template <typename Block>
void StoreBlock(void* dst, int64_t index, const Block& b) {
  std::memcpy(static_cast<uint8_t*>(dst) + index * static_cast<int64_t>(sizeof(Block)), &b,
              sizeof(Block));
}

// Code packing, one function per layout (codes as each comment says).
void PackQ4_0(const int8_t* q, uint8_t* qs);                       // [-8, 7]
void PackQ4_K(const uint8_t* L, uint8_t* qs);                      // [0, 15]
void PackQ5_K(const uint8_t* L, uint8_t* qs, uint8_t* qh);         // [0, 31]
void PackQ6_K(const int8_t* L, uint8_t* ql_all, uint8_t* qh_all);  // code + 32 in [0, 63]
void PackQ2Bits(const uint8_t* L2, uint8_t* qs);                   // [0, 3], Q2_K/Q3_K order
void PackQ3_K(const int8_t* q, uint8_t* qs, uint8_t* hmask);       // [-4, 3]
void PackScaleMinK4(const int* ls, const int* lm, uint8_t* scales);  // Q4_K/Q5_K 6-bit scales
void UnpackScaleMinK4(const uint8_t* scales, int j, int* sc, int* m);
void PackQ3Scales(const int* biased, uint8_t* s);                  // 16 6-bit scales, +32
int UnpackQ3Scale(const uint8_t* s, int j);

float WeightedSymmetricFit(int n, int nneg, int npos, const float* x, const float* w, int8_t* L);
float MakeQkx2Quants(int n, int nmax, const float* x, const float* weights, uint8_t* L, float* the_min, uint8_t* Laux,
                     float rmin, float rdelta, int nstep);

// The K-quants without a llama.cpp-identical reference (quantize_kquants.cc); imp may be null.
void QuantizeQ2_K(const float* x, const float* imp, void* dst, int64_t blocks);
void QuantizeQ3_K(const float* x, const float* imp, void* dst, int64_t blocks);
void QuantizeQ5_K(const float* x, const float* imp, void* dst, int64_t blocks);

}  // namespace fastgen::kernels::reference::detail
