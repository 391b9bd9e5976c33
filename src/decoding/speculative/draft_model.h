// Proposer: a small model sharing the target's tokenizer drafts a chain of adaptive length, or
// (greedy decoding) a token tree of its most likely continuations.
#pragma once

#include <memory>
#include <optional>
#include <vector>

#include "decoding/speculative/proposer.h"
#include "models/model.h"

namespace fastgen::speculative {

struct DraftModelOptions {
  // Chain length: starts at initial_length. When adaptive, a chain's length is chosen by the
  // verifier each step from measured acceptance and costs (LengthPlanner, up to max_length and
  // the verifier's budget); a tree's depth goes +2 after a step whose whole deepest path was
  // kept and -1 otherwise (the schedule Hugging Face's assisted generation uses).
  int32_t max_length = 12;
  int32_t initial_length = 2;
  bool adaptive_length = true;
  // Stop drafting once the draft's top probability (softmax of its logits) falls below this:
  // BiLD's fallback threshold, and a cheap guard against drafting tokens that will be rejected.
  // 0 = off.
  float min_confidence = 0.0f;
  // Token tree (greedy decoding only; sampling falls back to a chain). Each level expands the
  // current level's nodes in one draft pass and keeps the tree_width best children overall by
  // path probability (draft softmax at T = 1) above min_path_prob; depth is the adaptive length.
  int32_t tree_width = 1;  // 1 = chain
  float min_path_prob = 0.02f;
  // Layer-skip self-speculation: the draft is the target itself with these layers skipped
  // (pass the target as the draft model). Empty: the draft model runs whole. Given the target's
  // cache (GenerationSetup::target_cache), the skipped model drafts over the target's cached
  // keys and values, as Draft & Verify (Zhang et al. 2023) does: no second cache, and nothing
  // to catch up on after plain steps or rejections (its own cache re-ran every token decoded
  // plainly before the next draft). The layers before the first skipped one compute exactly
  // the target's rows, so an early exit (a suffix skipped) drafts the same tokens either way;
  // the kept layers after a skipped one read the full model's rows for committed tokens.
  std::vector<int32_t> skip_layers;
  // The draft proposes only ids [0, vocab_prefix) (0: the whole vocabulary), projecting only
  // those rows of its output matrix (BatchLayout::head_rows; FR-Spec). Speed only: the verifier
  // decides what is kept, and a sampled draft's q is 0 outside the prefix, which speculative
  // sampling's residual covers.
  int64_t vocab_prefix = 0;
};

class DraftModelProposer final : public Proposer {
 public:
  DraftModelProposer(Model& draft, DraftModelOptions options) : model_(draft), opts_(options) {}

  std::string_view name() const override { return opts_.skip_layers.empty() ? "draft-model" : "layer-skip"; }
  Status Start(const GenerationSetup& setup) override;
  // Over the target's cache there is nothing to do: the target just cached the prompt.
  Status Prefill(std::span<const int32_t> prompt) override { return shared_ ? Status::Ok() : Sync(prompt); }
  Status Propose(const ProposeRequest& request, Draft* draft) override;
  void Observe(int32_t drafted, int32_t accepted) override;
  PlannableLength Plannable() const override;

 private:
  // Brings the draft cache to `context` (reusing the longest common prefix it already holds)
  // and leaves the logits after its last token in logits_. On the target's cache, which holds
  // the context but its last token, only that token runs.
  Status Sync(std::span<const int32_t> context);
  KvCache& cache() { return shared_ ? *shared_ : *kv_; }
  Status ProposeChain(const ProposeRequest& request, Draft* draft);
  Status ProposeTree(const ProposeRequest& request, Draft* draft);
  BatchLayout Layout() const;  // skipped layers and head rows of every draft pass

  Model& model_;
  DraftModelOptions opts_;
  std::optional<KvCache> kv_;          // the draft's own cache (unless shared_)
  KvCache* shared_ = nullptr;          // layer skipping: the target's cache
  std::vector<int32_t> cached_;        // tokens whose K/V kv_ holds, in order
  std::unique_ptr<Sampler> sampler_;   // the target's settings, its own RNG stream
  bool greedy_ = true;
  bool tree_ = false;                  // drafting token trees (tree_width > 1, greedy)
  int32_t length_ = 0;                 // fixed chains' length, trees' adaptive depth
  std::vector<float> logits_;          // [rows, vocab] of the last draft pass
  std::vector<float> probs_;           // [vocab]
  std::vector<int32_t> history_;       // context + drafted tokens, for the penalties
};

}  // namespace fastgen::speculative
