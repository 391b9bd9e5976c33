#include "decoding/speculative/setup.h"

#include <algorithm>
#include <cmath>

namespace fastgen::speculative {
namespace {

// Fraction of positions where the argmax of `a` equals the argmax of `b` ([rows, vocab] each).
double Agreement(const std::vector<float>& a, const std::vector<float>& b, int64_t vocab) {
  const int64_t rows = static_cast<int64_t>(a.size()) / vocab;
  int64_t same = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const float* x = a.data() + r * vocab;
    const float* y = b.data() + r * vocab;
    same += std::max_element(x, x + vocab) - x == std::max_element(y, y + vocab) - y;
  }
  return rows > 0 ? static_cast<double>(same) / static_cast<double>(rows) : 0.0;
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

double PredictedSpeedup(double agreement, double cost_ratio, int32_t max_draft) {
  double best = 1.0;
  const double a = std::min(agreement, 0.999999);
  for (int32_t k = 1; k <= max_draft; ++k) {
    const double tokens = (1.0 - std::pow(a, k + 1)) / (1.0 - a);
    best = std::max(best, tokens / (k * cost_ratio + 1.0));
  }
  return best;
}

Expected<LayerSkipChoice> SearchSkipLayers(Model& target, std::span<const int32_t> calibration,
                                           const LayerSkipSearchOptions& options) {
  const ModelConfig& c = target.config();
  const auto n_layer = static_cast<int32_t>(c.n_layer);
  if (calibration.size() < 8) return InvalidArgument("the layer-skip calibration text needs at least 8 tokens");
  if (n_layer < 2) return InvalidArgument("layer skipping needs a model with at least 2 layers");
  const int32_t max_skipped = options.max_skipped < 0 ? n_layer - 1 : std::min(options.max_skipped, n_layer - 1);
  FG_ASSIGN_OR_RETURN(KvCache kv, target.NewKvCache(static_cast<int64_t>(calibration.size())));
  std::vector<float> full, skipped;
  FG_RETURN_IF_ERROR(target.Forward(calibration, kv, LogitsMode::kAll, &full));

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
      BatchLayout layout;
      layout.skip_layers = trial;
      kv.Clear();
      FG_RETURN_IF_ERROR(target.Forward(calibration, layout, kv, LogitsMode::kAll, &skipped));
      const double agreement = Agreement(skipped, full, c.vocab_size);
      if (agreement > best_agreement) best_agreement = agreement, best_layer = l;
    }
    current.push_back(best_layer);
    const double cost = static_cast<double>(n_layer - size) / n_layer;
    const double speedup = PredictedSpeedup(best_agreement, cost, options.max_draft);
    if (speedup > best.predicted_speedup) {
      best.layers = current;
      best.agreement = best_agreement;
      best.predicted_speedup = speedup;
    }
  }
  std::sort(best.layers.begin(), best.layers.end());
  return best;
}

}  // namespace fastgen::speculative
