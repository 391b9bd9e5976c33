// Dequantization exactly as the GGUF specification (ggml's dequantize_row_* functions) defines
// each block layout. Blocks are copied out of the source with memcpy because rows in a file are
// only byte-aligned in general (a Q8_0 block is 34 bytes), and reading a struct with a 2-byte
// field through a misaligned pointer is undefined behaviour.
#include "kernels/reference/dequant.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/reference/quant_blocks.h"

namespace fastgen::kernels::reference {
namespace {

template <typename Block>
Block LoadBlock(const void* src, int64_t index) {
  Block b;
  std::memcpy(&b, static_cast<const uint8_t*>(src) + index * static_cast<int64_t>(sizeof(Block)),
              sizeof(Block));
  return b;
}

void DequantizeQ8_0(const void* src, float* dst, int64_t blocks) {
  for (int64_t i = 0; i < blocks; ++i) {
    const auto b = LoadBlock<block_q8_0>(src, i);
    const float d = F16ToF32(b.d);
    for (int j = 0; j < kQK; ++j) dst[j] = d * static_cast<float>(b.qs[j]);
    dst += kQK;
  }
}

void DequantizeQ4_0(const void* src, float* dst, int64_t blocks) {
  for (int64_t i = 0; i < blocks; ++i) {
    const auto b = LoadBlock<block_q4_0>(src, i);
    const float d = F16ToF32(b.d);
    for (int j = 0; j < kQK / 2; ++j) {
      dst[j] = d * static_cast<float>((b.qs[j] & 0x0f) - 8);
      dst[j + kQK / 2] = d * static_cast<float>((b.qs[j] >> 4) - 8);
    }
    dst += kQK;
  }
}

// Q2_K: 16 groups of 16; each scales byte holds a 4-bit scale (low) and a 4-bit min (high).
// Each 128-element half reads 32 qs bytes four times, two bits deeper each time.
void DequantizeQ2_K(const void* src, float* dst, int64_t blocks) {
  for (int64_t i = 0; i < blocks; ++i) {
    const auto b = LoadBlock<block_q2_K>(src, i);
    const float d = F16ToF32(b.d);
    const float dmin = F16ToF32(b.dmin);
    int group = 0;
    for (int half = 0; half < 2; ++half) {
      const uint8_t* q = b.qs + 32 * half;
      for (int shift = 0; shift < 8; shift += 2) {
        for (int sub = 0; sub < 2; ++sub) {  // bytes 0..15, then 16..31
          const uint8_t sc = b.scales[group++];
          const float dl = d * static_cast<float>(sc & 0x0f);
          const float ml = dmin * static_cast<float>(sc >> 4);
          for (int l = 0; l < 16; ++l)
            *dst++ = dl * static_cast<float>((q[16 * sub + l] >> shift) & 3) - ml;
        }
      }
    }
  }
}

// The 16 6-bit Q3_K scales: the low 4 bits of scales 0-7 are the low nibbles of bytes 0-7,
// those of scales 8-15 the high nibbles; the top 2 bits of scale j are bits 2*(j/4) of byte
// 8 + j%4. The stored value is biased by 32.
int Q3KScale(const uint8_t* s, int j) {
  const int low = j < 8 ? (s[j] & 0x0f) : (s[j - 8] >> 4);
  const int high = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
  return (low | (high << 4)) - 32;
}

// Q3_K: 2 low bits in qs (laid out as Q2_K) plus one high bit per element in hmask; a clear
// high bit subtracts 4, so quants run from -4 to 3.
void DequantizeQ3_K(const void* src, float* dst, int64_t blocks) {
  for (int64_t i = 0; i < blocks; ++i) {
    const auto b = LoadBlock<block_q3_K>(src, i);
    const float d = F16ToF32(b.d);
    int group = 0;
    int hbit = 0;  // which bit of hmask holds the high bits of the current 32 elements
    for (int half = 0; half < 2; ++half) {
      const uint8_t* q = b.qs + 32 * half;
      for (int shift = 0; shift < 8; shift += 2, ++hbit) {
        for (int sub = 0; sub < 2; ++sub) {
          const float dl = d * static_cast<float>(Q3KScale(b.scales, group++));
          for (int l = 0; l < 16; ++l) {
            const int k = 16 * sub + l;
            const int low = (q[k] >> shift) & 3;
            const int high = (b.hmask[k] >> hbit) & 1;
            *dst++ = dl * static_cast<float>(low - (high ? 0 : 4));
          }
        }
      }
    }
  }
}

// The 8 6-bit scales and 8 6-bit mins shared by Q4_K and Q5_K (ggml's get_scale_min_k4).
void ScaleMinK4(int j, const uint8_t* q, int* scale, int* min) {
  if (j < 4) {
    *scale = q[j] & 63;
    *min = q[j + 4] & 63;
  } else {
    *scale = (q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4);
    *min = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

// Q4_K: 8 groups of 32, x = d * scale * q - dmin * min. Each 64 elements share 32 qs bytes:
// the low nibbles are the first 32 elements, the high nibbles the next 32.
void DequantizeQ4_K(const void* src, float* dst, int64_t blocks) {
  for (int64_t i = 0; i < blocks; ++i) {
    const auto b = LoadBlock<block_q4_K>(src, i);
    const float d = F16ToF32(b.d);
    const float dmin = F16ToF32(b.dmin);
    for (int pair = 0; pair < 4; ++pair) {
      const uint8_t* q = b.qs + 32 * pair;
      for (int nibble = 0; nibble < 2; ++nibble) {
        int sc, m;
        ScaleMinK4(2 * pair + nibble, b.scales, &sc, &m);
        const float dl = d * static_cast<float>(sc);
        const float ml = dmin * static_cast<float>(m);
        for (int l = 0; l < 32; ++l)
          *dst++ = dl * static_cast<float>((q[l] >> (4 * nibble)) & 0x0f) - ml;
      }
    }
  }
}

// Q5_K: Q4_K plus a fifth bit per element in qh; group g takes bit g of qh[l].
void DequantizeQ5_K(const void* src, float* dst, int64_t blocks) {
  for (int64_t i = 0; i < blocks; ++i) {
    const auto b = LoadBlock<block_q5_K>(src, i);
    const float d = F16ToF32(b.d);
    const float dmin = F16ToF32(b.dmin);
    for (int pair = 0; pair < 4; ++pair) {
      const uint8_t* q = b.qs + 32 * pair;
      for (int nibble = 0; nibble < 2; ++nibble) {
        const int group = 2 * pair + nibble;
        int sc, m;
        ScaleMinK4(group, b.scales, &sc, &m);
        const float dl = d * static_cast<float>(sc);
        const float ml = dmin * static_cast<float>(m);
        for (int l = 0; l < 32; ++l) {
          const int low = (q[l] >> (4 * nibble)) & 0x0f;
          const int high = (b.qh[l] >> group) & 1;
          *dst++ = dl * static_cast<float>(low + 16 * high) - ml;
        }
      }
    }
  }
}

// Q6_K: 16 groups of 16 with signed 8-bit scales; 4 low bits in ql and 2 high bits in qh,
// biased by 32. Each 128 elements use 64 ql bytes (two nibble planes) and 32 qh bytes (four
// 2-bit planes).
void DequantizeQ6_K(const void* src, float* dst, int64_t blocks) {
  for (int64_t i = 0; i < blocks; ++i) {
    const auto b = LoadBlock<block_q6_K>(src, i);
    const float d = F16ToF32(b.d);
    for (int half = 0; half < 2; ++half) {
      const uint8_t* ql = b.ql + 64 * half;
      const uint8_t* qh = b.qh + 32 * half;
      const int8_t* sc = b.scales + 8 * half;
      for (int l = 0; l < 32; ++l) {
        const int g = l / 16;
        const int q1 = ((ql[l] & 0x0f) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = ((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        dst[l] = d * static_cast<float>(sc[g]) * static_cast<float>(q1);
        dst[l + 32] = d * static_cast<float>(sc[g + 2]) * static_cast<float>(q2);
        dst[l + 64] = d * static_cast<float>(sc[g + 4]) * static_cast<float>(q3);
        dst[l + 96] = d * static_cast<float>(sc[g + 6]) * static_cast<float>(q4);
      }
      dst += 128;
    }
  }
}

}  // namespace

void DequantizeRow(DType t, const void* src, float* dst, int64_t n) {
  if (n <= 0) return;
  const int64_t blocks = n / Info(t).block_elems;
  const auto* bytes = static_cast<const uint8_t*>(src);
  switch (t) {
    case DType::kF32:
      std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
      return;
    case DType::kF16:
    case DType::kBF16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, bytes + 2 * i, 2);
        dst[i] = t == DType::kF16 ? F16ToF32(h) : BF16ToF32(h);
      }
      return;
    case DType::kI32:  // not a weight type, but converting keeps every dtype viewable
      for (int64_t i = 0; i < n; ++i) {
        int32_t v;
        std::memcpy(&v, bytes + 4 * i, 4);
        dst[i] = static_cast<float>(v);
      }
      return;
    case DType::kQ8_0: DequantizeQ8_0(src, dst, blocks); return;
    case DType::kQ4_0: DequantizeQ4_0(src, dst, blocks); return;
    case DType::kQ2_K: DequantizeQ2_K(src, dst, blocks); return;
    case DType::kQ3_K: DequantizeQ3_K(src, dst, blocks); return;
    case DType::kQ4_K: DequantizeQ4_K(src, dst, blocks); return;
    case DType::kQ5_K: DequantizeQ5_K(src, dst, blocks); return;
    case DType::kQ6_K: DequantizeQ6_K(src, dst, blocks); return;
  }
}

}  // namespace fastgen::kernels::reference

namespace fastgen::kernels::reference {

void DequantizeMatrixRow(const TensorView& w, int64_t r, float* out) {
  const int64_t k = w.cols();
  if (!w.has_extras()) {
    DequantizeRow(w.dtype, w.row(r), out, k);
    return;
  }
  std::vector<float> stored(static_cast<size_t>(k));
  DequantizeRow(w.dtype, w.row(r), stored.data(), k);
  if (w.group_offsets != nullptr) {
    const int64_t groups = k / w.group_cols;
    for (int64_t j = 0; j < k; ++j) stored[j] += w.group_offsets[r * groups + j / w.group_cols];
  }
  if (w.input_order != nullptr) {
    for (int64_t j = 0; j < k; ++j) out[w.input_order[j]] = stored[j];
  } else {
    std::copy(stored.begin(), stored.end(), out);
  }
}

}  // namespace fastgen::kernels::reference
