// Beam search against exhaustive search and against greedy decoding.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>

#include "decoding/beam_search.h"
#include "decoding/generate.h"
#include "models/model.h"
#include "test_util.h"

namespace fastgen {
namespace {

Model& Fixture() {
  static ThreadPool pool(2);
  static std::unique_ptr<Model> m = [] {
    auto loaded = LoadModel(testing::SharedPath("fixtures/llama"), &pool);
    EXPECT_TRUE(loaded.ok()) << loaded.status().message();
    return std::move(*loaded);
  }();
  return *m;
}

std::vector<double> LogProbs(Model& m, const std::vector<int32_t>& ids) {
  auto kv = m.NewKvCache(64);
  EXPECT_TRUE(kv.ok());
  std::vector<float> logits;
  BatchLayout rows;
  EXPECT_TRUE(m.Forward(ids, rows, *kv, LogitsMode::kLast, &logits).ok());
  double max = -INFINITY, sum = 0;
  for (float x : logits) max = std::max(max, double(x));
  for (float x : logits) sum += std::exp(double(x) - max);
  std::vector<double> out(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) out[i] = double(logits[i]) - max - std::log(sum);
  return out;
}

// With as many beams as the vocabulary, two steps of beam search are exhaustive: its best pair
// is the most likely of all 256 x 256 two-token continuations.
TEST(BeamSearch, WideEnoughItIsExhaustive) {
  Model& m = Fixture();
  const std::vector<int32_t> prompt = {1, 17, 42, 99};
  const auto vocab = static_cast<int32_t>(m.config().vocab_size);
  const std::vector<double> first = LogProbs(m, prompt);
  double best = -INFINITY;
  std::vector<int32_t> best_pair;
  for (int32_t a = 0; a < vocab; ++a) {
    std::vector<int32_t> ids = prompt;
    ids.push_back(a);
    const std::vector<double> second = LogProbs(m, ids);
    for (int32_t b = 0; b < vocab; ++b) {
      if (first[a] + second[b] > best) {
        best = first[a] + second[b];
        best_pair = {a, b};
      }
    }
  }
  BeamSearchOptions o;
  o.beams = 64;
  o.max_new_tokens = 2;
  o.length_penalty = 0;
  o.context = 64;
  auto r = BeamSearch(m, prompt, o);
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_EQ(r->best.size(), 1u);
  // 64 beams keep the best pair: its first token is among the 64 most likely first tokens
  // whenever it is the best pair overall (checked here rather than assumed).
  std::vector<double> sorted = first;
  std::sort(sorted.rbegin(), sorted.rend());
  ASSERT_GE(first[best_pair[0]], sorted[63]);
  EXPECT_EQ(r->best[0].tokens, best_pair);
  EXPECT_NEAR(r->best[0].logprob, best, 1e-4);
}

// One beam is greedy decoding.
TEST(BeamSearch, OneBeamIsGreedy) {
  Model& m = Fixture();
  const std::vector<int32_t> prompt = {1, 5, 9};
  auto kv = m.NewKvCache(64);
  ASSERT_TRUE(kv.ok());
  GenerateOptions go;
  go.max_new_tokens = 20;
  go.sampler.temperature = 0;
  go.ignore_eos = true;
  auto greedy = Generate(m, *kv, prompt, go, nullptr);
  ASSERT_TRUE(greedy.ok());
  BeamSearchOptions o;
  o.beams = 1;
  o.max_new_tokens = 20;
  o.context = 64;
  auto r = BeamSearch(m, prompt, o);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->best[0].tokens, greedy->tokens);
}

// More beams never find a worse best hypothesis here than fewer, n-best comes sorted, and stop
// ids finish hypotheses.
TEST(BeamSearch, NBestSortedAndStopsFinish) {
  Model& m = Fixture();
  const std::vector<int32_t> prompt = {1, 2, 3};
  BeamSearchOptions o;
  o.beams = 8;
  o.n_best = 8;
  o.max_new_tokens = 12;
  o.context = 64;
  o.length_penalty = 0;
  auto r = BeamSearch(m, prompt, o);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->best.size(), 8u);
  for (size_t i = 1; i < r->best.size(); ++i) EXPECT_GE(r->best[i - 1].score, r->best[i].score);
  // Make the most likely first token a stop id: the best hypothesis may now be one token long.
  const std::vector<double> first = LogProbs(m, prompt);
  const auto top = static_cast<int32_t>(std::max_element(first.begin(), first.end()) - first.begin());
  o.stop_ids = {top};
  o.n_best = 1;
  auto s = BeamSearch(m, prompt, o);
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(s->best[0].finished || s->best[0].tokens.size() == 12u);
  for (const auto& h : s->best)
    for (size_t i = 0; i + 1 < h.tokens.size(); ++i) EXPECT_NE(h.tokens[i], top);  // a stop only last
  BeamSearchOptions none;
  none.beams = 0;
  EXPECT_FALSE(BeamSearch(m, prompt, none).ok());
}

}  // namespace
}  // namespace fastgen
