// End-to-end tests of the fastgen program as a user runs it: outputs, files it writes, and
// errors on bad input (clear message, non-zero exit, no crash).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "cli/cli_test_util.h"
#include "test_util.h"

namespace fastgen {
namespace {

namespace fs = std::filesystem;
using testing::ReadF32;
using testing::ReadJson;
using testing::RelError;
using testing::SharedPath;

using Result = testing::CliResult;
using testing::Slurp;

std::string TempDir() {
  return testing::ScratchDir("fastgen_cli");
}

Result Fastgen(const std::string& args) { return testing::RunFastgen(args); }
std::string Join(const std::vector<int32_t>& ids) { return testing::JoinIds(ids); }

TEST(Cli, GreedyIdsMatchReference) {
  for (const char* fixture : {"llama", "gpt2", "qwen3"}) {
    const std::string dir = SharedPath(std::string("fixtures/") + fixture);
    const auto ref = ReadJson(dir + "/ref.json");
    const auto ids = ref["input_ids"].get<std::vector<int32_t>>();
    Result r = Fastgen("run -m " + dir + " --prompt-ids " + Join(ids) + " --print-ids --temp 0 -n 16 -t 2");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, Join(ref["greedy_16"].get<std::vector<int32_t>>()) + "\n") << fixture;
    EXPECT_NE(r.err.find("tokens/s"), std::string::npos) << "speed report missing: " << r.err;
  }
}

TEST(Cli, DumpLogitsMatchesReference) {
  const std::string dir = SharedPath("fixtures/phi3");
  const auto ref = ReadJson(dir + "/ref.json");
  const std::string dump = TempDir() + "/phi3.f32";
  Result r = Fastgen("run -m " + dir + " --prompt-ids " + Join(ref["input_ids"].get<std::vector<int32_t>>()) +
                     " --print-ids --temp 0 -n 1 --dump-logits " + dump);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto got = ReadF32(dump), want = ReadF32(dir + "/ref_logits.f32");
  ASSERT_EQ(got.size(), want.size());
  const int64_t vocab = 256;
  for (size_t t = 0; t * vocab < want.size(); ++t)
    EXPECT_LT(RelError(got.data() + t * vocab, want.data() + t * vocab, vocab), 1e-4) << t;
}

TEST(Cli, TextPromptWithBundledModel) {
  Result r = Fastgen("run -p 'def fibonacci(n):' -n 24 --temp 0 -t 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(r.out.empty());
  EXPECT_NE(r.err.find("decode:"), std::string::npos);
}

TEST(Cli, TextPromptMatchesReferenceContinuation) {
  const auto ref = ReadJson(SharedPath("models/fg-target/ref.json"));
  const auto& first = ref["refs"][0];
  // The reference prompts carry no BOS, so --no-special.
  Result r = Fastgen("run -m " + SharedPath("models/fg-target") + " -p '" +
                     first["prompt"].get<std::string>() + "' --no-special -n 48 --temp 0 --print-ids");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, Join(first["greedy_48"].get<std::vector<int32_t>>()) + "\n");
}

TEST(Cli, TokenizeMatchesReference) {
  const auto ref = ReadJson(SharedPath("models/fg-target/ref.json"));
  for (const auto& item : ref["refs"]) {
    const std::string prompt = item["prompt"].get<std::string>();
    const std::string file = TempDir() + "/prompt.txt";
    std::ofstream(file, std::ios::binary) << prompt;
    Result r = Fastgen("tokenize -m " + SharedPath("models/fg-target") + " --file " + file);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto ids = nlohmann::json::parse(r.out).get<std::vector<int32_t>>();
    EXPECT_EQ(ids, item["prompt_ids"].get<std::vector<int32_t>>()) << prompt;
    Result d = Fastgen("detokenize -m " + SharedPath("models/fg-target") + " " + Join(ids));
    ASSERT_EQ(d.exit_code, 0) << d.err;
    EXPECT_EQ(d.out, prompt + "\n");
  }
}

TEST(Cli, ChatRendersTemplateAndReusesCache) {
  // fg-target has no chat template of its own; Llama 3's renders the conversation.
  const auto cfg = ReadJson(SharedPath("tokenizers/llama3.tokenizer_config.json"));
  const std::string tmpl = TempDir() + "/llama3.jinja";
  std::ofstream(tmpl) << cfg["chat_template"].get<std::string>();
  const std::string input = TempDir() + "/chat_input.txt";
  std::ofstream(input) << "def add(a, b):\nand now subtract\n";
  const std::string out = TempDir() + "/chat_out";
  const std::string cmd = std::string(FASTGEN_BINARY) + " chat --chat-template " + tmpl +
                          " -n 12 --temp 0 -t 2 <" + input + " >" + out + " 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << Slurp(out);
  // One reply line per user line.
  const std::string text = Slurp(out);
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n') >= 2, true) << text;
  // Without a template the error says how to give one.
  Result r = Fastgen("chat -m " + SharedPath("models/fg-target"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("--chat-template"), std::string::npos) << r.err;
}

// A long conversation in a bounded cache (StreamingLLM's use): five turns under a 48-token
// window run past the budget, each turn appended to what the evicting cache holds.
TEST(Cli, ChatUnderKvEvictionRunsPastTheBudget) {
  const auto cfg = ReadJson(SharedPath("tokenizers/llama3.tokenizer_config.json"));
  const std::string tmpl = TempDir() + "/llama3_evict.jinja";
  std::ofstream(tmpl) << cfg["chat_template"].get<std::string>();
  const std::string input = TempDir() + "/chat_evict_input.txt";
  std::ofstream(input) << "def add(a, b):\nand now subtract\nthen multiply\nthen divide\nand print them\n";
  Result r = testing::RunFastgen("chat -m " + SharedPath("models/fg-target") + " --chat-template " + tmpl +
                                     " -n 16 --temp 0 -t 2 --kv-evict window --kv-budget 48",
                                 input);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_GE(std::count(r.out.begin(), r.out.end(), '\n'), 5) << r.out;
  EXPECT_EQ(r.err.find("error"), std::string::npos) << r.err;
}

TEST(Cli, InfoDescribesCheckpoints) {
  Result r = Fastgen("info -m " + SharedPath("gguf/kquant/kq.q4_k_m.gguf"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("architecture:    llama"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("blk.0.attn_q.weight"), std::string::npos);
  EXPECT_NE(r.out.find("Q4_K"), std::string::npos);
  Result s = Fastgen("info -m " + SharedPath("fixtures/gpt2"));
  ASSERT_EQ(s.exit_code, 0) << s.err;
  EXPECT_NE(s.out.find("architecture:    gpt2"), std::string::npos);
  EXPECT_NE(s.out.find("transformer.h.0.attn.c_attn.weight"), std::string::npos);
}

TEST(Cli, HelpDocumentsFlags) {
  Result r = Fastgen("run --help");
  EXPECT_EQ(r.exit_code, 0);
  for (const char* flag : {"--model", "--prompt", "--prompt-ids", "--print-ids", "--dump-logits",
                           "--threads", "--n-predict", "--temp", "--top-k", "--top-p", "--min-p",
                           "--repeat-penalty", "--presence-penalty", "--frequency-penalty",
                           "--logit-bias", "--seed", "--override-kv"})
    EXPECT_NE(r.out.find(flag), std::string::npos) << flag;
  Result top = Fastgen("--help");
  EXPECT_EQ(top.exit_code, 0);
  for (const char* cmd : {"run", "chat", "bench", "quantize", "info", "tokenize", "detokenize"})
    EXPECT_NE(top.out.find(cmd), std::string::npos) << cmd;
}

// --- bad input: a clear message naming the culprit and a non-zero exit, never a crash ---

void ExpectCleanError(const Result& r, const std::string& needle) {
  EXPECT_NE(r.exit_code, 0);
  EXPECT_LT(r.exit_code, 128) << "killed by a signal: " << r.err;
  EXPECT_NE(r.err.find("fastgen: error:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << "message should name '" << needle << "': " << r.err;
}

TEST(CliErrors, MissingModel) {
  ExpectCleanError(Fastgen("run -m /nonexistent/model --prompt-ids 1 --print-ids"), "/nonexistent/model");
}

TEST(CliErrors, TruncatedSafetensors) {
  const std::string dir = TempDir() + "/truncated";
  fs::create_directories(dir);
  fs::copy_file(SharedPath("fixtures/llama/config.json"), dir + "/config.json", fs::copy_options::overwrite_existing);
  const std::string blob = Slurp(SharedPath("fixtures/llama/model.safetensors"));
  std::ofstream(dir + "/model.safetensors", std::ios::binary) << blob.substr(0, blob.size() / 2);
  ExpectCleanError(Fastgen("run -m " + dir + " --prompt-ids 1 --print-ids"), "model.safetensors");
}

TEST(CliErrors, TruncatedGguf) {
  const std::string blob = Slurp(SharedPath("gguf/llama.f32.gguf"));
  const std::string path = TempDir() + "/truncated.gguf";
  std::ofstream(path, std::ios::binary) << blob.substr(0, blob.size() - 1000);
  ExpectCleanError(Fastgen("run -m " + path + " --prompt-ids 1 --print-ids"), "truncated.gguf");
}

TEST(CliErrors, UnknownArchitecture) {
  const std::string dir = TempDir() + "/unknown_arch";
  fs::create_directories(dir);
  std::string config = Slurp(SharedPath("fixtures/llama/config.json"));
  config.replace(config.find("LlamaForCausalLM"), 16, "FooForCausalLM");
  std::ofstream(dir + "/config.json") << config;
  fs::copy_file(SharedPath("fixtures/llama/model.safetensors"), dir + "/model.safetensors", fs::copy_options::overwrite_existing);
  ExpectCleanError(Fastgen("run -m " + dir + " --prompt-ids 1 --print-ids"), "FooForCausalLM");
}

TEST(CliErrors, IdOutsideVocabulary) {
  Result r = Fastgen("run -m " + SharedPath("fixtures/llama") + " --prompt-ids 1,2,256 --print-ids");
  ExpectCleanError(r, "256");
  EXPECT_NE(r.err.find("vocabulary"), std::string::npos);
}

TEST(CliErrors, PromptLongerThanContext) {
  Result r = Fastgen("run -m " + SharedPath("fixtures/llama") + " --prompt-ids 1,2,3,4,5,6 -c 4 --print-ids");
  ExpectCleanError(r, "context");
}

TEST(CliErrors, BadSamplerParameter) {
  ExpectCleanError(Fastgen("run -m " + SharedPath("fixtures/llama") + " --prompt-ids 1 --print-ids --top-p 1.5"), "--top-p");
}

// KV eviction in `run`: a bounded cache generates past its budget; it does not mix with --spec.
TEST(Cli, KvEvictionGeneratesPastTheBudget) {
  const std::string base = "run -m " + SharedPath("gguf/fg-target.q8_0.gguf") +
                           " --prompt-ids 1,2,3,4,5,6,7,8 -n 48 --temp 0 --ignore-eos --print-ids";
  for (const char* policy : {"window", "h2o", "keyformer"}) {
    Result r = Fastgen(base + " --kv-evict " + policy + " --kv-budget 16");
    ASSERT_EQ(r.exit_code, 0) << policy << ": " << r.err;
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), ','), 47) << policy << ": " << r.out;  // 48 ids
  }
  ExpectCleanError(Fastgen(base + " --spec lookup --kv-evict window --kv-budget 16"), "--spec");
  Result tidal = Fastgen(base + " --sparse-attn tidal --sparse-topk 8");
  ASSERT_EQ(tidal.exit_code, 0) << tidal.err;
  EXPECT_EQ(std::count(tidal.out.begin(), tidal.out.end(), ','), 47) << tidal.out;
  ExpectCleanError(Fastgen(base + " --spec lookup --sparse-attn tidal --sparse-topk 8"), "--spec");
  ExpectCleanError(Fastgen("bench -m " + SharedPath("gguf/fg-target.q8_0.gguf") +
                           " -p 0 -n 4 -r 1 --batch 2 --sparse-attn tidal --sparse-topk 8"),
                   "--batch");
  ExpectCleanError(Fastgen(base + " --kv-evict h2o --kv-budget 16 --kv-sinks 10 --kv-recent 10"), "--kv-budget 16");
}

TEST(CliErrors, BadKvType) {
  ExpectCleanError(Fastgen("run -m " + SharedPath("fixtures/llama") + " --prompt-ids 1 --print-ids --kv-type q4_k"),
                   "--kv-type");
  // The fixtures' head size (16) is not a multiple of q8_0's or q4_0's 32-element blocks.
  for (const char* type : {"q8_0", "q4_0"})
    ExpectCleanError(Fastgen("run -m " + SharedPath("fixtures/llama") + " --prompt-ids 1 --print-ids --kv-type " + type),
                     "head size 16");
}

// A compact cache: the bundled model keeps the reference continuation with f16 keys and values.
TEST(Cli, KvTypeF16KeepsReferenceContinuation) {
  const auto ref = ReadJson(SharedPath("models/fg-target/ref.json"))["refs"][0];
  const auto ids = ref["prompt_ids"].get<std::vector<int32_t>>();
  Result r = Fastgen("run --kv-type f16 --prompt-ids " + Join(ids) + " --print-ids --temp 0 -n 48 -t 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, Join(ref["greedy_48"].get<std::vector<int32_t>>()) + "\n");
}

// Streaming the weights past the caches changes speed only: both settings give the reference.
TEST(Cli, StreamWeightsEitherWayKeepsReferenceContinuation) {
  const auto ref = ReadJson(SharedPath("models/fg-target/ref.json"))["refs"][1];
  const auto ids = ref["prompt_ids"].get<std::vector<int32_t>>();
  for (const char* mode : {"on", "off"}) {
    Result r = Fastgen(std::string("run --stream-weights ") + mode + " --prompt-ids " + Join(ids) +
                       " --print-ids --temp 0 -n 48 -t 2");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, Join(ref["greedy_48"].get<std::vector<int32_t>>()) + "\n") << mode;
  }
  ExpectCleanError(Fastgen("run --stream-weights sometimes --prompt-ids 1 --print-ids"), "--stream-weights");
}

TEST(CliErrors, NotAModel) {
  const std::string path = TempDir() + "/not_a_model.bin";
  std::ofstream(path) << "hello";
  ExpectCleanError(Fastgen("run -m " + path + " --prompt-ids 1 --print-ids"), "not_a_model.bin");
}

}  // namespace
}  // namespace fastgen
