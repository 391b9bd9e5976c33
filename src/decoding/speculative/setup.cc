#include "decoding/speculative/setup.h"

#include <algorithm>
#include <chrono>
#include <cmath>

namespace fastgen::speculative {
namespace {

int32_t ArgMax(const float* row, int64_t vocab) { return static_cast<int32_t>(std::max_element(row, row + vocab) - row); }

// How often the skipped model's next-token argmax equals the full model's, drafting as the
// layer-skip proposer does: over the target's cached rows of the text before each position
// (Draft & Verify). `cache` holds the whole text as the target computed it. The n =
// full_next.size() positions are the slots before the text's last one, and full_next[i] is the
// target's argmax after the i-th of them. Each is one skipped one-token pass after the text
// before it, latest first: a pass writes its kept layers' rows into its own slot, which only
// later positions (already done) read. The target then recomputes those slots. Every candidate
// is measured at the same positions, so they are compared on the same tokens.
Expected<double> SkippedAgreement(Model& target, std::span<const int32_t> text, KvCache& cache,
                                  const std::vector<int32_t>& full_next, std::span<const int32_t> skip) {
  BatchLayout layout;
  layout.skip_layers = skip;
  const int64_t vocab = target.config().vocab_size;
  const auto n = static_cast<int64_t>(full_next.size());
  const int64_t first = static_cast<int64_t>(text.size()) - 1 - n;  // the first position's slot
  std::vector<float> logits;
  int64_t same = 0;
  for (int64_t i = n - 1; i >= 0; --i) {
    cache.Truncate(first + i);
    FG_RETURN_IF_ERROR(target.Forward(text.subspan(static_cast<size_t>(first + i), 1), layout, cache, LogitsMode::kLast, &logits));
    same += ArgMax(logits.data(), vocab) == full_next[static_cast<size_t>(i)];
  }
  cache.Truncate(first);
  FG_RETURN_IF_ERROR(target.Forward(text.subspan(static_cast<size_t>(first)), cache, LogitsMode::kLast, &logits));
  return n == 0 ? 0.0 : static_cast<double>(same) / static_cast<double>(n);
}

struct TimedPass {
  int64_t tokens;       // a pass over the first `tokens` tokens
  BatchLayout layout;
};

// Median seconds of each pass after the first `base` cache rows (the cache is truncated back
// after each). The passes are timed in interleaved rounds, so a slow stretch of the machine
// hits all of them alike and their ratios hold.
Expected<std::vector<double>> TimePasses(Model& m, KvCache& kv, int64_t base, std::span<const int32_t> tokens,
                                         const std::vector<TimedPass>& passes) {
  constexpr int kRounds = 9;
  std::vector<std::vector<double>> times(passes.size());
  std::vector<float> out;
  for (int round = 0; round < kRounds; ++round) {
    for (size_t p = 0; p < passes.size(); ++p) {
      kv.Truncate(base);
      const auto t0 = std::chrono::steady_clock::now();
      FG_RETURN_IF_ERROR(m.Forward(tokens.first(static_cast<size_t>(passes[p].tokens)), passes[p].layout, kv,
                                   LogitsMode::kAll, &out));
      times[p].push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
  }
  kv.Truncate(base);
  std::vector<double> medians;
  for (auto& t : times) {
    std::sort(t.begin(), t.end());
    medians.push_back(t[t.size() / 2]);
  }
  return medians;
}

}  // namespace

Expected<SpecMode> ParseSpecMode(const std::string& name) {
  if (name == "draft") return SpecMode::kDraft;
  if (name == "lookup") return SpecMode::kLookup;
  if (name == "jacobi") return SpecMode::kJacobi;
  if (name == "layerskip") return SpecMode::kLayerSkip;
  return InvalidArgument("unknown speculative mode '" + name + "' (expected draft, lookup, jacobi or layerskip)");
}

// A verification pass costs more per token the more tokens it carries (fg-target on this
// 2-core CPU: a 13-token pass ≈ 4.5 decode steps), so the budget follows how long the drafts
// that get accepted are. Prompt lookup copies long spans that are accepted whole on an edit
// task, at no drafting cost: `fastgen bench --spec lookup` on bench/spec/edit_prompt.txt, 400
// tokens, budget 4 / 8 / 12 / 16: 1.31x / 1.60x / 1.84x / 1.80x (code: 1.55x at 4, 1.57x at
// 12). Jacobi and the draft models guess token by token and lose at 12 (Jacobi on edit 1.45x
// at 4, 0.92x at 12).
int32_t DefaultDraftBudget(SpecMode mode) { return mode == SpecMode::kLookup ? 12 : 4; }

Expected<std::unique_ptr<Proposer>> MakeProposer(Model& target, const ProposerConfig& config) {
  switch (config.mode) {
    case SpecMode::kDraft:
      if (!config.draft) return InvalidArgument("speculative mode 'draft' needs a draft model (--draft-model)");
      if (config.draft->config().vocab_size != target.config().vocab_size)
        return InvalidArgument("the draft model's vocabulary (" + std::to_string(config.draft->config().vocab_size) +
                               ") differs from the target's (" + std::to_string(target.config().vocab_size) + ")");
      return std::unique_ptr<Proposer>(std::make_unique<DraftModelProposer>(*config.draft, config.draft_options));
    case SpecMode::kLookup:
      return std::unique_ptr<Proposer>(std::make_unique<PromptLookupProposer>(config.lookup_options));
    case SpecMode::kJacobi:
      return std::unique_ptr<Proposer>(std::make_unique<JacobiProposer>(config.jacobi_options));
    case SpecMode::kLayerSkip:
      if (config.draft_options.skip_layers.empty())
        return InvalidArgument("speculative mode 'layerskip' needs layers to skip (--skip-layers)");
      return std::unique_ptr<Proposer>(std::make_unique<DraftModelProposer>(target, config.draft_options));
  }
  return Internal("unhandled speculative mode");
}

double PredictedSpeedup(double agreement, const PassCosts& costs) {
  double best = 1.0;
  if (costs.verify.empty() || costs.verify[0] <= 0) return best;
  const double a = std::min(agreement, 0.999999);
  for (size_t k = 1; k < costs.verify.size(); ++k) {
    const double tokens = (1.0 - std::pow(a, static_cast<double>(k) + 1)) / (1.0 - a);
    const double seconds = static_cast<double>(k) * costs.draft + costs.verify[k];
    if (seconds > 0) best = std::max(best, tokens * costs.verify[0] / seconds);
  }
  return best;
}

constexpr double kMinGain = 1.2;

Expected<LayerSkipChoice> SearchSkipLayers(Model& target, std::span<const int32_t> calibration,
                                           const LayerSkipSearchOptions& options) {
  const ModelConfig& c = target.config();
  const auto n_layer = static_cast<int32_t>(c.n_layer);
  if (calibration.size() < 8) return InvalidArgument("the layer-skip calibration text needs at least 8 tokens");
  if (n_layer < 2) return InvalidArgument("layer skipping needs a model with at least 2 layers");
  const int32_t max_skipped = options.max_skipped < 0 ? n_layer - 1 : std::min(options.max_skipped, n_layer - 1);
  const int32_t max_draft = std::max(1, options.max_draft);
  // The target continues the calibration text greedily for kContinue tokens, and agreement is
  // measured where drafting happens, after each token of that continuation: on the text itself
  // (human-written) the target is less sure of itself than on its own output, and agreement
  // there ran 0.2-0.35 under the acceptance measured while decoding (fg-target, code prompt).
  constexpr int64_t kContinue = 48;
  std::vector<int32_t> text(calibration.begin(), calibration.end());
  const auto length = static_cast<int64_t>(text.size()) + kContinue;  // the text and its continuation
  FG_ASSIGN_OR_RETURN(KvCache kv, target.NewKvCache(length + max_draft + 1));
  std::vector<float> logits;
  FG_RETURN_IF_ERROR(target.Forward(calibration, kv, LogitsMode::kLast, &logits));
  // full_next[i]: the target's choice after the calibration text's last token (i = 0) or the
  // continuation's i-th, the positions agreement is measured at.
  std::vector<int32_t> full_next;
  for (int64_t i = 0; i < kContinue; ++i) {
    full_next.push_back(ArgMax(logits.data(), c.vocab_size));
    text.push_back(full_next.back());
    FG_RETURN_IF_ERROR(target.Forward(std::span<const int32_t>(&text.back(), 1), kv, LogitsMode::kLast, &logits));
  }
  // What verification costs here: passes over 1..max_draft + 1 tokens after the calibration text
  // (the verifier projects every row of a short chain, as timed).
  PassCosts costs;
  const std::span<const int32_t> probe_tokens = calibration.first(std::min(calibration.size(), static_cast<size_t>(max_draft) + 1));
  std::vector<TimedPass> verify_passes;
  for (int64_t n = 1; n <= static_cast<int64_t>(probe_tokens.size()); ++n) verify_passes.push_back({n, BatchLayout{}});
  FG_ASSIGN_OR_RETURN(costs.verify, TimePasses(target, kv, length, probe_tokens, verify_passes));

  LayerSkipChoice best;
  best.agreement = 1.0;
  std::vector<int32_t> current;
  for (int32_t size = 1; size <= max_skipped; ++size) {
    int32_t best_layer = -1;
    double best_agreement = -1;
    for (int32_t l = 0; l < n_layer; ++l) {
      if (std::find(current.begin(), current.end(), l) != current.end()) continue;
      std::vector<int32_t> trial = current;
      trial.push_back(l);
      FG_ASSIGN_OR_RETURN(const double agreement,
                          SkippedAgreement(target, text, kv, full_next, trial));
      if (agreement > best_agreement) best_agreement = agreement, best_layer = l;
    }
    current.push_back(best_layer);
    // The draft's cost: a one-token pass with these layers skipped (the head and embedding are
    // not skipped, so it is more than kept/n_layer of a plain step), timed against a plain pass
    // beside it and scaled to the plain step above, after the calibration text.
    BatchLayout skip;
    skip.skip_layers = current;
    FG_ASSIGN_OR_RETURN(const std::vector<double> pair,
                        TimePasses(target, kv, length, probe_tokens, {{1, BatchLayout{}}, {1, skip}}));
    costs.draft = costs.verify[0] * pair[1] / std::max(pair[0], 1e-12);
    // The prediction takes the agreement one standard error low: of several subsets measured on
    // the same few dozen positions, the one that looks best is also the one most likely to have
    // been measured high.
    const auto n = static_cast<double>(full_next.size());
    const double cautious = best_agreement - std::sqrt(best_agreement * (1 - best_agreement) / n);
    const double speedup = PredictedSpeedup(cautious, costs);
    // A subset must be predicted to gain kMinGain: the prediction leaves out the verifier's own
    // work per step and its probes, and its timings are single passes on a noisy machine.
    if (speedup > best.best_prediction) {
      best.best_prediction = speedup;
      best.best_candidate = current;
    }
    if (speedup >= kMinGain && speedup > best.predicted_speedup) {
      best.layers = current;
      best.agreement = best_agreement;
      best.predicted_speedup = speedup;
    }
  }
  std::sort(best.layers.begin(), best.layers.end());
  std::sort(best.best_candidate.begin(), best.best_candidate.end());
  best.min_gain = kMinGain;
  return best;
}

}  // namespace fastgen::speculative
