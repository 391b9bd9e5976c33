// `fastgen perplexity` end to end: the figure, --json, the KL-divergence base written and
// compared, and its errors.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/cli_test_util.h"
#include "test_util.h"

namespace fastgen {
namespace {

using testing::CliResult;
using testing::RunFastgen;
using testing::SharedPath;

std::string Scratch() { return testing::ScratchDir("fastgen_ppl_cli"); }

// The first 60 kB of the validation text: 16 chunks of 512 for fg-target's tokenizer.
std::string EvalText() {
  const std::string path = Scratch() + "/valid_head.txt";
  if (!std::filesystem::exists(path))
    std::ofstream(path) << testing::ReadFileText(SharedPath("corpus/valid.txt")).substr(0, 60000);
  return path;
}

nlohmann::json Json(const CliResult& r) {
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return nlohmann::json::parse(r.out, nullptr, false);
}

TEST(PerplexityCli, PrintsTheFigureAndItsJson) {
  const std::string args = "perplexity -m " + SharedPath("gguf/fg-target.q8_0.gguf") + " -f " + EvalText() +
                           " -c 256 --chunks 4 -t 2";
  CliResult text = RunFastgen(args);
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("ppl = "), std::string::npos) << text.out;
  EXPECT_NE(text.err.find("[4/4] ppl "), std::string::npos) << text.err;  // the running estimate
  const auto j = Json(RunFastgen(args + " --json"));
  ASSERT_FALSE(j.is_discarded());
  EXPECT_EQ(j["chunks"], 4);
  EXPECT_EQ(j["ctx"], 256);
  EXPECT_EQ(j["scored"], 4 * 127);
  EXPECT_EQ(j["running_ppl"].size(), 4u);
  EXPECT_GT(j["ppl"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(j["running_ppl"][3].get<double>(), j["ppl"].get<double>());
  char want[64];
  std::snprintf(want, sizeof want, "ppl = %.4f", j["ppl"].get<double>());
  EXPECT_NE(text.out.find(want), std::string::npos) << text.out;
}

// KV eviction through the CLI: the policy is reported, a small budget costs perplexity.
TEST(PerplexityCli, KvEvictionPolicies) {
  const std::string args = "perplexity -m " + SharedPath("gguf/fg-target.q8_0.gguf") + " -f " + EvalText() +
                           " -c 256 --chunks 1 -t 2 --json";
  const auto full = Json(RunFastgen(args));
  for (const char* policy : {"window", "h2o", "keyformer"}) {
    const auto j = Json(RunFastgen(args + " --kv-evict " + policy + " --kv-budget 32"));
    ASSERT_TRUE(j.contains("kv_evict")) << j.dump();
    EXPECT_EQ(j["kv_evict"]["policy"], policy);
    EXPECT_EQ(j["kv_evict"]["budget"], 32);
    EXPECT_GT(j["ppl"].get<double>(), full["ppl"].get<double>()) << policy;  // 32 of up to 255 tokens
  }
  const auto tidal = Json(RunFastgen(args + " --sparse-attn tidal --sparse-topk 16 --sparse-layers 1"));
  ASSERT_TRUE(tidal.contains("sparse_attn")) << tidal.dump();
  EXPECT_EQ(tidal["sparse_attn"]["top_k"], 16);
  EXPECT_GT(tidal["ppl"].get<double>(), full["ppl"].get<double>());
  CliResult text = RunFastgen("perplexity -m " + SharedPath("gguf/fg-target.q8_0.gguf") + " -f " + EvalText() +
                              " -c 256 --chunks 1 -t 2 --kv-evict window --kv-budget 64 --kv-sinks 8");
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("--kv-evict window, 64 tokens kept per layer head (8 sinks, 56 recent)"), std::string::npos)
      << text.out;
}

// --kv-staircase: a staircase whose first step covers the context scores as that type's cache,
// one whose older tokens are read in 4 bits scores differently, the cache's bytes per token are
// each step's share, and a spec that does not parse or a combination not supported is an error
// naming the flag.
TEST(PerplexityCli, KvStaircase) {
  const std::string args = "perplexity -m " + SharedPath("gguf/fg-target.q8_0.gguf") + " -f " + EvalText() +
                           " -c 512 --chunks 1 -t 2 --json";
  const auto f16 = Json(RunFastgen(args + " --kv-type f16"));
  const auto covered = Json(RunFastgen(args + " --kv-staircase f16:512,q4_0"));
  const auto stairs = Json(RunFastgen(args + " --kv-staircase f16:128,q4_0"));
  ASSERT_TRUE(stairs.contains("kv_cache")) << stairs.dump();
  EXPECT_EQ(stairs["kv_cache"]["type"], "f16:128,q4_0");
  // fg-target: 8 layers of 2 KV heads of 64: an f16 token is 4096 bytes, a q4_0 one 1152.
  EXPECT_NEAR(stairs["kv_cache"]["bytes_per_token"].get<double>(), (128 * 4096.0 + 384 * 1152.0) / 512, 1e-6);
  EXPECT_EQ(f16["kv_cache"]["bytes_per_token"].get<double>(), 4096.0);
  EXPECT_NEAR(covered["ppl"].get<double>(), f16["ppl"].get<double>(), 1e-4 * f16["ppl"].get<double>());
  EXPECT_GT(std::abs(stairs["ppl"].get<double>() - f16["ppl"].get<double>()), 1e-3 * f16["ppl"].get<double>());
  for (const char* bad : {"--kv-staircase q4_0", "--kv-staircase f16:32,q4_0", "--kv-staircase f16:128,q3_k",
                          "--kv-staircase f16:128,q4_0 --kv-type q8_0",
                          "--kv-staircase f16:128,q4_0 --kv-evict window --kv-budget 64",
                          "--kv-staircase f16:128,q4_0 --sparse-attn tidal --sparse-topk 16"}) {
    CliResult r = RunFastgen(args + " " + bad);
    EXPECT_EQ(r.exit_code, 1) << bad << ": " << r.err;
    EXPECT_NE(r.err.find("--kv-staircase"), std::string::npos) << r.err;
  }
}

// bf16 as the base, Q8_0 compared with it: a small divergence, mostly the same top token, and
// the base's own perplexity carried through the file.
TEST(PerplexityCli, KlDivergenceAgainstASavedBase) {
  const std::string base = Scratch() + "/bf16.kld";
  const std::string common = " -f " + EvalText() + " -c 256 --chunks 3 -t 2 --json";
  const auto b = Json(RunFastgen("perplexity -m " + SharedPath("gguf/fg-target.bf16.gguf") + common +
                                 " --kl-divergence-base " + base + " --kl-top-k 32"));
  ASSERT_TRUE(std::filesystem::exists(base));
  const auto q = Json(RunFastgen("perplexity -m " + SharedPath("gguf/fg-target.q8_0.gguf") + common +
                                 " --kl-divergence " + base));
  ASSERT_TRUE(q.contains("kl_divergence")) << q.dump();
  const auto& k = q["kl_divergence"];
  EXPECT_EQ(k["positions"], 3 * 127);
  EXPECT_EQ(k["top_k"], 32);
  EXPECT_NEAR(k["ppl_base"].get<double>(), b["ppl"].get<double>(), 1e-3 * b["ppl"].get<double>());
  EXPECT_NEAR(k["ppl"].get<double>(), q["ppl"].get<double>(), 1e-3 * q["ppl"].get<double>());
  EXPECT_GT(k["kld_mean"].get<double>(), 0.0);
  EXPECT_LT(k["kld_mean"].get<double>(), 0.05);  // Q8_0 is close to bf16
  EXPECT_GT(k["same_top"].get<double>(), 0.85);
  EXPECT_LE(k["kld_p99"].get<double>(), k["kld_max"].get<double>());

  // Another chunking than the base's: refused, naming the difference.
  CliResult r = RunFastgen("perplexity -m " + SharedPath("gguf/fg-target.q8_0.gguf") + " -f " + EvalText() +
                           " -c 128 --chunks 3 --kl-divergence " + base);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("-c 256"), std::string::npos) << r.err;
}

TEST(PerplexityCli, RefusesBadRequestsClearly) {
  const std::string m = " -m " + SharedPath("gguf/fg-target.q8_0.gguf");
  struct Case {
    std::string args;
    int exit_code;
    std::string says;
  };
  const std::string junk = Scratch() + "/junk.kld";
  std::ofstream(junk) << "this is not a base file, and it is long enough for a header";
  const std::string tiny = Scratch() + "/tiny.txt";
  std::ofstream(tiny) << "def f(x):\n    return x\n";
  const std::vector<Case> cases = {
      {"perplexity" + m, 1, "--file is required"},
      {"perplexity" + m + " -f " + tiny, 1, "needs at least 1024"},
      {"perplexity" + m + " -f " + EvalText() + " -c 2", 1, "-c"},
      {"perplexity" + m + " -f " + EvalText() + " --kl-top-k 8", 1, "--kl-divergence-base"},
      {"perplexity" + m + " -f " + EvalText() + " --kl-divergence a --kl-divergence-base b", 1, "not both"},
      {"perplexity" + m + " -f " + EvalText() + " -c 128 --chunks 1 --kl-divergence " + junk, 2, "junk.kld"},
      {"perplexity" + m + " -f " + EvalText() + " -c 128 --chunks 1 --kl-divergence " + Scratch() + "/none.kld", 2,
       "none.kld"},
      {"perplexity" + m + " -f " + Scratch(), 2, "directory"},
      {"perplexity" + m + " -f " + EvalText() + " --kv-evict lru --kv-budget 64", 1, "--kv-evict 'lru'"},
      {"perplexity" + m + " -f " + EvalText() + " --kv-evict h2o", 1, "needs --kv-budget"},
      {"perplexity" + m + " -f " + EvalText() + " --kv-budget 64", 1, "need --kv-evict"},
      {"perplexity" + m + " -f " + EvalText() + " --kv-evict h2o --kv-budget 16 --kv-sinks 4 --kv-recent 16", 1,
       "--kv-budget 16 is smaller than --kv-sinks 4"},
      {"perplexity" + m + " -f " + EvalText() + " --kv-evict window --kv-budget 16 --kv-recent 4", 1,
       "must equal --kv-budget 16"},
      {"perplexity" + m + " -f " + EvalText() + " --sparse-topk 64", 1, "need --sparse-attn tidal"},
      {"perplexity" + m + " -f " + EvalText() + " --sparse-attn tidal", 1, "needs --sparse-topk"},
      {"perplexity" + m + " -f " + EvalText() + " --sparse-attn quest --sparse-topk 64", 1, "--sparse-attn 'quest'"},
      {"perplexity" + m + " -f " + EvalText() + " --sparse-attn tidal --sparse-topk 64 --sparse-layers 1,99", 1,
       "layer 99 outside"},
      {"perplexity" + m + " -f " + EvalText() + " --kv-evict h2o --kv-budget 64 --sparse-attn tidal --sparse-topk 16", 1,
       "does not combine with --kv-evict h2o"},
  };
  for (const Case& c : cases) {
    CliResult r = RunFastgen(c.args);
    EXPECT_EQ(r.exit_code, c.exit_code) << c.args << "\n" << r.err;
    EXPECT_NE(r.err.find("fastgen: error: "), std::string::npos) << c.args << "\n" << r.err;
    EXPECT_NE(r.err.find(c.says), std::string::npos) << c.args << "\n" << r.err;
  }
}

}  // namespace
}  // namespace fastgen

namespace fastgen {
namespace {

// `fastgen quantize --method gptq|imatrix`: the flags' rules and one run end to end.
TEST(QuantizeCli, CalibratedMethodsAndTheirFlags) {
  const std::string calib = Scratch() + "/calib.txt";
  std::ofstream(calib) << testing::ReadFileText(SharedPath("corpus/valid.txt")).substr(0, 20000);
  const std::string in = SharedPath("models/fg-draft");  // a Llama with its own tokenizer
  const std::string out = Scratch() + "/draft.gptq.gguf";
  CliResult r = RunFastgen("quantize " + in + " " + out + " Q4_0 --method gptq --calibration " + calib +
                           " --calibration-tokens 1024 --calibration-ctx 128 --act-order");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("15 matrices by gptq over 1024 calibration tokens"), std::string::npos) << r.err;
  // The file runs.
  r = RunFastgen("run -m " + out + " --prompt-ids 1,2,3 -n 4 --temp 0 --print-ids");
  EXPECT_EQ(r.exit_code, 0) << r.err;

  struct Case {
    std::string args;
    std::string says;
  };
  const std::vector<Case> cases = {
      {"quantize " + in + " " + out + " Q4_0 --method gptq", "needs --calibration"},
      {"quantize " + in + " " + out + " Q4_0 --calibration " + calib, "--method rtn rounds without it"},
      {"quantize " + in + " " + out + " Q4_0 --method imatrix --act-order --calibration " + calib, "--act-order"},
      {"quantize " + in + " " + out + " Q4_K_X", "unknown type 'Q4_K_X'"},
      {"quantize " + in + " " + out + " Q4_0 --method gptq --calibration " + Scratch() + "/none.txt", "none.txt"},
      {"quantize " + in + " " + out + " Q4_0 --method sparsegpt", "--method"},
  };
  for (const Case& c : cases) {
    r = RunFastgen(c.args);
    EXPECT_NE(r.exit_code, 0) << c.args;
    EXPECT_NE(r.err.find(c.says), std::string::npos) << c.args << "\n" << r.err;
  }
  // --override-kv repairs a GGUF's metadata on the way through: the output carries the value.
  const std::string fixed = Scratch() + "/long.gguf";
  r = RunFastgen("quantize " + SharedPath("gguf/fg-long.bf16.gguf") + " " + fixed +
                 " Q8_0 --override-kv llama.rope.freq_base=100000");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = RunFastgen("info -m " + fixed);
  EXPECT_NE(r.out.find("rope_theta:      100000"), std::string::npos) << r.out;
  r = RunFastgen("quantize " + SharedPath("gguf/fg-long.bf16.gguf") + " " + fixed + " Q8_0 --override-kv llama.rope.freq_base=x");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("not a number"), std::string::npos) << r.err;
  // A fused-projection model cannot be calibrated: refused, naming the way out.
  r = RunFastgen("quantize " + SharedPath("fixtures/gpt2") + " " + out + " Q8_0 --method gptq --calibration " + calib);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("--method rtn"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace fastgen
