// Calibrated quantization end to end: GPTQ and importance-weighted rounding through
// QuantizeCheckpoint, judged by the quantized model's logits against the float model's on
// held-out tokens; the Q4_K_M mix; and what calibration refuses.
#include <gtest/gtest.h>

#include <cstdio>
#include <random>

#include "core/mapped_file.h"
#include "models/model.h"
#include "models/quantize.h"
#include "test_util.h"

namespace fastgen {
namespace {

using testing::SharedPath;

ThreadPool& Pool() {
  static ThreadPool pool(2);
  return pool;
}

std::string OutPath(const std::string& name) { return testing::ScratchDir("fastgen_calibration") + "/" + name; }

std::vector<int32_t> RandomTokens(int64_t n, int32_t vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (auto& v : t) v = static_cast<int32_t>(rng() % static_cast<uint32_t>(vocab));
  return t;
}

std::vector<float> AllLogits(const std::string& path, const std::vector<int32_t>& ids) {
  auto model = LoadModel(path, &Pool());
  EXPECT_TRUE(model.ok()) << model.status().message();
  if (!model.ok()) return {};
  auto kv = (*model)->NewKvCache(static_cast<int64_t>(ids.size()));
  std::vector<float> out;
  EXPECT_TRUE((*model)->Forward(ids, *kv, LogitsMode::kAll, &out).ok());
  return out;
}

double MeanSquaredDiff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double s = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) s += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
  return s / static_cast<double>(std::max<size_t>(1, a.size()));
}

QuantizeOptions Options(const std::string& in, const std::string& out, DType type, QuantMethod method,
                        std::vector<int32_t> calib) {
  QuantizeOptions o;
  o.input = in;
  o.output = out;
  o.type = type;
  o.method = method;
  o.calibration.tokens = std::move(calib);
  o.calibration.ctx = 64;
  o.pool = &Pool();
  return o;
}

// On the Llama fixture (from Hugging Face safetensors: GPTQ's rows must also go through the
// Q/K head permutation), the held-out logits of GPTQ's Q4_0 are closer to the float model's
// than rounding's, and importance-weighted rounding is no worse than plain rounding.
TEST(Calibration, GptqAndImatrixBeatRoundingOnHeldOutTokens) {
  const std::string dir = SharedPath("fixtures/llama");
  auto model = LoadModel(dir, &Pool());
  ASSERT_TRUE(model.ok());
  const int32_t vocab = static_cast<int32_t>((*model)->config().vocab_size);
  const auto calib = RandomTokens(64 * 24, vocab, 1);
  const auto held_out = RandomTokens(96, vocab, 2);
  const auto want = AllLogits(dir, held_out);

  double err[3];
  const QuantMethod methods[3] = {QuantMethod::kRtn, QuantMethod::kImatrix, QuantMethod::kGptq};
  for (int i = 0; i < 3; ++i) {
    const std::string out = OutPath("llama.q4_0." + std::to_string(i) + ".gguf");
    auto r = QuantizeCheckpoint(Options(dir, out, DType::kQ4_0, methods[i], calib));
    ASSERT_TRUE(r.ok()) << r.status().message();
    if (methods[i] != QuantMethod::kRtn) {
      EXPECT_EQ(r->calibrated, 2u * 7 + 1) << "every matrix and the head";
    }
    err[i] = MeanSquaredDiff(AllLogits(out, held_out), want);
  }
  std::printf("[ info ] held-out logits MSE: rtn %.4g, imatrix %.4g, gptq %.4g\n", err[0], err[1], err[2]);
  EXPECT_LT(err[2], 0.7 * err[0]);
  EXPECT_LT(err[1], 1.02 * err[0]);
}

// Q4_K_M: attn_v and ffn_down of the layers llama.cpp's use_more_bits picks (of 2 layers:
// layer 1) and the output head in Q6_K, the rest Q4_K; GPTQ writes the same types.
TEST(Calibration, Q4_K_MMixAndGptqIntoKQuants) {
  const std::string src = SharedPath("gguf/kquant/kq.q6_k.gguf");
  auto base = LoadModel(src, &Pool());
  ASSERT_TRUE(base.ok());
  const int32_t vocab = static_cast<int32_t>((*base)->config().vocab_size);
  const auto held_out = RandomTokens(64, vocab, 3);
  const auto want = AllLogits(src, held_out);
  double err[2];
  for (int g = 0; g < 2; ++g) {
    const std::string out = OutPath("kq.q4_k_m." + std::to_string(g) + ".gguf");
    QuantizeOptions o = Options(src, out, DType::kQ4_K, g ? QuantMethod::kGptq : QuantMethod::kRtn,
                                RandomTokens(64 * 48, vocab, 4));
    o.mix_m = true;
    auto r = QuantizeCheckpoint(o);
    ASSERT_TRUE(r.ok()) << r.status().message();
    auto m = LoadModel(out, &Pool());
    ASSERT_TRUE(m.ok()) << m.status().message();
    const auto& w = (*m)->checkpoint().weights;
    auto type = [&](const std::string& name) {
      const TensorView* t = w.Find(name);
      return t ? std::string(Name(t->dtype)) : std::string("missing");
    };
    EXPECT_EQ(type("blk.0.attn_v.weight"), "Q4_K");
    EXPECT_EQ(type("blk.1.attn_v.weight"), "Q6_K");
    EXPECT_EQ(type("blk.0.ffn_down.weight"), "Q4_K");
    EXPECT_EQ(type("blk.1.ffn_down.weight"), "Q6_K");
    EXPECT_EQ(type("blk.0.attn_q.weight"), "Q4_K");
    EXPECT_EQ(type(w.Find("output.weight") ? "output.weight" : "token_embd.weight"), "Q6_K");
    const auto ft = (*m)->checkpoint().gguf->GetInt("general.file_type");
    ASSERT_TRUE(ft.ok() && ft->has_value());
    EXPECT_EQ(**ft, 15u);  // LLAMA_FTYPE_MOSTLY_Q4_K_M
    err[g] = MeanSquaredDiff(AllLogits(out, held_out), want);
  }
  std::printf("[ info ] Q4_K_M held-out logits MSE: rtn %.4g, gptq %.4g\n", err[0], err[1]);
  EXPECT_LT(err[1], err[0]);
}

TEST(Calibration, RefusesWhatItCannotCalibrate) {
  // Too little text for one calibration sequence.
  auto r = QuantizeCheckpoint(
      Options(SharedPath("fixtures/llama"), OutPath("short.gguf"), DType::kQ4_0, QuantMethod::kGptq, RandomTokens(10, 256, 1)));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("at least one sequence of 64"), std::string::npos) << r.status().message();
  // Fused projections (GPT-2's c_attn) are not calibrated: a clear error, not a wrong file.
  r = QuantizeCheckpoint(
      Options(SharedPath("fixtures/gpt2"), OutPath("gpt2.gguf"), DType::kQ8_0, QuantMethod::kGptq, RandomTokens(128, 256, 1)));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kUnsupported) << r.status().message();
  EXPECT_NE(r.status().message().find("--method rtn"), std::string::npos) << r.status().message();
}

// Calibration text is read from the start of a plain or gzip file.
TEST(Calibration, ReadsTextPrefixesPlainAndGzipped) {
  auto plain = ReadTextPrefix(SharedPath("corpus/valid.txt"), 1000, "calibration text");
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(*plain, testing::ReadFileText(SharedPath("corpus/valid.txt")).substr(0, 1000));
  auto gz = ReadTextPrefix(SharedPath("corpus/train.txt.gz"), 4096, "calibration text");
  ASSERT_TRUE(gz.ok()) << gz.status().message();
  std::FILE* p = ::popen(("gzip -dc '" + SharedPath("corpus/train.txt.gz") + "' | head -c 4096").c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string want(4096, '\0');
  want.resize(std::fread(want.data(), 1, want.size(), p));
  ::pclose(p);
  EXPECT_EQ(*gz, want);
  EXPECT_FALSE(ReadTextPrefix(SharedPath("corpus"), 10, "calibration text").ok());
  EXPECT_FALSE(ReadTextPrefix(SharedPath("corpus/none.txt"), 10, "calibration text").ok());
}

}  // namespace
}  // namespace fastgen
