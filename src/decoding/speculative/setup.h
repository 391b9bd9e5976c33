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
  double agreement = 0;            // teacher-forced greedy agreement with the full model
  double predicted_speedup = 1.0;  // of the speed model below; <= 1 means "do not bother"
};

// Greedy search on a calibration text: starting from no skipped layers, repeatedly skip the
// layer whose removal keeps the skipped model's next-token argmax agreeing most often with the
// full model's (one forward pass over the text per candidate), and return the subset with the
// best predicted speedup. Speed model: a draft costing c = kept/n_layer of a target pass and
// agreeing at rate a yields (1 - a^(k+1)) / (1 - a) tokens per k*c + 1 passes, best over k
// (Leviathan et al. 2023, assuming verification costs one decode step).
Expected<LayerSkipChoice> SearchSkipLayers(Model& target, std::span<const int32_t> calibration,
                                           const LayerSkipSearchOptions& options);

// The speed model alone.
double PredictedSpeedup(double agreement, double cost_ratio, int32_t max_draft);

}  // namespace fastgen::speculative
