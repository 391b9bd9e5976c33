// GPTQ and AWQ checkpoints, written here by a reference packer that follows the published
// layouts (AutoGPTQ's v1 format: codes packed along the input, zeros stored minus one, g_idx;
// AutoAWQ's GEMM format: codes and zeros packed along the output in the order 0 2 4 6 1 3 5 7)
// from the Llama fixture's weights. Loading one must give exactly the dequantized weights, and
// the logits of the float model built from those weights (within 1e-4 on the reference kernels,
// within the Q4_0 kernels' rounding on the default ones).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <random>

#include <nlohmann/json.hpp>

#include "cli/cli_test_util.h"
#include "core/dtype.h"
#include "io/checkpoint.h"
#include "kernels/reference/dequant.h"
#include "test_util.h"

namespace fastgen {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::SharedPath;

struct StTensor {
  std::string name, dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};

void WriteSafetensors(const std::string& path, const std::vector<StTensor>& tensors) {
  json h = json::object();
  uint64_t off = 0;
  for (const auto& t : tensors) {
    h[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {off, off + t.bytes.size()}}};
    off += t.bytes.size();
  }
  std::string head = h.dump();
  while (head.size() % 8) head += ' ';
  std::ofstream f(path, std::ios::binary);
  const uint64_t n = head.size();
  f.write(reinterpret_cast<const char*>(&n), 8);
  f << head;
  for (const auto& t : tensors) f.write(reinterpret_cast<const char*>(t.bytes.data()), static_cast<std::streamsize>(t.bytes.size()));
}

template <typename T>
std::vector<uint8_t> Bytes(const std::vector<T>& v) {
  std::vector<uint8_t> b(v.size() * sizeof(T));
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

struct Format {
  std::string method;  // "gptq" or "awq"
  int bits = 4;
  int group = 32;      // -1: per channel
  bool desc_act = false;
};

// Asymmetric round-to-nearest per (group, output) and the published packing. Returns the
// tensors of one layer `p` and writes the values they stand for into `deq` [out, in].
std::vector<StTensor> PackLayer(const Format& f, const std::string& p, const std::vector<float>& w, int64_t out, int64_t in,
                                std::mt19937& rng, std::vector<float>* deq) {
  const int64_t gs = f.group > 0 ? f.group : in, groups = in / gs;
  const int qmax = (1 << f.bits) - 1, per_word = 32 / f.bits;
  std::vector<int32_t> g_idx(static_cast<size_t>(in));
  std::vector<int32_t> perm(static_cast<size_t>(in));
  std::iota(perm.begin(), perm.end(), 0);
  if (f.desc_act) std::shuffle(perm.begin(), perm.end(), rng);  // act-order: groups scattered
  for (int64_t k = 0; k < in; ++k) g_idx[perm[k]] = static_cast<int32_t>(k / gs);
  std::vector<uint16_t> scales(static_cast<size_t>(groups * out));
  std::vector<int32_t> zeros(static_cast<size_t>(groups * out));
  std::vector<int32_t> q(static_cast<size_t>(out * in));
  deq->assign(static_cast<size_t>(out * in), 0.0f);
  for (int64_t o = 0; o < out; ++o)
    for (int64_t g = 0; g < groups; ++g) {
      float lo = 0, hi = 0;
      for (int64_t i = 0; i < in; ++i)
        if (g_idx[i] == g) {
          lo = std::min(lo, w[o * in + i]);
          hi = std::max(hi, w[o * in + i]);
        }
      const uint16_t sh = F32ToF16(std::max(hi - lo, 1e-6f) / static_cast<float>(qmax));
      const float s = F16ToF32(sh);
      const int z = std::clamp(static_cast<int>(std::lround(-lo / s)), 0, qmax);
      scales[g * out + o] = sh;
      zeros[g * out + o] = z;
      for (int64_t i = 0; i < in; ++i)
        if (g_idx[i] == g) {
          const int v = std::clamp(static_cast<int>(std::lround(w[o * in + i] / s)) + z, 0, qmax);
          q[o * in + i] = v;
          (*deq)[o * in + i] = s * static_cast<float>(v - z);
        }
    }
  std::vector<StTensor> t;
  if (f.method == "gptq") {
    std::vector<int32_t> qw(static_cast<size_t>(in / per_word * out), 0), qz(static_cast<size_t>(groups * out / per_word), 0);
    for (int64_t r = 0; r < in / per_word; ++r)
      for (int64_t o = 0; o < out; ++o) {
        uint32_t word = 0;
        for (int k = 0; k < per_word; ++k) word |= static_cast<uint32_t>(q[o * in + r * per_word + k]) << (f.bits * k);
        qw[r * out + o] = static_cast<int32_t>(word);
      }
    for (int64_t g = 0; g < groups; ++g)
      for (int64_t c = 0; c < out / per_word; ++c) {
        uint32_t word = 0;
        for (int k = 0; k < per_word; ++k)  // v1 format: zero − 1, masked to the field
          word |= (static_cast<uint32_t>(zeros[g * out + c * per_word + k] - 1) & static_cast<uint32_t>(qmax)) << (f.bits * k);
        qz[g * (out / per_word) + c] = static_cast<int32_t>(word);
      }
    t.push_back({p + ".qweight", "I32", {in / per_word, out}, Bytes(qw)});
    t.push_back({p + ".qzeros", "I32", {groups, out / per_word}, Bytes(qz)});
    t.push_back({p + ".g_idx", "I32", {in}, Bytes(g_idx)});
  } else {
    constexpr int kOrder[8] = {0, 2, 4, 6, 1, 3, 5, 7};
    std::vector<int32_t> qw(static_cast<size_t>(in * out / 8)), qz(static_cast<size_t>(groups * out / 8));
    for (int64_t i = 0; i < in; ++i)
      for (int64_t c = 0; c < out / 8; ++c) {
        uint32_t word = 0;
        for (int k = 0; k < 8; ++k) word |= static_cast<uint32_t>(q[(8 * c + kOrder[k]) * in + i]) << (4 * k);
        qw[i * (out / 8) + c] = static_cast<int32_t>(word);
      }
    for (int64_t g = 0; g < groups; ++g)
      for (int64_t c = 0; c < out / 8; ++c) {
        uint32_t word = 0;
        for (int k = 0; k < 8; ++k) word |= static_cast<uint32_t>(zeros[g * out + 8 * c + kOrder[k]]) << (4 * k);
        qz[g * (out / 8) + c] = static_cast<int32_t>(word);
      }
    t.push_back({p + ".qweight", "I32", {in, out / 8}, Bytes(qw)});
    t.push_back({p + ".qzeros", "I32", {groups, out / 8}, Bytes(qz)});
  }
  t.push_back({p + ".scales", "F16", {groups, out}, Bytes(scales)});
  return t;
}

struct Written {
  std::string quantized_dir, float_dir;
  std::map<std::string, std::vector<float>> deq;  // "P.weight" -> the values it stands for
};

// The Llama fixture with its seven projections per layer quantized in format f, and beside it
// the float checkpoint of the dequantized values.
Written WriteCheckpoints(const Format& f, const std::string& tag) {
  Written out;
  const std::string root = testing::ScratchDir("fastgen_gptq") + "/" + tag;
  out.quantized_dir = root + "/quantized";
  out.float_dir = root + "/float";
  fs::create_directories(out.quantized_dir);
  fs::create_directories(out.float_dir);
  auto ckpt = OpenCheckpoint(SharedPath("fixtures/llama"));
  EXPECT_TRUE(ckpt.ok());
  std::mt19937 rng(7);
  std::vector<StTensor> qt, ft;
  for (const auto& [name, t] : (*ckpt)->weights.tensors()) {
    std::vector<float> v(static_cast<size_t>(t.numel()));
    std::memcpy(v.data(), t.data, v.size() * 4);  // the fixture is float32
    const bool proj = name.find("_proj.weight") != std::string::npos;
    if (!proj) {
      qt.push_back({name, "F32", t.shape, Bytes(v)});
      ft.push_back({name, "F32", t.shape, Bytes(v)});
      continue;
    }
    const std::string p = name.substr(0, name.size() - 7);
    std::vector<float> deq;
    for (auto& x : PackLayer(f, p, v, t.shape[0], t.shape[1], rng, &deq)) qt.push_back(std::move(x));
    ft.push_back({name, "F32", t.shape, Bytes(deq)});
    out.deq[name] = deq;
  }
  WriteSafetensors(out.quantized_dir + "/model.safetensors", qt);
  WriteSafetensors(out.float_dir + "/model.safetensors", ft);
  json config = testing::ReadJson(SharedPath("fixtures/llama/config.json"));
  std::ofstream(out.float_dir + "/config.json") << config.dump(1);
  if (f.method == "gptq")
    config["quantization_config"] = {{"quant_method", "gptq"}, {"bits", f.bits}, {"group_size", f.group},
                                     {"desc_act", f.desc_act}, {"sym", false}, {"checkpoint_format", "gptq"}};
  else
    config["quantization_config"] = {{"quant_method", "awq"}, {"bits", f.bits}, {"group_size", f.group},
                                     {"zero_point", true}, {"version", "gemm"}};
  std::ofstream(out.quantized_dir + "/config.json") << config.dump(1);
  return out;
}

std::vector<float> DumpLogits(const std::string& dir, const std::string& ids, bool reference_kernels) {
  const std::string dump = dir + (reference_kernels ? "/ref.f32" : "/simd.f32");
  const auto r = testing::RunFastgen("run -m " + dir + " --prompt-ids " + ids +
                                     " -n 1 --temp 0 --print-ids --dump-logits " + dump);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return testing::ReadF32(dump);
}

double MaxRelError(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    num = std::max(num, std::fabs(double(a[i]) - b[i]));
    den = std::max(den, std::fabs(double(b[i])));
  }
  return num / std::max(den, 1e-30);
}

class GptqCheckpoint : public ::testing::TestWithParam<Format> {};

TEST_P(GptqCheckpoint, LoadsTheExactWeightsAndTheirLogits) {
  const Format& f = GetParam();
  const std::string tag = f.method + std::to_string(f.bits) + "g" + std::to_string(f.group) + (f.desc_act ? "act" : "");
  const Written w = WriteCheckpoints(f, tag);
  // The converted matrices hold exactly the dequantized values.
  auto q = OpenCheckpoint(w.quantized_dir);
  ASSERT_TRUE(q.ok()) << q.status().message();
  for (const auto& [name, want] : w.deq) {
    const TensorView* t = (*q)->weights.Find(name);
    ASSERT_NE(t, nullptr) << name;
    EXPECT_EQ((*q)->weights.Find(name.substr(0, name.size() - 7) + ".qweight"), nullptr);
    std::vector<float> row(static_cast<size_t>(t->cols()));
    for (int64_t r = 0; r < t->rows(); ++r) {
      kernels::reference::DequantizeMatrixRow(*t, r, row.data());
      for (int64_t i = 0; i < t->cols(); ++i) ASSERT_EQ(row[i], want[r * t->cols() + i]) << name << " [" << r << ", " << i << "]";
    }
    // 4-bit groups of whole 32-column blocks stay compact; the rest is float32.
    const bool compact = f.bits == 4 && (f.group == -1 || f.group % 32 == 0);
    EXPECT_EQ(t->dtype, compact ? DType::kQ4_0 : DType::kF32) << name;
  }
  const auto ids = testing::ReadJson(SharedPath("fixtures/llama/ref.json"))["input_ids"].get<std::vector<int32_t>>();
  const std::string id_list = testing::JoinIds(ids);
  // Reference kernels: the same computation up to summation order.
  ::setenv("FASTGEN_ISA", "reference", 1);
  const auto ref_q = DumpLogits(w.quantized_dir, id_list, true);
  const auto ref_f = DumpLogits(w.float_dir, id_list, true);
  ::unsetenv("FASTGEN_ISA");
  EXPECT_LT(MaxRelError(ref_q, ref_f), 1e-4);
  // Default kernels: Q4_0's 8-bit activations round (the bound of the Q4_0 golden tests).
  const auto simd_q = DumpLogits(w.quantized_dir, id_list, false);
  const auto simd_f = DumpLogits(w.float_dir, id_list, false);
  EXPECT_LT(MaxRelError(simd_q, simd_f), 3e-2);
  std::printf("[ info ] %s: max relative logits error %.3g (reference kernels), %.3g (default)\n", tag.c_str(),
              MaxRelError(ref_q, ref_f), MaxRelError(simd_q, simd_f));
}

INSTANTIATE_TEST_SUITE_P(
    Formats, GptqCheckpoint,
    ::testing::Values(Format{"gptq", 4, 32, false}, Format{"gptq", 4, 64, true}, Format{"gptq", 4, -1, false},
                      Format{"gptq", 4, 16, false}, Format{"gptq", 8, 32, false}, Format{"awq", 4, 32, false},
                      Format{"awq", 4, 64, false}),
    [](const auto& info) {
      const Format& f = info.param;
      return f.method + std::to_string(f.bits) + "bit_g" + (f.group < 0 ? std::string("channel") : std::to_string(f.group)) +
             (f.desc_act ? "_actorder" : "");
    });

TEST(GptqCheckpointErrors, RefusesWhatItCannotLoad) {
  const Written w = WriteCheckpoints({"gptq", 4, 32, false}, "errors");
  json config = testing::ReadJson(w.quantized_dir + "/config.json");
  struct Case {
    json qc;
    std::string says;
  };
  const std::vector<Case> cases = {
      {{{"quant_method", "bitsandbytes"}}, "quant_method 'bitsandbytes'"},
      {{{"quant_method", "gptq"}, {"bits", 3}, {"group_size", 32}}, "bits 3"},
      {{{"quant_method", "gptq"}, {"group_size", 32}}, "no integer bits"},
      {{{"quant_method", "awq"}, {"bits", 4}, {"group_size", 32}, {"version", "gemv"}}, "version 'gemv'"},
      {{{"quant_method", "gptq"}, {"bits", 4}, {"group_size", 32}, {"checkpoint_format", "marlin"}}, "'marlin'"},
  };
  for (const Case& c : cases) {
    config["quantization_config"] = c.qc;
    std::ofstream(w.quantized_dir + "/config.json") << config.dump(1);
    const auto r = testing::RunFastgen("run -m " + w.quantized_dir + " --prompt-ids 1,2 -n 1");
    EXPECT_EQ(r.exit_code, 2) << c.qc.dump() << "\n" << r.err;
    EXPECT_NE(r.err.find(c.says), std::string::npos) << c.qc.dump() << "\n" << r.err;
  }
}

}  // namespace
}  // namespace fastgen
