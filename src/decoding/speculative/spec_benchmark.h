// Speculative decoding, part 5: the benchmark behind `fastgen bench --spec`. Plain greedy
// decoding and speculative decoding of the same prompt, alternated over repetitions so that
// drift on a shared machine hits both alike; reports both speeds, the per-repetition speedup and
// the proposer's statistics, and checks the outputs are identical (greedy is lossless).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/status.h"
#include "decoding/benchmark.h"
#include "decoding/speculative/speculative.h"
#include "models/model.h"

namespace fastgen::speculative {

struct SpecBenchOptions {
  int64_t n_gen = 128;       // tokens generated per run (end-of-sequence ignored)
  int repetitions = 3;
  SpeculativeOptions verifier;
};

struct SpecBenchResult {
  BenchSeries plain;         // decode tokens/s, one per repetition
  BenchSeries speculative;
  BenchSeries speedup;       // speculative / plain, per repetition ("tokens_per_second" holds ratios)
  SpeculativeStats stats;    // of the last repetition
  bool identical = true;     // every speculative output equal to the plain one
};

Expected<SpecBenchResult> RunSpeculativeBenchmark(Model& target, std::span<const int32_t> prompt,
                                                  Proposer& proposer, const SpecBenchOptions& options);

}  // namespace fastgen::speculative
