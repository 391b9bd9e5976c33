#include "eval/perplexity.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <string>

namespace fastgen::eval {

double LogSumExp(std::span<const float> x) {
  float mx = -INFINITY;
  for (float v : x) mx = std::max(mx, v);
  if (!std::isfinite(mx)) return mx;
  double sum = 0;
  for (float v : x) sum += std::exp(static_cast<double>(v) - mx);
  return mx + std::log(sum);
}

int64_t PerplexityChunks(int64_t tokens, const PerplexityOptions& o) {
  if (o.ctx <= 0) return 0;
  const int64_t whole = tokens / o.ctx;
  return o.chunks < 0 ? whole : std::min(o.chunks, whole);
}

Expected<PerplexityResult> ComputePerplexity(Model& model, std::span<const int32_t> tokens,
                                             const PerplexityOptions& o,
                                             const std::function<Status(const ScoredPosition&)>& observe,
                                             const std::function<void(const PerplexityProgress&)>& progress) {
  const int64_t n_tokens = static_cast<int64_t>(tokens.size());
  if (o.ctx < 4) return InvalidArgument("perplexity: the context per chunk (-c) must be at least 4 tokens");
  if (o.batch < 1) return InvalidArgument("perplexity: the batch size must be at least 1");
  if (n_tokens < 2 * o.ctx)
    return InvalidArgument("perplexity: the text has " + std::to_string(n_tokens) + " tokens; a context of " +
                           std::to_string(o.ctx) + " needs at least " + std::to_string(2 * o.ctx) +
                           " (two chunks)");
  if (o.chunks == 0) return InvalidArgument("perplexity: --chunks must be at least 1");
  const int64_t vocab = model.config().vocab_size;
  const int64_t chunks = PerplexityChunks(n_tokens, o);
  const int64_t first = o.ctx / 2;                 // first scored position of a chunk
  const int64_t per_chunk = o.ctx - first - 1;     // positions first .. ctx-2
  KvEvictor* evictor = o.evictor != nullptr && o.evictor->policy().kind != EvictionKind::kNone ? o.evictor : nullptr;
  if (evictor != nullptr && model.config().sliding_window > 0)
    return InvalidArgument("KV eviction is not available for a model with sliding-window attention");
  // With eviction the cache holds the budget plus the one token decoded past it.
  const int64_t prefill = evictor != nullptr ? std::min(o.ctx, evictor->policy().budget) : o.ctx;
  FG_ASSIGN_OR_RETURN(KvCache kv, model.NewKvCache(evictor != nullptr ? prefill + 1 : o.ctx));
  const ScopedAttentionHooks hooks(model, evictor != nullptr && evictor->wants_attention() ? evictor : nullptr,
                                   o.sparse);
  // Tokens from here on go through one at a time: past the eviction budget, or in the scored
  // half under sparse attention.
  const int64_t stepwise = std::min(prefill, o.sparse != nullptr ? first : o.ctx);

  PerplexityResult r;
  r.chunks = chunks;
  r.ctx = o.ctx;
  r.tokens = n_tokens;
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<int32_t> chunk(static_cast<size_t>(o.ctx));
  std::vector<float> logits;
  std::vector<double> lse(static_cast<size_t>(o.batch));
  double sum = 0, sum2 = 0;
  int64_t index = 0;
  for (int64_t c = 0; c < chunks; ++c) {
    std::copy_n(tokens.begin() + c * o.ctx, o.ctx, chunk.begin());
    if (o.bos) chunk[0] = *o.bos;
    kv.Clear();
    if (evictor != nullptr) evictor->Reset();
    for (int64_t b = 0; b < o.ctx;) {
      // Passes of up to `batch` tokens that never straddle the scored half's start or the end
      // of the prefill; one token at a time past the prefill.
      const int64_t end = b < stepwise ? std::min(stepwise, b < first ? first : o.ctx) : b + 1;
      const int64_t nb = std::min(o.batch, end - b);
      const auto pass = std::span<const int32_t>(chunk).subspan(static_cast<size_t>(b), static_cast<size_t>(nb));
      // The context half needs no logits: it goes through with the last row's only, so the
      // vocabulary projection is paid for the scored rows alone.
      FG_RETURN_IF_ERROR(model.Forward(pass, kv, b >= first ? LogitsMode::kAll : LogitsMode::kLast, &logits));
      if (evictor != nullptr) FG_RETURN_IF_ERROR(evictor->Enforce(kv).status());
      if (b >= first) {
        const int64_t rows = std::min(nb, o.ctx - 1 - b);  // the last position predicts nothing
        model.pool().ParallelFor(rows, [&](int64_t lo, int64_t hi) {
          for (int64_t i = lo; i < hi; ++i)
            lse[static_cast<size_t>(i)] = LogSumExp(std::span<const float>(logits).subspan(i * vocab, vocab));
        }, 16);
        for (int64_t i = 0; i < rows; ++i) {
          ScoredPosition p;
          p.index = index++;
          p.logits = std::span<const float>(logits).subspan(i * vocab, vocab);
          p.next = chunk[static_cast<size_t>(b + i + 1)];
          p.log_sum_exp = lse[static_cast<size_t>(i)];
          p.nll = p.log_sum_exp - p.logits[static_cast<size_t>(p.next)];
          sum += p.nll;
          sum2 += p.nll * p.nll;
          if (observe) FG_RETURN_IF_ERROR(observe(p));
        }
      }
      b += nb;
    }
    const int64_t count = (c + 1) * per_chunk;
    r.running_ppl.push_back(std::exp(sum / static_cast<double>(count)));
    if (progress) {
      PerplexityProgress pr;
      pr.chunk = c + 1;
      pr.chunks = chunks;
      pr.ppl = r.running_ppl.back();
      pr.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      progress(pr);
    }
  }
  r.scored = chunks * per_chunk;
  const double n = static_cast<double>(r.scored);
  r.mean_nll = sum / n;
  r.ppl = std::exp(r.mean_nll);
  const double var = sum2 / n - r.mean_nll * r.mean_nll;
  r.ppl_stderr = var > 0 && r.scored > 1 ? r.ppl * std::sqrt(var / (n - 1)) : 0;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace fastgen::eval
