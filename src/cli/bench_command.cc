// `fastgen bench`: prompt-processing and generation throughput, median and spread over
// repetitions, as text or JSON.
#include <cstdio>
#include <memory>

#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "cli/commands.h"
#include "decoding/benchmark.h"

namespace fastgen::cli {
namespace {

struct BenchFlags {
  ModelFlags model;
  BenchOptions bench;
  bool json = false;
};

int Bench(const BenchFlags& f) {
  auto lm = LoadFromFlags(f.model);
  if (!lm.ok()) return ReportError(lm.status());
  auto r = RunBenchmark(*lm->model, f.bench);
  if (!r.ok()) return ReportError(r.status());
  const Model& m = *lm->model;
  const std::string path = m.checkpoint().path;
  const int threads = lm->pool->size();
  if (f.json) {
    nlohmann::json j;
    j["model"] = path;
    j["architecture"] = ArchName(m.config().arch);
    j["weight_bytes"] = m.checkpoint().weights.TotalBytes();
    j["threads"] = threads;
    j["repetitions"] = f.bench.repetitions;
    auto series = [](const BenchSeries& s) {
      return nlohmann::json{{"median", s.Median()}, {"min", s.Min()}, {"max", s.Max()},
                            {"samples", s.tokens_per_second}};
    };
    if (f.bench.n_prompt > 0) j["pp"] = {{"tokens", f.bench.n_prompt}, {"tokens_per_second", series(r->prompt)}};
    if (f.bench.n_gen > 0)
      j["tg"] = {{"tokens", f.bench.n_gen}, {"depth", f.bench.depth}, {"tokens_per_second", series(r->generation)}};
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  std::printf("| model | size | threads | test | tokens/s (median) | min..max |\n");
  std::printf("|---|---|---|---|---|---|\n");
  const double mib = static_cast<double>(m.checkpoint().weights.TotalBytes()) / (1 << 20);
  auto row = [&](const std::string& test, const BenchSeries& s) {
    std::printf("| %s | %.1f MiB | %d | %s | %.2f | %.2f..%.2f |\n", path.c_str(), mib, threads,
                test.c_str(), s.Median(), s.Min(), s.Max());
  };
  if (f.bench.n_prompt > 0) row("pp" + std::to_string(f.bench.n_prompt), r->prompt);
  if (f.bench.n_gen > 0) {
    std::string name = "tg" + std::to_string(f.bench.n_gen);
    if (f.bench.depth > 0) name += " @ d" + std::to_string(f.bench.depth);
    row(name, r->generation);
  }
  return 0;
}

}  // namespace

CommandFn AddBenchCommand(CLI::App& app) {
  auto f = std::make_shared<BenchFlags>();
  CLI::App* cmd = app.add_subcommand("bench", "Measure prompt-processing and generation speed");
  AddModelFlags(cmd, &f->model);
  cmd->add_option("-p,--n-prompt", f->bench.n_prompt, "Prompt tokens processed in one batch (0 = skip; default 512)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 20));
  cmd->add_option("-n,--n-gen", f->bench.n_gen, "Tokens generated one at a time (0 = skip; default 128)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 20));
  cmd->add_option("-d,--depth", f->bench.depth, "Tokens already in the KV cache before generating (default 0)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 20));
  cmd->add_option("-r,--repetitions", f->bench.repetitions, "Repetitions (default 5)")->check(CLI::Range(1, 1000));
  cmd->add_flag("--json", f->json, "Print JSON instead of a table");
  return [f] { return Bench(*f); };
}

}  // namespace fastgen::cli
