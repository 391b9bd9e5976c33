#include "decoding/beam_search.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <optional>

namespace fastgen {
namespace {

struct Beam {
  std::vector<int32_t> tokens;
  double logprob = 0;
  int32_t cache = -1;  // index into the cache pool
};

struct Candidate {
  double logprob;
  int32_t beam;
  int32_t token;
};

double Score(double logprob, size_t length, float penalty) {
  return logprob / std::pow(static_cast<double>(std::max<size_t>(length, 1)), static_cast<double>(penalty));
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

}  // namespace

Expected<BeamSearchResult> BeamSearch(Model& model, std::span<const int32_t> prompt, const BeamSearchOptions& o) {
  using Clock = std::chrono::steady_clock;
  if (o.beams < 1 || o.beams > 64) return InvalidArgument("beams: must be in [1, 64]");
  if (o.n_best < 1 || o.n_best > o.beams) return InvalidArgument("n-best: must be in [1, beams]");
  if (prompt.empty()) return InvalidArgument("the prompt is empty: give at least one token");
  if (!std::isfinite(o.length_penalty)) return InvalidArgument("length penalty: must be finite");
  const int64_t trained = model.config().max_context;
  const int64_t context = o.context > 0 ? o.context : trained > 0 ? trained : 4096;
  if (static_cast<int64_t>(prompt.size()) >= context)
    return InvalidArgument("the prompt (" + std::to_string(prompt.size()) + " tokens) leaves no room in the context of " +
                           std::to_string(context));
  const auto vocab = static_cast<size_t>(model.config().vocab_size);
  const int64_t max_new = std::min<int64_t>(o.max_new_tokens, context - static_cast<int64_t>(prompt.size()));

  BeamSearchResult result;
  // A pool of caches: every live beam holds one; a step needs at most `beams` of them plus the
  // ones being handed over.
  std::vector<KvCache> caches;
  std::vector<int32_t> free_caches;
  auto take_cache = [&]() -> Expected<int32_t> {
    if (!free_caches.empty()) {
      const int32_t c = free_caches.back();
      free_caches.pop_back();
      return c;
    }
    FG_ASSIGN_OR_RETURN(KvCache kv, model.NewKvCache(context));
    caches.push_back(std::move(kv));
    return static_cast<int32_t>(caches.size() - 1);
  };

  const auto t0 = Clock::now();
  BatchLayout prompt_rows, decode_rows;
  prompt_rows.rows = BatchLayout::Rows::kPrompt;
  decode_rows.rows = BatchLayout::Rows::kDecode;
  FG_ASSIGN_OR_RETURN(const int32_t first, take_cache());
  std::vector<std::vector<float>> logits(1);
  FG_RETURN_IF_ERROR(model.Forward(prompt, prompt_rows, caches[first], LogitsMode::kLast, &logits[0]));
  const auto t1 = Clock::now();
  result.prefill_seconds = std::chrono::duration<double>(t1 - t0).count();

  std::vector<Beam> live = {Beam{{}, 0.0, first}};
  std::vector<BeamHypothesis> finished;
  std::vector<double> logp;
  std::vector<Candidate> candidates;
  const auto is_stop = [&](int32_t t) { return std::find(o.stop_ids.begin(), o.stop_ids.end(), t) != o.stop_ids.end(); };
  for (int64_t step = 0; step < max_new && !live.empty(); ++step) {
    // Each live beam's 2 * beams best continuations: enough that `beams` of them are not stops.
    candidates.clear();
    const size_t per_beam = std::min(vocab, static_cast<size_t>(2 * o.beams));
    for (size_t b = 0; b < live.size(); ++b) {
      LogSoftmax(logits[b], &logp);
      std::vector<int32_t> ids(vocab);
      for (size_t i = 0; i < vocab; ++i) ids[i] = static_cast<int32_t>(i);
      std::partial_sort(ids.begin(), ids.begin() + static_cast<ptrdiff_t>(per_beam), ids.end(), [&](int32_t a, int32_t c) {
        return logp[a] != logp[c] ? logp[a] > logp[c] : a < c;
      });
      for (size_t i = 0; i < per_beam; ++i)
        candidates.push_back({live[b].logprob + logp[static_cast<size_t>(ids[i])], static_cast<int32_t>(b), ids[i]});
    }
    std::stable_sort(candidates.begin(), candidates.end(),
                     [](const Candidate& a, const Candidate& c) { return a.logprob > c.logprob; });
    // The next beams, best first; stops among the top become finished hypotheses.
    std::vector<Beam> next;
    for (size_t i = 0; i < candidates.size() && static_cast<int32_t>(next.size()) < o.beams; ++i) {
      const Candidate& c = candidates[i];
      const Beam& parent = live[static_cast<size_t>(c.beam)];
      if (is_stop(c.token)) {
        if (i < static_cast<size_t>(o.beams)) {  // only a stop ranked among the top `beams` counts
          BeamHypothesis h{parent.tokens, c.logprob, 0, true};
          h.tokens.push_back(c.token);
          h.score = Score(h.logprob, h.tokens.size(), o.length_penalty);
          finished.push_back(std::move(h));
        }
        continue;
      }
      Beam b{parent.tokens, c.logprob, c.beam};  // cache: the parent's index, resolved below
      b.tokens.push_back(c.token);
      next.push_back(std::move(b));
    }
    if (o.early_stopping && static_cast<int32_t>(finished.size()) >= o.beams) {
      live.clear();
      break;
    }
    // Hand the caches over: the first child of a parent takes its cache, the others copy it.
    std::vector<uint8_t> taken(live.size(), 0);
    std::vector<int32_t> owner(next.size());
    for (size_t i = 0; i < next.size(); ++i) {
      const auto p = static_cast<size_t>(next[i].cache);
      if (!taken[p]) {
        taken[p] = 1;
        owner[i] = live[p].cache;
      } else {
        FG_ASSIGN_OR_RETURN(owner[i], take_cache());
        FG_RETURN_IF_ERROR(caches[static_cast<size_t>(owner[i])].CopyFrom(caches[static_cast<size_t>(live[p].cache)]));
      }
    }
    for (size_t p = 0; p < live.size(); ++p)
      if (!taken[p]) free_caches.push_back(live[p].cache);
    for (size_t i = 0; i < next.size(); ++i) next[i].cache = owner[i];
    live = std::move(next);
    if (step + 1 == max_new) break;  // the last tokens need no logits
    logits.resize(live.size());
    for (size_t b = 0; b < live.size(); ++b) {
      const int32_t t = live[b].tokens.back();
      FG_RETURN_IF_ERROR(model.Forward(std::span<const int32_t>(&t, 1), decode_rows,
                                       caches[static_cast<size_t>(live[b].cache)], LogitsMode::kLast, &logits[b]));
      ++result.forwards;
    }
  }
  // Unfinished beams count when fewer than `beams` hypotheses finished (the token budget ran out).
  for (const Beam& b : live) {
    if (static_cast<int32_t>(finished.size()) >= o.beams && o.early_stopping) break;
    finished.push_back({b.tokens, b.logprob, Score(b.logprob, b.tokens.size(), o.length_penalty), false});
  }
  std::stable_sort(finished.begin(), finished.end(),
                   [](const BeamHypothesis& a, const BeamHypothesis& b) { return a.score > b.score; });
  if (finished.size() > static_cast<size_t>(o.n_best)) finished.resize(static_cast<size_t>(o.n_best));
  result.best = std::move(finished);
  result.decode_seconds = std::chrono::duration<double>(Clock::now() - t1).count();
  return result;
}

}  // namespace fastgen
