// Block grids (quant_grid.h): a block's header chosen by the quantizer, codes chosen by the
// caller and packed into it.
#include "kernels/reference/quant_grid.h"

#include <cstring>

#include "kernels/reference/dequant.h"
#include "kernels/reference/quant_blocks.h"
#include "kernels/reference/quant_pack.h"

namespace fastgen::kernels::reference {

using namespace detail;

namespace {

// Q4_K and Q5_K: 8 groups of 32, x = d·sc·q − dmin·m with 6-bit sc and m.
template <typename Block>
BlockGrid ScaleMinGrid(const uint8_t* block, int qmax) {
  Block b;
  std::memcpy(&b, block, sizeof b);
  BlockGrid g;
  g.sub = 32;
  g.qmin = 0;
  g.qmax = qmax;
  for (int j = 0; j < 8; ++j) {
    int sc, m;
    UnpackScaleMinK4(b.scales, j, &sc, &m);
    g.scale[j] = F16ToF32(b.d) * static_cast<float>(sc);
    g.offset[j] = -(F16ToF32(b.dmin) * static_cast<float>(m));
  }
  return g;
}

}  // namespace


bool HasBlockGrid(DType t) {
  switch (t) {
    case DType::kQ8_0: case DType::kQ4_0: case DType::kQ2_K: case DType::kQ3_K: case DType::kQ4_K:
    case DType::kQ5_K: case DType::kQ6_K: return true;
    default: return false;
  }
}

BlockGrid ReadBlockGrid(DType t, const uint8_t* block) {
  BlockGrid g;
  switch (t) {
    case DType::kQ8_0: {
      block_q8_0 b;
      std::memcpy(&b, block, sizeof b);
      g.sub = kQK;
      g.qmin = -127;
      g.qmax = 127;
      g.scale[0] = F16ToF32(b.d);
      break;
    }
    case DType::kQ4_0: {
      block_q4_0 b;
      std::memcpy(&b, block, sizeof b);
      g.sub = kQK;
      g.qmin = -8;
      g.qmax = 7;
      g.scale[0] = F16ToF32(b.d);
      break;
    }
    case DType::kQ4_K: return ScaleMinGrid<block_q4_K>(block, 15);
    case DType::kQ5_K: return ScaleMinGrid<block_q5_K>(block, 31);
    case DType::kQ3_K: {
      block_q3_K b;
      std::memcpy(&b, block, sizeof b);
      g.sub = 16;
      g.qmin = -4;
      g.qmax = 3;
      for (int j = 0; j < 16; ++j) g.scale[j] = F16ToF32(b.d) * static_cast<float>(UnpackQ3Scale(b.scales, j));
      break;
    }
    case DType::kQ2_K: {
      block_q2_K b;
      std::memcpy(&b, block, sizeof b);
      g.sub = 16;
      g.qmin = 0;
      g.qmax = 3;
      for (int j = 0; j < 16; ++j) {
        g.scale[j] = F16ToF32(b.d) * static_cast<float>(b.scales[j] & 0x0f);
        g.offset[j] = -(F16ToF32(b.dmin) * static_cast<float>(b.scales[j] >> 4));
      }
      break;
    }
    case DType::kQ6_K: {
      block_q6_K b;
      std::memcpy(&b, block, sizeof b);
      g.sub = 16;
      g.qmin = -32;
      g.qmax = 31;
      for (int j = 0; j < 16; ++j) g.scale[j] = F16ToF32(b.d) * static_cast<float>(b.scales[j]);
      break;
    }
    default: break;
  }
  return g;
}

bool ChooseBlockGrid(DType t, const float* x, const float* imp, uint8_t* block, BlockGrid* grid) {
  if (!HasBlockGrid(t) || !QuantizeRowWeighted(t, x, imp, block, Info(t).block_elems)) return false;
  *grid = ReadBlockGrid(t, block);
  return true;
}

int GridCode(const BlockGrid& g, int j, float x, float* value) {
  const float s = g.scale[j / g.sub], o = g.offset[j / g.sub];
  const int q = s != 0.0f ? Clamp(NearestInt((x - o) / s), g.qmin, g.qmax) : Clamp(0, g.qmin, g.qmax);
  if (value != nullptr) *value = s * static_cast<float>(q) + o;
  return q;
}

bool PackBlockCodes(DType t, const int* codes, uint8_t* block) {
  switch (t) {
    case DType::kQ8_0: {
      auto* b = reinterpret_cast<block_q8_0*>(block);
      for (int j = 0; j < kQK; ++j) b->qs[j] = static_cast<int8_t>(Clamp(codes[j], -127, 127));
      return true;
    }
    case DType::kQ4_0: {
      int8_t q[kQK];
      for (int j = 0; j < kQK; ++j) q[j] = static_cast<int8_t>(Clamp(codes[j], -8, 7));
      PackQ4_0(q, reinterpret_cast<block_q4_0*>(block)->qs);
      return true;
    }
    case DType::kQ4_K: {
      uint8_t L[kQK_K];
      for (int j = 0; j < kQK_K; ++j) L[j] = static_cast<uint8_t>(Clamp(codes[j], 0, 15));
      PackQ4_K(L, reinterpret_cast<block_q4_K*>(block)->qs);
      return true;
    }
    case DType::kQ5_K: {
      uint8_t L[kQK_K];
      for (int j = 0; j < kQK_K; ++j) L[j] = static_cast<uint8_t>(Clamp(codes[j], 0, 31));
      auto* b = reinterpret_cast<block_q5_K*>(block);
      PackQ5_K(L, b->qs, b->qh);
      return true;
    }
    case DType::kQ3_K: {
      int8_t q[kQK_K];
      for (int j = 0; j < kQK_K; ++j) q[j] = static_cast<int8_t>(Clamp(codes[j], -4, 3));
      auto* b = reinterpret_cast<block_q3_K*>(block);
      PackQ3_K(q, b->qs, b->hmask);
      return true;
    }
    case DType::kQ2_K: {
      uint8_t L[kQK_K];
      for (int j = 0; j < kQK_K; ++j) L[j] = static_cast<uint8_t>(Clamp(codes[j], 0, 3));
      PackQ2Bits(L, reinterpret_cast<block_q2_K*>(block)->qs);
      return true;
    }
    case DType::kQ6_K: {
      int8_t L[kQK_K];
      for (int j = 0; j < kQK_K; ++j) L[j] = static_cast<int8_t>(Clamp(codes[j], -32, 31) + 32);
      auto* b = reinterpret_cast<block_q6_K*>(block);
      PackQ6_K(L, b->ql, b->qh);
      return true;
    }
    default: return false;
  }
}

}  // namespace fastgen::kernels::reference
