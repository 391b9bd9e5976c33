// `fastgen run --spec ...`: speculative decoding from the command line gives the reference
// greedy continuation and reports acceptance, tokens per forward and speedup; bad flags fail
// cleanly. `fastgen bench --spec ...` measures plain against speculative decoding.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/cli_test_util.h"
#include "test_util.h"

namespace fastgen {
namespace {

namespace fs = std::filesystem;
using testing::ReadJson;
using testing::SharedPath;

using SpecRun = testing::CliResult;

SpecRun Fastgen(const std::string& args) { return testing::RunFastgen(args); }
std::string Join(const std::vector<int32_t>& ids) { return testing::JoinIds(ids); }

TEST(SpecCli, EveryModeGivesTheReferenceGreedyContinuation) {
  const auto ref = ReadJson(SharedPath("models/fg-target/ref.json"))["refs"][1];
  const std::string base = "run -m " + SharedPath("models/fg-target") + " --prompt-ids " +
                           Join(ref["prompt_ids"].get<std::vector<int32_t>>()) +
                           " --print-ids --temp 0 -n 48 --ignore-eos -t 2 ";
  const std::string want = Join(ref["greedy_48"].get<std::vector<int32_t>>()) + "\n";
  for (const std::string& mode :
       {"--spec draft --draft-model " + SharedPath("models/fg-draft"),  // prompt lookup ahead (default)
        "--spec draft --no-lookup-first --draft-model " + SharedPath("models/fg-draft"),
        "--spec draft --draft-tree 3 --no-lookup-first --draft-model " + SharedPath("models/fg-draft"),
        "--spec draft --lookup-first --draft-tree 3 --draft-model " + SharedPath("models/fg-draft"),
        std::string("--spec lookup --lookup-branches 3"), std::string("--spec jacobi"),
        std::string("--spec jacobi --no-lookup-first"), std::string("--spec layerskip --skip-layers 6,7"),
        std::string("--spec layerskip --skip-layers 6,7 --no-lookup-first")}) {
    const SpecRun r = Fastgen(base + mode + " --spec-compare");
    ASSERT_EQ(r.exit_code, 0) << mode << ": " << r.err;
    EXPECT_EQ(r.out, want) << mode;
    for (const char* needle : {"acceptance", "tokens per target forward", "speedup", "output identical"})
      EXPECT_NE(r.err.find(needle), std::string::npos) << mode << ": '" << needle << "' missing in " << r.err;
  }
  // The layer-skip search times passes, so whether a subset is predicted to pay depends on the
  // machine: either it reports the subset and speculates, or it says so and decodes plainly;
  // the output is the reference continuation both ways.
  const SpecRun r = Fastgen(base + "--spec layerskip --skip-layers auto --spec-compare");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, want);
  const bool chose = r.err.find("predicted speedup") != std::string::npos;
  EXPECT_NE(r.err.find(chose ? "output identical" : "decoding plainly"), std::string::npos) << r.err;
}

TEST(SpecCli, SamplingRunsAndReports) {
  const SpecRun r = Fastgen("run -m " + SharedPath("models/fg-target") + " -p 'def main():' -n 24 --temp 0.8 -s 3 " +
                            "--spec draft --draft-model " + SharedPath("models/fg-draft"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("acceptance"), std::string::npos) << r.err;
}

TEST(SpecCli, BadFlagsFailCleanly) {
  const std::string target = "run -m " + SharedPath("models/fg-target") + " -p 'x = 1' -n 4 ";
  struct Case {
    std::string args, needle;
  };
  for (const Case& c : {Case{"--spec draft", "--draft-model"}, Case{"--spec teleport", "unknown speculative mode"},
                        Case{"--spec draft --draft-model " + SharedPath("fixtures/llama"), "vocabulary"},
                        Case{"--spec layerskip --skip-layers 99", "layer"},
                        Case{"--spec lookup --bild --temp 0.7", "BiLD"},
                        Case{"--spec lookup --lookup-first", "--lookup-first"},
                        Case{"--spec draft --draft-model /nonexistent/model", "nonexistent"},
                        Case{"--spec draft --draft-vocab 9000 --draft-model " + SharedPath("models/fg-draft"),
                             "vocabulary prefix 9000"},
                        Case{"--spec draft --draft-vocab -5 --draft-model " + SharedPath("models/fg-draft"),
                             "--draft-vocab"}}) {
    const SpecRun r = Fastgen(target + c.args);
    EXPECT_NE(r.exit_code, 0) << c.args;
    EXPECT_GE(r.exit_code, 1) << c.args;
    EXPECT_LT(r.exit_code, 128) << c.args << " crashed";
    EXPECT_NE(r.err.find(c.needle), std::string::npos) << c.args << ": " << r.err;
  }
}

// The benchmark's own check (speculative greedy output == plain) and its report, as JSON.
TEST(SpecCli, BenchSpecReportsBothSpeedsAndChecksTheOutput) {
  const std::string dir = testing::ScratchDir("fastgen_spec_bench");
  const std::string prompt = dir + "/prompt.txt";
  {
    std::ofstream(prompt) << "def add(a, b):\n    return a + b\n\n\ndef add(a, b):\n    return";
  }
  const SpecRun r = Fastgen("bench -m " + SharedPath("models/fg-target") + " --spec lookup -f " + prompt +
                            " -n 24 -r 2 -t 2 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["tokens"], 24);
  EXPECT_EQ(j["spec"]["mode"], "prompt-lookup");
  EXPECT_TRUE(j["spec"]["identical"].get<bool>());
  EXPECT_EQ(j["spec"]["plain_tokens_per_second"]["samples"].size(), 2u);
  EXPECT_GT(j["spec"]["spec_tokens_per_second"]["median"].get<double>(), 0.0);
  EXPECT_GT(j["spec"]["tokens_per_forward"].get<double>(), 1.0);  // the prompt repeats itself

  const SpecRun table = Fastgen("bench -m " + SharedPath("models/fg-target") + " --spec draft --draft-model " +
                                SharedPath("models/fg-draft") + " -f " + prompt + " -n 16 -r 1 -t 2");
  ASSERT_EQ(table.exit_code, 0) << table.err;
  for (const char* needle : {"plain", "spec draft", "speedup", "acceptance", "output identical"})
    EXPECT_NE(table.out.find(needle), std::string::npos) << needle << " missing in " << table.out;

  // Lookup ahead of the draft model (the default): the repeated function is copied, and the
  // mode says so; --no-lookup-first leaves the draft model alone.
  const std::string draft_bench = "bench -m " + SharedPath("models/fg-target") + " --spec draft --draft-model " +
                                  SharedPath("models/fg-draft") + " -f " + prompt + " -n 16 -r 1 -t 2 --json";
  const SpecRun first = Fastgen(draft_bench);
  ASSERT_EQ(first.exit_code, 0) << first.err;
  const auto jf = nlohmann::json::parse(first.out);
  EXPECT_EQ(jf["spec"]["mode"], "draft-model+lookup-first");
  EXPECT_TRUE(jf["spec"]["identical"].get<bool>());
  EXPECT_GT(jf["spec"]["lookup_steps"].get<int64_t>(), 0);
  const SpecRun alone = Fastgen(draft_bench + " --no-lookup-first");
  ASSERT_EQ(alone.exit_code, 0) << alone.err;
  const auto ja = nlohmann::json::parse(alone.out);
  EXPECT_EQ(ja["spec"]["mode"], "draft-model");
  EXPECT_TRUE(ja["spec"]["identical"].get<bool>());
  EXPECT_EQ(ja["spec"]["lookup_steps"].get<int64_t>(), 0);

  const SpecRun no_prompt = Fastgen("bench -m " + SharedPath("models/fg-target") + " --spec lookup -n 8");
  EXPECT_EQ(no_prompt.exit_code, 1) << no_prompt.err;
  EXPECT_NE(no_prompt.err.find("-f"), std::string::npos) << no_prompt.err;
}

}  // namespace
}  // namespace fastgen
