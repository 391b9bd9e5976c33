#include "decoding/benchmark.h"

#include <algorithm>
#include <chrono>

#include "decoding/sampler.h"
#include "kv/block_pool.h"

namespace fastgen {
namespace {

using Clock = std::chrono::steady_clock;

std::vector<double> Sorted(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v;
}

// The tg test of B sequences decoded together (BenchOptions::batch): each has its own blocks
// (16 slots each) covering depth + n_gen slots, is prefilled with `depth` random tokens in the
// prompt role, then takes n_gen steps in which every sequence adds one token in the decode role.
Status RunBatchedGeneration(Model& model, const BenchOptions& o, Xoshiro256StarStar& rng, BenchSeries* out) {
  const ModelConfig& c = model.config();
  const int64_t B = o.batch;
  constexpr int64_t kBlockTokens = 16;
  const int64_t per_seq = (o.depth + o.n_gen + kBlockTokens - 1) / kBlockTokens;
  FG_ASSIGN_OR_RETURN(KvBlockPool pool, KvBlockPool::Create({c.n_layer, c.n_kv_head, c.head_dim, kBlockTokens,
                                                            std::max<int64_t>(B * per_seq, 1), model.kv_type()}));
  std::vector<std::vector<int32_t>> tables(static_cast<size_t>(B));
  for (auto& t : tables)
    for (int64_t i = 0; i < per_seq; ++i) t.push_back(*pool.Allocate());
  auto random_tokens = [&](int64_t n) {
    std::vector<int32_t> t(static_cast<size_t>(n));
    for (auto& id : t) id = static_cast<int32_t>(rng.Next() % static_cast<uint64_t>(c.vocab_size));
    return t;
  };
  std::vector<float> logits;
  for (int rep = 0; rep < o.repetitions; ++rep) {
    if (o.depth > 0) {
      for (int64_t s = 0; s < B; ++s) {
        const auto prompt = random_tokens(o.depth);
        BatchSequence seq{prompt, 0, tables[static_cast<size_t>(s)], /*decode=*/false, /*outputs=*/1};
        FG_RETURN_IF_ERROR(model.ForwardBatch(std::span<const BatchSequence>(&seq, 1), pool, &logits));
      }
    }
    const auto tokens = random_tokens(B * o.n_gen);  // [n_gen, B]
    std::vector<BatchSequence> step(static_cast<size_t>(B));
    const auto t0 = Clock::now();
    for (int64_t i = 0; i < o.n_gen; ++i) {
      for (int64_t s = 0; s < B; ++s)
        step[static_cast<size_t>(s)] = BatchSequence{std::span<const int32_t>(&tokens[static_cast<size_t>(i * B + s)], 1),
                                                     o.depth + i, tables[static_cast<size_t>(s)], true, 1};
      FG_RETURN_IF_ERROR(model.ForwardBatch(step, pool, &logits));
    }
    const double sec = std::chrono::duration<double>(Clock::now() - t0).count();
    out->tokens_per_second.push_back(static_cast<double>(B * o.n_gen) / sec);
  }
  return Status::Ok();
}

}  // namespace

double BenchSeries::Median() const {
  if (tokens_per_second.empty()) return 0;
  const auto s = Sorted(tokens_per_second);
  const size_t n = s.size();
  return n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}
double BenchSeries::Min() const {
  return tokens_per_second.empty() ? 0 : *std::min_element(tokens_per_second.begin(), tokens_per_second.end());
}
double BenchSeries::Max() const {
  return tokens_per_second.empty() ? 0 : *std::max_element(tokens_per_second.begin(), tokens_per_second.end());
}

Expected<BenchResult> RunBenchmark(Model& model, const BenchOptions& o) {
  if (o.n_prompt < 0 || o.n_gen < 0 || o.depth < 0 || o.repetitions < 1 || o.batch < 0)
    return InvalidArgument("benchmark lengths and the batch must be >= 0 and repetitions >= 1");
  const ModelConfig& c = model.config();
  const int64_t capacity = std::max(o.n_prompt, o.depth + o.n_gen);
  const int64_t context = o.context > 0 ? o.context : c.max_context;
  if (capacity > context)
    return InvalidArgument("the benchmark needs " + std::to_string(capacity) + " positions (max of -p " +
                           std::to_string(o.n_prompt) + " and -d " + std::to_string(o.depth) + " + -n " +
                           std::to_string(o.n_gen) + ") but the context is " + std::to_string(context) +
                           " tokens" + (o.context > 0 ? "" : " (the model's; -c raises it)"));
  if (capacity > c.max_context && c.arch == Arch::kGpt2)
    return InvalidArgument("benchmark needs " + std::to_string(capacity) +
                           " positions; GPT-2 has " + std::to_string(c.max_context));
  KvEvictor* evictor = o.evictor != nullptr && o.evictor->policy().kind != EvictionKind::kNone ? o.evictor : nullptr;
  if (evictor != nullptr && o.batch > 0) return InvalidArgument("KV eviction is measured on one sequence (no --batch)");
  if (!model.kv_staircase().empty() && o.batch > 0)
    return InvalidArgument("--kv-staircase is measured on one sequence (no --batch): batched steps use the paged cache");
  // Under eviction the tg cache holds the budget and a 512-token piece of the depth prefill.
  constexpr int64_t kPiece = 512;
  FG_ASSIGN_OR_RETURN(KvCache kv, model.NewKvCache(std::max<int64_t>(
                                      evictor == nullptr ? capacity : std::max(o.n_prompt, evictor->policy().budget + kPiece), 1)));
  Xoshiro256StarStar rng(o.seed);
  auto random_tokens = [&](int64_t n) {
    std::vector<int32_t> t(static_cast<size_t>(n));
    for (auto& id : t) id = static_cast<int32_t>(rng.Next() % static_cast<uint64_t>(c.vocab_size));
    return t;
  };
  std::vector<float> logits;
  BenchResult r;
  // The kernels generation uses: prompt tokens through the GEMM, steps through the decode
  // kernels (BatchLayout::Rows).
  BatchLayout prompt_rows, decode_rows;
  prompt_rows.rows = BatchLayout::Rows::kPrompt;
  decode_rows.rows = BatchLayout::Rows::kDecode;
  // One untimed warm-up pass pages the weights in and sizes every buffer.
  {
    const auto warm = random_tokens(std::min<int64_t>(std::max<int64_t>(o.n_prompt, 1), 16));
    FG_RETURN_IF_ERROR(model.Forward(warm, prompt_rows, kv, LogitsMode::kLast, &logits));
    kv.Clear();
  }
  for (int rep = 0; rep < o.repetitions; ++rep) {
    if (o.n_prompt > 0) {
      kv.Clear();
      const auto tokens = random_tokens(o.n_prompt);
      const auto t0 = Clock::now();
      FG_RETURN_IF_ERROR(model.Forward(tokens, prompt_rows, kv, LogitsMode::kLast, &logits));
      const double s = std::chrono::duration<double>(Clock::now() - t0).count();
      r.prompt.tokens_per_second.push_back(static_cast<double>(o.n_prompt) / s);
    }
    if (o.n_gen > 0 && o.batch > 0) {
      BenchOptions one = o;
      one.repetitions = 1;
      FG_RETURN_IF_ERROR(RunBatchedGeneration(model, one, rng, &r.generation));
    } else if (o.n_gen > 0) {
      kv.Clear();
      if (evictor != nullptr) evictor->Reset();
      // H2O / Keyformer score the attention of the tg test's passes, the depth's included (not pp's).
      const ScopedAttentionHooks hooks(model, evictor != nullptr && evictor->wants_attention() ? evictor : nullptr);
      if (o.depth > 0) {
        const auto depth = random_tokens(o.depth);
        const int64_t piece = evictor == nullptr ? o.depth : kPiece;
        for (int64_t b = 0; b < o.depth; b += piece) {
          const auto part = std::span<const int32_t>(depth).subspan(static_cast<size_t>(b),
                                                                     static_cast<size_t>(std::min(piece, o.depth - b)));
          FG_RETURN_IF_ERROR(model.Forward(part, prompt_rows, kv, LogitsMode::kLast, &logits));
          if (evictor != nullptr) FG_RETURN_IF_ERROR(evictor->Enforce(kv).status());
        }
      }
      const auto tokens = random_tokens(o.n_gen);
      const auto t0 = Clock::now();
      for (int64_t i = 0; i < o.n_gen; ++i) {
        FG_RETURN_IF_ERROR(model.Forward(std::span<const int32_t>(&tokens[static_cast<size_t>(i)], 1), decode_rows,
                                         kv, LogitsMode::kLast, &logits));
        if (evictor != nullptr) FG_RETURN_IF_ERROR(evictor->Enforce(kv).status());
      }
      const double s = std::chrono::duration<double>(Clock::now() - t0).count();
      r.generation.tokens_per_second.push_back(static_cast<double>(o.n_gen) / s);
    }
  }
  return r;
}

}  // namespace fastgen
