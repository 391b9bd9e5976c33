// `fastgen perplexity -m MODEL -f TEXT`: perplexity by llama-perplexity's method (chunks of -c
// tokens, the second half of each scored), and KL-divergence against a base model's saved
// distributions (--kl-divergence-base, then --kl-divergence).
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <memory>

#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "cli/commands.h"
#include "core/diagnostics.h"
#include "core/mapped_file.h"
#include "eval/kl_divergence.h"
#include "eval/perplexity.h"
#include "tokenizer/tokenizer.h"

namespace fastgen::cli {
namespace {

struct PerplexityFlags {
  ModelFlags model;
  std::string text_file;
  int64_t ctx = 512;
  int64_t chunks = -1;
  int64_t batch = 512;
  bool json = false;
  bool parse_special = false;
  std::string kl_base;     // --kl-divergence-base: write
  std::string kl_compare;  // --kl-divergence: read and compare
  int64_t kl_top_k = 64;
  KvPolicyFlags kv_policy;
};

// The progress line on a terminal: the running estimate after each chunk, and the time left.
void ShowProgress(const eval::PerplexityProgress& p, bool tty) {
  const double eta = p.seconds / static_cast<double>(p.chunk) * static_cast<double>(p.chunks - p.chunk);
  if (tty) {
    constexpr int kWidth = 30;
    const int filled = static_cast<int>(kWidth * p.chunk / p.chunks);
    std::fprintf(stderr, "\r[%.*s%*s] %lld/%lld chunks  ppl %.4f  %.0f s, %.0f s left ", filled,
                 "##############################", kWidth - filled, "", static_cast<long long>(p.chunk),
                 static_cast<long long>(p.chunks), p.ppl, p.seconds, eta);
    if (p.chunk == p.chunks) std::fprintf(stderr, "\n");
  } else {
    std::fprintf(stderr, "[%lld/%lld] ppl %.4f\n", static_cast<long long>(p.chunk), static_cast<long long>(p.chunks),
                 p.ppl);
  }
}

nlohmann::json KlJson(const eval::KlStats& s, const std::string& base) {
  return {{"base", base},
          {"top_k", s.top_k},
          {"positions", s.positions},
          {"ppl_base", s.ppl_base},
          {"ppl", s.ppl},
          {"ppl_ratio", s.ppl_ratio},
          {"ppl_ratio_stderr", s.ppl_ratio_stderr},
          {"ln_ppl_ratio", s.ln_ppl_ratio},
          {"ln_ppl_ratio_stderr", s.ln_ppl_ratio_stderr},
          {"kld_mean", s.kld_mean},
          {"kld_stderr", s.kld_stderr},
          {"kld_median", s.kld_median},
          {"kld_p90", s.kld_p90},
          {"kld_p99", s.kld_p99},
          {"kld_max", s.kld_max},
          {"same_top", s.same_top},
          {"same_top_stderr", s.same_top_stderr},
          {"delta_p_mean", s.delta_p_mean},
          {"delta_p_stderr", s.delta_p_stderr}};
}

void PrintKl(const eval::KlStats& s, const std::string& base) {
  std::printf("KL-divergence from %s (base top-%d + rest):\n", EscapeForTerminal(base).c_str(), s.top_k);
  std::printf("  positions        %lld\n", static_cast<long long>(s.positions));
  std::printf("  ppl(base)        %.4f\n", s.ppl_base);
  std::printf("  ppl              %.4f\n", s.ppl);
  std::printf("  ppl / ppl(base)  %.6f ± %.6f\n", s.ppl_ratio, s.ppl_ratio_stderr);
  std::printf("  mean KLD         %.6f ± %.6f\n", s.kld_mean, s.kld_stderr);
  std::printf("  median KLD       %.6f\n", s.kld_median);
  std::printf("  90%% KLD          %.6f\n", s.kld_p90);
  std::printf("  99%% KLD          %.6f\n", s.kld_p99);
  std::printf("  max KLD          %.6f\n", s.kld_max);
  std::printf("  same top token   %.3f ± %.3f %%\n", 100 * s.same_top, 100 * s.same_top_stderr);
  std::printf("  mean Δp(next)    %.3f ± %.3f %%\n", 100 * s.delta_p_mean, 100 * s.delta_p_stderr);
}

int Perplexity(PerplexityFlags& f) {
  if (!f.kl_base.empty() && !f.kl_compare.empty())
    return ReportError(InvalidArgument("give either --kl-divergence-base (write) or --kl-divergence (compare), not both"));
  auto lm = LoadFromFlags(f.model);
  if (!lm.ok()) return ReportError(lm.status());
  Model& m = *lm->model;
  auto tok = m.checkpoint().gguf ? Tokenizer::FromGguf(*m.checkpoint().gguf) : Tokenizer::Load(m.checkpoint().path);
  if (!tok.ok()) return ReportError(tok.status().WithContext("loading the tokenizer"));
  auto text = ReadTextFile(f.text_file, kEvalTextLimit);
  if (!text.ok()) return ReportError(text.status());
  WarnIfInvalidUtf8(*text, f.text_file);
  auto ctx = ContextSize(m, f.ctx);
  if (!ctx.ok()) return ReportError(ctx.status());

  // As llama-perplexity tokenizes: the tokenizer's own special tokens added (BOS where it adds
  // one), special-token text in the file read as plain text unless --parse-special.
  EncodeOptions eo;
  eo.add_special_tokens = true;
  eo.parse_special = f.parse_special;
  auto tokens = (*tok)->Encode(*text, eo);
  if (!tokens.ok()) return ReportError(tokens.status());
  eval::PerplexityOptions o;
  o.ctx = *ctx;
  o.chunks = f.chunks;
  o.batch = f.batch;
  auto evictor_or = EvictorFromFlags(f.kv_policy, m, o.ctx);
  if (!evictor_or.ok()) return ReportError(evictor_or.status());
  std::unique_ptr<KvEvictor> evictor = std::move(*evictor_or);
  o.evictor = evictor.get();
  auto sparse = SparseFromFlags(f.kv_policy, m);
  if (!sparse.ok()) return ReportError(sparse.status());
  o.sparse = sparse->get();
  const auto bos = (*tok)->bos_id();
  if (bos && !tokens->empty() && tokens->front() == *bos) o.bos = bos;
  if (static_cast<int64_t>(tokens->size()) < 2 * o.ctx)
    return ReportError(InvalidArgument(f.text_file + ": " + std::to_string(tokens->size()) + " tokens; -c " +
                                       std::to_string(o.ctx) + " needs at least " + std::to_string(2 * o.ctx) +
                                       " (two chunks, as llama-perplexity)"));
  const int64_t chunks = eval::PerplexityChunks(static_cast<int64_t>(tokens->size()), o);
  if (f.chunks > chunks && chunks > 0)
    Warn("--chunks " + std::to_string(f.chunks) + ": the text holds " + std::to_string(chunks) + " chunks of " +
         std::to_string(o.ctx) + " tokens; evaluating " + std::to_string(chunks));

  // What the run evaluates, for the KL-divergence file: the exact tokens of every chunk.
  eval::KlFileHeader run;
  run.vocab = static_cast<uint32_t>(m.config().vocab_size);
  run.ctx = static_cast<uint32_t>(o.ctx);
  run.chunks = static_cast<uint32_t>(chunks);
  run.positions = static_cast<uint64_t>(chunks) * static_cast<uint64_t>(o.ctx - o.ctx / 2 - 1);
  run.top_k = static_cast<uint32_t>(f.kl_top_k);
  {
    std::vector<int32_t> evaluated(tokens->begin(), tokens->begin() + chunks * o.ctx);
    for (int64_t c = 0; c < chunks && o.bos; ++c) evaluated[static_cast<size_t>(c * o.ctx)] = *o.bos;
    run.token_hash = eval::HashTokens(evaluated);
  }
  std::unique_ptr<eval::KlBaseWriter> writer;
  std::unique_ptr<eval::KlComparer> comparer;
  std::function<Status(const eval::ScoredPosition&)> observe;
  if (chunks > 0 && !f.kl_base.empty()) {
    auto w = eval::KlBaseWriter::Create(f.kl_base, run);
    if (!w.ok()) return ReportError(w.status());
    writer = std::move(*w);
    observe = [&](const eval::ScoredPosition& p) { return writer->Add(p); };
  }
  if (!f.kl_compare.empty()) {
    auto c = eval::KlComparer::Open(f.kl_compare);
    if (!c.ok()) return ReportError(c.status());
    comparer = std::move(*c);
    if (chunks > 0) {
      if (Status s = comparer->CheckMatches(run); !s.ok()) return ReportError(s);
    }
    observe = [&](const eval::ScoredPosition& p) { return comparer->Add(p); };
  }

  const bool tty = ::isatty(STDERR_FILENO) && !f.json;
  auto r = eval::ComputePerplexity(m, *tokens, o, observe,
                                   [&](const eval::PerplexityProgress& p) { if (!f.json) ShowProgress(p, tty); });
  if (!r.ok()) return ReportError(r.status());
  if (writer) {
    if (Status s = writer->Finish(); !s.ok()) return ReportError(s);
  }
  const double tps = r->seconds > 0 ? static_cast<double>(r->chunks * r->ctx) / r->seconds : 0;
  // What the cache keeps per token (before eviction): a staircase at this context's steady
  // state, counting each step's share.
  const ModelConfig& mc = m.config();
  const int64_t row_elems = mc.n_kv_head * mc.head_dim;
  const double f16_bytes = 2.0 * static_cast<double>(*RowBytes(DType::kF16, row_elems) * mc.n_layer);
  const std::string kv_name = m.kv_staircase().empty() ? std::string(Name(m.kv_type())) : m.kv_staircase().ToString();
  const double kv_bytes = m.kv_staircase().empty()
                              ? 2.0 * static_cast<double>(*RowBytes(m.kv_type(), row_elems) * mc.n_layer)
                              : m.kv_staircase().BytesPerToken(row_elems, r->ctx) * static_cast<double>(mc.n_layer);
  // What the cache allocates per position of the context (a staircase's rings and its last step
  // both hold the newest tokens).
  const double kv_allocated = m.PlannedKvCacheBytes(r->ctx) / static_cast<double>(r->ctx);
  if (f.json) {
    nlohmann::json j;
    j["model"] = m.checkpoint().path;
    j["text"] = f.text_file;
    j["tokens"] = r->tokens;
    j["ctx"] = r->ctx;
    j["chunks"] = r->chunks;
    j["scored"] = r->scored;
    j["bos"] = o.bos ? nlohmann::json(*o.bos) : nlohmann::json(nullptr);
    j["mean_nll"] = r->mean_nll;
    j["ppl"] = r->ppl;
    j["ppl_stderr"] = r->ppl_stderr;
    j["running_ppl"] = r->running_ppl;
    j["seconds"] = r->seconds;
    j["tokens_per_second"] = tps;
    j["kv_cache"] = {{"type", kv_name}, {"bytes_per_token", kv_bytes}, {"fraction_of_f16", kv_bytes / f16_bytes},
                     {"allocated_bytes_per_position", kv_allocated}};
    if (evictor) {
      const EvictionPolicy& p = evictor->policy();
      j["kv_evict"] = {{"policy", std::string(Name(p.kind))}, {"budget", p.budget}, {"sinks", p.sinks},
                       {"recent", p.recent}};
    }
    if (o.sparse)
      j["sparse_attn"] = {{"policy", "tidal"}, {"top_k", o.sparse->config().top_k},
                          {"select_layers", o.sparse->config().select_layers}};
    if (writer) j["kl_divergence_base"] = f.kl_base;
    if (comparer) j["kl_divergence"] = KlJson(comparer->Finish(), f.kl_compare);
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  std::printf("model:   %s\n", EscapeForTerminal(m.checkpoint().path).c_str());
  std::printf("text:    %s: %lld tokens, %lld chunks of %lld, %lld positions scored\n",
              EscapeForTerminal(f.text_file).c_str(), static_cast<long long>(r->tokens),
              static_cast<long long>(r->chunks), static_cast<long long>(r->ctx), static_cast<long long>(r->scored));
  std::printf("speed:   %.1f tokens/s (%.1f s)\n", tps, r->seconds);
  std::printf("cache:   %s, %.0f bytes per token in every layer's keys and values (%.3f of f16); %.0f allocated "
              "per position\n", kv_name.c_str(), kv_bytes, kv_bytes / f16_bytes, kv_allocated);
  if (evictor) {
    const EvictionPolicy& p = evictor->policy();
    std::printf("kv:      --kv-evict %s, %lld tokens kept per layer head (%lld sinks, %lld recent)\n",
                std::string(Name(p.kind)).c_str(), static_cast<long long>(p.budget), static_cast<long long>(p.sinks),
                static_cast<long long>(p.recent));
  }
  if (o.sparse) {
    std::string layers;
    for (int32_t l : o.sparse->config().select_layers) layers += (layers.empty() ? "" : ",") + std::to_string(l);
    std::printf("attn:    --sparse-attn tidal, top %lld slots, selection layers %s\n",
                static_cast<long long>(o.sparse->config().top_k), layers.c_str());
  }
  std::printf("ppl = %.4f ± %.5f\n", r->ppl, r->ppl_stderr);
  if (writer) std::printf("saved the top-%lld distributions to %s\n", static_cast<long long>(f.kl_top_k),
                          EscapeForTerminal(f.kl_base).c_str());
  if (comparer) PrintKl(comparer->Finish(), f.kl_compare);
  return 0;
}

}  // namespace

CommandFn AddPerplexityCommand(CLI::App& app) {
  auto f = std::make_shared<PerplexityFlags>();
  CLI::App* cmd = app.add_subcommand(
      "perplexity", "Perplexity over a text (llama-perplexity's method) and KL-divergence against a base model");
  AddModelFlags(cmd, &f->model);
  cmd->add_option("-f,--file", f->text_file, "Text to evaluate")->required()->check(NonEmpty());
  cmd->add_option("-c,--ctx-size", f->ctx, "Tokens per chunk; the second half of each is scored (default 512)")
      ->check(IntRange(4, int64_t{1} << 24));
  cmd->add_option("--chunks", f->chunks, "Chunks evaluated (default: every whole chunk of the text)")
      ->check(IntRange(1, int64_t{1} << 30));
  cmd->add_option("-b,--batch-size", f->batch, "Tokens per forward pass (default 512)")->check(IntRange(1, 1 << 16));
  cmd->add_flag("--json", f->json, "Print JSON instead of text");
  cmd->add_flag("--parse-special", f->parse_special,
                "Read special-token text in the file (e.g. <|endoftext|>) as the special token "
                "(default: plain text, as llama-perplexity does)");
  cmd->add_option("--kl-divergence-base", f->kl_base,
                  "Save this model's distributions over the text to FILE (top-k logits + log-sum-exp)")
      ->check(NonEmpty());
  cmd->add_option("--kl-divergence", f->kl_compare,
                  "Compare this model with the distributions saved in FILE by --kl-divergence-base")
      ->check(NonEmpty());
  auto* k = cmd->add_option("--kl-top-k", f->kl_top_k, "Logits saved per position by --kl-divergence-base (default 64)")
      ->check(IntRange(1, 1 << 20));
  k->needs("--kl-divergence-base");
  AddKvPolicyFlags(cmd, &f->kv_policy);
  return [f] { return Perplexity(*f); };
}

}  // namespace fastgen::cli
