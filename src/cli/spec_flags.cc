#include "cli/spec_flags.h"

#include <cstdio>
#include <vector>

#include "cli/common.h"
#include "core/diagnostics.h"

namespace fastgen::cli {

void AddSpecFlags(CLI::App* cmd, SpecFlags* f, bool run) {
  SpecFlags& sp = *f;
  CLI::Option* spec =
      cmd->add_option("--spec", sp.mode, "Speculative decoding: draft | lookup | jacobi | layerskip (lossless: same output as plain)");
  const size_t first = cmd->get_options().size();
  cmd->add_option("--draft-model", sp.draft_model, "Draft model for --spec draft (same tokenizer as the target)");
  cmd->add_option("--draft-weights", sp.draft_weights,
                  "Weight type the draft model runs in: q8_0 (default: half of bf16's bytes, the "
                  "same acceptance on fg-draft), f16, bf16, q4_0, ..., or keep (the file's). Never "
                  "changes the output, only how often drafts are accepted");
  cmd->add_option("--draft-max", sp.draft.max_length, "Longest draft chain / tree depth (default 12)");
  cmd->add_option("--draft-init", sp.draft.initial_length, "Initial draft length before adapting (default 2)");
  cmd->add_flag("--draft-fixed", [&sp](int64_t) { sp.draft.adaptive_length = false; }, "Keep the draft length fixed at --draft-init");
  cmd->add_option("--draft-min-conf", sp.draft.min_confidence, "Stop drafting when the draft's top probability falls below this (BiLD fallback threshold; default 0 = off)");
  cmd->add_option("--draft-vocab", sp.draft.vocab_prefix,
                  "The draft proposes only token ids below this (FR-Spec: byte-level BPE numbers its "
                  "pieces most frequent first) and projects only those rows of its output matrix; "
                  "0 = the whole vocabulary. Speed only")->check(CLI::NonNegativeNumber);
  cmd->add_option("--draft-tree", sp.draft.tree_width, "Token tree: children kept per level (greedy only; 1 = chain, default)");
  cmd->add_option("--spec-budget", sp.budget, "Most drafted tokens verified per step (default 12 for lookup, 4 otherwise)")->check(CLI::Range(0, 1 << 20));
  cmd->add_option("--lookup-ngram", sp.lookup.max_ngram, "Longest n-gram prompt lookup matches (default 3)");
  cmd->add_option("--lookup-len", sp.lookup.max_length, "Tokens copied per lookup match (default 10)");
  cmd->add_option("--lookup-branches", sp.lookup.branches, "Lookup matches merged into a token tree (default 1)");
  cmd->add_flag("--lookup-first", [&sp](int64_t) { sp.lookup_first = 1; },
                "With --spec draft|jacobi|layerskip: try prompt lookup first each step; the proposer "
                "drafts only when the context has nothing to copy (default, except with --bild)");
  cmd->add_flag("--no-lookup-first", [&sp](int64_t) { sp.lookup_first = 0; },
                "The proposer alone, without prompt lookup ahead of it");
  cmd->add_option("--jacobi-window", sp.jacobi.window, "Jacobi: guessed tokens carried per step (default 5)");
  cmd->add_option("--jacobi-ngram", sp.jacobi.ngram, "Jacobi: n-gram length of the pool (default 4)");
  cmd->add_option("--skip-layers", sp.skip_layers, "Layers skipped by --spec layerskip, e.g. 4,5,6, or auto (default: search on the calibration text)");
  cmd->add_option("--calibration", sp.calibration_file, "Text file for --skip-layers auto (default: the prompt)");
  cmd->add_flag("--bild", sp.verifier.bild, "BiLD policy: keep draft tokens the target finds plausible (NOT lossless; greedy only)");
  cmd->add_option("--bild-rollback", sp.verifier.bild_rollback, "BiLD rollback threshold: reject a draft token whose target NLL exceeds this (nats, default 2)");
  cmd->add_flag("--spec-no-fallback", sp.no_fallback, "Always speculate, even when plain decoding measures faster");
  if (run) {
    cmd->add_flag("--spec-compare", sp.compare, "Also decode plainly first and report the measured wall-clock speedup");
  }
  // Without --spec these flags would change nothing: a usage error ("--draft-model requires
  // --spec"), not a run that silently decodes plainly.
  const std::vector<CLI::Option*> added = cmd->get_options();
  for (size_t i = first; i < added.size(); ++i) added[i]->needs(spec);
}

Expected<SpecSetup> SetUpSpeculation(SpecFlags& f, Model& target, ThreadPool* pool,
                                     std::span<const int32_t> prompt, const Tokenizer* tokenizer) {
  SpecSetup out;
  speculative::ProposerConfig pc;
  FG_ASSIGN_OR_RETURN(pc.mode, speculative::ParseSpecMode(f.mode));
  f.verifier.max_draft = f.budget >= 0 ? f.budget : speculative::DefaultDraftBudget(pc.mode);
  if (pc.mode == speculative::SpecMode::kLookup) {
    if (f.lookup_first == 1)
      return InvalidArgument("--lookup-first puts prompt lookup ahead of another proposer; --spec lookup is lookup alone");
    f.verifier.lookup_first = false;
  } else {
    // BiLD keeps the draft model's own tokens under its lenient rule: not lookup's copies unless asked.
    f.verifier.lookup_first = f.lookup_first == -1 ? !f.verifier.bild : f.lookup_first == 1;
  }
  f.verifier.lookup = f.lookup;
  f.verifier.lookup_budget = speculative::DefaultDraftBudget(speculative::SpecMode::kLookup);
  pc.draft_options = f.draft;
  pc.lookup_options = f.lookup;
  pc.jacobi_options = f.jacobi;
  if (pc.mode == speculative::SpecMode::kDraft) {
    if (f.draft_model.empty()) return InvalidArgument("--spec draft needs --draft-model PATH");
    ModelOptions draft_options;
    draft_options.kv_type = target.kv_type();  // --kv-type applies to both models
    if (f.draft_weights != "keep") {
      const std::optional<DType> type = DTypeFromName(f.draft_weights);
      if (!type) return InvalidArgument("--draft-weights '" + f.draft_weights + "' is not a weight type or keep");
      draft_options.weight_type = *type;
    }
    FG_ASSIGN_OR_RETURN(out.draft, LoadModel(f.draft_model, pool, draft_options));
    pc.draft = out.draft.get();
  }
  if (pc.mode == speculative::SpecMode::kLayerSkip) {
    if (f.skip_layers.empty() || f.skip_layers == "auto") {
      std::vector<int32_t> calibration(prompt.begin(), prompt.end());
      if (!f.calibration_file.empty()) {
        if (!tokenizer) return InvalidArgument("--calibration needs the model's tokenizer");
        FG_ASSIGN_OR_RETURN(std::string text, ReadTextFile(f.calibration_file, kCalibrationFileLimit));
        FG_ASSIGN_OR_RETURN(calibration, tokenizer->Encode(text, EncodeOptions{}));
      }
      if (static_cast<int64_t>(calibration.size()) > target.config().max_context) {
        Warn("--calibration: the text has " + std::to_string(calibration.size()) + " tokens; the layer search uses the first " +
             std::to_string(target.config().max_context) + " (the model's context)");
        calibration.resize(static_cast<size_t>(target.config().max_context));
      }
      FG_ASSIGN_OR_RETURN(auto choice, speculative::SearchSkipLayers(target, calibration, {}));
      if (choice.layers.empty()) {  // nothing pays: decode plainly
        std::fprintf(stderr,
                     "layer-skip search: no subset is predicted to gain %.0f%% (best: skip [%s], %.2fx); "
                     "decoding plainly\n",
                     (choice.min_gain - 1) * 100, FormatIdList(choice.best_candidate).c_str(), choice.best_prediction);
        return out;
      }
      std::fprintf(stderr, "layer-skip search: skip [%s], agreement %.3f, predicted speedup %.2fx\n",
                   FormatIdList(choice.layers).c_str(), choice.agreement, choice.predicted_speedup);
      pc.draft_options.skip_layers = choice.layers;
    } else {
      FG_ASSIGN_OR_RETURN(pc.draft_options.skip_layers, ParseIdList(f.skip_layers));
    }
  }
  FG_ASSIGN_OR_RETURN(out.proposer, speculative::MakeProposer(target, pc));
  return out;
}

void PrintSpecStats(const speculative::SpeculativeResult& r, std::string_view name,
                    const GenerateResult* plain) {
  const speculative::SpeculativeStats& s = r.stats;
  const auto& g = r.generation;
  std::fprintf(stderr,
               "speculative (%.*s): acceptance %.3f (%lld of %lld drafted on the verified paths, %lld tree "
               "nodes), %.2f tokens per target forward (%lld forwards, %lld with a draft)\n",
               static_cast<int>(name.size()), name.data(), s.acceptance_rate(),
               static_cast<long long>(s.accepted), static_cast<long long>(s.drafted_path),
               static_cast<long long>(s.drafted), s.tokens_per_forward(), static_cast<long long>(s.steps),
               static_cast<long long>(s.spec_steps));
  if (s.lookup_steps > 0)
    std::fprintf(stderr, "prompt lookup (ahead of the proposer) drafted %lld of the %lld forwards with a draft\n",
                 static_cast<long long>(s.lookup_steps), static_cast<long long>(s.spec_steps));
  std::fprintf(stderr, "speculative time: %.3f s drafting, %.3f s verifying\n", s.propose_seconds, s.verify_seconds);
  const double n = static_cast<double>(g.tokens.size());
  if (plain && plain->decode_seconds > 0 && g.decode_seconds > 0) {
    const double plain_rate = static_cast<double>(plain->tokens.size()) / plain->decode_seconds;
    const double spec_rate = n / g.decode_seconds;
    std::fprintf(stderr, "speedup: %.2fx wall clock (plain %.2f tokens/s, speculative %.2f tokens/s; output %s)\n",
                 spec_rate / plain_rate, plain_rate, spec_rate,
                 plain->tokens == g.tokens ? "identical" : "differs (sampling draws differently)");
  } else if (s.plain_steps >= 4 && g.decode_seconds > 0) {
    std::fprintf(stderr, "speedup: %.2fx estimated from the plain steps taken (--spec-compare measures it)\n",
                 n * s.plain_step_seconds / g.decode_seconds);
  }
}

}  // namespace fastgen::cli
