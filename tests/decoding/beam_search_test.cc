// Beam search against exhaustive search and against greedy decoding.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>

#include "decoding/beam_search.h"
#include "decoding/constrained/grammar.h"
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


// Each hypothesis's log-probability is what a dense cache computes for its tokens from scratch:
// the beams' shared, copied-on-write KV blocks hold exactly their own histories.
TEST(BeamSearch, LogProbsMatchADenseRecompute) {
  Model& m = Fixture();
  std::vector<int32_t> prompt;
  for (int32_t i = 0; i < 40; ++i) prompt.push_back((i * 37 + 11) % 256);  // past two 16-slot blocks
  BeamSearchOptions o;
  o.beams = 6;
  o.n_best = 6;
  o.max_new_tokens = 21;  // crosses a block boundary mid-search
  o.context = 128;
  o.length_penalty = 0;
  auto r = BeamSearch(m, prompt, o);
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_EQ(r->best.size(), 6u);
  EXPECT_GT(r->block_copies, 0);  // siblings did share a block they then wrote
  // The prompt's blocks are shared: far fewer than six private copies of the whole history.
  EXPECT_LT(r->peak_blocks, 6 * 4);
  for (const BeamHypothesis& h : r->best) {
    std::vector<int32_t> ids = prompt;
    double sum = 0;
    for (int32_t t : h.tokens) {
      sum += LogProbs(m, ids)[static_cast<size_t>(t)];
      ids.push_back(t);
    }
    EXPECT_NEAR(h.logprob, sum, 2e-3);
  }
  // Distinct hypotheses.
  for (size_t i = 0; i < r->best.size(); ++i)
    for (size_t j = i + 1; j < r->best.size(); ++j) EXPECT_NE(r->best[i].tokens, r->best[j].tokens);
}

// Diverse beam search: with one beam per group and a prohibitive penalty, the groups' first
// tokens are the model's most likely first tokens, one each; with no penalty every group is
// greedy and they all agree.
TEST(BeamSearch, DiverseGroupsSpreadOverTheMostLikelyTokens) {
  Model& m = Fixture();
  const std::vector<int32_t> prompt = {1, 7, 30};
  const std::vector<double> first = LogProbs(m, prompt);
  std::vector<int32_t> order(first.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int32_t>(i);
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return first[a] > first[b]; });
  BeamSearchOptions o;
  o.beams = 4;
  o.groups = 4;
  o.n_best = 4;
  o.max_new_tokens = 6;
  o.context = 64;
  o.diversity_penalty = 1000;
  auto r = BeamSearch(m, prompt, o);
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_EQ(r->best.size(), 4u);
  std::vector<int32_t> firsts, groups;
  for (const auto& h : r->best) {
    firsts.push_back(h.tokens[0]);
    groups.push_back(h.group);
  }
  std::sort(firsts.begin(), firsts.end());
  std::sort(groups.begin(), groups.end());
  std::vector<int32_t> top4(order.begin(), order.begin() + 4);
  std::sort(top4.begin(), top4.end());
  EXPECT_EQ(firsts, top4);
  EXPECT_EQ(groups, (std::vector<int32_t>{0, 1, 2, 3}));
  // The true log-probability is reported, the penalty only ranks.
  for (const auto& h : r->best) EXPECT_GT(h.logprob, -1000);

  o.diversity_penalty = 0;
  auto same = BeamSearch(m, prompt, o);
  ASSERT_TRUE(same.ok());
  for (const auto& h : same->best) EXPECT_EQ(h.tokens, same->best[0].tokens);
  o.groups = 3;  // does not divide 4 beams
  EXPECT_FALSE(BeamSearch(m, prompt, o).ok());
}

// A vocabulary of single printable bytes for the 256-token fixture.
std::shared_ptr<const constrained::TokenVocabulary> ByteVocabulary() {
  std::vector<std::string> bytes(256);
  for (int32_t t = 32; t < 127; ++t) bytes[static_cast<size_t>(t)] = std::string(1, static_cast<char>(t));
  return std::make_shared<const constrained::TokenVocabulary>(std::move(bytes));
}

// Under a grammar of two digits, 64 beams search the 100 allowed pairs exhaustively: the best
// hypothesis is the most likely allowed pair, and every hypothesis is in the grammar (complete,
// since it has no end id to stop with).
TEST(BeamSearch, UnderAGrammarItFindsTheBestAllowedSequence) {
  Model& m = Fixture();
  const std::vector<int32_t> prompt = {1, 17, 42};
  auto grammar = constrained::Grammar::Parse("root ::= [0-9] [0-9]");
  ASSERT_TRUE(grammar.ok()) << grammar.status().message();
  BeamSearchOptions o;
  o.beams = 64;
  o.n_best = 10;
  o.max_new_tokens = 5;
  o.context = 64;
  o.length_penalty = 0;
  o.grammar = std::make_shared<constrained::GrammarMaskCache>(*grammar, ByteVocabulary());
  auto r = BeamSearch(m, prompt, o);
  ASSERT_TRUE(r.ok()) << r.status().message();
  const std::vector<double> first = LogProbs(m, prompt);
  double best = -INFINITY;
  std::vector<int32_t> best_pair;
  for (int32_t a = '0'; a <= '9'; ++a) {
    std::vector<int32_t> ids = prompt;
    ids.push_back(a);
    const std::vector<double> second = LogProbs(m, ids);
    for (int32_t b = '0'; b <= '9'; ++b)
      if (first[a] + second[b] > best) {
        best = first[a] + second[b];
        best_pair = {a, b};
      }
  }
  ASSERT_EQ(r->best.size(), 10u);
  EXPECT_EQ(r->best[0].tokens, best_pair);
  EXPECT_NEAR(r->best[0].logprob, best, 1e-4);
  for (const auto& h : r->best) {
    ASSERT_EQ(h.tokens.size(), 2u);
    EXPECT_TRUE(h.finished);
    for (int32_t t : h.tokens) EXPECT_TRUE(t >= '0' && t <= '9') << t;
  }
  // A grammar that the vocabulary cannot spell leaves nothing to return: an error, not a crash.
  auto none = constrained::Grammar::Parse("root ::= [\\x80-\\xff]");
  ASSERT_TRUE(none.ok());
  o.grammar = std::make_shared<constrained::GrammarMaskCache>(*none, ByteVocabulary());
  EXPECT_FALSE(BeamSearch(m, prompt, o).ok());
}

}  // namespace
}  // namespace fastgen
