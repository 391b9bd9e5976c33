#include "decoding/benchmark.h"

#include <algorithm>
#include <chrono>

#include "decoding/sampler.h"

namespace fastgen {
namespace {

using Clock = std::chrono::steady_clock;

std::vector<double> Sorted(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v;
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
  if (o.n_prompt < 0 || o.n_gen < 0 || o.depth < 0 || o.repetitions < 1)
    return InvalidArgument("benchmark lengths must be >= 0 and repetitions >= 1");
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
  FG_ASSIGN_OR_RETURN(KvCache kv, model.NewKvCache(std::max<int64_t>(capacity, 1)));
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
    if (o.n_gen > 0) {
      kv.Clear();
      if (o.depth > 0)
        FG_RETURN_IF_ERROR(model.Forward(random_tokens(o.depth), prompt_rows, kv, LogitsMode::kLast, &logits));
      const auto tokens = random_tokens(o.n_gen);
      const auto t0 = Clock::now();
      for (int64_t i = 0; i < o.n_gen; ++i)
        FG_RETURN_IF_ERROR(model.Forward(std::span<const int32_t>(&tokens[static_cast<size_t>(i)], 1), decode_rows,
                                         kv, LogitsMode::kLast, &logits));
      const double s = std::chrono::duration<double>(Clock::now() - t0).count();
      r.generation.tokens_per_second.push_back(static_cast<double>(o.n_gen) / s);
    }
  }
  return r;
}

}  // namespace fastgen
