#include "decoding/beam_search.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <string>

#include "kv/block_pool.h"

namespace fastgen {
namespace {

struct Beam {
  std::vector<int32_t> tokens;
  double logprob = 0;  // the model's log-probability of `tokens`
  double rank = 0;     // what beams are ranked by: logprob less any diversity penalties
  std::vector<int32_t> blocks;  // block table in the pool; shared blocks are read-only
  constrained::MatchState grammar;
  int32_t group = 0;
  int32_t row = 0;     // its row of this step's logits
};

struct Candidate {
  double rank;
  double logprob;
  int32_t beam;
  int32_t token;
};

double Score(double rank, size_t length, float penalty) {
  return rank / std::pow(static_cast<double>(std::max<size_t>(length, 1)), static_cast<double>(penalty));
}

// log-softmax of one row into `out`.
void LogSoftmax(std::span<const float> logits, std::vector<double>* out) {
  double max = -INFINITY;
  for (float x : logits) max = std::max(max, static_cast<double>(x));
  double sum = 0;
  for (float x : logits) sum += std::exp(static_cast<double>(x) - max);
  const double log_z = max + std::log(sum);
  out->resize(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) (*out)[i] = static_cast<double>(logits[i]) - log_z;
}

Status CheckOptions(const BeamSearchOptions& o) {
  if (o.beams < 1 || o.beams > 64) return InvalidArgument("beams: must be in [1, 64]");
  if (o.n_best < 1 || o.n_best > o.beams) return InvalidArgument("n-best: must be in [1, beams]");
  if (!std::isfinite(o.length_penalty)) return InvalidArgument("length penalty: must be finite");
  if (o.groups < 1 || o.beams % o.groups != 0)
    return InvalidArgument("beam groups: " + std::to_string(o.groups) + " must divide the " + std::to_string(o.beams) +
                           " beams");
  if (!std::isfinite(o.diversity_penalty) || o.diversity_penalty < 0)
    return InvalidArgument("diversity penalty: must be finite and >= 0");
  if (o.block_tokens < 16 || o.block_tokens % 16 != 0) return InvalidArgument("KV blocks must hold a multiple of 16 tokens");
  return Status::Ok();
}

}  // namespace

Expected<BeamSearchResult> BeamSearch(Model& model, std::span<const int32_t> prompt, const BeamSearchOptions& o) {
  using Clock = std::chrono::steady_clock;
  FG_RETURN_IF_ERROR(CheckOptions(o));
  if (prompt.empty()) return InvalidArgument("the prompt is empty: give at least one token");
  const ModelConfig& c = model.config();
  const int64_t trained = c.max_context;
  const int64_t context = o.context > 0 ? o.context : trained > 0 ? trained : 4096;
  const auto n_prompt = static_cast<int64_t>(prompt.size());
  if (n_prompt >= context)
    return InvalidArgument("the prompt (" + std::to_string(prompt.size()) + " tokens) leaves no room in the context of " +
                           std::to_string(context));
  const auto vocab = static_cast<size_t>(c.vocab_size);
  const int64_t max_new = std::min<int64_t>(o.max_new_tokens, context - n_prompt);
  if (max_new < 1) return InvalidArgument("beam search needs at least one new token");
  const int32_t group_beams = o.beams / o.groups;

  // The pool: every beam's whole history in the worst case that no two share a block.
  const int64_t bt = o.block_tokens;
  const int64_t blocks_per_beam = (n_prompt + max_new + bt - 1) / bt;
  FG_ASSIGN_OR_RETURN(KvBlockPool pool, KvBlockPool::Create({c.n_layer, c.n_kv_head, c.head_dim, bt,
                                                             o.beams * blocks_per_beam + 2, model.kv_type()}));
  BeamSearchResult result;
  auto allocate = [&]() -> Expected<int32_t> {
    const auto b = pool.Allocate();
    if (!b) return Internal("beam search ran out of KV blocks");
    result.peak_blocks = std::max(result.peak_blocks, pool.in_use());
    return *b;
  };
  // Makes `beam` able to write slot `slot`: a new block at a block boundary, else a private copy
  // of the block holding it when a sibling shares that block.
  auto reserve = [&](Beam& beam, int64_t slot) -> Status {
    const auto blk = static_cast<size_t>(slot / bt);
    if (blk == beam.blocks.size()) {
      FG_ASSIGN_OR_RETURN(const int32_t b, allocate());
      beam.blocks.push_back(b);
    } else if (pool.refcount(beam.blocks[blk]) > 1) {
      FG_ASSIGN_OR_RETURN(const int32_t copy, allocate());
      pool.CopyBlock(beam.blocks[blk], copy);
      pool.Release(beam.blocks[blk]);
      beam.blocks[blk] = copy;
      ++result.block_copies;
    }
    return Status::Ok();
  };

  std::unique_ptr<constrained::TokenConstraint> constraint;
  if (o.grammar) constraint = std::make_unique<constrained::TokenConstraint>(o.grammar, o.stop_ids);

  // The prompt, in chunks (prompt role: each token's result independent of the split).
  const auto t0 = Clock::now();
  Beam root;
  for (int64_t slot = 0; slot < n_prompt; slot += bt) FG_RETURN_IF_ERROR(reserve(root, slot));
  std::vector<float> logits;
  constexpr int64_t kChunk = 512;
  for (int64_t start = 0; start < n_prompt; start += kChunk) {
    const int64_t n = std::min(kChunk, n_prompt - start);
    const BatchSequence seq{prompt.subspan(static_cast<size_t>(start), static_cast<size_t>(n)), start, root.blocks,
                            /*decode=*/false, /*outputs=*/start + n == n_prompt ? 1 : 0};
    FG_RETURN_IF_ERROR(model.ForwardBatch(std::span<const BatchSequence>(&seq, 1), pool, &logits));
  }
  const auto t1 = Clock::now();
  result.prefill_seconds = std::chrono::duration<double>(t1 - t0).count();
  if (constraint) root.grammar = constraint->state();

  // Every group starts from the prompt alone (sharing its blocks).
  std::vector<Beam> live;
  for (int32_t g = 0; g < o.groups; ++g) {
    live.push_back(root);
    live.back().group = g;
    if (g > 0)
      for (int32_t b : root.blocks) pool.Retain(b);
  }
  std::vector<std::vector<BeamHypothesis>> finished(static_cast<size_t>(o.groups));
  std::vector<uint8_t> group_done(static_cast<size_t>(o.groups), 0);
  std::vector<double> logp;
  std::vector<uint64_t> mask;
  std::vector<Candidate> candidates;
  std::vector<int32_t> chosen(vocab, 0);  // tokens chosen by earlier groups this step
  std::vector<int32_t> touched;
  std::vector<int32_t> ids(vocab);
  const auto is_stop = [&](int32_t t) { return std::find(o.stop_ids.begin(), o.stop_ids.end(), t) != o.stop_ids.end(); };
  const auto finish = [&](const Beam& parent, int32_t token, double logprob, double rank) {
    BeamHypothesis h{parent.tokens, logprob, 0, true, parent.group};
    if (token >= 0) h.tokens.push_back(token);
    h.score = Score(rank, h.tokens.size(), o.length_penalty);
    finished[static_cast<size_t>(parent.group)].push_back(std::move(h));
  };

  for (int64_t step = 0; step < max_new && !live.empty(); ++step) {
    std::vector<Beam> next;
    for (int32_t t : touched) chosen[static_cast<size_t>(t)] = 0;
    touched.clear();
    for (int32_t g = 0; g < o.groups; ++g) {
      if (group_done[static_cast<size_t>(g)]) continue;
      // Each of the group's beams offers its 2 * group_beams best continuations: enough that
      // group_beams of them are not stops.
      candidates.clear();
      const size_t per_beam = std::min(vocab, static_cast<size_t>(2 * group_beams));
      for (size_t b = 0; b < live.size(); ++b) {
        const Beam& beam = live[b];
        if (beam.group != g) continue;
        LogSoftmax(std::span<const float>(logits.data() + static_cast<size_t>(beam.row) * vocab, vocab), &logp);
        if (constraint) {
          constraint->Restore(beam.grammar);
          constraint->FillMask(&mask);
          if (constraint->overflowed())
            return InvalidArgument("the grammar is too ambiguous to follow (too many parse stacks at once)");
          for (size_t t = 0; t < vocab; ++t)
            if (!((mask[t >> 6] >> (t & 63)) & 1)) logp[t] = -INFINITY;
        }
        const auto rank_of = [&](int32_t t) {
          return logp[static_cast<size_t>(t)] - o.diversity_penalty * chosen[static_cast<size_t>(t)];
        };
        for (size_t i = 0; i < vocab; ++i) ids[i] = static_cast<int32_t>(i);
        std::partial_sort(ids.begin(), ids.begin() + static_cast<ptrdiff_t>(per_beam), ids.end(), [&](int32_t a, int32_t d) {
          const double ra = rank_of(a), rd = rank_of(d);
          return ra != rd ? ra > rd : a < d;
        });
        for (size_t i = 0; i < per_beam; ++i) {
          const int32_t t = ids[i];
          if (logp[static_cast<size_t>(t)] == -INFINITY) break;  // refused by the grammar
          candidates.push_back({beam.rank + rank_of(t), beam.logprob + logp[static_cast<size_t>(t)], static_cast<int32_t>(b), t});
        }
      }
      std::stable_sort(candidates.begin(), candidates.end(),
                       [](const Candidate& a, const Candidate& d) { return a.rank > d.rank; });
      // The group's next beams, best first; stops among its top become finished hypotheses, and
      // so does a beam whose grammar is complete when there are no stop ids to end it with.
      const size_t group_first = next.size();
      for (size_t i = 0; i < candidates.size() && static_cast<int32_t>(next.size() - group_first) < group_beams; ++i) {
        const Candidate& cand = candidates[i];
        const Beam& parent = live[static_cast<size_t>(cand.beam)];
        const bool counts = i < static_cast<size_t>(group_beams);  // only a stop ranked among the top counts
        if (is_stop(cand.token)) {
          if (counts) finish(parent, cand.token, cand.logprob, cand.rank);
          continue;
        }
        Beam child;
        child.group = g;
        child.row = cand.beam;  // the parent's index until the blocks are handed over
        child.logprob = cand.logprob;
        child.rank = cand.rank;
        if (constraint) {
          constraint->Restore(parent.grammar);
          if (!constraint->Accept(cand.token)) return Internal("beam search: the grammar refused a token its mask allowed");
          child.grammar = constraint->state();
          if (o.stop_ids.empty() && constraint->Finished()) {
            Beam complete = parent;
            complete.tokens.push_back(cand.token);
            if (counts) finish(complete, -1, cand.logprob, cand.rank);
            continue;
          }
        }
        child.tokens = parent.tokens;
        child.tokens.push_back(cand.token);
        next.push_back(std::move(child));
      }
      if (o.early_stopping && static_cast<int32_t>(finished[static_cast<size_t>(g)].size()) >= group_beams) {
        group_done[static_cast<size_t>(g)] = 1;
        next.resize(group_first);
      } else if (next.size() == group_first) {
        group_done[static_cast<size_t>(g)] = 1;  // nothing the grammar allows is left
      }
      for (size_t i = group_first; i < next.size(); ++i) {
        const int32_t t = next[i].tokens.back();
        if (chosen[static_cast<size_t>(t)]++ == 0) touched.push_back(t);
      }
    }
    // Hand the blocks over: every child references its parent's blocks, then the parents let go.
    for (Beam& child : next) {
      child.blocks = live[static_cast<size_t>(child.row)].blocks;
      for (int32_t b : child.blocks) pool.Retain(b);
    }
    for (const Beam& parent : live)
      for (int32_t b : parent.blocks) pool.Release(b);
    live = std::move(next);
    if (live.empty() || step + 1 == max_new) break;  // the last tokens need no logits
    // One batched pass: every beam's newest token, written to its own slot (copy-on-write).
    std::vector<BatchSequence> seqs;
    seqs.reserve(live.size());
    for (size_t b = 0; b < live.size(); ++b) {
      Beam& beam = live[b];
      const int64_t slot = n_prompt + static_cast<int64_t>(beam.tokens.size()) - 1;
      FG_RETURN_IF_ERROR(reserve(beam, slot));
      beam.row = static_cast<int32_t>(b);
    }
    for (const Beam& beam : live)
      seqs.push_back({std::span<const int32_t>(&beam.tokens.back(), 1),
                      n_prompt + static_cast<int64_t>(beam.tokens.size()) - 1, beam.blocks, true, 1});
    FG_RETURN_IF_ERROR(model.ForwardBatch(seqs, pool, &logits));
    ++result.forwards;
  }
  // Each group keeps its group_beams best: finished ones, topped up with unfinished beams when
  // the token budget ran out first.
  std::vector<BeamHypothesis> all;
  for (int32_t g = 0; g < o.groups; ++g) {
    std::vector<BeamHypothesis>& f = finished[static_cast<size_t>(g)];
    for (const Beam& b : live) {
      if (b.group != g) continue;
      if (o.early_stopping && static_cast<int32_t>(f.size()) >= group_beams) break;
      f.push_back({b.tokens, b.logprob, Score(b.rank, b.tokens.size(), o.length_penalty), false, g});
    }
    std::stable_sort(f.begin(), f.end(), [](const BeamHypothesis& a, const BeamHypothesis& b) { return a.score > b.score; });
    if (f.size() > static_cast<size_t>(group_beams)) f.resize(static_cast<size_t>(group_beams));
    all.insert(all.end(), std::make_move_iterator(f.begin()), std::make_move_iterator(f.end()));
  }
  for (const Beam& b : live)
    for (int32_t blk : b.blocks) pool.Release(blk);
  if (all.empty()) return InvalidArgument("beam search: the grammar allows no continuation of the prompt");
  std::stable_sort(all.begin(), all.end(), [](const BeamHypothesis& a, const BeamHypothesis& b) { return a.score > b.score; });
  if (all.size() > static_cast<size_t>(o.n_best)) all.resize(static_cast<size_t>(o.n_best));
  result.best = std::move(all);
  result.decode_seconds = std::chrono::duration<double>(Clock::now() - t1).count();
  return result;
}

}  // namespace fastgen
