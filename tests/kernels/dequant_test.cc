// Reference dequantization against per-element formulas written independently of the kernel's
// loop structure: for element i of a block, which bytes and bits hold its quant and scale, as
// the GGUF specification lays them out. Blocks are filled with pseudo-random bytes so every
// bit position is exercised.
#include "kernels/reference/dequant.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/reference/quant_blocks.h"

namespace fastgen {
namespace {

using kernels::reference::DequantizeRow;

void FillRandom(void* p, size_t n, uint32_t seed) {
  auto* b = static_cast<uint8_t*>(p);
  uint32_t s = seed * 2654435761u + 1;
  for (size_t i = 0; i < n; ++i) {
    s = s * 1664525u + 1013904223u;
    b[i] = static_cast<uint8_t>(s >> 24);
  }
}

// f16 scales in a plausible range (random bits could be inf/NaN, which proves nothing here).
uint16_t Half(float v) { return F32ToF16(v); }

template <typename Block>
std::vector<float> Dequant(DType t, const std::vector<Block>& blocks, int64_t per_block) {
  std::vector<float> out(blocks.size() * static_cast<size_t>(per_block), -12345.0f);
  DequantizeRow(t, blocks.data(), out.data(), static_cast<int64_t>(out.size()));
  return out;
}

// Checks dst against expected(block, i) for every element, with float tolerance relative to
// the magnitude (the kernel may associate d * scale * q differently).
template <typename Block, typename Expected>
void CheckAll(DType t, int per_block, Expected expected) {
  for (uint32_t seed = 0; seed < 20; ++seed) {
    std::vector<Block> blocks(3);
    FillRandom(blocks.data(), blocks.size() * sizeof(Block), seed);
    for (size_t b = 0; b < blocks.size(); ++b) {
      if constexpr (requires(Block x) { x.dmin; }) {
        blocks[b].dmin = Half(0.01f * static_cast<float>(b + 1 + seed % 3));
      }
      blocks[b].d = Half(0.03f * static_cast<float>(b + 1) * (seed % 2 ? -1.0f : 1.0f));
    }
    const std::vector<float> got = Dequant(t, blocks, per_block);
    for (size_t b = 0; b < blocks.size(); ++b) {
      for (int i = 0; i < per_block; ++i) {
        const float want = expected(blocks[b], i);
        const float g = got[b * static_cast<size_t>(per_block) + static_cast<size_t>(i)];
        ASSERT_NEAR(g, want, 1e-6f * (1.0f + std::fabs(want)))
            << Name(t) << " seed " << seed << " block " << b << " element " << i;
      }
    }
  }
}

TEST(Dequant, Q8_0) {
  CheckAll<block_q8_0>(DType::kQ8_0, 32, [](const block_q8_0& b, int i) {
    return F16ToF32(b.d) * static_cast<float>(b.qs[i]);
  });
  block_q8_0 b{Half(0.5f), {}};
  b.qs[0] = -3;
  b.qs[31] = 127;
  float out[32];
  DequantizeRow(DType::kQ8_0, &b, out, 32);
  EXPECT_EQ(out[0], -1.5f);
  EXPECT_EQ(out[31], 63.5f);
  EXPECT_EQ(out[1], 0.0f);
}

TEST(Dequant, Q4_0) {
  CheckAll<block_q4_0>(DType::kQ4_0, 32, [](const block_q4_0& b, int i) {
    const int q = i < 16 ? (b.qs[i] & 15) : (b.qs[i - 16] >> 4);
    return F16ToF32(b.d) * static_cast<float>(q - 8);
  });
  block_q4_0 b{Half(2.0f), {}};
  b.qs[0] = 0x0f;  // element 0: 15 - 8 = 7; element 16: 0 - 8 = -8
  float out[32];
  DequantizeRow(DType::kQ4_0, &b, out, 32);
  EXPECT_EQ(out[0], 14.0f);
  EXPECT_EQ(out[16], -16.0f);
  EXPECT_EQ(out[1], -16.0f);
}

TEST(Dequant, Q2_K) {
  CheckAll<block_q2_K>(DType::kQ2_K, 256, [](const block_q2_K& b, int i) {
    const int half = i / 128, r = i % 128;
    const int q = (b.qs[32 * half + r % 32] >> (2 * (r / 32))) & 3;
    const uint8_t sc = b.scales[i / 16];
    return F16ToF32(b.d) * static_cast<float>(sc & 15) * static_cast<float>(q) -
           F16ToF32(b.dmin) * static_cast<float>(sc >> 4);
  });
}

// The Q3_K scales decoded the way ggml does it, on 32-bit words (an independent route to the
// same 6-bit values).
int Q3Scale(const block_q3_K& b, int j) {
  uint32_t aux[4];
  std::memcpy(aux, b.scales, 12);
  const uint32_t tmp = aux[2];
  const uint32_t m1 = 0x03030303, m2 = 0x0f0f0f0f;
  aux[2] = ((aux[0] >> 4) & m2) | (((tmp >> 4) & m1) << 4);
  aux[3] = ((aux[1] >> 4) & m2) | (((tmp >> 6) & m1) << 4);
  aux[0] = (aux[0] & m2) | (((tmp >> 0) & m1) << 4);
  aux[1] = (aux[1] & m2) | (((tmp >> 2) & m1) << 4);
  int8_t s[16];
  std::memcpy(s, aux, 16);
  return s[j] - 32;
}

TEST(Dequant, Q3_K) {
  CheckAll<block_q3_K>(DType::kQ3_K, 256, [](const block_q3_K& b, int i) {
    const int half = i / 128, r = i % 128;
    const int low = (b.qs[32 * half + r % 32] >> (2 * (r / 32))) & 3;
    const int high = (b.hmask[i % 32] >> (i / 32)) & 1;
    return F16ToF32(b.d) * static_cast<float>(Q3Scale(b, i / 16)) *
           static_cast<float>(low - (high ? 0 : 4));
  });
}

void ScaleMin(const uint8_t* s, int j, int* sc, int* m) {
  if (j < 4) {
    *sc = s[j] & 63;
    *m = s[j + 4] & 63;
  } else {
    *sc = (s[j + 4] & 15) | ((s[j - 4] >> 6) << 4);
    *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

TEST(Dequant, Q4_K) {
  CheckAll<block_q4_K>(DType::kQ4_K, 256, [](const block_q4_K& b, int i) {
    const int g = i / 32;
    const uint8_t byte = b.qs[32 * (g / 2) + i % 32];
    const int q = g % 2 ? byte >> 4 : byte & 15;
    int sc, m;
    ScaleMin(b.scales, g, &sc, &m);
    return F16ToF32(b.d) * static_cast<float>(sc) * static_cast<float>(q) -
           F16ToF32(b.dmin) * static_cast<float>(m);
  });
}

TEST(Dequant, Q5_K) {
  CheckAll<block_q5_K>(DType::kQ5_K, 256, [](const block_q5_K& b, int i) {
    const int g = i / 32;
    const uint8_t byte = b.qs[32 * (g / 2) + i % 32];
    const int q = (g % 2 ? byte >> 4 : byte & 15) + 16 * ((b.qh[i % 32] >> g) & 1);
    int sc, m;
    ScaleMin(b.scales, g, &sc, &m);
    return F16ToF32(b.d) * static_cast<float>(sc) * static_cast<float>(q) -
           F16ToF32(b.dmin) * static_cast<float>(m);
  });
}

TEST(Dequant, Q6_K) {
  CheckAll<block_q6_K>(DType::kQ6_K, 256, [](const block_q6_K& b, int i) {
    const int half = i / 128, r = i % 128, quarter = r / 32, l = r % 32;
    const uint8_t lb = b.ql[64 * half + l + (quarter % 2 ? 32 : 0)];
    const int low = quarter < 2 ? lb & 15 : lb >> 4;
    const int high = (b.qh[32 * half + l] >> (2 * quarter)) & 3;
    return F16ToF32(b.d) * static_cast<float>(b.scales[i / 16]) *
           static_cast<float>((low | (high << 4)) - 32);
  });
}

// A few elements worked out by hand from the specification's layouts.
TEST(Dequant, HandComputedKQuantBlocks) {
  float out[256];
  {
    block_q2_K b{};
    b.d = Half(1.0f);
    b.dmin = Half(0.5f);
    b.scales[0] = 0x32;  // scale 2, min 3 for elements 0-15
    b.qs[0] = 0x07;      // element 0: bits 0-1 = 3; element 32: bits 2-3 = 1
    DequantizeRow(DType::kQ2_K, &b, out, 256);
    EXPECT_EQ(out[0], 1.0f * 2 * 3 - 0.5f * 3);
    EXPECT_EQ(out[1], -1.5f);
    EXPECT_EQ(out[32], 0.0f);  // group 2 has scale 0 and min 0
  }
  {
    block_q3_K b{};
    b.d = Half(0.5f);
    b.scales[0] = 0x01;  // scale 0: low bits 1
    b.scales[8] = 0x02;  // scale 0: high bits 2, so 1 | 32 = 33, minus the bias 32 = 1
    b.qs[0] = 0x03;
    b.hmask[0] = 0x01;  // element 0: q = 3 with the high bit set
    DequantizeRow(DType::kQ3_K, &b, out, 256);
    EXPECT_EQ(out[0], 0.5f * 1 * 3);
    EXPECT_EQ(out[1], 0.5f * 1 * -4);   // no high bit: 0 - 4
    EXPECT_EQ(out[16], 0.5f * -32 * -4);  // scale 1 is 0 - 32
  }
  {
    block_q4_K b{};
    b.d = Half(1.0f);
    b.dmin = Half(0.5f);
    b.scales[0] = 2;        // group 0 scale
    b.scales[4] = 3;        // group 0 min
    b.scales[1] = 1 | 0x40;  // group 1 scale 1; top bits 01 are group 5's scale high bits
    b.scales[9] = 0x21;     // group 5: scale low nibble 1, min low nibble 2
    b.qs[0] = 0x5a;         // element 0: 10, element 32: 5
    b.qs[64] = 0x0f;        // element 128 (group 4, low nibble) = 15, group 4 scale 0
    b.qs[64 + 5] = 0x70;    // element 160 + 5 (group 5, high nibble) = 7
    DequantizeRow(DType::kQ4_K, &b, out, 256);
    EXPECT_EQ(out[0], 1.0f * 2 * 10 - 0.5f * 3);
    EXPECT_EQ(out[32], 1.0f * 1 * 5);
    EXPECT_EQ(out[128], 0.0f);
    EXPECT_EQ(out[165], 1.0f * (1 | (1 << 4)) * 7 - 0.5f * 2);
  }
  {
    block_q6_K b{};
    b.d = Half(0.25f);
    b.scales[0] = 4;
    b.scales[4] = -2;
    b.ql[0] = 0x21;  // element 0 low bits 1, element 64 low bits 2
    b.qh[0] = 0x02;  // element 0 high bits 2: 1 | 32 = 33, minus 32 = 1; element 64 high 0
    DequantizeRow(DType::kQ6_K, &b, out, 256);
    EXPECT_EQ(out[0], 0.25f * 4 * 1);
    EXPECT_EQ(out[64], 0.25f * -2 * (2 - 32));
    EXPECT_EQ(out[1], 0.25f * 4 * -32);
  }
}

TEST(Dequant, PlainTypes) {
  const float f[3] = {1.5f, -0.0f, 3e38f};
  float out[3];
  DequantizeRow(DType::kF32, f, out, 3);
  EXPECT_EQ(std::memcmp(out, f, sizeof(f)), 0);
  const uint16_t h[3] = {0x3c00, 0xc000, 0x7c00};
  DequantizeRow(DType::kF16, h, out, 3);
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_EQ(out[1], -2.0f);
  EXPECT_TRUE(std::isinf(out[2]));
  const uint16_t bf[3] = {0x3f80, 0xc040, 0x0000};
  DequantizeRow(DType::kBF16, bf, out, 3);
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_EQ(out[1], -3.0f);
  EXPECT_EQ(out[2], 0.0f);
  // Rows inside a file are only byte-aligned: an odd source address must work.
  std::vector<uint8_t> buf(1 + 2 * sizeof(block_q8_0));
  FillRandom(buf.data(), buf.size(), 7);
  std::vector<float> a(64), b(64);
  DequantizeRow(DType::kQ8_0, buf.data() + 1, a.data(), 64);
  std::vector<block_q8_0> aligned(2);
  std::memcpy(aligned.data(), buf.data() + 1, 2 * sizeof(block_q8_0));
  DequantizeRow(DType::kQ8_0, aligned.data(), b.data(), 64);
  EXPECT_EQ(std::memcmp(a.data(), b.data(), 64 * 4), 0);
}

TEST(Conversions, F16Edges) {
  EXPECT_EQ(F16ToF32(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal
  EXPECT_EQ(F16ToF32(0x03ff), std::ldexp(1023.0f, -24));
  EXPECT_EQ(F16ToF32(0x0400), std::ldexp(1.0f, -14));  // smallest normal
  EXPECT_EQ(F16ToF32(0x7bff), 65504.0f);
  EXPECT_EQ(F16ToF32(0x7c00), INFINITY);
  EXPECT_EQ(F16ToF32(0xfc00), -INFINITY);
  EXPECT_TRUE(std::isnan(F16ToF32(0x7e00)));
  EXPECT_TRUE(std::isnan(F16ToF32(0x7c01)));
  EXPECT_TRUE(std::signbit(F16ToF32(0x8000)));
  EXPECT_EQ(F16ToF32(0x8001), -std::ldexp(1.0f, -24));

  EXPECT_EQ(F32ToF16(65504.0f), 0x7bff);
  EXPECT_EQ(F32ToF16(65519.0f), 0x7bff);
  EXPECT_EQ(F32ToF16(65520.0f), 0x7c00);  // the tie rounds to even, which is infinity
  EXPECT_EQ(F32ToF16(1e10f), 0x7c00);
  EXPECT_EQ(F32ToF16(-INFINITY), 0xfc00);
  const uint16_t nan = F32ToF16(NAN);
  EXPECT_EQ(nan & 0x7c00, 0x7c00);
  EXPECT_NE(nan & 0x03ff, 0);
  EXPECT_EQ(F32ToF16(-0.0f), 0x8000);
  EXPECT_EQ(F32ToF16(std::ldexp(1.0f, -24)), 0x0001);
  EXPECT_EQ(F32ToF16(std::ldexp(1.0f, -25)), 0x0000);  // tie between 0 and 1 ulp: even
  EXPECT_EQ(F32ToF16(std::ldexp(3.0f, -25)), 0x0002);  // tie between 1 and 2 ulp: even
  EXPECT_EQ(F32ToF16(std::ldexp(1.0f, -26)), 0x0000);
  EXPECT_EQ(F32ToF16(std::ldexp(1.0f, -14)), 0x0400);
  EXPECT_EQ(F32ToF16(std::ldexp(2047.0f, -25)), 0x0400);  // 1023.5 ulp: tie to even 1024
  EXPECT_EQ(F32ToF16(1.0f + std::ldexp(1.0f, -11)), 0x3c00);       // tie: even
  EXPECT_EQ(F32ToF16(1.0f + std::ldexp(3.0f, -11)), 0x3c02);       // tie: even
  EXPECT_EQ(F32ToF16(1.0f + std::ldexp(1.0f, -11) + 1e-7f), 0x3c01);  // past the tie
  // Every finite f16 survives the round trip.
  for (uint32_t h = 0; h < 0x10000; ++h) {
    if ((h & 0x7c00) == 0x7c00) continue;
    ASSERT_EQ(F32ToF16(F16ToF32(static_cast<uint16_t>(h))), h) << h;
  }
}

TEST(Conversions, BF16Edges) {
  const auto bits = [](uint32_t u) {
    float f;
    std::memcpy(&f, &u, 4);
    return f;
  };
  EXPECT_EQ(F32ToBF16(1.0f), 0x3f80);
  EXPECT_EQ(F32ToBF16(bits(0x3f808000)), 0x3f80);  // tie: even
  EXPECT_EQ(F32ToBF16(bits(0x3f818000)), 0x3f82);  // tie: even
  EXPECT_EQ(F32ToBF16(bits(0x3f808001)), 0x3f81);
  EXPECT_EQ(F32ToBF16(INFINITY), 0x7f80);
  EXPECT_EQ(F32ToBF16(bits(0x7f7fffff)), 0x7f80);  // FLT_MAX rounds up to infinity
  EXPECT_EQ(F32ToBF16(bits(0x00000001)), 0x0000);  // f32 subnormals
  EXPECT_EQ(F32ToBF16(bits(0x00018000)), 0x0002);
  EXPECT_EQ(F32ToBF16(-0.0f), 0x8000);
  // NaNs stay NaN, signalling ones come back quiet; they never round into infinity.
  for (uint32_t n : {0x7f800001u, 0x7fc00000u, 0xffffffffu, 0x7fffffffu}) {
    const uint16_t b = F32ToBF16(bits(n));
    EXPECT_TRUE(std::isnan(BF16ToF32(b))) << std::hex << n;
  }
  EXPECT_EQ(BF16ToF32(0xc040), -3.0f);
  for (uint32_t h = 0; h < 0x10000; ++h) {
    if ((h & 0x7f80) == 0x7f80 && (h & 0x7f)) continue;  // NaN payloads may change
    ASSERT_EQ(F32ToBF16(BF16ToF32(static_cast<uint16_t>(h))), h) << h;
  }
}

}  // namespace
}  // namespace fastgen
