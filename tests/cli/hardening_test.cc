// What a hostile user found, one regression test each: inputs that crashed, hung or silently
// changed what fastgen did. The rules: a clear error naming the flag, file, key or tensor and
// the value, escaped for the terminal; exit code 1 for usage errors and 2 for bad input files;
// a warning on stderr whenever fastgen changes or ignores what was asked.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "cli/cli_test_util.h"
#include "io/gguf_edit.h"
#include "test_util.h"

namespace fastgen {
namespace {

namespace fs = std::filesystem;
using testing::CliResult;
using testing::RunFastgen;
using testing::SharedPath;

std::string Scratch(const std::string& name) { return testing::ScratchDir("fastgen_cli_hardening") + "/" + name; }

const std::string kFixture = SharedPath("fixtures/llama");  // 256-token context, no tokenizer

void ExpectError(const CliResult& r, int exit_code, const std::string& needle) {
  EXPECT_EQ(r.exit_code, exit_code) << r.err;
  EXPECT_NE(r.err.find("fastgen: error: "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << "message should contain '" << needle << "': " << r.err;
}

void ExpectWarning(const CliResult& r, const std::string& needle) {
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("fastgen: warning: "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << "warning should contain '" << needle << "': " << r.err;
}

// --- crashes ---

TEST(CliHardening, ChatTemplateRenderingToNothingIsAnError) {
  const std::string tmpl = Scratch("nothing.jinja");
  std::ofstream(tmpl) << "{% if false %}x{% endif %}";
  const std::string input = Scratch("hi.txt");
  std::ofstream(input) << "hi\n";
  ExpectError(RunFastgen("chat --chat-template " + tmpl + " -n 2", input), 2, "rendered the conversation to no tokens");
  ExpectError(RunFastgen("chat --chat-template " + testing::ScratchDir("fastgen_cli_hardening") + " -n 2", input), 2,
              "is a directory");
}

TEST(CliHardening, EmptyChatTemplateInAModelFileIsAnError) {
  const std::string gguf = Scratch("empty_template.gguf");
  testing::GgufEdits e;
  e.set_keys["tokenizer.chat_template"] = testing::StringValue("");
  ASSERT_TRUE(testing::CopyGguf(SharedPath("gguf/fg-draft.q8_0.gguf"), gguf, e).ok());
  const std::string input = Scratch("hi.txt");
  std::ofstream(input) << "hi\n";
  ExpectError(RunFastgen("chat -m " + gguf + " -n 2", input), 2, "the chat template is empty");
}

TEST(CliHardening, UnboundedInputsAreRefusedAtTheirLimit) {
  ExpectError(RunFastgen("run -f /dev/zero -n 2"), 2, "64 MiB limit for a prompt file");
  ExpectError(RunFastgen("chat --chat-template /dev/zero"), 2, "limit for a chat template");
  ExpectError(RunFastgen("tokenize --file /dev/zero"), 2, "limit for a prompt file");
}

// --- hangs ---

TEST(CliHardening, BenchChecksTheContext) {
  ExpectError(RunFastgen("bench -m " + kFixture + " -p 1048576 -n 0"), 1, "context is 256 tokens");
  ExpectError(RunFastgen("bench -m " + kFixture + " -p 0 -d 1048576 -n 4"), 1, "context is 256 tokens");
  ExpectError(RunFastgen("bench -m " + kFixture + " -p 300 -n 0 -r 1"), 1, "needs 300 positions");
  // Past the trained context only when asked, and with a warning.
  ExpectWarning(RunFastgen("bench -m " + kFixture + " -p 300 -n 0 -r 1 -c 300"), "past the model's trained context");
}

// --- silently wrong ---

TEST(CliHardening, LayerCountDisagreeingWithTheWeightsIsRefused) {
  const std::string dir = Scratch("one_layer");
  fs::create_directories(dir);
  fs::copy_file(kFixture + "/model.safetensors", dir + "/model.safetensors", fs::copy_options::overwrite_existing);
  std::string config = testing::Slurp(kFixture + "/config.json");
  config.replace(config.find("\"num_hidden_layers\": 2"), 22, "\"num_hidden_layers\": 1");
  std::ofstream(dir + "/config.json") << config;
  ExpectError(RunFastgen("run -m " + dir + " --prompt-ids 1 --print-ids -n 1"), 2, "model.layers.1.");
}

// A config.json that declares tensors the checkpoint lacks (q/k/v biases, Qwen3's q/k norms), or
// a feature fastgen does not run (feed-forward biases), is refused instead of run as another model.
TEST(CliHardening, ConfigDeclaringMissingTensorsIsRefused) {
  const std::string config = testing::Slurp(kFixture + "/config.json");
  auto with = [&](const std::string& name, const std::string& from, const std::string& to) {
    const std::string dir = Scratch(name);
    fs::create_directories(dir);
    fs::copy_file(kFixture + "/model.safetensors", dir + "/model.safetensors", fs::copy_options::overwrite_existing);
    std::string c = config;
    const size_t at = c.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    if (at != std::string::npos) c.replace(at, from.size(), to);
    std::ofstream(dir + "/config.json") << c;
    return dir;
  };
  const std::string run = " --prompt-ids 1 --print-ids -n 1";
  ExpectError(RunFastgen("run -m " + with("attention_bias", "\"attention_bias\": false", "\"attention_bias\": true") + run), 2,
              "model.layers.0.self_attn.q_proj.bias");
  ExpectError(RunFastgen("run -m " + with("mlp_bias", "\"mlp_bias\": false", "\"mlp_bias\": true") + run), 2, "mlp_bias");
  ExpectError(RunFastgen("run -m " + with("qwen3", "LlamaForCausalLM", "Qwen3ForCausalLM") + run), 2,
              "model.layers.0.self_attn.q_norm.weight");
  // Declared absent: runs.
  CliResult plain = RunFastgen("run -m " + with("no_bias", "\"attention_bias\": false", "\"attention_bias\": false") + run);
  EXPECT_EQ(plain.exit_code, 0) << plain.err;
}

TEST(CliHardening, DirectoryPromptFileAndEmptyModelPathAreErrors) {
  ExpectError(RunFastgen("run -f " + testing::ScratchDir("fastgen_cli_hardening") + " -n 2"), 2, "is a directory");
  ExpectError(RunFastgen("run -m '' -p hi -n 2"), 1, "--model: an empty value");
  const std::string empty = Scratch("empty.txt");
  std::ofstream(empty).flush();
  ExpectError(RunFastgen("run -f " + empty + " -n 2"), 1, "the prompt file is empty");
}

TEST(CliHardening, OverridesThatChangeNothingAreErrors) {
  ExpectError(RunFastgen("run -m " + SharedPath("gguf/llama.f32.gguf") +
                         " --override-kv llama.no_such_key=1 --prompt-ids 1 --print-ids -n 1"),
              1, "--override-kv llama.no_such_key");
  ExpectError(RunFastgen("run -m " + kFixture + " --override-kv llama.rope.freq_base=1 --prompt-ids 1 --print-ids -n 1"),
              1, "Hugging Face directory");
}

TEST(CliHardening, SpecialTokenOverridesOutsideTheVocabularyAreErrors) {
  // Dropping the id would silently turn off the stop at EOS (or BOS).
  const std::string gguf = SharedPath("gguf/llama.f32.gguf");
  ExpectError(RunFastgen("run -m " + gguf + " --override-kv tokenizer.ggml.eos_token_id=999 --prompt-ids 1 -n 1"), 1,
              "--override-kv tokenizer.ggml.eos_token_id = 999 is outside the vocabulary [0, 256)");
  ExpectError(RunFastgen("info -m " + gguf + " --override-kv tokenizer.ggml.bos_token_id=256"), 1,
              "tokenizer.ggml.bos_token_id = 256");
  // llama.cpp's "none" (-1) removes the token, as asked.
  CliResult none = RunFastgen("info -m " + gguf + " --override-kv tokenizer.ggml.eos_token_id=-1");
  EXPECT_EQ(none.exit_code, 0) << none.err;
}

TEST(CliHardening, SeedsOutsideUint64AreRefusedNotClamped) {
  for (const char* seed : {"-1", "18446744073709551616", "99999999999999999999999", "1e3", " 7"})
    ExpectError(RunFastgen("run -m " + kFixture + " --prompt-ids 1 --print-ids -n 1 --seed '" + seed + "'"), 1,
                "--seed");
  CliResult max = RunFastgen("run -m " + kFixture + " --prompt-ids 1 --print-ids -n 1 --seed 18446744073709551615");
  EXPECT_EQ(max.exit_code, 0) << max.err;
}

TEST(CliHardening, SpeculationFlagsWithoutSpecAreErrors) {
  // They would change nothing: the run would silently decode plainly.
  for (const std::string& flag : {"--draft-model " + SharedPath("models/fg-draft"), std::string("--lookup-ngram 5"),
                                 std::string("--bild"), std::string("--skip-layers 1")})
    ExpectError(RunFastgen("run -m " + SharedPath("models/fg-draft") + " -p hi -n 2 " + flag), 1, "requires --spec");
  ExpectError(RunFastgen("bench -m " + SharedPath("models/fg-draft") + " -p 8 -n 2 -r 1 --draft-max 3"), 1,
              "--draft-max requires --spec");
}

TEST(CliHardening, TokenizeTakesTextOrAFileNotBoth) {
  const std::string file = Scratch("tokenize.txt");
  std::ofstream(file) << "from the file";
  ExpectError(RunFastgen("tokenize -m " + SharedPath("models/fg-draft") + " --file " + file + " 'text too'"), 1,
              "excludes");
}

TEST(CliHardening, GenerationCutByTheContextIsAnnounced) {
  ExpectWarning(RunFastgen("run -m " + kFixture + " --prompt-ids 1 --print-ids -c 3 -n 50 --temp 0"),
                "-n 50: the context of 3 tokens leaves room for 3 new tokens");
  ExpectWarning(RunFastgen("run -m " + kFixture + " --prompt-ids 1 --print-ids -n 100000000 --temp 0"),
                "-n 100000000: the context of 256 tokens");
  // Within the context: no warning.
  CliResult quiet = RunFastgen("run -m " + kFixture + " --prompt-ids 1 --print-ids -c 3 -n 3 --temp 0");
  EXPECT_EQ(quiet.exit_code, 0) << quiet.err;
  EXPECT_EQ(quiet.err.find("warning"), std::string::npos) << quiet.err;
}

TEST(CliHardening, TokenIdsOutsideTheVocabularyAreRefusedUpFront) {
  for (const char* id : {"256", "9000", "98303", "98304", "2147483647"}) {
    ExpectError(RunFastgen("run -m " + kFixture + " --prompt-ids 1," + std::string(id) + " --print-ids -n 1"), 1,
                "--prompt-ids: token id " + std::string(id));
    ExpectError(RunFastgen("run -m " + kFixture + " --prompt-ids 1 --print-ids -n 1 --logit-bias " + id + "=1"), 1,
                "outside the vocabulary [0, 256)");
  }
  ExpectError(RunFastgen("detokenize 8192"), 1, "outside the vocabulary");
}

TEST(CliHardening, InvalidUtf8InAPromptIsAnnounced) {
  const std::string file = Scratch("latin1.txt");
  std::ofstream(file, std::ios::binary) << "caf\xe9 au lait";
  ExpectWarning(RunFastgen("run -f " + file + " -n 2 --temp 0"), "not valid UTF-8 (first bad byte at offset 3)");
  ExpectWarning(RunFastgen("tokenize --file " + file), "not valid UTF-8");
}

// --- misleading ---

TEST(CliHardening, UnknownSubcommandIsNamed) {
  ExpectError(RunFastgen("frobnicate -m x"), 1, "unknown command 'frobnicate'");
  ExpectError(RunFastgen(""), 1, "subcommand is required");
}

TEST(CliHardening, IntegersPrintAsIntegers) {
  CliResult r = RunFastgen("run -n -5");
  ExpectError(r, 1, "--n-predict: -5 is outside [0, 1073741824]");
  EXPECT_EQ(r.err.find(".000000"), std::string::npos) << r.err;
  ExpectError(RunFastgen("run -t abc"), 1, "--threads: 'abc' is not an integer");
  ExpectError(RunFastgen("run --top-p 2"), 1, "--top-p: 2 is outside (0, 1]");
  ExpectError(RunFastgen("run --temp nan"), 1, "--temp: 'nan' is not a number");
}

TEST(CliHardening, EscapeBytesAreNotEchoedToTheTerminal) {
  // From the command line...
  CliResult r = RunFastgen("run -m \"$(printf '/tmp/\\033[2J\\007evil')\" -p x");
  ExpectError(r, 2, "\\x1b[2J\\x07evil");
  EXPECT_EQ(r.err.find('\x1b'), std::string::npos);
  // ...and from a file: an architecture name with a terminal escape in config.json.
  const std::string dir = Scratch("escape_arch");
  fs::create_directories(dir);
  std::string config = testing::Slurp(kFixture + "/config.json");
  config.replace(config.find("LlamaForCausalLM"), 16, "\\u001b]0;owned\\u0007Llama");
  std::ofstream(dir + "/config.json") << config;
  fs::copy_file(kFixture + "/model.safetensors", dir + "/model.safetensors", fs::copy_options::overwrite_existing);
  CliResult f = RunFastgen("run -m " + dir + " --prompt-ids 1 --print-ids");
  ExpectError(f, 2, "\\x1b]0;owned\\x07Llama");
  EXPECT_EQ(f.err.find('\x1b'), std::string::npos);
  EXPECT_EQ(f.err.find('\x07'), std::string::npos);
  // ...and in what succeeds: paths that info and quantize print back.
  const std::string evil = Scratch("evil\x1b[31m.gguf");
  fs::copy_file(SharedPath("gguf/llama.f32.gguf"), evil, fs::copy_options::overwrite_existing);
  CliResult info = RunFastgen("info -m '" + evil + "'");
  EXPECT_EQ(info.exit_code, 0) << info.err;
  EXPECT_NE(info.out.find("evil\\x1b[31m.gguf"), std::string::npos) << info.out;
  EXPECT_EQ(info.out.find('\x1b'), std::string::npos);
  CliResult q = RunFastgen("quantize " + kFixture + " '" + Scratch("q\x1b[31m.gguf") + "' Q8_0");
  EXPECT_EQ(q.exit_code, 0) << q.err;
  EXPECT_NE(q.err.find("q\\x1b[31m.gguf"), std::string::npos) << q.err;
  EXPECT_EQ(q.err.find('\x1b'), std::string::npos);
}

TEST(CliHardening, ExitCodesFollowOneScheme) {
  // Usage errors: 1.
  EXPECT_EQ(RunFastgen("run --no-such-flag").exit_code, 1);
  EXPECT_EQ(RunFastgen("run -m " + kFixture + " --prompt-ids 1 -c 0 --kv-type q9").exit_code, 1);
  EXPECT_EQ(RunFastgen("quantize a").exit_code, 1);
  // Bad input files: 2.
  EXPECT_EQ(RunFastgen("run -m /nonexistent --prompt-ids 1").exit_code, 2);
  EXPECT_EQ(RunFastgen("info -m /dev/null").exit_code, 2);
  EXPECT_EQ(RunFastgen("run -f /nonexistent.txt").exit_code, 2);
  // ...a tokenizer.json or tokenizer_config.json whose contents the parsers reject included.
  const std::string tok = Scratch("bad_tokenizer");
  fs::create_directories(tok);
  std::ofstream(tok + "/tokenizer.json") << R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a b c"]}})";
  ExpectError(RunFastgen("tokenize -m " + tok + " hi"), 2, "model.merges[0]");
  std::ofstream(tok + "/tokenizer.json") << "not json";
  ExpectError(RunFastgen("tokenize -m " + tok + " hi"), 2, "tokenizer.json: not valid JSON");
  // --help: 0.
  EXPECT_EQ(RunFastgen("bench --help").exit_code, 0);
}

TEST(CliHardening, QuantizeRefusesToOverwriteItsInput) {
  const std::string copy = Scratch("self.gguf");
  fs::copy_file(SharedPath("gguf/llama.f32.gguf"), copy, fs::copy_options::overwrite_existing);
  ExpectError(RunFastgen("quantize " + copy + " " + copy + " Q8_0"), 1, "is the input file");
}

}  // namespace
}  // namespace fastgen
