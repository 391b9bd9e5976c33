// Proposer without a second model: prompt lookup / input-guided aggressive decoding. Finds the
// most recent earlier occurrence of the context's last n tokens (longest n first) in the prompt
// and the text generated so far and drafts what followed it. Pays off where the output copies
// the input: edits, refactors, quoting, repetitive code.
#pragma once

#include "decoding/speculative/proposer.h"

namespace fastgen::speculative {

struct PromptLookupOptions {
  int32_t max_ngram = 3;
  int32_t min_ngram = 1;
  int32_t max_length = 10;     // tokens copied per match
  // Merge the continuations of up to this many matches (most recent first) into a token tree,
  // so a wrong guess between copies costs no step: the most recent one drafts deepest, each
  // other one that starts differently gets at least its first token as a sibling. 1 = a chain.
  int32_t branches = 1;
};

class PromptLookupProposer final : public Proposer {
 public:
  explicit PromptLookupProposer(PromptLookupOptions options) : opts_(options) {}

  std::string_view name() const override { return "prompt-lookup"; }
  Status Start(const GenerationSetup& setup) override;
  Status Propose(const ProposeRequest& request, Draft* draft) override;

 private:
  PromptLookupOptions opts_;
};

}  // namespace fastgen::speculative
