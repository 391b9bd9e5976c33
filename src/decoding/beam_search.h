// Beam search: the `beams` most likely continuations kept at every step, each token's score the
// log-softmax of the model's logits, finished hypotheses ranked by total log-probability divided
// by length^length_penalty (Hugging Face's BeamSearchScorer convention).
//
// The beams live in one paged KV pool (kv/block_pool.h) and advance in one batched pass per step
// (Model::ForwardBatch: each weight read once for every beam). A beam that continues another's
// history shares its blocks by reference; only the block a beam is about to write is copied when
// it is shared (copy-on-write), so siblings cost one block each, not a copy of the whole context.
//
// Variants:
//  - diverse beam search (Vijayakumar et al. 2016, Hugging Face's group beam search): the beams
//    are split into `groups`; groups choose in turn at each step, and a token already chosen by
//    earlier groups at this step costs `diversity_penalty` per choice (Hamming diversity). Each
//    group keeps beams / groups hypotheses and finishes on its own;
//  - grammar-constrained beams: every hypothesis follows `grammar` (structured output), its end
//    ids allowed only where the grammar may end.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "core/status.h"
#include "decoding/constrained/token_mask.h"
#include "models/model.h"

namespace fastgen {

struct BeamSearchOptions {
  int32_t beams = 4;
  int64_t max_new_tokens = 128;
  float length_penalty = 1.0f;    // > 0 favours longer hypotheses, < 0 shorter
  bool early_stopping = true;     // a group stops once it has `beams / groups` finished hypotheses
  int32_t n_best = 1;             // hypotheses returned, best first (<= beams)
  std::vector<int32_t> stop_ids;  // ids that finish a hypothesis (end of sequence)
  int64_t context = 0;            // positions a hypothesis may reach (prompt included; 0: the model's)
  int32_t groups = 1;             // diverse beam search: beam groups (divides beams)
  float diversity_penalty = 0;    // per earlier-group choice of the same token at the same step
  // Structured output: every hypothesis follows this grammar (shared cache; null: free text).
  std::shared_ptr<constrained::GrammarMaskCache> grammar;
  int64_t block_tokens = 16;      // KV block size (copy-on-write granularity)
};

struct BeamHypothesis {
  std::vector<int32_t> tokens;  // generated ids (a stop id that finished it included)
  double logprob = 0;           // sum of the tokens' log-probabilities (without diversity penalties)
  double score = 0;             // ranking score / length^length_penalty (penalties included)
  bool finished = false;        // ended with a stop id or a complete grammar (else cut by the budget)
  int32_t group = 0;
};

struct BeamSearchResult {
  std::vector<BeamHypothesis> best;  // n_best, best first
  int64_t forwards = 0;              // batched decode passes (one per step)
  int64_t block_copies = 0;          // copy-on-write block copies
  int64_t peak_blocks = 0;           // most KV blocks in use at once
  double prefill_seconds = 0, decode_seconds = 0;
};

Expected<BeamSearchResult> BeamSearch(Model& model, std::span<const int32_t> prompt, const BeamSearchOptions& options);

}  // namespace fastgen
