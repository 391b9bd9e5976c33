// fastgen bench's measurement loop: every test it runs yields one sample per repetition, the
// batched generation test (--batch) decodes B sequences in paged blocks, and lengths the context
// cannot hold are refused before anything runs.
#include "decoding/benchmark.h"

#include <gtest/gtest.h>

#include <memory>

#include "models/model.h"
#include "test_util.h"

namespace fastgen {
namespace {

using fastgen::testing::SharedPath;

Model& Draft() {
  static ThreadPool pool(2);
  static std::unique_ptr<Model> m = [] {
    auto loaded = LoadModel(SharedPath("models/fg-draft"), &pool);
    EXPECT_TRUE(loaded.ok()) << loaded.status().message();
    return loaded.ok() ? std::move(*loaded) : nullptr;
  }();
  return *m;
}

TEST(Benchmark, OneSamplePerRepetition) {
  BenchOptions o;
  o.n_prompt = 16;
  o.n_gen = 4;
  o.depth = 8;
  o.repetitions = 3;
  auto r = RunBenchmark(Draft(), o);
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_EQ(r->prompt.tokens_per_second.size(), 3u);
  ASSERT_EQ(r->generation.tokens_per_second.size(), 3u);
  for (double v : r->generation.tokens_per_second) EXPECT_GT(v, 0);
  EXPECT_LE(r->generation.Min(), r->generation.Median());
  EXPECT_LE(r->generation.Median(), r->generation.Max());
}

TEST(Benchmark, BatchedGenerationDecodesEverySequence) {
  BenchOptions o;
  o.n_prompt = 0;
  o.n_gen = 5;
  o.depth = 20;  // not a multiple of the 16-slot blocks: the steps cross a block boundary
  o.repetitions = 2;
  for (int batch : {1, 3, 8}) {
    o.batch = batch;
    auto r = RunBenchmark(Draft(), o);
    ASSERT_TRUE(r.ok()) << "batch " << batch << ": " << r.status().message();
    EXPECT_TRUE(r->prompt.tokens_per_second.empty());
    ASSERT_EQ(r->generation.tokens_per_second.size(), 2u);
    for (double v : r->generation.tokens_per_second) EXPECT_GT(v, 0);
  }
}

// Under eviction the depth prefill runs in pieces evicted back to the budget: a depth of 1300
// tokens (three pieces) decodes in a cache of the budget plus one piece.
TEST(Benchmark, GenerationUnderKvEviction) {
  for (EvictionKind kind : {EvictionKind::kWindow, EvictionKind::kH2O}) {
    EvictionPolicy p;
    p.kind = kind;
    p.budget = 64;
    auto policy = ResolvePolicy(p);
    ASSERT_TRUE(policy.ok());
    KvEvictor evictor(*policy, Draft().config().n_layer, Draft().config().n_kv_head);
    BenchOptions o;
    o.n_prompt = 8;
    o.n_gen = 6;
    o.depth = 1300;
    o.repetitions = 1;
    o.evictor = &evictor;
    auto r = RunBenchmark(Draft(), o);
    ASSERT_TRUE(r.ok()) << r.status().message();
    ASSERT_EQ(r->generation.tokens_per_second.size(), 1u);
    EXPECT_GT(r->generation.tokens_per_second[0], 0);
    o.batch = 2;
    EXPECT_FALSE(RunBenchmark(Draft(), o).ok());
  }
}

TEST(Benchmark, RefusesWhatTheContextCannotHold) {
  BenchOptions o;
  o.n_prompt = 0;
  o.n_gen = 8;
  o.depth = 60;
  o.context = 64;
  o.batch = 4;
  auto r = RunBenchmark(Draft(), o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("context is 64"), std::string::npos) << r.status().message();
  o.batch = -1;
  o.context = 0;
  EXPECT_FALSE(RunBenchmark(Draft(), o).ok());
}

}  // namespace
}  // namespace fastgen
