// The k-quant fixtures were made by llama-quantize from one random model. Each file holds the
// same weights in different types, so a tensor dequantized from any file must agree with the
// Q6_K file's version within that type's quantization noise. A wrong bit layout in any
// dequantizer makes the two uncorrelated (relative error near 1.4), which this catches.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "io/gguf.h"
#include "kernels/reference/dequant.h"

namespace fastgen {
namespace {

const std::string kDir = std::string(FASTGEN_SHARED_DIR) + "/gguf/kquant/";

struct Loaded {
  std::map<std::string, DType> dtypes;
  std::map<std::string, std::vector<float>> values;
};

Loaded LoadAll(const std::string& name) {
  Loaded out;
  auto f = GgufFile::Open(kDir + name + ".gguf");
  EXPECT_TRUE(f.ok()) << f.status().message();
  if (!f.ok()) return out;
  WeightMap w;
  EXPECT_TRUE(f->AddTensorsTo(&w).ok());
  for (const auto& [tname, t] : w.tensors()) {
    std::vector<float> v(static_cast<size_t>(t.numel()));
    for (int64_t r = 0; r < t.rows(); ++r)
      kernels::reference::DequantizeRow(t.dtype, t.row(r), v.data() + r * t.cols(), t.cols());
    out.dtypes[tname] = t.dtype;
    out.values[tname] = std::move(v);
  }
  return out;
}

double RelativeError(const std::vector<float>& a, const std::vector<float>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (double(a[i]) - ref[i]) * (double(a[i]) - ref[i]);
    den += double(ref[i]) * ref[i];
  }
  return std::sqrt(num / den);
}

TEST(KQuantFiles, DequantizedWeightsAreSaneAndAgreeAcrossFiles) {
  const Loaded ref = LoadAll("kq.q6_k");
  ASSERT_FALSE(ref.values.empty());
  // Generous ceilings on ‖x − x_q6‖ / ‖x_q6‖ per type; measured values are far below them
  // (Q2_K 0.30, Q3_K 0.15, Q4_K 0.074, Q5_K 0.040: half per extra bit, as expected), while a
  // layout error gives ~1.4.
  const std::map<DType, double> ceiling = {
      {DType::kF32, 1e-6},  {DType::kQ2_K, 0.4},  {DType::kQ3_K, 0.2},
      {DType::kQ4_K, 0.1},  {DType::kQ5_K, 0.055}, {DType::kQ6_K, 1e-6}};
  for (const char* name : {"kq.q2_k", "kq.q3_k_m", "kq.q4_k_m", "kq.q5_k_m", "kq.q6_k"}) {
    SCOPED_TRACE(name);
    const Loaded f = LoadAll(name);
    ASSERT_EQ(f.values.size(), ref.values.size());
    for (const auto& [tname, v] : f.values) {
      SCOPED_TRACE(tname);
      double sum2 = 0;
      float amax = 0;
      for (float x : v) {
        ASSERT_TRUE(std::isfinite(x));
        sum2 += double(x) * x;
        amax = std::max(amax, std::fabs(x));
      }
      const double rms = std::sqrt(sum2 / static_cast<double>(v.size()));
      EXPECT_GT(rms, 1e-3);
      EXPECT_LT(amax, 50.0f);
      const DType t = f.dtypes.at(tname);
      ASSERT_EQ(ref.dtypes.at(tname) == DType::kF32, t == DType::kF32);
      // The Q6_K reference carries its own noise (~0.01), hence the added margin.
      const double err = RelativeError(v, ref.values.at(tname));
      EXPECT_LT(err, ceiling.at(t) + 0.02) << Name(t);
      if (std::getenv("FASTGEN_PRINT_KQUANT_ERRORS") != nullptr)
        std::printf("%s %s %s %.4f\n", name, tname.c_str(), std::string(Name(t)).c_str(), err);
    }
  }
}

// llama-quantize (without an imatrix) uses ggml's reference Q4_K / Q6_K quantizers, the ones
// QuantizeRow follows. Re-quantizing a block dequantized from the file mostly gives back its
// exact bytes (measured: 99.9% of Q4_K blocks, ~81% of Q6_K blocks, whose 18-candidate scale
// search is less often a fixed point); a different rounding or packing would match ~0%.
TEST(KQuantFiles, RequantizingFileBlocksReproducesTheirBytes) {
  for (const char* name : {"kq.q4_k_m", "kq.q6_k"}) {
    auto f = GgufFile::Open(kDir + name + ".gguf");
    ASSERT_TRUE(f.ok()) << f.status().message();
    WeightMap w;
    ASSERT_TRUE(f->AddTensorsTo(&w).ok());
    std::map<DType, std::pair<int64_t, int64_t>> same_total;
    for (const auto& [tname, t] : w.tensors()) {
      if (t.dtype != DType::kQ4_K && t.dtype != DType::kQ6_K) continue;
      const int64_t block_bytes = Info(t.dtype).block_bytes;
      std::vector<float> x(256);
      std::vector<uint8_t> q(static_cast<size_t>(block_bytes));
      for (int64_t b = 0; b < t.numel() / 256; ++b) {
        const uint8_t* src = t.data + b * block_bytes;
        kernels::reference::DequantizeRow(t.dtype, src, x.data(), 256);
        ASSERT_TRUE(kernels::reference::QuantizeRow(t.dtype, x.data(), q.data(), 256));
        same_total[t.dtype].first += std::memcmp(q.data(), src, q.size()) == 0;
        same_total[t.dtype].second += 1;
      }
    }
    for (const auto& [dtype, st] : same_total) {
      const double frac = static_cast<double>(st.first) / static_cast<double>(st.second);
      EXPECT_GT(frac, dtype == DType::kQ4_K ? 0.99 : 0.7) << name << " " << Name(dtype);
    }
  }
}

}  // namespace
}  // namespace fastgen
