// Random command lines for every subcommand: flags read from the subcommand's own --help (so a
// new flag is fuzzed the day it is added), combined at random with hostile values. Each run must
// end on its own within a time bound, by succeeding or by exiting with "fastgen: error: ..."
// and a documented exit code; never by a signal, a hang, or a silent failure. Seeded, so a
// failure names the command line that reproduces it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <regex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "cli/cli_test_util.h"
#include "test_util.h"

namespace fastgen {
namespace {

using testing::CliResult;
using testing::RunFastgen;
using testing::SharedPath;

struct Flag {
  std::string name;  // "--top-p"
  std::string type;  // "INT", "FLOAT", "TEXT", ... as --help prints it; "" for a switch
};

// The flags `fastgen SUB --help` lists (long spellings) with their value types, minus --help.
std::vector<Flag> FlagsOf(const std::string& sub) {
  const CliResult help = RunFastgen(sub + " --help");
  EXPECT_EQ(help.exit_code, 0) << help.err;
  std::vector<Flag> flags;
  const std::regex flag_re("(--[a-z][a-z0-9-]*)( ([A-Z]+))?");
  for (auto it = std::sregex_iterator(help.out.begin(), help.out.end(), flag_re); it != std::sregex_iterator(); ++it)
    if ((*it)[1].str() != "--help") flags.push_back({(*it)[1].str(), (*it)[3].str()});
  return flags;
}

// Plausible values of a type, so that runs get past parsing into the code behind the flags.
std::vector<std::string> PlausibleValues(const std::string& type) {
  if (type == "INT" || type == "UINT") return {"0", "1", "2", "3", "4", "8", "16", "64", "255"};
  if (type == "FLOAT") return {"0", "0.1", "0.5", "0.9", "1", "1.5", "2"};
  return {};
}

// Shell-quoted for /bin/sh: single quotes, with embedded ones closed and escaped.
std::string Quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

std::vector<std::string> HostileValues() {
  const std::string scratch = testing::ScratchDir("fastgen_arg_fuzz");
  return {"",           "0",          "-1",         "1",          "2",           "3",
          "7",          "65",         "1e309",      "-1e309",     "nan",         "inf",
          "-inf",       "0.5",        "1.5",        "-0",         "0x10",        "99999999999999999999",
          "2147483648", "-2147483649", "abc",       "1,2,3",      "1,,2",        "[1, 2]",
          "a=b",        "=",          "x=",         "=1",         "1=-inf",      "1=nan",
          "llama.rope.freq_base=float:1e6",          "%s%n%x",     "\x1b[31m\x07", "caf\xe9",
          std::string(5000, 'A'),                    "/dev/null",  "/dev/zero",   "/nonexistent/x",
          scratch,      scratch + "/out.bin",        SharedPath("fixtures/llama"),
          SharedPath("gguf/llama.f32.gguf"),         SharedPath("models/fg-draft"),
          SharedPath("corpus/valid.txt"),            "q8_0",       "f16",         "f32",
          "Q4_0",       "draft",      "lookup",      "jacobi",     "layerskip",   "auto",
          "on",         "off",        "keep"};
}

// The slowest legitimate runs on the fixtures take well under a second; a hang is caught here.
constexpr int kTimeoutSeconds = 120;

// FASTGEN_ARG_FUZZ_SCALE=K runs K times as many command lines, and FASTGEN_ARG_FUZZ_SEED=S
// shifts the seeds: for longer hunts than CI's.
int Scale() {
  const char* s = std::getenv("FASTGEN_ARG_FUZZ_SCALE");
  return s ? std::max(1, std::atoi(s)) : 1;
}
uint32_t SeedShift() {
  const char* s = std::getenv("FASTGEN_ARG_FUZZ_SEED");
  return s ? static_cast<uint32_t>(std::strtoul(s, nullptr, 10)) : 0;
}

// Values for the flags that set how much work a run does, added where the random draw did not
// pick the flag itself.
std::vector<std::pair<std::string, std::string>> QuickDefaults(const std::string& sub) {
  if (sub == "bench") return {{"--repetitions", "1"}, {"--n-prompt", "32"}, {"--n-gen", "8"}};
  if (sub == "perplexity") {
    // A few kB of the corpus: the whole of it would be tokenized on every run.
    const std::string text = testing::ScratchDir("fastgen_arg_fuzz") + "/eval.txt";
    if (!std::filesystem::exists(text))
      std::ofstream(text) << testing::ReadFileText(SharedPath("corpus/valid.txt")).substr(0, 6000);
    return {{"--chunks", "2"}, {"-c", "32"}, {"-f", text}};
  }
  return {};
}

// Whether the command line already names a flag (as a whole word).
bool Mentions(const std::string& args, const std::string& flag) {
  for (size_t at = args.find(flag); at != std::string::npos; at = args.find(flag, at + 1)) {
    const size_t end = at + flag.size();
    if (end == args.size() || args[end] == ' ') return true;
  }
  return false;
}

void FuzzSubcommand(const std::string& sub, const std::string& positional, int runs, uint32_t seed) {
  runs *= Scale();
  seed += SeedShift() * 1000;
  const std::vector<Flag> flags = FlagsOf(sub);
  ASSERT_FALSE(flags.empty()) << sub;
  const std::vector<std::string> values = HostileValues();
  std::mt19937 rng(seed);
  for (int i = 0; i < runs; ++i) {
    std::string args = sub + positional;
    // Most runs use a fixture model so that they are quick; some leave -m to the flags.
    if (rng() % 4 != 0 && sub != "quantize") args += " -m " + SharedPath(rng() % 2 ? "fixtures/llama" : "models/fg-draft");
    const int n_flags = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < n_flags; ++f) {
      const Flag& flag = flags[rng() % flags.size()];
      args += " " + flag.name;
      const std::vector<std::string> plausible = PlausibleValues(flag.type);
      const bool give_value = flag.type.empty() ? rng() % 8 == 0 : rng() % 12 != 0;
      if (!give_value) continue;
      if (!plausible.empty() && rng() % 2 == 0) {
        args += " " + plausible[rng() % plausible.size()];
      } else {
        args += " " + Quote(values[rng() % values.size()]);
      }
    }
    // Workload flags the draw left out get small values: bench's defaults (5 repetitions of
    // pp512 + tg128, times --batch sequences) are minutes of work under the sanitizers, which is
    // not the hang this test looks for.
    for (const auto& [flag, value] : QuickDefaults(sub))
      if (!Mentions(args, flag)) args += " " + flag + " " + value;
    CliResult r = RunFastgen(args, "/dev/null", kTimeoutSeconds);
    SCOPED_TRACE("fastgen " + args);
    ASSERT_NE(r.exit_code, 137) << "killed after " << kTimeoutSeconds << " s (a hang?):\n" << r.err;
    ASSERT_LT(r.exit_code, 128) << "ended by a signal:\n" << r.err;
    if (r.exit_code != 0) {
      EXPECT_TRUE(r.exit_code == 1 || r.exit_code == 2) << "undocumented exit code " << r.exit_code << ":\n" << r.err;
      EXPECT_NE(r.err.find("fastgen: error: "), std::string::npos) << "no error message:\n" << r.err;
      EXPECT_EQ(r.err.find('\x1b'), std::string::npos) << "raw escape byte on stderr";
    }
  }
}

TEST(CliArgFuzz, Run) { FuzzSubcommand("run", "", 60, 1); }
TEST(CliArgFuzz, Bench) { FuzzSubcommand("bench", "", 40, 2); }
TEST(CliArgFuzz, Chat) { FuzzSubcommand("chat", "", 30, 3); }
TEST(CliArgFuzz, Info) { FuzzSubcommand("info", "", 20, 4); }
TEST(CliArgFuzz, Tokenize) { FuzzSubcommand("tokenize", " 'hello world'", 20, 5); }
TEST(CliArgFuzz, Detokenize) { FuzzSubcommand("detokenize", " 1,2,3", 20, 6); }
TEST(CliArgFuzz, Perplexity) { FuzzSubcommand("perplexity", "", 30, 8); }
// quantize takes positionals only: random inputs, outputs (inside the scratch directory or
// devices) and types.
TEST(CliArgFuzz, Quantize) {
  const std::string scratch = testing::ScratchDir("fastgen_arg_fuzz");
  const std::vector<std::string> inputs = {SharedPath("gguf/llama.f32.gguf"), SharedPath("fixtures/gpt2"),
                                           SharedPath("fixtures/qwen3"), "/dev/zero", "/nonexistent", scratch, "''"};
  const std::vector<std::string> outputs = {scratch + "/q.gguf", "/dev/null", scratch, "''", scratch + "/no/such/dir/q.gguf"};
  const std::vector<std::string> types = {"Q8_0", "Q4_0", "Q4_K", "Q6_K", "F16", "BF16", "F32", "q9", "''", "Q2_K"};
  std::mt19937 rng(7);
  for (int i = 0; i < 25; ++i) {
    const std::string args = "quantize " + inputs[rng() % inputs.size()] + " " + outputs[rng() % outputs.size()] +
                             " " + types[rng() % types.size()];
    CliResult r = RunFastgen(args, "/dev/null", kTimeoutSeconds);
    SCOPED_TRACE("fastgen " + args);
    ASSERT_LT(r.exit_code, 128) << r.err;
    if (r.exit_code != 0) {
      EXPECT_NE(r.err.find("fastgen: error: "), std::string::npos) << r.err;
    }
  }
}

}  // namespace
}  // namespace fastgen
