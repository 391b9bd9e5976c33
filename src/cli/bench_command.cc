// `fastgen bench`: prompt-processing and generation throughput, median and spread over
// repetitions, as text or JSON. With --spec: plain against speculative greedy decoding of a
// prompt file, alternated over repetitions.
#include <algorithm>
#include <cstdio>
#include <memory>

#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "cli/commands.h"
#include "cli/spec_flags.h"
#include "decoding/benchmark.h"
#include "decoding/speculative/spec_benchmark.h"

namespace fastgen::cli {
namespace {

struct BenchFlags {
  ModelFlags model;
  BenchOptions bench;
  bool json = false;
  int64_t ctx_size = 0;     // -c: positions a run may use (default: the model's context)
  std::string prompt_file;  // --spec: the prompt decoded
  SpecFlags spec;
  KvPolicyFlags kv_policy;
};

nlohmann::json SeriesJson(const BenchSeries& s) {
  return nlohmann::json{{"median", s.Median()}, {"min", s.Min()}, {"max", s.Max()},
                        {"samples", s.tokens_per_second}};
}

// --spec: the prompt comes from a file (speculation feeds on real text; random ids give a
// proposer nothing to find), decoded greedily for -n tokens, -r times plain and speculative.
int BenchSpeculative(BenchFlags& f, LoadedModel& lm) {
  Model& m = *lm.model;
  if (f.prompt_file.empty())
    return ReportError(InvalidArgument("--spec needs -f PROMPT_FILE: speculation is measured on real text"));
  auto tok = m.checkpoint().gguf ? Tokenizer::FromGguf(*m.checkpoint().gguf) : Tokenizer::Load(m.checkpoint().path);
  if (!tok.ok()) return ReportError(tok.status().WithContext("loading the tokenizer"));
  auto text = ReadTextFile(f.prompt_file, kPromptFileLimit);
  if (!text.ok()) return ReportError(text.status());
  auto prompt = (*tok)->Encode(*text, EncodeOptions{});
  if (!prompt.ok()) return ReportError(prompt.status());
  if (prompt->empty()) return ReportError(InvalidArgument(f.prompt_file + ": the prompt is empty"));
  auto setup = SetUpSpeculation(f.spec, m, lm.pool.get(), *prompt, tok->get());
  if (!setup.ok()) return ReportError(setup.status());
  if (!setup->proposer) return ReportError(InvalidArgument("layer skipping: no layer subset pays on this prompt"));
  speculative::SpecBenchOptions o;
  o.n_gen = f.bench.n_gen;
  o.repetitions = f.bench.repetitions;
  o.verifier = f.spec.verifier;
  o.verifier.adaptive_fallback = !f.spec.no_fallback;
  auto r = speculative::RunSpeculativeBenchmark(m, *prompt, *setup->proposer, o);
  if (!r.ok()) return ReportError(r.status());
  const std::string path = m.checkpoint().path;
  const std::string mode = std::string(setup->proposer->name()) + (o.verifier.lookup_first ? "+lookup-first" : "");
  const auto& st = r->stats;
  if (f.json) {
    nlohmann::json j;
    j["model"] = path;
    j["threads"] = lm.pool->size();
    j["repetitions"] = o.repetitions;
    j["prompt_tokens"] = prompt->size();
    j["tokens"] = o.n_gen;
    j["spec"] = {{"mode", mode},
                 {"plain_tokens_per_second", SeriesJson(r->plain)},
                 {"spec_tokens_per_second", SeriesJson(r->speculative)},
                 {"speedup", SeriesJson(r->speedup)},
                 {"acceptance", st.acceptance_rate()},
                 {"tokens_per_forward", st.tokens_per_forward()},
                 {"lookup_steps", st.lookup_steps},
                 {"identical", r->identical}};
    std::printf("%s\n", j.dump(2).c_str());
    return r->identical ? 0 : 1;
  }
  std::printf("| model | threads | test | tokens/s (median) | min..max |\n|---|---|---|---|---|\n");
  const std::string test = "tg" + std::to_string(o.n_gen) + " after " + std::to_string(prompt->size());
  auto row = [&](const std::string& name, const BenchSeries& s) {
    std::printf("| %s | %d | %s %s | %.2f | %.2f..%.2f |\n", path.c_str(), lm.pool->size(), test.c_str(),
                name.c_str(), s.Median(), s.Min(), s.Max());
  };
  row("plain", r->plain);
  row("spec " + mode, r->speculative);
  std::printf("\nspeedup %.2fx (%.2f..%.2f), acceptance %.3f, %.2f tokens per target forward, output %s\n",
              r->speedup.Median(), r->speedup.Min(), r->speedup.Max(), st.acceptance_rate(),
              st.tokens_per_forward(), r->identical ? "identical" : "DIFFERS");
  if (!r->identical) return ReportError(Internal("speculative greedy output differs from plain decoding"));
  return 0;
}

int Bench(BenchFlags& f) {
  auto lm = LoadFromFlags(f.model);
  if (!lm.ok()) return ReportError(lm.status());
  if (!f.spec.mode.empty() && (f.kv_policy.evict != "none" || f.kv_policy.sparse != "none"))
    return ReportError(InvalidArgument("--kv-evict and --sparse-attn do not combine with --spec yet"));
  if (!f.spec.mode.empty()) return BenchSpeculative(f, *lm);
  auto ctx = ContextSize(*lm->model, f.ctx_size);
  if (!ctx.ok()) return ReportError(ctx.status());
  f.bench.context = *ctx;
  auto evictor_or = EvictorFromFlags(f.kv_policy, *lm->model, f.bench.depth + f.bench.n_gen);
  if (!evictor_or.ok()) return ReportError(evictor_or.status());
  std::unique_ptr<KvEvictor> evictor = std::move(*evictor_or);
  f.bench.evictor = evictor.get();
  auto sparse = SparseFromFlags(f.kv_policy, *lm->model);
  if (!sparse.ok()) return ReportError(sparse.status());
  if (*sparse && f.bench.batch > 0)
    return ReportError(InvalidArgument("--sparse-attn is measured on one sequence (no --batch): the batched "
                                       "steps attend in full"));
  lm->model->set_sparse_attention(sparse->get());  // the tg test's steps; pp stays dense
  auto r = RunBenchmark(*lm->model, f.bench);
  lm->model->set_sparse_attention(nullptr);
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
    j["kv_type"] = Name(m.kv_type());
    if (!m.kv_staircase().empty()) {
      const int64_t positions = f.bench.depth + f.bench.n_gen;
      j["kv_staircase"] = {{"spec", m.kv_staircase().ToString()},
                           {"bytes_per_token", m.kv_staircase().BytesPerToken(m.config().n_kv_head * m.config().head_dim,
                                                                              positions) * static_cast<double>(m.config().n_layer)}};
    }
    j["stream_weights"] = {{"on", m.stream_weights()}, {"decision", m.stream_decision()}};
    j["repetitions"] = f.bench.repetitions;
    const auto series = SeriesJson;
    if (f.bench.n_prompt > 0) j["pp"] = {{"tokens", f.bench.n_prompt}, {"tokens_per_second", series(r->prompt)}};
    if (f.bench.n_gen > 0)
      j["tg"] = {{"tokens", f.bench.n_gen},
                 {"depth", f.bench.depth},
                 {"batch", std::max(f.bench.batch, 1)},
                 {"tokens_per_second", series(r->generation)}};
    if (*sparse)
      j["sparse_attn"] = {{"policy", "tidal"}, {"top_k", (*sparse)->config().top_k},
                          {"select_layers", (*sparse)->config().select_layers}};
    if (evictor) {
      const EvictionPolicy& p = evictor->policy();
      j["kv_evict"] = {{"policy", std::string(Name(p.kind))}, {"budget", p.budget}, {"sinks", p.sinks},
                       {"recent", p.recent}};
    }
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
    if (f.bench.batch > 0) name += " x" + std::to_string(f.bench.batch) + " sequences";
    if (!m.kv_staircase().empty()) {
      name += " kv " + m.kv_staircase().ToString();
    } else if (m.kv_type() != DType::kF32) {
      name += " kv " + std::string(Name(m.kv_type()));
    }
    if (evictor)
      name += " " + std::string(Name(evictor->policy().kind)) + " budget " + std::to_string(evictor->policy().budget);
    if (*sparse) name += " tidal top " + std::to_string((*sparse)->config().top_k);
    row(name, r->generation);
  }
  std::fflush(stdout);
  std::fprintf(stderr, "weights streamed past the caches while decoding: %s\n", m.stream_decision().c_str());
  return 0;
}

}  // namespace

CommandFn AddBenchCommand(CLI::App& app) {
  auto f = std::make_shared<BenchFlags>();
  CLI::App* cmd = app.add_subcommand("bench", "Measure prompt-processing and generation speed");
  AddModelFlags(cmd, &f->model);
  cmd->add_option("-p,--n-prompt", f->bench.n_prompt, "Prompt tokens processed in one batch (0 = skip; default 512)")
      ->check(IntRange(0, int64_t{1} << 24));
  cmd->add_option("-n,--n-gen", f->bench.n_gen, "Tokens generated one at a time (0 = skip; default 128)")
      ->check(IntRange(0, int64_t{1} << 24));
  cmd->add_option("-d,--depth", f->bench.depth, "Tokens already in the KV cache before generating (default 0)")
      ->check(IntRange(0, int64_t{1} << 24));
  cmd->add_option("-b,--batch", f->bench.batch,
                  "Generate with B sequences decoded together, each after its own -d prompt, in paged KV "
                  "blocks as the server does; tokens/s counts all B (default: one sequence, dense cache)")
      ->check(IntRange(1, 4096));
  cmd->add_option("-r,--repetitions", f->bench.repetitions, "Repetitions (default 5)")->check(IntRange(1, 1000));
  cmd->add_option("-c,--ctx-size", f->ctx_size, "Positions a run may use (default: the model's trained context)")
      ->check(IntRange(0, int64_t{1} << 24));
  cmd->add_flag("--json", f->json, "Print JSON instead of a table");
  cmd->add_option("-f,--file", f->prompt_file, "Prompt text file for --spec (decoded greedily for -n tokens)")->check(NonEmpty());
  AddSpecFlags(cmd, &f->spec, /*run=*/false);
  AddKvPolicyFlags(cmd, &f->kv_policy);
  return [f] { return Bench(*f); };
}

}  // namespace fastgen::cli
