// MatMul's SIMD paths against the scalar reference (reference::MatMulRows), for every weight
// dtype × every ISA this CPU supports, over odd shapes, both the decode (small n) and GEMM
// (n >= 8 quantized, n >= 12 float) paths, several threads, and row pointers offset from their natural alignment.
//
// Tolerances. Float weights (F32/F16/BF16) are multiplied exactly in float32, so the only
// difference is summation order: |y - ref| <= 1e-5 · Σ|w·x| + 1e-6.
// Quantized weights take x rounded to int8 per 32-element block (scale d = max|x|/127), so each
// x element moves by at most d/2: |y - ref| <= Σ_i |w_i| · d(block of i) / 2 (plus the float
// rounding term above). The test computes that bound from the dequantized weights, so it holds
// for any data; the typical error is far smaller and is printed as "relative RMS error".
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>
#include <random>
#include <string>
#include <vector>

#include "core/aligned.h"
#include "core/dtype.h"
#include "core/tensor.h"
#include "core/thread_pool.h"
#include "kernels/cpu/isa.h"
#include "kernels/cpu/matmul_job.h"
#include "kernels/cpu/repack.h"
#include "kernels/matmul.h"
#include "kernels/reference/dequant.h"
#include "kernels/reference/quant_blocks.h"

namespace {
std::atomic<long> g_allocations{0};
}  // namespace

// Counts every allocation in this test binary (MatMulDoesNotAllocate).
// GCC 12 flags free() of memory from a replaced operator new as a mismatch (it is not: both
// replacements use malloc/free).
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void* operator new(std::size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace fastgen::kernels {
namespace {

using cpu::Isa;

// Random but valid weights: quant bytes uniformly random (every bit pattern of the quants),
// scale fields set to finite f16 values of realistic size.
std::vector<uint8_t> RandomRows(DType t, int64_t m, int64_t k, std::mt19937& rng) {
  const size_t row_bytes = *RowBytes(t, k);
  std::vector<uint8_t> buf(row_bytes * static_cast<size_t>(m));
  std::uniform_int_distribution<int> byte(0, 255);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> scale(0.002f, 0.02f);
  auto put16 = [&](size_t offset, uint16_t v) { std::memcpy(buf.data() + offset, &v, 2); };
  if (t == DType::kF32 || t == DType::kF16 || t == DType::kBF16) {
    for (int64_t i = 0; i < m * k; ++i) {
      const float v = normal(rng) * 0.1f;
      if (t == DType::kF32) std::memcpy(buf.data() + 4 * i, &v, 4);
      if (t == DType::kF16) put16(2 * static_cast<size_t>(i), F32ToF16(v));
      if (t == DType::kBF16) put16(2 * static_cast<size_t>(i), F32ToBF16(v));
    }
    return buf;
  }
  for (auto& b : buf) b = static_cast<uint8_t>(byte(rng));
  const size_t bb = static_cast<size_t>(Info(t).block_bytes);
  for (size_t off = 0; off < buf.size(); off += bb) {
    switch (t) {
      case DType::kQ8_0:
      case DType::kQ4_0: put16(off, F32ToF16(scale(rng))); break;
      case DType::kQ4_K:
        put16(off + offsetof(block_q4_K, d), F32ToF16(scale(rng) * 0.1f));
        put16(off + offsetof(block_q4_K, dmin), F32ToF16(scale(rng) * 0.1f));
        break;
      case DType::kQ5_K:
        put16(off + offsetof(block_q5_K, d), F32ToF16(scale(rng) * 0.1f));
        put16(off + offsetof(block_q5_K, dmin), F32ToF16(scale(rng) * 0.1f));
        break;
      case DType::kQ6_K: put16(off + offsetof(block_q6_K, d), F32ToF16(scale(rng) * 0.01f)); break;
      case DType::kQ2_K:
        put16(off + offsetof(block_q2_K, d), F32ToF16(scale(rng)));
        put16(off + offsetof(block_q2_K, dmin), F32ToF16(scale(rng)));
        break;
      case DType::kQ3_K: put16(off + offsetof(block_q3_K, d), F32ToF16(scale(rng))); break;
      default: break;
    }
  }
  return buf;
}

// A [m, k] weight tensor of type t over `rows` (RandomRows' layout).
TensorView ViewOf(DType t, const std::vector<uint8_t>& rows, int64_t m, int64_t k) {
  TensorView w;
  w.dtype = t;
  w.shape = {m, k};
  w.data = rows.data();
  w.nbytes = rows.size();
  return w;
}

struct Case {
  Isa isa;
  DType dtype;
};

std::string CaseName(const testing::TestParamInfo<Case>& info) {
  return std::string(cpu::IsaName(info.param.isa)) + "_" + std::string(Name(info.param.dtype));
}

class MatMulTest : public testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    saved_ = cpu::ActiveIsa();
    if (!cpu::IsaSupported(GetParam().isa)) {
      GTEST_SKIP() << "this CPU lacks " << cpu::IsaName(GetParam().isa)
                   << " (the kernels for it are not run)";
    }
    ASSERT_TRUE(cpu::ForceIsa(GetParam().isa));
  }
  void TearDown() override { cpu::ForceIsa(saved_); }
  Isa saved_ = Isa::kReference;
};

bool IsFloatType(DType t) { return t == DType::kF32 || t == DType::kF16 || t == DType::kBF16; }

std::vector<int64_t> KSizes(DType t) {
  const int64_t block = Info(t).block_elems;
  if (block == 256) return {256, 512, 768};
  if (block == 32) return {32, 64, 256 * 3};
  // 1100: the float decode path splits 33 tokens into passes over 2 row blocks of m = 130, and
  // 70 tokens take the GEMM (which narrower rows reach only beyond 70 tokens).
  return {1, 17, 32, 64, 100, 768, 1100};
}

TEST_P(MatMulTest, MatchesReference) {
  const DType t = GetParam().dtype;
  const bool quantized_x = !IsFloatType(t) && GetParam().isa != Isa::kReference;
  std::mt19937 rng(1234);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  ThreadPool pool(3);
  double err2 = 0.0, ref2 = 0.0;  // for the relative RMS error over all outputs
  const std::vector<int> offsets =
      IsFloatType(t) ? std::vector<int>{0, 1, 2, 3} : std::vector<int>{0, 2};
  for (int64_t k : KSizes(t)) {
    for (int64_t m : {1, 3, 17, 64, 130}) {
      for (int64_t n : {1, 2, 3, 5, 8, 11, 16, 33, 70}) {
        const int offset = offsets[static_cast<size_t>(m + n) % offsets.size()];
        const std::vector<uint8_t> rows = RandomRows(t, m, k, rng);
        std::vector<uint8_t> storage(rows.size() + 8);  // rows placed `offset` bytes past 8-alignment
        uint8_t* base = storage.data() + ((8 - reinterpret_cast<uintptr_t>(storage.data()) % 8) % 8);
        base = storage.data() + (base - storage.data()) % 8 + offset;
        std::memcpy(base, rows.data(), rows.size());
        TensorView w;
        w.name = "w";
        w.dtype = t;
        w.shape = {m, k};
        w.data = base;
        w.nbytes = rows.size();

        std::vector<float> x(static_cast<size_t>(n * k));  // [n, k]
        for (auto& v : x) v = normal(rng);
        const int64_t ldy = m + 3;
        std::vector<float> y(static_cast<size_t>(n * ldy), -7.0f), ref(y);  // [n, ldy]
        MatMul(w, x.data(), n, y.data(), ldy, pool);
        reference::MatMulRows(w, x.data(), n, ref.data(), ldy, 0, m);
        {  // Streamed weights (TensorView::stream) change only prefetch hints: the same bits.
          TensorView streamed = w;
          streamed.stream = true;
          std::vector<float> ys(y.size(), -7.0f);
          MatMul(streamed, x.data(), n, ys.data(), ldy, pool);
          ASSERT_EQ(0, std::memcmp(ys.data(), y.data(), y.size() * sizeof(float)))
              << "streamed weights, k=" << k << " m=" << m << " n=" << n;
        }

        std::vector<float> wf(static_cast<size_t>(k));  // [k] one dequantized row
        for (int64_t r = 0; r < m; ++r) {
          reference::DequantizeRow(t, w.row(r), wf.data(), k);
          for (int64_t tok = 0; tok < n; ++tok) {
            const float* xt = x.data() + tok * k;
            double abs_dot = 0.0, quant_bound = 0.0;
            for (int64_t b = 0; b < k; b += 32) {
              double amax = 0.0, wsum = 0.0;
              for (int64_t i = b; i < std::min(k, b + 32); ++i) {
                abs_dot += std::fabs(static_cast<double>(wf[i]) * xt[i]);
                amax = std::max(amax, std::fabs(static_cast<double>(xt[i])));
                wsum += std::fabs(static_cast<double>(wf[i]));
              }
              quant_bound += wsum * amax / 127.0 / 2.0;
            }
            const double tol = 1e-5 * abs_dot + 1e-6 + (quantized_x ? 1.001 * quant_bound : 0.0);
            const float got = y[static_cast<size_t>(tok * ldy + r)];
            const float want = ref[static_cast<size_t>(tok * ldy + r)];
            ASSERT_NEAR(got, want, tol) << "k=" << k << " m=" << m << " n=" << n << " row=" << r
                                        << " token=" << tok << " offset=" << offset;
            err2 += (static_cast<double>(got) - want) * (static_cast<double>(got) - want);
            ref2 += static_cast<double>(want) * want;
          }
        }
        // Columns past m (up to ldy) are not written.
        for (int64_t tok = 0; tok < n; ++tok)
          for (int64_t c = m; c < ldy; ++c) ASSERT_EQ(y[static_cast<size_t>(tok * ldy + c)], -7.0f);
      }
    }
  }
  const double rel = std::sqrt(err2 / ref2);
  std::printf("[ %s %s ] relative RMS error vs reference: %.3g\n",
              std::string(cpu::IsaName(GetParam().isa)).c_str(), std::string(Name(t)).c_str(), rel);
  RecordProperty("relative_rms_error", std::to_string(rel));
  // Activation quantization to int8 per 32 costs about 0.5% relative RMS on Gaussian data.
  EXPECT_LT(rel, quantized_x ? 1e-2 : 1e-6);
}

std::vector<Case> AllCases() {
  std::vector<Case> out;
  for (Isa isa : {Isa::kReference, Isa::kAvx2, Isa::kAvx512})
    for (DType t : {DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_0, DType::kQ4_0,
                    DType::kQ4_K, DType::kQ6_K, DType::kQ2_K, DType::kQ3_K, DType::kQ5_K})
      out.push_back({isa, t});
  return out;
}

INSTANTIATE_TEST_SUITE_P(AllIsasAndTypes, MatMulTest, testing::ValuesIn(AllCases()), CaseName);

const cpu::IsaKernels& KernelsOf(Isa isa) {
  return isa == Isa::kAvx512 ? cpu::Avx512Kernels() : cpu::Avx2Kernels();
}

// After a first call has grown the thread-local scratch, decode-sized and prefill-sized calls
// allocate nothing.
TEST_P(MatMulTest, DoesNotAllocateAfterWarmUp) {
  const DType t = GetParam().dtype;
  if (GetParam().isa == Isa::kReference || !KernelsOf(GetParam().isa).supports(t)) {
    GTEST_SKIP() << "the reference path allocates a row buffer per call";
  }
  std::mt19937 rng(5);
  const int64_t m = 96, k = 1024;  // at 64 tokens every dtype takes the GEMM path
  const std::vector<uint8_t> rows = RandomRows(t, m, k, rng);
  const TensorView w = ViewOf(t, rows, m, k);
  std::vector<float> x(static_cast<size_t>(64 * k), 0.5f), y(static_cast<size_t>(64 * m));
  ThreadPool pool(2);
  for (int64_t n : {1, 64}) MatMul(w, x.data(), n, y.data(), pool);  // warm-up
  const long before = g_allocations.load();
  for (int i = 0; i < 10; ++i)
    for (int64_t n : {1, 3, 64}) MatMul(w, x.data(), n, y.data(), pool);
  EXPECT_EQ(g_allocations.load() - before, 0);
}

// A group of products of one x equals the products taken one by one, bit for bit (each output
// row is computed the same way, whichever thread or region takes it), also when the group mixes
// dtypes and so runs one by one.
TEST_P(MatMulTest, GroupEqualsSeparateProducts) {
  const DType t = GetParam().dtype;
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const int64_t k = 256;
  const std::vector<uint8_t> a = RandomRows(t, 40, k, rng), b = RandomRows(t, 5, k, rng),
                             c = RandomRows(t, 17, k, rng), f = RandomRows(DType::kF32, 9, k, rng);
  auto view = [k](DType dtype, const std::vector<uint8_t>& rows, int64_t m) { return ViewOf(dtype, rows, m, k); };
  const TensorView wa = view(t, a, 40), wb = view(t, b, 5), wc = view(t, c, 17),
                   wf = view(DType::kF32, f, 9);
  ThreadPool pool(3);
  for (int64_t n : {1, 5, 300}) {
    std::vector<float> x(static_cast<size_t>(n * k));
    for (auto& v : x) v = normal(rng);
    for (bool mixed : {false, true}) {
      const TensorView& w3 = mixed ? wf : wc;
      const int64_t ld[3] = {40, 7, w3.rows() + 2};  // ldy > m leaves columns untouched
      std::vector<float> ga(static_cast<size_t>(n * ld[0]), -7.0f), gb(static_cast<size_t>(n * ld[1]), -7.0f),
          gc(static_cast<size_t>(n * ld[2]), -7.0f);
      std::vector<float> sa(ga), sb(gb), sc(gc);
      const MatMulOutput outs[3] = {{&wa, ga.data(), ld[0]}, {&wb, gb.data(), ld[1]}, {&w3, gc.data(), ld[2]}};
      MatMulGroup(outs, 3, x.data(), n, pool);
      MatMul(wa, x.data(), n, sa.data(), ld[0], pool);
      MatMul(wb, x.data(), n, sb.data(), ld[1], pool);
      MatMul(w3, x.data(), n, sc.data(), ld[2], pool);
      EXPECT_EQ(ga, sa) << "n=" << n << " mixed=" << mixed;
      EXPECT_EQ(gb, sb) << "n=" << n << " mixed=" << mixed;
      EXPECT_EQ(gc, sc) << "n=" << n << " mixed=" << mixed;
    }
  }
}

// Batch invariance of the decode path: a token's outputs are the same bits whether it is
// multiplied alone or among other tokens (up to the GEMM threshold), whatever the thread count.
// Speculative decoding relies on it for exactness: the verifier's pass over a drafted chain then
// computes exactly what plain decoding computes one token at a time.
TEST_P(MatMulTest, DecodeIsBatchInvariant) {
  const DType t = GetParam().dtype;
  std::mt19937 rng(77);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (int64_t k : KSizes(t)) {
    const int64_t m = 37;  // not a multiple of any tile's row count
    const std::vector<uint8_t> rows = RandomRows(t, m, k, rng);
    const TensorView w = ViewOf(t, rows, m, k);
    const int64_t max_n = 24;
    std::vector<float> x(static_cast<size_t>(max_n * k));
    for (auto& v : x) v = normal(rng);
    for (int threads : {1, 3}) {
      ThreadPool pool(threads);
      std::vector<float> alone(static_cast<size_t>(max_n * m));  // [max_n, m], each token alone
      for (int64_t tok = 0; tok < max_n; ++tok)
        MatMul(w, x.data() + tok * k, 1, alone.data() + tok * m, pool);
      for (int64_t n = 2; n <= max_n; ++n) {
        if (GetParam().isa != Isa::kReference && KernelsOf(GetParam().isa).use_gemm(t, n, k)) break;
        for (int64_t first : {int64_t{0}, max_n - n}) {
          std::vector<float> y(static_cast<size_t>(n * m));
          MatMul(w, x.data() + first * k, n, y.data(), pool);
          ASSERT_EQ(0, std::memcmp(y.data(), alone.data() + first * m, y.size() * sizeof(float)))
              << "k=" << k << " n=" << n << " tokens from " << first << " threads=" << threads;
        }
      }
    }
  }
}

TEST(Isa, NamesAndForcing) {
  EXPECT_EQ(cpu::IsaFromName("AVX512"), Isa::kAvx512);
  EXPECT_EQ(cpu::IsaFromName("avx2"), Isa::kAvx2);
  EXPECT_EQ(cpu::IsaFromName("reference"), Isa::kReference);
  EXPECT_FALSE(cpu::IsaFromName("sse9").has_value());
  const std::vector<Isa> supported = cpu::SupportedIsas();
  ASSERT_FALSE(supported.empty());
  EXPECT_EQ(supported.front(), Isa::kReference);
  const Isa saved = cpu::ActiveIsa();
  for (Isa isa : {Isa::kReference, Isa::kAvx2, Isa::kAvx512}) {
    EXPECT_EQ(cpu::ForceIsa(isa), cpu::IsaSupported(isa));
    if (cpu::IsaSupported(isa)) {
      EXPECT_EQ(cpu::ActiveIsa(), isa);
    }
  }
  cpu::ForceIsa(saved);
}

// Weights interleaved 16 rows at a time (kernels/cpu/repack.h): the decode and GEMM paths read
// that copy and must agree with the reference, stay batch-invariant, and write only their rows
// (m not a multiple of 16, row ranges not on a group, products grouped side by side).
class InterleavedTest : public testing::TestWithParam<DType> {
 protected:
  void SetUp() override {
    saved_ = cpu::ActiveIsa();
    if (!cpu::IsaSupported(Isa::kAvx512)) GTEST_SKIP() << "this CPU lacks AVX-512 (the interleaved kernels are not run)";
    ASSERT_TRUE(cpu::ForceIsa(Isa::kAvx512));
  }
  void TearDown() override { cpu::ForceIsa(saved_); }
  Isa saved_ = Isa::kReference;
};

struct Packed {
  std::vector<uint8_t> rows;
  AlignedBytes packed;
  TensorView w;
};

Packed MakePacked(DType t, int64_t m, int64_t k, std::mt19937& rng) {
  Packed p;
  p.rows = RandomRows(t, m, k, rng);
  p.w = ViewOf(t, p.rows, m, k);
  const size_t group = cpu::RepackedGroupBytes(t, k);
  p.packed = AllocateAligned(group * static_cast<size_t>((m + 15) / 16));
  cpu::Repack(t, p.rows.data(), m, k, p.w.row_bytes(), p.packed.get());
  p.w.packed = p.packed.get();
  p.w.packed_group_bytes = group;
  return p;
}

TEST_P(InterleavedTest, MatchesTheRowMajorKernels) {
  const DType t = GetParam();
  ASSERT_TRUE(cpu::RepackSupported(t));
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  ThreadPool pool(3);
  for (int64_t k : {32, 64, 96, 768}) {
    for (int64_t m : {1, 15, 16, 17, 37, 130}) {
      Packed p = MakePacked(t, m, k, rng);
      TensorView rowmajor = p.w;
      rowmajor.packed = nullptr;
      for (int64_t n : {1, 2, 3, 4, 5, 9, 16, 33, 70}) {
        std::vector<float> x(static_cast<size_t>(n * k));
        for (auto& v : x) v = normal(rng);
        const int64_t ldy = m + 3;
        for (auto path : {kernels::MatMulPath::kDecode, kernels::MatMulPath::kGemm}) {
          std::vector<float> y(static_cast<size_t>(n * ldy), -7.0f), plain(y);
          MatMul(p.w, x.data(), n, y.data(), ldy, pool, path);
          MatMul(rowmajor, x.data(), n, plain.data(), ldy, pool, path);
          for (int64_t tok = 0; tok < n; ++tok) {
            for (int64_t r = 0; r < m; ++r) {
              const size_t i = static_cast<size_t>(tok * ldy + r);
              // Both quantize x per 32 the same way and sum exact int32 block products: they
              // differ only in the float summation order (the row-major kernels are checked
              // against the reference, activation rounding included, by MatchesReference).
              ASSERT_NEAR(y[i], plain[i], 1e-4f * (1.0f + std::fabs(plain[i])))
                  << "k=" << k << " m=" << m << " n=" << n << " row=" << r << " token=" << tok;
            }
            for (int64_t c = m; c < ldy; ++c) ASSERT_EQ(y[static_cast<size_t>(tok * ldy + c)], -7.0f) << "wrote past m";
          }
          if (path == kernels::MatMulPath::kGemm) {
            // The GEMM reads the same values from either layout: the same bits.
            ASSERT_EQ(0, std::memcmp(y.data(), plain.data(), y.size() * sizeof(float))) << "k=" << k << " m=" << m << " n=" << n;
          }
        }
      }
    }
  }
}

TEST_P(InterleavedTest, DecodeIsBatchInvariantAtAnySize) {
  const DType t = GetParam();
  std::mt19937 rng(8);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const int64_t k = 2048, m = 77, max_n = 40;
  Packed p = MakePacked(t, m, k, rng);
  std::vector<float> x(static_cast<size_t>(max_n * k));
  for (auto& v : x) v = normal(rng);
  for (int threads : {1, 3}) {
    ThreadPool pool(threads);
    std::vector<float> alone(static_cast<size_t>(max_n * m));
    for (int64_t tok = 0; tok < max_n; ++tok)
      MatMul(p.w, x.data() + tok * k, 1, alone.data() + tok * m, m, pool, kernels::MatMulPath::kDecode);
    for (int64_t n : {2, 3, 4, 5, 8, 16, 17, 40}) {
      std::vector<float> y(static_cast<size_t>(n * m));
      MatMul(p.w, x.data() + (max_n - n) * k, n, y.data(), m, pool, kernels::MatMulPath::kDecode);
      ASSERT_EQ(0, std::memcmp(y.data(), alone.data() + (max_n - n) * m, y.size() * sizeof(float)))
          << "n=" << n << " threads=" << threads;
    }
  }
  // A grouped call splits rows at product boundaries that are not on a group of 16.
  Packed q = MakePacked(t, 23, k, rng);
  ThreadPool pool(2);
  std::vector<float> ga(static_cast<size_t>(3 * m)), gb(static_cast<size_t>(3 * 23)), sa(ga), sb(gb);
  const MatMulOutput outs[2] = {{&p.w, ga.data(), m}, {&q.w, gb.data(), 23}};
  MatMulGroup(outs, 2, x.data(), 3, pool, kernels::MatMulPath::kDecode);
  MatMul(p.w, x.data(), 3, sa.data(), m, pool, kernels::MatMulPath::kDecode);
  MatMul(q.w, x.data(), 3, sb.data(), 23, pool, kernels::MatMulPath::kDecode);
  EXPECT_EQ(ga, sa);
  EXPECT_EQ(gb, sb);
}

INSTANTIATE_TEST_SUITE_P(Types, InterleavedTest, testing::Values(DType::kQ8_0, DType::kQ4_0),
                         [](const testing::TestParamInfo<DType>& info) { return std::string(Name(info.param)); });

// The GEMM on AMX tiles computes the VNNI GEMM's products in the VNNI GEMM's order: the same
// bits, for every type it takes, from row-major or interleaved weights.
TEST(AmxGemm, SameBitsAsTheVnniGemm) {
  if (!cpu::AmxAvailable()) GTEST_SKIP() << "this CPU (or its OS) offers no AMX tiles";
  const Isa saved = cpu::ActiveIsa();
  ASSERT_TRUE(cpu::ForceIsa(Isa::kAvx512));
  std::mt19937 rng(19);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  ThreadPool pool(2);
  for (DType t : {DType::kQ8_0, DType::kQ4_0, DType::kQ4_K, DType::kQ5_K}) {
    for (int64_t k : {256, 768}) {
      for (int64_t m : {1, 17, 64, 130}) {
        const std::vector<uint8_t> rows = RandomRows(t, m, k, rng);
        TensorView w = ViewOf(t, rows, m, k);
        AlignedBytes packed;
        for (bool interleaved : {false, true}) {
          if (interleaved) {
            if (!cpu::RepackSupported(t)) continue;
            const size_t group = cpu::RepackedGroupBytes(t, k);
            packed = AllocateAligned(group * static_cast<size_t>((m + 15) / 16));
            cpu::Repack(t, rows.data(), m, k, w.row_bytes(), packed.get());
            w.packed = packed.get();
            w.packed_group_bytes = group;
          }
          for (int64_t n : {1, 5, 16, 33, 70}) {
            std::vector<float> x(static_cast<size_t>(n * k));
            for (auto& v : x) v = normal(rng);
            std::vector<float> vnni(static_cast<size_t>(n * m)), amx(vnni);
            cpu::SetAmxEnabled(false);
            MatMul(w, x.data(), n, vnni.data(), m, pool, kernels::MatMulPath::kGemm);
            cpu::SetAmxEnabled(true);
            MatMul(w, x.data(), n, amx.data(), m, pool, kernels::MatMulPath::kGemm);
            ASSERT_EQ(0, std::memcmp(vnni.data(), amx.data(), vnni.size() * sizeof(float)))
                << Name(t) << " k=" << k << " m=" << m << " n=" << n << " interleaved=" << interleaved;
          }
        }
      }
    }
  }
  cpu::ForceIsa(saved);
}

// Decode of several tokens on interleaved Q8_0 / Q4_0 weights takes the tile unit (the server's
// batched steps): the VNNI decode kernel's bits for any count of tokens, rows and blocks (an odd
// count of blocks ends the two tile sets' pipeline early).
TEST(AmxDecode, SameBitsAsTheVnniDecode) {
  if (!cpu::AmxAvailable()) GTEST_SKIP() << "this CPU (or its OS) offers no AMX tiles";
  const Isa saved = cpu::ActiveIsa();
  ASSERT_TRUE(cpu::ForceIsa(Isa::kAvx512));
  std::mt19937 rng(23);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  ThreadPool pool(2);
  for (DType t : {DType::kQ8_0, DType::kQ4_0}) {
    for (int64_t k : {96, 2048}) {
      for (int64_t m : {16, 77, 300}) {
        Packed p = MakePacked(t, m, k, rng);
        for (int64_t n : {4, 5, 15, 16, 17, 33, 64}) {
          std::vector<float> x(static_cast<size_t>(n * k));
          for (auto& v : x) v = normal(rng);
          const int64_t ldy = m + 5;
          std::vector<float> vnni(static_cast<size_t>(n * ldy), -3.0f), amx(vnni);
          cpu::SetAmxEnabled(false);
          MatMul(p.w, x.data(), n, vnni.data(), ldy, pool, kernels::MatMulPath::kDecode);
          cpu::SetAmxEnabled(true);
          MatMul(p.w, x.data(), n, amx.data(), ldy, pool, kernels::MatMulPath::kDecode);
          ASSERT_EQ(0, std::memcmp(vnni.data(), amx.data(), vnni.size() * sizeof(float)))
              << Name(t) << " k=" << k << " m=" << m << " n=" << n;
        }
      }
    }
  }
  cpu::ForceIsa(saved);
}

}  // namespace
}  // namespace fastgen::kernels
