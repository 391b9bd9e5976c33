// `fastgen run`: generate a continuation of a prompt, streaming it to stdout, and report prompt
// and decode speed on stderr.
#include <cstdio>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>

#include "cli/common.h"
#include "cli/commands.h"
#include "cli/spec_flags.h"
#include "decoding/generate.h"
#include "decoding/speculative/speculative.h"
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
  SamplerOptions sampler;
  std::vector<std::string> logit_bias;
  SpecFlags spec;
};

Status WriteLogits(const std::string& path, const std::vector<float>& logits) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return IoError("cannot write " + path);
  // float32 little-endian [n_tokens, vocab]; x86-64 and arm64 are little-endian already.
  const size_t wrote = std::fwrite(logits.data(), sizeof(float), logits.size(), f);
  const bool ok = std::fclose(f) == 0 && wrote == logits.size();
  return ok ? Status::Ok() : IoError("short write to " + path);
}

Expected<std::vector<std::pair<int32_t, float>>> ParseLogitBias(const std::vector<std::string>& items) {
  std::vector<std::pair<int32_t, float>> out;
  for (const std::string& item : items) {
    const auto eq = item.find('=');
    if (eq == std::string::npos) return InvalidArgument("--logit-bias '" + item + "' is not ID=BIAS");
    FG_ASSIGN_OR_RETURN(auto ids, ParseIdList(item.substr(0, eq)));
    if (ids.size() != 1) return InvalidArgument("--logit-bias '" + item + "' needs one token id");
    const std::string v = item.substr(eq + 1);
    float bias;
    if (v == "-inf" || v == "-INF") {
      bias = -INFINITY;
    } else {
      char* end = nullptr;
      bias = std::strtof(v.c_str(), &end);
      if (end == v.c_str() || *end != '\0') return InvalidArgument("--logit-bias '" + item + "': bad bias");
    }
    out.emplace_back(ids[0], bias);
  }
  return out;
}

int Run(RunFlags& f) {
  auto lm = LoadFromFlags(f.model);
  if (!lm.ok()) return ReportError(lm.status());
  Model& model = *lm->model;
  const ModelConfig& c = model.config();

  // The prompt: ids given directly, or text through the model's tokenizer.
  std::vector<int32_t> prompt;
  std::unique_ptr<Tokenizer> tokenizer;
  const bool have_text = !f.prompt.empty() || !f.prompt_file.empty();
  if (!f.prompt_ids.empty() && have_text)
    return ReportError(InvalidArgument("give either --prompt-ids or a text prompt, not both"));
  if (!f.print_ids || have_text) {
    const std::string& path = model.checkpoint().path;
    auto tok = model.checkpoint().gguf ? Tokenizer::FromGguf(*model.checkpoint().gguf) : Tokenizer::Load(path);
    if (!tok.ok()) {
      if (have_text || !f.print_ids) return ReportError(tok.status().WithContext("loading the tokenizer"));
    } else {
      tokenizer = std::move(*tok);
    }
  }
  if (!f.prompt_ids.empty()) {
    auto ids = ParseIdList(f.prompt_ids);
    if (!ids.ok()) return ReportError(ids.status());
    prompt = *ids;
  } else {
    std::string text = f.prompt;
    if (!f.prompt_file.empty()) {
      auto t = ReadTextFile(f.prompt_file);
      if (!t.ok()) return ReportError(t.status());
      text = *t;
    }
    EncodeOptions eo;
    eo.add_special_tokens = !f.no_special;
    auto ids = tokenizer->Encode(text, eo);
    if (!ids.ok()) return ReportError(ids.status());
    prompt = *ids;
    if (prompt.empty() && c.bos_id) prompt.push_back(*c.bos_id);
    if (prompt.empty()) return ReportError(InvalidArgument("the prompt is empty"));
  }

  const int64_t ctx = f.ctx_size > 0 ? f.ctx_size : c.max_context;
  if (static_cast<int64_t>(prompt.size()) > ctx)
    return ReportError(InvalidArgument("the prompt has " + std::to_string(prompt.size()) +
                                       " tokens but the context holds " + std::to_string(ctx)));
  auto kv = model.NewKvCache(std::min<int64_t>(ctx, static_cast<int64_t>(prompt.size()) + f.n_predict));
  if (!kv.ok()) return ReportError(kv.status());

  GenerateOptions go;
  go.max_new_tokens = f.n_predict;
  go.sampler = f.sampler;
  auto bias = ParseLogitBias(f.logit_bias);
  if (!bias.ok()) return ReportError(bias.status());
  go.sampler.logit_bias = *bias;
  go.ignore_eos = f.ignore_eos;
  std::vector<float> prompt_logits;
  if (!f.dump_logits.empty()) go.prompt_logits = &prompt_logits;

  std::unique_ptr<StreamDecoder> stream;
  if (!f.print_ids && tokenizer) stream = std::make_unique<StreamDecoder>(*tokenizer);
  bool first = true;
  auto on_token = [&](int32_t id) {
    if (stream) {
      const std::string piece = stream->Push(id);
      std::fwrite(piece.data(), 1, piece.size(), stdout);
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
  if (stream) {
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
  cmd->add_option("-f,--file", f->prompt_file, "Read the prompt text from a file");
  cmd->add_option("--prompt-ids", f->prompt_ids, "Prompt as token ids, e.g. 1,2,3 (no tokenizer involved)");
  cmd->add_option("-n,--n-predict", f->n_predict, "Tokens to generate (default 128)")->check(CLI::Range(int64_t{0}, int64_t{1} << 30));
  cmd->add_option("-c,--ctx-size", f->ctx_size, "Context size in tokens (default: the model's)")->check(CLI::Range(int64_t{0}, int64_t{1} << 24));
  cmd->add_flag("--print-ids", f->print_ids, "Print generated token ids (comma-separated) instead of text");
  cmd->add_flag("--ignore-eos", f->ignore_eos, "Do not stop at the model's end-of-sequence tokens");
  cmd->add_flag("--no-special", f->no_special, "Do not add the tokenizer's special tokens (BOS) to a text prompt");
  cmd->add_option("--dump-logits", f->dump_logits,
                  "Write the logits of every prompt position to FILE as little-endian float32 [n_tokens, vocab]");
  cmd->add_option("--temp", f->sampler.temperature, "Sampling temperature; 0 = greedy (default 0.8)")
      ->default_val(0.8f);
  cmd->add_option("--top-k", f->sampler.top_k, "Keep the K most likely tokens; 0 = off (default 40)")->default_val(40);
  cmd->add_option("--top-p", f->sampler.top_p, "Nucleus sampling mass; 1 = off (default 0.95)")->default_val(0.95f);
  cmd->add_option("--min-p", f->sampler.min_p, "Drop tokens below MIN_P x the top probability; 0 = off (default 0.05)")->default_val(0.05f);
  cmd->add_option("--repeat-penalty", f->sampler.repetition_penalty, "Repetition penalty; 1 = off (default 1)");
  cmd->add_option("--repeat-last-n", f->sampler.penalty_last_n, "Tokens the penalties look back over; -1 = all (default 64)");
  cmd->add_option("--presence-penalty", f->sampler.presence_penalty, "Presence penalty (default 0)");
  cmd->add_option("--frequency-penalty", f->sampler.frequency_penalty, "Frequency penalty (default 0)");
  cmd->add_option("--logit-bias", f->logit_bias, "ID=BIAS added to a token's logit (repeatable; -inf bans)");
  cmd->add_option("-s,--seed", f->sampler.seed, "Random seed (default 0)");
  AddSpecFlags(cmd, &f->spec, /*run=*/true);
  return [f] { return Run(*f); };
}

}  // namespace fastgen::cli
