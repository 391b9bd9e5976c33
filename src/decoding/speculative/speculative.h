// Speculative decoding, part 3: the verifier loop. Each step a proposer drafts a chain or a
// tree after the last committed token; the target runs once over [last token, draft...] with a
// tree mask, the acceptance rule walks the tree from the root keeping the longest path the
// target agrees with, the KV cache is compacted to that path, and the target's own choice at
// the first disagreement (or after the last kept node) is committed too. So every target
// forward commits at least one token, never runs once per drafted token, and with greedy or
// speculative-sampling acceptance the output is what plain decoding would produce (greedy:
// token for token; sampling: in distribution).
#pragma once

#include <cstdint>
#include <span>

#include "core/status.h"
#include "decoding/generate.h"
#include "decoding/speculative/acceptance.h"
#include "decoding/speculative/prompt_lookup.h"
#include "decoding/speculative/proposer.h"
#include "models/model.h"

namespace fastgen::speculative {

struct SpeculativeOptions {
  // Node budget per step, passed to the proposer. Small by default because on a CPU a pass over
  // n tokens is not free (DefaultDraftBudget in setup.h picks it per proposer for the CLI).
  int32_t max_draft = 4;
  // BiLD policy instead of the lossless rule (greedy only; see AcceptRule::kBild).
  bool bild = false;
  float bild_rollback = 2.0f;       // nats
  // "Never much slower than plain": times speculative and plain steps as they run and decodes
  // plainly while speculation commits fewer tokens per second, probing it again now and then
  // (step_control.h: LengthPlanner for proposers of chains of any length, which also picks the
  // length, FallbackController for the others). Off: every step drafts.
  bool adaptive_fallback = true;
  int32_t probe_every = 4;          // steps between probes of the mode or length not in use
  // Prompt lookup ahead of the proposer (--lookup-first): each step first looks for the
  // context's last n-gram earlier in the context, and a match's continuation is verified instead
  // of asking the proposer, which drafts only when there is nothing to copy. Copying costs no
  // model pass, so code and edits keep lookup's long accepted runs while the draft model covers
  // new text. Lookup steps have their own fallback (FallbackController: their tokens per second
  // against the other steps'), and the proposer's controllers do not learn from them.
  bool lookup_first = false;
  PromptLookupOptions lookup;
  int32_t lookup_budget = 12;       // most copied tokens verified per step
};

struct SpeculativeStats {
  int64_t steps = 0;                // target forward passes after the prefill
  int64_t spec_steps = 0;           // ... of which carried a draft
  int64_t drafted = 0;              // drafted nodes verified (all tree nodes)
  int64_t drafted_path = 0;         // nodes on the deepest drafted path (chain length)
  int64_t accepted = 0;             // drafted tokens kept
  int64_t generated = 0;            // tokens committed after the first (prefill) one
  double propose_seconds = 0;
  double verify_seconds = 0;
  int64_t lookup_steps = 0;         // steps whose draft prompt lookup copied (lookup_first)
  int64_t plain_steps = 0;          // steps the fallback controller decoded plainly
  double plain_step_seconds = 0;    // running mean of those steps (0 if none ran)

  double acceptance_rate() const { return drafted_path > 0 ? double(accepted) / double(drafted_path) : 0.0; }
  double tokens_per_forward() const { return steps > 0 ? double(generated) / double(steps) : 0.0; }
};

struct SpeculativeResult {
  GenerateResult generation;
  SpeculativeStats stats;
};

// Generate() with a proposer: same options, same stop rules, same callback. The rule is
// kGreedy at temperature <= 0 (kBild when options.bild), kSampling otherwise.
Expected<SpeculativeResult> GenerateSpeculative(Model& target, KvCache& kv,
                                                std::span<const int32_t> prompt,
                                                const GenerateOptions& options,
                                                const SpeculativeOptions& spec, Proposer& proposer,
                                                const TokenCallback& on_token);

}  // namespace fastgen::speculative
