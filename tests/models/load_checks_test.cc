// A checkpoint whose metadata and weights disagree must be refused with a message naming the
// key or tensor at fault, never run with a layer dropped or a vocabulary misread; overrides that
// change nothing are errors, and tensors fastgen does not use are warnings.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/diagnostics.h"
#include "io/gguf_edit.h"
#include "models/model.h"
#include "test_util.h"

namespace fastgen {
namespace {

using testing::CopyGguf;
using testing::GgufEdits;
using testing::IntValue;
using testing::SharedPath;

ThreadPool& Pool() {
  static ThreadPool pool(1);
  return pool;
}

std::string Scratch(const std::string& name) { return testing::ScratchDir("fastgen_load_checks") + "/" + name; }

const std::string kLlamaGguf = SharedPath("gguf/llama.f32.gguf");

// Loads `path`; expects failure with every fragment in the message.
void ExpectLoadFails(const std::string& path, std::vector<std::string> fragments, const ModelOptions& o = {}) {
  auto m = LoadModel(path, &Pool(), o);
  ASSERT_FALSE(m.ok()) << path << " loaded";
  for (const std::string& f : fragments) EXPECT_NE(m.status().message().find(f), std::string::npos) << m.status().message();
}

TEST(LoadChecks, GgufWithFewerLayersInMetadataThanWeightsIsRefused) {
  const std::string out = Scratch("one_layer.gguf");
  GgufEdits e;
  e.set_keys["llama.block_count"] = IntValue(1);
  ASSERT_TRUE(CopyGguf(kLlamaGguf, out, e).ok());
  ExpectLoadFails(out, {"blk.1.", "layer 1", "1 layers"});
}

TEST(LoadChecks, HfConfigWithFewerLayersThanWeightsIsRefused) {
  namespace fs = std::filesystem;
  const std::string dir = Scratch("one_layer_hf");
  fs::remove_all(dir);
  fs::create_directories(dir);
  fs::copy(SharedPath("fixtures/llama/model.safetensors"), dir + "/model.safetensors");
  std::ifstream in(SharedPath("fixtures/llama/config.json"));
  std::string config((std::istreambuf_iterator<char>(in)), {});
  const auto at = config.find("\"num_hidden_layers\": 2");
  ASSERT_NE(at, std::string::npos);
  config.replace(at, 22, "\"num_hidden_layers\": 1");
  std::ofstream(dir + "/config.json") << config;
  ExpectLoadFails(dir, {"model.layers.1.", "1 layers"});
}

TEST(LoadChecks, VocabSizeKeyDisagreeingWithTheEmbeddingIsRefused) {
  const std::string out = Scratch("vocab_key.gguf");
  GgufEdits e;
  e.set_keys["llama.vocab_size"] = IntValue(300);
  ASSERT_TRUE(CopyGguf(kLlamaGguf, out, e).ok());
  ExpectLoadFails(out, {"token_embd.weight", "256 rows", "vocab_size is 300"});
}

TEST(LoadChecks, ShrunkenEmbeddingIsNamedNotTheOutputMatrix) {
  const std::string out = Scratch("short_embd.gguf");
  GgufEdits e;
  e.edit_tensor = [](const std::string& name, testing::GgufTensorData& t) {
    if (name != "token_embd.weight") return;
    const size_t row = t.bytes.size() / static_cast<size_t>(t.shape[0]);
    t.shape[0] = 200;
    t.bytes.resize(row * 200);
  };
  ASSERT_TRUE(CopyGguf(kLlamaGguf, out, e).ok());
  auto m = LoadModel(out, &Pool());
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("token_embd.weight"), std::string::npos) << m.status().message();
  EXPECT_EQ(m.status().message().find("output.weight"), std::string::npos) << m.status().message();
}

TEST(LoadChecks, UnusedTensorIsAWarningNamingIt) {
  const std::string out = Scratch("extra_tensor.gguf");
  GgufEdits e;
  e.add_tensors["mystery.weight"] = {DType::kF32, {4}, std::vector<uint8_t>(16, 0)};
  ASSERT_TRUE(CopyGguf(kLlamaGguf, out, e).ok());
  CapturedWarnings warnings;
  auto m = LoadModel(out, &Pool());
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_TRUE(warnings.Contains("'mystery.weight'"));
}

TEST(LoadChecks, ValidModelsLoadWithoutWarnings) {
  for (const std::string& path : {kLlamaGguf, SharedPath("fixtures/llama"), SharedPath("fixtures/gpt2"),
                                  SharedPath("fixtures/phi3"), SharedPath("gguf/fg-target.q8_0.gguf")}) {
    CapturedWarnings warnings;
    auto m = LoadModel(path, &Pool());
    ASSERT_TRUE(m.ok()) << path << ": " << m.status().message();
    EXPECT_TRUE(warnings.messages().empty()) << path << ": " << warnings.messages().front();
  }
}

TEST(LoadChecks, OverrideOfAKeyNeverReadIsRefused) {
  ModelOptions o;
  o.checkpoint.gguf_overrides["llama.no_such_key"] = "1";
  ExpectLoadFails(kLlamaGguf, {"--override-kv llama.no_such_key", "change nothing", "llama.rope.freq_base"}, o);
  // A key read only under a condition that does not hold changes nothing either.
  ModelOptions factor;
  factor.checkpoint.gguf_overrides["llama.rope.scaling.factor"] = "2";
  ExpectLoadFails(kLlamaGguf, {"llama.rope.scaling.factor"}, factor);
}

TEST(LoadChecks, OverrideThatIsReadApplies) {
  ModelOptions o;
  o.checkpoint.gguf_overrides["llama.rope.freq_base"] = "12345";
  auto m = LoadModel(kLlamaGguf, &Pool(), o);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ((*m)->config().rope_theta, 12345.0);
}

TEST(LoadChecks, OverrideOnAHuggingFaceDirectoryIsRefused) {
  ModelOptions o;
  o.checkpoint.gguf_overrides["llama.rope.freq_base"] = "12345";
  ExpectLoadFails(SharedPath("fixtures/llama"), {"--override-kv", "Hugging Face directory"}, o);
}

}  // namespace
}  // namespace fastgen
