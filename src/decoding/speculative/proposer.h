// Speculative decoding, part 1: what a proposer hands the verifier. A proposer guesses the next
// tokens cheaply (a small model, copying from the context, the target with layers skipped, ...);
// the verifier runs the target once over all guesses and keeps what the target agrees with.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "decoding/sampler.h"

namespace fastgen {
class Model;
class KvCache;
}  // namespace fastgen

namespace fastgen::speculative {

// A chain or a tree of drafted tokens following the last committed token.
struct Draft {
  std::vector<int32_t> tokens;   // [n]
  // [n] parent of node i within the draft (< i), or -1 for a node that directly follows the
  // last committed token. A chain is {-1, 0, 1, ...}.
  std::vector<int32_t> parents;
  // For speculative sampling: q[i] is the full distribution ([vocab], after the sampler's
  // transforms) node i was drawn from; only a chain may carry them. Empty: the proposal is
  // deterministic, q is one-hot at each drafted token (prompt lookup, pool n-grams, a draft
  // model's top-k tree); then siblings are tried in order, each kept with its probability under
  // what the earlier ones left (recursive rejection sampling), which trees need.
  std::vector<std::vector<float>> q;

  size_t size() const { return tokens.size(); }
  bool empty() const { return tokens.empty(); }
  void Clear() {
    tokens.clear();
    parents.clear();
    q.clear();
  }
  void Push(int32_t token, int32_t parent) {
    tokens.push_back(token);
    parents.push_back(parent);
  }
  // Adds `path` as a path from the root, sharing the nodes it already has, within `max_nodes`
  // nodes in all; returns the node index of each token placed (a prefix of `path` when the
  // budget runs out).
  std::vector<int32_t> InsertPath(std::span<const int32_t> path, int32_t max_nodes) {
    std::vector<int32_t> nodes;
    int32_t parent = -1;
    for (int32_t token : path) {
      int32_t found = -1;
      for (size_t i = 0; i < size() && found < 0; ++i)
        if (parents[i] == parent && tokens[i] == token) found = static_cast<int32_t>(i);
      if (found < 0) {
        if (static_cast<int32_t>(size()) >= max_nodes) break;
        found = static_cast<int32_t>(size());
        Push(token, parent);
      }
      nodes.push_back(found);
      parent = found;
    }
    return nodes;
  }
  bool IsChain() const {
    for (size_t i = 0; i < parents.size(); ++i)
      if (parents[i] != static_cast<int32_t>(i) - 1) return false;
    return true;
  }
};

struct GenerationSetup {
  std::span<const int32_t> prompt;
  SamplerOptions sampler;     // the target's sampler settings; proposers apply the same transforms
  int64_t context_capacity;   // the target cache's size: drafts never need more
  int32_t vocab_size;         // the target's
  // The target and its cache, for a proposer that is the target itself with layers skipped: it
  // drafts over the target's cached rows (Draft & Verify) and may write slots from the cache's
  // length on while proposing, as long as it truncates the cache back to that length before
  // Propose returns (verification then overwrites those slots in every layer). Null: not given.
  const Model* target = nullptr;
  KvCache* target_cache = nullptr;
};

struct ProposeRequest {
  // Every committed token, prompt first. The last one has not been through the target yet: the
  // draft continues after it.
  std::span<const int32_t> context;
  int32_t max_nodes;          // budget for this step (>= 1)
};

// What the target computed over a draft, for proposers that learn from it (Jacobi decoding
// takes its next guess from the target's predictions at every drafted position).
struct Verification {
  const Draft& draft;
  // [1 + draft.size(), vocab]: row 0 follows the last committed token, row i + 1 follows node i.
  std::span<const float> logits;
  int32_t vocab;
  int32_t committed;  // tokens committed by this step (kept drafts + the target's own)
};

// Chain lengths a proposer can draft on request (see LengthPlanner); max 0: it cannot, its
// drafts are whatever it finds (a lookup match, a tree), and the verifier only decides between
// them and a plain step.
struct PlannableLength {
  int32_t initial = 0;  // the first length to try
  int32_t max = 0;
};

class Proposer {
 public:
  virtual ~Proposer() = default;
  virtual std::string_view name() const = 0;
  // A new generation starts; drop any state from the previous one.
  virtual Status Start(const GenerationSetup& setup) = 0;
  // Called once while the target processes the prompt, and timed with it: a proposer with its
  // own model processes the prompt here, so its first draft does not pay for it.
  virtual Status Prefill(std::span<const int32_t> prompt) { return Status::Ok(); }
  // Fills `draft` (cleared by the caller) with at most max_nodes nodes; an empty draft means no
  // guess this step, and the verifier does a plain decode step.
  virtual Status Propose(const ProposeRequest& request, Draft* draft) = 0;
  // Nonzero max: Propose drafts a chain of request.max_nodes tokens (fewer only when it cannot
  // go on, or by its own confidence rule), so the verifier chooses each step's length. Valid
  // after Start.
  virtual PlannableLength Plannable() const { return {}; }
  // After verification: `accepted` of the deepest path's nodes were kept (adaptive lengths).
  virtual void Observe(int32_t drafted, int32_t accepted) {}
  // After verification of a non-empty draft, before Observe; only for proposers that ask for
  // it (the verifier otherwise projects to logits only the rows its acceptance walk reads).
  virtual bool WantsVerification() const { return false; }
  virtual void ObserveVerification(const Verification& v) {}
};

}  // namespace fastgen::speculative
