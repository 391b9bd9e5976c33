// Throughput measurement in the manner of llama-bench: prompt processing (one batched forward
// over P tokens) and generation (N single-token steps, optionally after a prefix of D tokens
// already in the cache), repeated R times, reported as median and spread.
#pragma once

#include <cstdint>
#include <vector>

#include "core/status.h"
#include "kv/eviction.h"
#include "models/model.h"

namespace fastgen {

struct BenchOptions {
  int64_t n_prompt = 512;   // pp test length (0 = skip)
  int64_t n_gen = 128;      // tg test length (0 = skip)
  int64_t depth = 0;        // tokens already in the cache before the tg test
  int repetitions = 5;
  uint64_t seed = 1;        // the token ids are random, as in llama-bench
  // Positions the runs may use: max(n_prompt, depth + n_gen) must fit. 0: the model's trained
  // context (a run past it measures extrapolated positions, which the caller must ask for).
  int64_t context = 0;
  // Sequences decoded together in the tg test (0: one sequence through the dense cache, as
  // `fastgen run` decodes). B >= 1: B sequences, each with its own random prompt of `depth`
  // tokens in paged KV blocks (KvBlockPool), every step one token of each in one ragged batch
  // (Model::ForwardBatch), as the server decodes. tokens/s counts the tokens of all B.
  int batch = 0;
  // KV eviction in the tg test (one sequence only): the depth goes in through pieces evicted back
  // to the budget, and every timed step pays its eviction (and H2O / Keyformer their scoring).
  KvEvictor* evictor = nullptr;
};

struct BenchSeries {
  std::vector<double> tokens_per_second;  // one per repetition
  double Median() const;
  double Min() const;
  double Max() const;
};

struct BenchResult {
  BenchSeries prompt;      // pp: n_prompt / seconds of the prefill forward
  BenchSeries generation;  // tg: n_gen / seconds of the decode steps
};

Expected<BenchResult> RunBenchmark(Model& model, const BenchOptions& options);

}  // namespace fastgen
