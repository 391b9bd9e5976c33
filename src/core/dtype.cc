#include "core/dtype.h"

#include <array>
#include <cctype>
#include <cmath>
#include <cstring>
#include <limits>

namespace fastgen {
namespace {

// Block sizes and byte counts follow the GGUF specification (ggml's block_q* structs).
constexpr std::array<DTypeInfo, 11> kInfo = {{
    {"F32", 1, 4},
    {"F16", 1, 2},
    {"BF16", 1, 2},
    {"Q8_0", 32, 34},    // f16 d + 32 x int8
    {"Q4_0", 32, 18},    // f16 d + 16 bytes of nibbles
    {"Q2_K", 256, 84},   // 16 scales/mins + 64 quant bytes + f16 d + f16 dmin
    {"Q3_K", 256, 110},  // 32 hmask + 64 qs + 12 scales + f16 d
    {"Q4_K", 256, 144},  // f16 d + f16 dmin + 12 scales + 128 qs
    {"Q5_K", 256, 176},  // f16 d + f16 dmin + 12 scales + 32 qh + 128 qs
    {"Q6_K", 256, 210},  // 128 ql + 64 qh + 16 int8 scales + f16 d
    {"I32", 1, 4},
}};

}  // namespace

const DTypeInfo& Info(DType t) { return kInfo[static_cast<size_t>(t)]; }

bool IsQuantized(DType t) { return Info(t).block_elems > 1; }

std::optional<DType> DTypeFromName(std::string_view name) {
  for (size_t i = 0; i < kInfo.size(); ++i) {
    const auto& n = kInfo[i].name;
    if (n.size() != name.size()) continue;
    bool eq = true;
    for (size_t j = 0; j < n.size() && eq; ++j)
      eq = std::toupper(static_cast<unsigned char>(name[j])) == n[j];
    if (eq) return static_cast<DType>(i);
  }
  return std::nullopt;
}

std::optional<size_t> RowBytes(DType t, int64_t n_elems) {
  const DTypeInfo& info = Info(t);
  if (n_elems < 0 || n_elems % info.block_elems != 0) return std::nullopt;
  const uint64_t blocks = static_cast<uint64_t>(n_elems / info.block_elems);
  if (blocks > std::numeric_limits<uint64_t>::max() / static_cast<uint64_t>(info.block_bytes))
    return std::nullopt;
  return static_cast<size_t>(blocks * static_cast<uint64_t>(info.block_bytes));
}

float F16ToF32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const uint32_t exp = (h >> 10) & 0x1f;
  const uint32_t mant = h & 0x3ff;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: value = mant * 2^-24
      float f = std::ldexp(static_cast<float>(mant), -24);
      std::memcpy(&bits, &f, 4);
      bits |= sign;
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  }
  float out;
  std::memcpy(&out, &bits, 4);
  return out;
}

uint16_t F32ToF16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint32_t sign = (x >> 16) & 0x8000;
  const uint32_t abs = x & 0x7fffffff;
  if (abs > 0x7f800000) return static_cast<uint16_t>(sign | 0x7e00);  // NaN
  if (abs >= 0x477ff000) return static_cast<uint16_t>(sign | 0x7c00);  // overflow -> inf
  if (abs < 0x38800000) {  // subnormal or zero in f16: round abs * 2^24 to nearest even
    float a;
    std::memcpy(&a, &abs, 4);
    const float scaled = a * 16777216.0f;
    const uint32_t m = static_cast<uint32_t>(std::nearbyint(scaled));
    return static_cast<uint16_t>(sign | m);
  }
  // Normal: rebias exponent, round mantissa to 10 bits (nearest even).
  uint32_t mant = abs & 0x7fffff;
  uint32_t exp = (abs >> 23) - 112;
  uint32_t h = (exp << 10) | (mant >> 13);
  const uint32_t rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) ++h;
  return static_cast<uint16_t>(sign | h);
}

uint16_t F32ToBF16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  if ((x & 0x7fffffff) > 0x7f800000) return static_cast<uint16_t>((x >> 16) | 0x40);
  x += 0x7fff + ((x >> 16) & 1);
  return static_cast<uint16_t>(x >> 16);
}

}  // namespace fastgen
