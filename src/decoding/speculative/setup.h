// Speculative decoding, part 4: building a proposer from a mode name and options (what the CLI
// and the benchmarks share), and choosing the layers a layer-skip draft skips.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "decoding/speculative/draft_model.h"
#include "decoding/speculative/jacobi.h"
#include "decoding/speculative/prompt_lookup.h"
#include "decoding/speculative/proposer.h"
#include "models/model.h"

namespace fastgen::speculative {

enum class SpecMode { kDraft, kLookup, kJacobi, kLayerSkip };

// "draft" | "lookup" | "jacobi" | "layerskip"; the error lists the valid names.
Expected<SpecMode> ParseSpecMode(const std::string& name);

// The verifier's node budget per step when the user sets none (--spec-budget): how many drafted
// tokens a verification pass should carry for this proposer (see the .cc for the measurements).
int32_t DefaultDraftBudget(SpecMode mode);

struct ProposerConfig {
  SpecMode mode = SpecMode::kDraft;
  Model* draft = nullptr;              // kDraft: the draft model (shares the target's tokenizer)
  DraftModelOptions draft_options;     // kDraft and kLayerSkip (skip_layers set for the latter)
  PromptLookupOptions lookup_options;  // kLookup
  JacobiOptions jacobi_options;        // kJacobi
};

// Fails on a missing draft model or an empty skip set for layer skipping.
Expected<std::unique_ptr<Proposer>> MakeProposer(Model& target, const ProposerConfig& config);

struct LayerSkipSearchOptions {
  int32_t max_skipped = -1;   // -1: up to all but one layer
  int32_t max_draft = 8;      // chain lengths considered by the speed model
};

struct LayerSkipChoice {
  std::vector<int32_t> layers;     // ascending
  double agreement = 0;            // greedy agreement with the full model (SearchSkipLayers)
  double predicted_speedup = 1.0;  // of the speed model below; <= 1 means "do not bother"
  // The subset with the best prediction, chosen or not (for the report when none is), and the
  // gain a subset must be predicted to reach.
  std::vector<int32_t> best_candidate;
  double best_prediction = 1.0;
  double min_gain = 1.0;
};

// Pass costs for the speed model, in seconds: verify[k] is a target pass over k + 1 tokens
// (verify[0] a plain decode step), draft a one-token pass of the draft.
struct PassCosts {
  std::vector<double> verify;
  double draft = 0;
};

// Greedy search on a calibration text: starting from no skipped layers, repeatedly skip the
// layer whose removal keeps the skipped model's next-token argmax agreeing most often with the
// full model's, and return the subset with the best predicted speedup, the pass costs timed on
// this machine after the calibration text; a subset predicted to gain less than 20% is not
// chosen (see the .cc), and no subset means "decode plainly". Agreement is measured as the
// proposer drafts: after each token of the target's own greedy continuation of the text (48
// tokens), one skipped pass over the target's cached rows of everything before it.
Expected<LayerSkipChoice> SearchSkipLayers(Model& target, std::span<const int32_t> calibration,
                                           const LayerSkipSearchOptions& options);

// The speed model alone: a draft agreeing at rate a with the target yields, drafting k tokens,
// (1 - a^(k+1)) / (1 - a) tokens per k·draft + verify[k] seconds (Leviathan et al. 2023, with
// the verification's cost measured instead of taken as one decode step: on a CPU a pass over 3
// tokens costs ~1.2 decode steps), against one token per verify[0]; best over k, at least 1.
double PredictedSpeedup(double agreement, const PassCosts& costs);

}  // namespace fastgen::speculative
