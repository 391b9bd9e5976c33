#include "decoding/speculative/spec_benchmark.h"

namespace fastgen::speculative {

Expected<SpecBenchResult> RunSpeculativeBenchmark(Model& target, std::span<const int32_t> prompt,
                                                  Proposer& proposer, const SpecBenchOptions& o) {
  if (o.n_gen < 2 || o.repetitions < 1)
    return InvalidArgument("the speculative benchmark needs -n >= 2 and -r >= 1");
  if (prompt.empty()) return InvalidArgument("the speculative benchmark needs a prompt");
  const int64_t capacity = static_cast<int64_t>(prompt.size()) + o.n_gen;
  if (capacity > target.config().max_context)
    return InvalidArgument("prompt + generated tokens (" + std::to_string(capacity) +
                           ") exceed the model's context (" + std::to_string(target.config().max_context) + ")");
  FG_ASSIGN_OR_RETURN(KvCache kv, target.NewKvCache(capacity));
  GenerateOptions go;
  go.max_new_tokens = o.n_gen;
  go.sampler.temperature = 0.0f;  // greedy: the output must not change, so it is checked
  go.ignore_eos = true;
  // Tokens per second of decoding proper, as `fastgen run` reports it: the first token comes
  // from the prefill, which both modes share.
  auto rate = [](const GenerateResult& g) {
    return g.decode_seconds > 0 ? static_cast<double>(g.tokens.size() - 1) / g.decode_seconds : 0.0;
  };
  {  // untimed warm-up: pages the weights in, sizes the buffers
    GenerateOptions warm = go;
    warm.max_new_tokens = 4;
    FG_RETURN_IF_ERROR(Generate(target, kv, prompt, warm, nullptr).status());
  }
  SpecBenchResult r;
  for (int rep = 0; rep < o.repetitions; ++rep) {
    kv.Clear();
    FG_ASSIGN_OR_RETURN(GenerateResult plain, Generate(target, kv, prompt, go, nullptr));
    kv.Clear();
    FG_ASSIGN_OR_RETURN(SpeculativeResult spec,
                        GenerateSpeculative(target, kv, prompt, go, o.verifier, proposer, nullptr));
    const double p = rate(plain), s = rate(spec.generation);
    r.plain.tokens_per_second.push_back(p);
    r.speculative.tokens_per_second.push_back(s);
    r.speedup.tokens_per_second.push_back(p > 0 ? s / p : 0.0);
    r.identical = r.identical && plain.tokens == spec.generation.tokens;
    r.stats = spec.stats;
  }
  return r;
}

}  // namespace fastgen::speculative
