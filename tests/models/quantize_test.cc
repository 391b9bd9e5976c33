// Round trips through `QuantizeCheckpoint`: convert, load the GGUF back, compare logits with the
// transformers references. Converting safetensors to F32 GGUF must be exact (names, Q/K
// permutation, Conv1D transpose, Gemma's norm offset and metadata all right); lower-precision
// types must stay within the error their rounding implies.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "models/model.h"
#include "models/quantize.h"
#include "test_util.h"

namespace fastgen {
namespace {

using testing::ReadF32;
using testing::ReadJson;
using testing::RelError;
using testing::SharedPath;

ThreadPool& Pool() {
  static ThreadPool pool(2);
  return pool;
}

QuantizeOptions Opts(const std::string& in, const std::string& out, DType type) {
  QuantizeOptions o;
  o.input = in;
  o.output = out;
  o.type = type;
  return o;
}

std::string OutPath(const std::string& name) {
  return testing::ScratchDir("fastgen_quantize") + "/" + name;
}

// Largest per-position relative error of the model at `path` against a reference.
double MaxLogitsError(const std::string& path, const std::string& ref_json, const std::string& ref_logits) {
  auto model = LoadModel(path, &Pool());
  EXPECT_TRUE(model.ok()) << model.status().message();
  if (!model.ok()) return 1e9;
  const auto ids = ReadJson(ref_json)["input_ids"].get<std::vector<int32_t>>();
  const auto want = ReadF32(ref_logits);
  auto kv = (*model)->NewKvCache(static_cast<int64_t>(ids.size()));
  std::vector<float> got;
  EXPECT_TRUE((*model)->Forward(ids, *kv, LogitsMode::kAll, &got).ok());
  const int64_t vocab = (*model)->config().vocab_size;
  double worst = 0;
  for (size_t t = 0; t < ids.size(); ++t)
    worst = std::max(worst, RelError(got.data() + t * vocab, want.data() + t * vocab, vocab));
  return worst;
}

class ConvertFixture : public ::testing::TestWithParam<std::string> {};

TEST_P(ConvertFixture, SafetensorsToF32GgufIsExact) {
  const std::string dir = SharedPath("fixtures/" + GetParam());
  const std::string out = OutPath(GetParam() + ".f32.gguf");
  QuantizeOptions o = Opts(dir, out, DType::kF32);
  auto r = QuantizeCheckpoint(o);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_LT(MaxLogitsError(out, dir + "/ref.json", dir + "/ref_logits.f32"), 1e-4);
}

INSTANTIATE_TEST_SUITE_P(AllArchitectures, ConvertFixture,
                         ::testing::Values("llama", "llama_tied_rope500k", "llama_rope_llama3", "mistral",
                                           "qwen2", "qwen3", "gemma", "phi3", "gpt2"));

struct TypeCase {
  DType type;
  // Relative logits error allowed on the fixture. Its weights are random and its logits small,
  // so rounding shows far more than on a trained model: the bounds are the measured errors
  // (F16 8.8e-4, BF16 6.9e-3, Q8_0 3.2e-2, Q4_0 0.34 with the AVX-512 kernels) with headroom.
  double tolerance;
};

class QuantizeTypes : public ::testing::TestWithParam<TypeCase> {};

TEST_P(QuantizeTypes, LlamaFixtureWithinRoundingError) {
  const TypeCase& c = GetParam();
  const std::string dir = SharedPath("fixtures/llama");
  const std::string out = OutPath(std::string("llama.") + std::string(Name(c.type)) + ".gguf");
  auto r = QuantizeCheckpoint(Opts(dir, out, c.type));
  ASSERT_TRUE(r.ok()) << r.status().message();
  const double err = MaxLogitsError(out, dir + "/ref.json", dir + "/ref_logits.f32");
  std::cout << "[ info ] " << Name(c.type) << ": max relative logits error " << err << "\n";
  EXPECT_LT(err, c.tolerance);
}

INSTANTIATE_TEST_SUITE_P(
    Types, QuantizeTypes,
    ::testing::Values(TypeCase{DType::kF16, 2e-3}, TypeCase{DType::kBF16, 2e-2}, TypeCase{DType::kQ8_0, 6e-2},
                      TypeCase{DType::kQ4_0, 0.6}),
    [](const auto& info) { return std::string(Name(info.param.type)); });

// K-quants need rows that are multiples of 256: the k-quant fixture model has them.
TEST(QuantizeKQuants, FromGgufKeepsTheModel) {
  const std::string src = SharedPath("gguf/kquant/kq.q6_k.gguf");
  // Measured: Q6_K 0.026, Q5_K 0.21, Q4_K 0.43, Q3_K 0.87, Q2_K 1.3 (requantizing
  // already-rounded random weights; the output head is Q6_K in every one of these files).
  for (const auto& [type, tol] : {std::pair{DType::kQ6_K, 0.05}, std::pair{DType::kQ5_K, 0.35}, std::pair{DType::kQ4_K, 0.7},
                                  std::pair{DType::kQ3_K, 1.3}, std::pair{DType::kQ2_K, 2.0}}) {
    const std::string out = OutPath(std::string("kq.") + std::string(Name(type)) + ".gguf");
    auto r = QuantizeCheckpoint(Opts(src, out, type));
    ASSERT_TRUE(r.ok()) << r.status().message();
    EXPECT_EQ(r->fallback_tensors, 0u);
    const double err = MaxLogitsError(out, SharedPath("gguf/kquant/kq.q6_k.ref.json"),
                                      SharedPath("gguf/kquant/kq.q6_k.ref_logits.f32"));
    std::cout << "[ info ] requantized " << Name(type) << ": max relative logits error " << err << "\n";
    EXPECT_LT(err, tol);
  }
}

TEST(QuantizeTrained, FgTargetBf16GgufKeepsGreedyOutput) {
  // fg-target converted from safetensors to BF16 holds the same bits: the 48-token references
  // must survive exactly (this exercises the tokenizer metadata and Q/K permutation too).
  const std::string out = OutPath("fg-target.bf16.gguf");
  auto r = QuantizeCheckpoint(Opts(SharedPath("models/fg-target"), out, DType::kBF16));
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_TRUE(r->notes.empty()) << r->notes.front();
  auto model = LoadModel(out, &Pool());
  ASSERT_TRUE(model.ok()) << model.status().message();
  const auto ref = ReadJson(SharedPath("models/fg-target/ref.json"));
  const auto& first = ref["refs"][0];
  auto prompt = first["prompt_ids"].get<std::vector<int32_t>>();
  auto kv = (*model)->NewKvCache(128);
  std::vector<float> logits;
  std::vector<int32_t> got;
  ASSERT_TRUE((*model)->Forward(prompt, *kv, LogitsMode::kLast, &logits).ok());
  for (int i = 0; i < 48; ++i) {
    const int32_t next = testing::Argmax(logits.data(), (*model)->config().vocab_size);
    got.push_back(next);
    ASSERT_TRUE((*model)->Forward(std::span<const int32_t>(&next, 1), *kv, LogitsMode::kLast, &logits).ok());
  }
  EXPECT_EQ(got, first["greedy_48"].get<std::vector<int32_t>>());
}

TEST(QuantizeErrors, RejectsBadTypeAndInput) {
  auto bad_type = QuantizeCheckpoint(Opts(SharedPath("fixtures/llama"), OutPath("x.gguf"), DType::kI32));
  EXPECT_FALSE(bad_type.ok());
  auto missing = QuantizeCheckpoint(Opts("/nonexistent", OutPath("y.gguf"), DType::kQ8_0));
  EXPECT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("/nonexistent"), std::string::npos);
}

}  // namespace
}  // namespace fastgen
