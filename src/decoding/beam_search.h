// Beam search: the `beams` most likely continuations kept at every step, each token's score the
// log-softmax of the model's logits, finished hypotheses ranked by total log-probability divided
// by length^length_penalty (Hugging Face's BeamSearchScorer convention).
//
// Each live beam owns a dense KV cache; a beam that continues another's history takes that
// cache over, or copies its valid rows when two beams continue the same parent (the paged
// runtime could share them copy-on-write; here the copies cost a beam's rows per step, which is
// small next to a forward pass at the context lengths beam search is used with).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/status.h"
#include "models/model.h"

namespace fastgen {

struct BeamSearchOptions {
  int32_t beams = 4;
  int64_t max_new_tokens = 128;
  float length_penalty = 1.0f;    // > 0 favours longer hypotheses, < 0 shorter
  bool early_stopping = true;     // stop once `beams` hypotheses have finished (else run the budget out)
  int32_t n_best = 1;             // hypotheses returned, best first (<= beams)
  std::vector<int32_t> stop_ids;  // ids that finish a hypothesis (end of sequence)
  int64_t context = 0;            // positions a hypothesis may reach (prompt included; 0: the model's)
};

struct BeamHypothesis {
  std::vector<int32_t> tokens;  // generated ids (a stop id that finished it included)
  double logprob = 0;           // sum of the tokens' log-probabilities
  double score = 0;             // logprob / length^length_penalty
  bool finished = false;        // ended with a stop id (else cut by the token budget)
};

struct BeamSearchResult {
  std::vector<BeamHypothesis> best;  // n_best, best first
  int64_t forwards = 0;              // single-token forward passes
  double prefill_seconds = 0, decode_seconds = 0;
};

Expected<BeamSearchResult> BeamSearch(Model& model, std::span<const int32_t> prompt, const BeamSearchOptions& options);

}  // namespace fastgen
