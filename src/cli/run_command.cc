// `fastgen run`: generate a continuation of a prompt, streaming it to stdout, and report prompt
// and decode speed on stderr.
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>

#include "cli/common.h"
#include "cli/commands.h"
#include "cli/grammar_flags.h"
#include "cli/sampler_flags.h"
#include "cli/spec_flags.h"
#include "decoding/beam_search.h"
#include "decoding/generate.h"
#include "decoding/speculative/speculative.h"
#include "runtime/sequence.h"
#include "tokenizer/tokenizer.h"

namespace fastgen::cli {
namespace {

struct RunFlags {
  ModelFlags model;
  std::string prompt;
  std::string prompt_file;
  std::string prompt_ids;
  int64_t n_predict = 128;
  int64_t ctx_size = 0;
  bool print_ids = false;
  bool ignore_eos = false;
  bool no_special = false;
  std::string dump_logits;
  SamplerFlags sampler;
  SpecFlags spec;
  KvPolicyFlags kv_policy;
  GrammarFlags grammar;
  std::vector<std::string> ban;
  std::vector<std::string> stop;
  int32_t beams = 0;
  float length_penalty = 1.0f;
  int32_t n_best = 1;
  int32_t beam_groups = 1;
  float diversity_penalty = 0;
};

// --beams N: beam search instead of sampling; prints the n best hypotheses (text, or ids with
// --print-ids), best first, one per line when there are several, with their scores on stderr.
int RunBeams(const RunFlags& f, Model& model, const Tokenizer* tokenizer, const std::vector<int32_t>& prompt,
             int64_t positions) {
  if (!f.spec.mode.empty() || !f.ban.empty() || !f.stop.empty() || !f.dump_logits.empty() ||
      f.kv_policy.evict != "none" || f.kv_policy.sparse != "none")
    return ReportError(InvalidArgument("--beams does not combine with --spec, --ban, --stop, --dump-logits, --kv-evict "
                                       "or --sparse-attn yet"));
  if (f.beam_groups > f.beams || f.beams % f.beam_groups != 0)
    return ReportError(InvalidArgument("--beam-groups " + std::to_string(f.beam_groups) + " must divide --beams " +
                                       std::to_string(f.beams)));
  if (f.n_best > f.beams)
    return ReportError(InvalidArgument("--n-best " + std::to_string(f.n_best) + " exceeds --beams " + std::to_string(f.beams)));
  BeamSearchOptions o;
  o.groups = f.beam_groups;
  o.diversity_penalty = f.diversity_penalty;
  auto grammar = GrammarCacheFromFlags(f.grammar, model, tokenizer);
  if (!grammar.ok()) return ReportError(grammar.status());
  o.grammar = *grammar;
  o.beams = f.beams;
  o.n_best = f.n_best;
  o.length_penalty = f.length_penalty;
  o.max_new_tokens = f.n_predict;
  o.context = positions;
  if (!f.ignore_eos) o.stop_ids = model.config().eos_ids;
  auto r = BeamSearch(model, prompt, o);
  if (!r.ok()) return ReportError(r.status());
  for (size_t i = 0; i < r->best.size(); ++i) {
    const BeamHypothesis& h = r->best[i];
    if (f.print_ids || tokenizer == nullptr) {
      for (size_t t = 0; t < h.tokens.size(); ++t) std::printf(t ? ",%d" : "%d", h.tokens[t]);
      std::printf("\n");
    } else {
      // The text without the stop id that finished it (as plain generation prints it).
      std::span<const int32_t> text(h.tokens);
      if (h.finished && !text.empty() && std::find(o.stop_ids.begin(), o.stop_ids.end(), text.back()) != o.stop_ids.end())
        text = text.first(text.size() - 1);
      std::printf("%s\n", tokenizer->Decode(text).c_str());
    }
    std::fprintf(stderr, "beam %zu: %zu tokens, log-probability %.4f, score %.4f%s\n", i + 1, h.tokens.size(), h.logprob,
                 h.score, h.finished ? " (finished)" : "");
  }
  std::fprintf(stderr,
               "beam search: %d beams in %d group(s), %lld batched passes, %lld KV blocks copied on write (peak %lld "
               "blocks), prompt %.3f s, search %.3f s\n",
               f.beams, f.beam_groups, static_cast<long long>(r->forwards), static_cast<long long>(r->block_copies),
               static_cast<long long>(r->peak_blocks), r->prefill_seconds, r->decode_seconds);
  return 0;
}

Status WriteLogits(const std::string& path, const std::vector<float>& logits) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return IoError("cannot write " + path);
  // float32 little-endian [n_tokens, vocab]; x86-64 and arm64 are little-endian already.
  const size_t wrote = std::fwrite(logits.data(), sizeof(float), logits.size(), f);
  const bool ok = std::fclose(f) == 0 && wrote == logits.size();
  return ok ? Status::Ok() : IoError("short write to " + path);
}

int Run(RunFlags& f) {
  auto lm = LoadFromFlags(f.model);
  if (!lm.ok()) return ReportError(lm.status());
  Model& model = *lm->model;
  const ModelConfig& c = model.config();
  auto sampler = ResolveSampler(f.sampler, c.vocab_size);
  if (!sampler.ok()) return ReportError(sampler.status());

  // The prompt: ids given directly, or text through the model's tokenizer.
  std::vector<int32_t> prompt;
  std::unique_ptr<Tokenizer> tokenizer;
  const bool have_text = !f.prompt.empty() || !f.prompt_file.empty();
  if (!f.prompt_ids.empty() && have_text)
    return ReportError(InvalidArgument("give either --prompt-ids or a text prompt, not both"));
  if (!f.prompt.empty() && !f.prompt_file.empty())
    return ReportError(InvalidArgument("give either -p or -f, not both"));
  // The tokenizer encodes a text prompt (-p "" included: generation from BOS) and decodes the
  // output unless ids are printed; only ids in and ids out can do without one.
  const bool text_prompt = f.prompt_ids.empty();
  if (!f.print_ids || text_prompt || f.grammar.any() || !f.ban.empty()) {
    const std::string& path = model.checkpoint().path;
    auto tok = model.checkpoint().gguf ? Tokenizer::FromGguf(*model.checkpoint().gguf) : Tokenizer::Load(path);
    if (!tok.ok()) return ReportError(tok.status().WithContext("loading the tokenizer"));
    tokenizer = std::move(*tok);
  }
  if (!f.prompt_ids.empty()) {
    auto ids = ParseIdList(f.prompt_ids);
    if (!ids.ok()) return ReportError(ids.status().WithContext("--prompt-ids"));
    for (size_t i = 0; i < ids->size(); ++i)
      if ((*ids)[i] >= c.vocab_size)
        return ReportError(InvalidArgument("--prompt-ids: token id " + std::to_string((*ids)[i]) + " (entry " +
                                           std::to_string(i) + ") is outside the vocabulary [0, " +
                                           std::to_string(c.vocab_size) + ")"));
    prompt = *ids;
  } else {
    std::string text = f.prompt;
    if (!f.prompt_file.empty()) {
      auto t = ReadTextFile(f.prompt_file, kPromptFileLimit);
      if (!t.ok()) return ReportError(t.status());
      if (t->empty()) return ReportError(InvalidArgument(f.prompt_file + ": the prompt file is empty"));
      text = *t;
    }
    WarnIfInvalidUtf8(text, f.prompt_file.empty() ? "the prompt" : f.prompt_file);
    EncodeOptions eo;
    eo.add_special_tokens = !f.no_special;
    auto ids = tokenizer->Encode(text, eo);
    if (!ids.ok()) return ReportError(ids.status());
    prompt = *ids;
    if (prompt.empty() && c.bos_id) prompt.push_back(*c.bos_id);
    if (prompt.empty()) return ReportError(InvalidArgument("the prompt is empty"));
  }

  auto ctx_or = ContextSize(model, f.ctx_size);
  if (!ctx_or.ok()) return ReportError(ctx_or.status());
  const int64_t ctx = *ctx_or;
  if (static_cast<int64_t>(prompt.size()) > ctx)
    return ReportError(InvalidArgument("the prompt has " + std::to_string(prompt.size()) +
                                       " tokens but the context holds " + std::to_string(ctx)));
  WarnIfGenerationTruncated(static_cast<int64_t>(prompt.size()), f.n_predict, ctx);
  const int64_t positions = std::min<int64_t>(ctx, static_cast<int64_t>(prompt.size()) + f.n_predict);
  auto evictor_or = EvictorFromFlags(f.kv_policy, model, positions);
  if (!evictor_or.ok()) return ReportError(evictor_or.status());
  std::unique_ptr<KvEvictor> evictor = std::move(*evictor_or);
  if (evictor && !f.spec.mode.empty())
    return ReportError(InvalidArgument("--kv-evict does not combine with --spec yet: speculative rollback would "
                                       "have to undo evictions"));
  if (f.beams > 0 && !model.kv_staircase().empty())
    return ReportError(InvalidArgument("--beams does not combine with --kv-staircase yet (beams share a paged cache)"));
  if (f.beams > 0) return RunBeams(f, model, tokenizer.get(), prompt, positions);  // a paged cache of its own
  // Under eviction the cache holds the budget and a prompt piece; positions still run to -c.
  auto kv = model.NewKvCache(evictor ? EvictingCacheSlots(evictor->policy(), positions) : positions);
  if (!kv.ok()) return ReportError(kv.status());

  GenerateOptions go;
  go.max_new_tokens = f.n_predict;
  go.sampler = *sampler;
  go.ignore_eos = f.ignore_eos;
  go.evictor = evictor.get();
  auto sparse = SparseFromFlags(f.kv_policy, model);
  if (!sparse.ok()) return ReportError(sparse.status());
  if (*sparse && !f.spec.mode.empty())
    return ReportError(InvalidArgument("--sparse-attn does not combine with --spec yet (verification is not a "
                                       "single-token step)"));
  model.set_sparse_attention(sparse->get());  // decode steps only; the model outlives nothing here
  std::vector<int32_t> end_ids;
  if (!f.ignore_eos) end_ids = c.eos_ids;
  auto constraint = ConstraintFromFlags(f.grammar, model, tokenizer.get(), end_ids);
  if (!constraint.ok()) return ReportError(constraint.status());
  go.constraint = constraint->get();
  if (!f.ban.empty()) {
    if (!tokenizer) return ReportError(InvalidArgument("--ban needs the model's tokenizer"));
    if (!f.spec.mode.empty()) return ReportError(InvalidArgument("--ban does not combine with --spec yet"));
    if (evictor) return ReportError(InvalidArgument("--ban does not combine with --kv-evict (a rewind would have to undo evictions)"));
    go.banned_strings = f.ban;
    go.token_bytes = &tokenizer->TokenBytes();
  }
  go.max_positions = positions;
  std::vector<float> prompt_logits;
  if (!f.dump_logits.empty()) go.prompt_logits = &prompt_logits;

  // Text out through the server's TextOutput: whole UTF-8 characters only, held back while it
  // could be the start of a --stop string, and cut before the first one.
  if (!f.stop.empty() && f.print_ids) return ReportError(InvalidArgument("--stop needs text output (not --print-ids)"));
  std::unique_ptr<runtime::TextOutput> stream;
  if (!f.print_ids && tokenizer) stream = std::make_unique<runtime::TextOutput>(tokenizer.get(), false, f.stop);
  bool first = true, stopped = false;
  auto on_token = [&](int32_t id) {
    if (stream) {
      const std::string piece = stream->Push(id, &stopped);
      std::fwrite(piece.data(), 1, piece.size(), stdout);
      if (stopped) return false;
    } else {
      std::printf(first ? "%d" : ",%d", id);
    }
    first = false;
    std::fflush(stdout);
    return true;
  };
  SpecSetup spec;
  std::optional<GenerateResult> plain;  // --spec-compare's baseline
  if (!f.spec.mode.empty()) {
    auto st = SetUpSpeculation(f.spec, model, lm->pool.get(), prompt, tokenizer.get());
    if (!st.ok()) return ReportError(st.status());
    spec = std::move(*st);
    if (f.spec.compare && spec.proposer) {
      GenerateOptions quiet = go;
      quiet.prompt_logits = nullptr;
      // The baseline follows the grammar from its start too, on a constraint of its own.
      auto baseline_constraint = ConstraintFromFlags(f.grammar, model, tokenizer.get(), end_ids);
      if (!baseline_constraint.ok()) return ReportError(baseline_constraint.status());
      quiet.constraint = baseline_constraint->get();
      auto base = Generate(model, *kv, prompt, quiet, nullptr);
      if (!base.ok()) return ReportError(base.status());
      plain = std::move(*base);
      kv->Clear();
    }
  }
  Expected<GenerateResult> res = GenerateResult{};
  std::optional<speculative::SpeculativeResult> spec_result;
  if (spec.proposer) {
    speculative::SpeculativeOptions so = f.spec.verifier;
    so.adaptive_fallback = !f.spec.no_fallback;
    auto r = speculative::GenerateSpeculative(model, *kv, prompt, go, so, *spec.proposer, on_token);
    if (!r.ok()) return ReportError(r.status());
    spec_result = std::move(*r);
    res = spec_result->generation;
  } else {
    res = Generate(model, *kv, prompt, go, on_token);
  }
  if (!res.ok()) return ReportError(res.status());
  if (stream && !stopped) {
    const std::string rest = stream->Flush();
    std::fwrite(rest.data(), 1, rest.size(), stdout);
  }
  std::printf("\n");
  if (!f.dump_logits.empty()) {
    Status st = WriteLogits(f.dump_logits, prompt_logits);
    if (!st.ok()) return ReportError(st);
  }
  const auto& r = *res;
  const double n_gen = static_cast<double>(r.tokens.size());
  std::fprintf(stderr,
               "prompt: %lld tokens in %.3f s (%.2f tokens/s)\n"
               "decode: %lld tokens in %.3f s (%.2f tokens/s)\n",
               static_cast<long long>(r.prompt_tokens), r.prefill_seconds,
               r.prefill_seconds > 0 ? static_cast<double>(r.prompt_tokens) / r.prefill_seconds : 0.0,
               static_cast<long long>(r.tokens.size()), r.decode_seconds,
               r.decode_seconds > 0 && n_gen > 1 ? (n_gen - 1) / r.decode_seconds : 0.0);
  if (spec_result) PrintSpecStats(*spec_result, spec.proposer->name(), plain ? &*plain : nullptr);
  return 0;
}

}  // namespace

CommandFn AddRunCommand(CLI::App& app) {
  auto f = std::make_shared<RunFlags>();
  CLI::App* cmd = app.add_subcommand("run", "Generate a continuation of a prompt");
  AddModelFlags(cmd, &f->model);
  cmd->add_option("-p,--prompt", f->prompt, "Prompt text");
  cmd->add_option("-f,--file", f->prompt_file, "Read the prompt text from a file (at most 64 MiB)")->check(NonEmpty());
  cmd->add_option("--prompt-ids", f->prompt_ids, "Prompt as token ids, e.g. 1,2,3 (no tokenizer involved)")->check(NonEmpty());
  cmd->add_option("-n,--n-predict", f->n_predict, "Tokens to generate (default 128)")->check(IntRange(0, int64_t{1} << 30));
  cmd->add_option("-c,--ctx-size", f->ctx_size, "Context size in tokens (default: the model's)")->check(IntRange(0, int64_t{1} << 24));
  cmd->add_flag("--print-ids", f->print_ids, "Print generated token ids (comma-separated) instead of text");
  cmd->add_flag("--ignore-eos", f->ignore_eos, "Do not stop at the model's end-of-sequence tokens");
  cmd->add_flag("--no-special", f->no_special, "Do not add the tokenizer's special tokens (BOS) to a text prompt");
  cmd->add_option("--dump-logits", f->dump_logits,
                  "Write the logits of every prompt position to FILE as little-endian float32 [n_tokens, vocab]")
      ->check(NonEmpty());
  AddSamplerFlags(cmd, &f->sampler);
  AddSpecFlags(cmd, &f->spec, /*run=*/true);
  AddKvPolicyFlags(cmd, &f->kv_policy);
  AddGrammarFlags(cmd, &f->grammar);
  cmd->add_option("--beams", f->beams, "Beam search with N beams instead of sampling (sampling flags are ignored)")
      ->check(IntRange(1, 64));
  cmd->add_option("--length-penalty", f->length_penalty,
                  "Beam search: a hypothesis scores log-probability / length^P (default 1; > 0 favours longer ones)")
      ->check(FloatRange({-10, 10}));
  cmd->add_option("--n-best", f->n_best, "Beam search: print the N best hypotheses, one per line (default 1)")
      ->check(IntRange(1, 64));
  cmd->add_option("--beam-groups", f->beam_groups,
                  "Diverse beam search: split the beams into G groups that choose in turn (default 1)")
      ->check(IntRange(1, 64));
  cmd->add_option("--diversity-penalty", f->diversity_penalty,
                  "Diverse beam search: log-probability a group pays per earlier group's choice of the same token at "
                  "the same step (default 0)")
      ->check(FloatRange({0, 1000}));
  cmd->add_option("--stop", f->stop, "End the output before this string, however tokens split it (repeatable)")
      ->check(NonEmpty());
  cmd->add_option("--ban", f->ban,
                  "A string the output must never contain, however tokens split it (repeatable): generation rewinds "
                  "to where it began and samples again")
      ->check(NonEmpty());
  return [f] { return Run(*f); };
}

}  // namespace fastgen::cli
