// Speculative sampling is distribution-preserving: over many seeds, the first generated tokens
// follow exactly the distribution plain sampling from the target has (computed here exactly
// from the target's own distributions), for a draft model and for a deterministic proposer,
// under temperature, top-k, top-p, min-p and penalties together.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "decoding/generate.h"
#include "decoding/speculative/acceptance.h"
#include "decoding/speculative/draft_model.h"
#include "decoding/speculative/jacobi.h"
#include "decoding/speculative/prompt_lookup.h"
#include "decoding/speculative/speculative.h"
#include "models/model.h"
#include "test_util.h"

namespace fastgen::speculative {
namespace {

using fastgen::testing::SharedPath;

constexpr int kTokens = 3;       // (t0, t1, t2): t0 from the prefill, t1 drafted, t2 bonus or resampled
// Enough to see a 2% shift of mass between two bins. Under the sanitizers (5-10x slower) a
// fifth: the sanitized run looks for memory errors, the optimized one checks the statistics.
#ifdef FASTGEN_SANITIZED
constexpr int kSamples = 4000;
#else
constexpr int kSamples = 20000;
#endif

// One thread: these models are tiny and the test runs thousands of short generations.
ThreadPool& Pool() {
  static ThreadPool pool(1);
  return pool;
}

std::unique_ptr<Model> Load(const std::string& fixture) {
  auto m = LoadModel(SharedPath("fixtures/" + fixture), &Pool());
  EXPECT_TRUE(m.ok()) << m.status().message();
  return m.ok() ? std::move(*m) : nullptr;
}

std::vector<int32_t> Prompt(int len = 16) {
  std::vector<int32_t> p;
  for (int i = 0; i < len; ++i) p.push_back(static_cast<int32_t>((i * 29 + 5) % 256));
  return p;
}

SamplerOptions Settings() {
  SamplerOptions s;
  s.temperature = 0.9f;
  s.top_k = 6;
  s.top_p = 0.97f;
  s.min_p = 0.02f;
  s.repetition_penalty = 1.3f;
  return s;
}

using Seq = std::vector<int32_t>;

// P(t0, t1, ...) of the first `tokens` tokens of plain sampling, by enumerating the target's
// distributions.
std::map<Seq, double> ExactJoint(Model& m, const Seq& prompt, const SamplerOptions& so, int tokens = kTokens) {
  const auto vocab = static_cast<int32_t>(m.config().vocab_size);
  Sampler sampler(so, vocab);
  std::map<Seq, double> out;
  // Depth-first over prefixes; the probability of each prefix carried along.
  std::function<void(const Seq&, double)> expand = [&](const Seq& prefix, double mass) {
    if (static_cast<int>(prefix.size()) == tokens) {
      out[prefix] += mass;
      return;
    }
    Seq history = prompt;
    history.insert(history.end(), prefix.begin(), prefix.end());
    auto kv = m.NewKvCache(static_cast<int64_t>(history.size()));
    ASSERT_TRUE(kv.ok());
    std::vector<float> logits, probs;  // per level: the loop below recurses
    ASSERT_TRUE(m.Forward(history, *kv, LogitsMode::kLast, &logits).ok());
    sampler.Distribution(logits, history, &probs);
    for (int32_t t = 0; t < vocab; ++t) {
      if (probs[static_cast<size_t>(t)] <= 0) continue;
      Seq next = prefix;
      next.push_back(t);
      expand(next, mass * probs[static_cast<size_t>(t)]);
    }
  };
  expand({}, 1.0);
  return out;
}

// Upper 1 - alpha quantile of chi-square(df) with z = 5.5 (alpha ~ 2e-8), Wilson-Hilferty: a
// correct implementation fails this once in tens of millions of runs.
double ChiSquareCritical(int df) {
  const double z = 5.5, k = df;
  const double c = 1.0 - 2.0 / (9.0 * k) + z * std::sqrt(2.0 / (9.0 * k));
  return k * c * c * c;
}

// Pearson chi-square of `counts` against `probs`; bins expected below 5 are pooled.
void ExpectMatches(const std::map<Seq, int64_t>& counts, const std::map<Seq, double>& probs, int64_t n,
                   const std::string& what) {
  double stat = 0, pooled_expected = 0;
  int64_t pooled_count = 0;
  int bins = 0;
  for (const auto& [seq, p] : probs) {
    const double expected = p * static_cast<double>(n);
    const auto it = counts.find(seq);
    const int64_t c = it == counts.end() ? 0 : it->second;
    if (expected < 5) {
      pooled_expected += expected;
      pooled_count += c;
      continue;
    }
    stat += (c - expected) * (c - expected) / expected;
    ++bins;
  }
  int64_t impossible = 0;
  for (const auto& [seq, c] : counts)
    if (!probs.count(seq)) impossible += c;
  EXPECT_EQ(impossible, 0) << what << ": sequences plain sampling can never produce";
  if (pooled_expected > 0) {
    stat += (pooled_count - pooled_expected) * (pooled_count - pooled_expected) / pooled_expected;
    ++bins;
  }
  const double crit = ChiSquareCritical(bins - 1);
  EXPECT_LT(stat, crit) << what << ": chi-square " << stat << " over " << bins << " bins";
  std::cout << "[ info ] " << what << ": chi-square " << stat << " (critical " << crit << ", " << bins
            << " bins)\n";
}

struct SampleRun {
  std::map<Seq, int64_t> counts;
  int64_t drafted = 0, drafted_path = 0, accepted = 0, lookup_steps = 0, spec_steps = 0;
};

// lookup_first: prompt lookup ahead of the proposer (SpeculativeOptions::lookup_first).
SampleRun Sample(Model& target, Proposer* proposer, const Seq& prompt, int tokens = kTokens,
                 bool lookup_first = false) {
  SampleRun run;
  GenerateOptions go;
  go.max_new_tokens = tokens;
  go.ignore_eos = true;
  SpeculativeOptions so;
  so.adaptive_fallback = false;
  so.lookup_first = lookup_first;
  auto kv = target.NewKvCache(static_cast<int64_t>(prompt.size()) + tokens);
  EXPECT_TRUE(kv.ok());
  for (int seed = 0; seed < kSamples; ++seed) {
    go.sampler = Settings();
    go.sampler.seed = static_cast<uint64_t>(seed) * 7919 + 1;
    kv->Clear();
    Seq tokens;
    if (proposer) {
      auto r = GenerateSpeculative(target, *kv, prompt, go, so, *proposer, nullptr);
      EXPECT_TRUE(r.ok()) << r.status().message();
      if (!r.ok()) return run;
      tokens = r->generation.tokens;
      run.drafted += r->stats.drafted;
      run.drafted_path += r->stats.drafted_path;
      run.accepted += r->stats.accepted;
      run.lookup_steps += r->stats.lookup_steps;
      run.spec_steps += r->stats.spec_steps;
    } else {
      auto r = Generate(target, *kv, prompt, go, nullptr);
      EXPECT_TRUE(r.ok());
      if (!r.ok()) return run;
      tokens = r->tokens;
    }
    ++run.counts[tokens];
  }
  return run;
}

// A prompt with something to copy: each possible first token followed by its likeliest
// successor; with `alternatives` > 1, also by its 2nd, 3rd... likeliest one, earlier in the
// prompt (so lookup finds several continuations of one token, the likeliest most recent).
Seq LookupPrompt(Model& target, int alternatives = 1) {
  Seq prompt = Prompt(40);
  std::map<Seq, double> pairs;
  for (const auto& [seq, p] : ExactJoint(target, prompt, Settings())) pairs[{seq[0], seq[1]}] += p;
  for (int rank = alternatives - 1; rank >= 0; --rank) {
    for (int32_t t0 = 0; t0 < 256; ++t0) {
      std::vector<std::pair<double, int32_t>> next;  // (probability, successor), likeliest first
      for (const auto& [pair, p] : pairs)
        if (pair[0] == t0) next.emplace_back(-p, pair[1]);
      std::sort(next.begin(), next.end());
      if (static_cast<int>(next.size()) > rank) prompt.insert(prompt.end(), {t0, next[static_cast<size_t>(rank)].second});
    }
  }
  return prompt;
}

// Each proposer is its own test (20000 generations each; ctest runs them side by side).
TEST(SpeculativeSampling, PlainSamplingMatchesTheExactDistribution) {
  auto target = Load("llama");
  ASSERT_TRUE(target);
  const auto exact = ExactJoint(*target, Prompt(), Settings());
  double total = 0;
  for (const auto& [seq, p] : exact) total += p;
  ASSERT_NEAR(total, 1.0, 1e-4);
  ExpectMatches(Sample(*target, nullptr, Prompt()).counts, exact, kSamples,
                "plain sampling (the test's own check)");
}

// A different random model: its top-k rarely overlaps the target's, so nearly every draft is
// rejected and the residual max(0, p - q) is what gets sampled.
TEST(SpeculativeSampling, DraftModelMatchesTheTargetDistribution) {
  auto target = Load("llama");
  auto other = Load("qwen2");
  ASSERT_TRUE(target && other);
  const auto exact = ExactJoint(*target, Prompt(), Settings());
  DraftModelProposer draft(*other, {});
  const SampleRun d = Sample(*target, &draft, Prompt());
  ExpectMatches(d.counts, exact, kSamples, "draft model (mostly rejected)");
  EXPECT_GT(d.drafted, d.accepted);
}

// The target with its last layer skipped: drafts it partly agrees with; then the same draft
// proposing only the first half of the ids (--draft-vocab): its q is 0 on the other half,
// which only the residual can produce.
TEST(SpeculativeSampling, LayerSkipMatchesTheTargetDistribution) {
  auto target = Load("llama");
  ASSERT_TRUE(target);
  const auto exact = ExactJoint(*target, Prompt(), Settings());
  DraftModelOptions skip;
  skip.skip_layers = {static_cast<int32_t>(target->config().n_layer - 1)};
  DraftModelProposer layer_skip(*target, skip);
  const SampleRun s = Sample(*target, &layer_skip, Prompt());
  ExpectMatches(s.counts, exact, kSamples, "layer-skip draft");
  EXPECT_GT(s.drafted, s.accepted);
  EXPECT_GT(s.accepted, kSamples / 20);

  skip.vocab_prefix = target->config().vocab_size / 2;
  DraftModelProposer prefix(*target, skip);
  const SampleRun sp = Sample(*target, &prefix, Prompt());
  ExpectMatches(sp.counts, exact, kSamples, "layer-skip draft, half the vocabulary");
  EXPECT_GT(sp.accepted, kSamples / 40);
}

// Deterministic proposers (q one-hot): a drafted token is kept with probability p(x).
TEST(SpeculativeSampling, DeterministicProposersMatchTheTargetDistribution) {
  auto target = Load("llama");
  ASSERT_TRUE(target);
  const Seq long_prompt = LookupPrompt(*target);
  const std::map<Seq, double> long_exact = ExactJoint(*target, long_prompt, Settings());
  // Jacobi in sampling mode (its drafts here are the copied first iterate, which this tiny
  // model never keeps: the residual is what gets sampled). The sampled, q-carrying iterates of
  // later steps are checked by SpeculativeJacobi.SampledIterateCarriesItsDistributions and the
  // acceptance rule's exactness for any q by AcceptanceRuleReproducesP.
  JacobiProposer jacobi({});
  const SampleRun j = Sample(*target, &jacobi, long_prompt);
  ExpectMatches(j.counts, long_exact, kSamples, "Jacobi");
  EXPECT_GT(j.drafted, 0);
  PromptLookupProposer lookup({});
  const SampleRun l = Sample(*target, &lookup, long_prompt);
  ExpectMatches(l.counts, long_exact, kSamples, "prompt lookup");
  EXPECT_GT(l.drafted, l.accepted);
  EXPECT_GT(l.accepted, kSamples / 100);
}

// Prompt lookup ahead of the draft model: on the prompt without repeats lookup finds nothing
// and the draft model's q-carrying chains are verified; on the one with repeats, lookup's
// copies are verified wherever the context's last n-gram was seen before.
TEST(SpeculativeSampling, LookupFirstMatchesTheTargetDistribution) {
  auto target = Load("llama");
  auto other = Load("qwen2");
  ASSERT_TRUE(target && other);
  DraftModelProposer draft(*other, {});
  const SampleRun dm = Sample(*target, &draft, Prompt(), kTokens, /*lookup_first=*/true);
  ExpectMatches(dm.counts, ExactJoint(*target, Prompt(), Settings()), kSamples, "lookup first, draft model drafting");
  EXPECT_LT(dm.lookup_steps, dm.spec_steps / 10);
  const Seq long_prompt = LookupPrompt(*target);
  const SampleRun dl = Sample(*target, &draft, long_prompt, kTokens, /*lookup_first=*/true);
  ExpectMatches(dl.counts, ExactJoint(*target, long_prompt, Settings()), kSamples, "lookup first, lookup drafting");
  EXPECT_GT(dl.lookup_steps, kSamples / 20);
  EXPECT_GT(dl.accepted, kSamples / 100);
}

// Token trees in sampling mode: four tokens, so the first step may draft two nodes, which
// prompt lookup with branches makes siblings; they are tried by recursive rejection sampling.
TEST(SpeculativeSampling, TreesMatchTheTargetDistribution) {
  auto target = Load("llama");
  ASSERT_TRUE(target);
  constexpr int kTreeTokens = 4;
  const Seq prompt = LookupPrompt(*target, /*alternatives=*/2);
  const auto exact = ExactJoint(*target, prompt, Settings(), kTreeTokens);
  PromptLookupOptions branchy;
  branchy.branches = 3;
  branchy.max_ngram = 1;  // single-token matches: the most places to branch from
  PromptLookupProposer lookup_tree(branchy);
  const SampleRun lt = Sample(*target, &lookup_tree, prompt, kTreeTokens);
  ExpectMatches(lt.counts, exact, kSamples, "prompt lookup, 3 branches (token trees)");
  EXPECT_GT(lt.accepted, kSamples / 100);
  EXPECT_GT(lt.drafted, lt.drafted_path) << "no draft branched: the test would not cover trees";
  std::cout << "[ info ] tree nodes " << lt.drafted << ", on the deepest paths " << lt.drafted_path
            << ", kept " << lt.accepted << "\n";
}

// Drafting with the target itself, p == q: speculative sampling keeps (almost) everything.
TEST(SpeculativeSampling, SelfDraftIsAlmostAlwaysAccepted) {
  auto target = Load("llama");
  ASSERT_TRUE(target);
  GenerateOptions go;
  go.sampler = Settings();
  go.sampler.seed = 3;
  go.max_new_tokens = 200;
  go.ignore_eos = true;
  DraftModelProposer self(*target, {});
  SpeculativeOptions so;
  so.adaptive_fallback = false;
  auto kv = target->NewKvCache(256);
  ASSERT_TRUE(kv.ok());
  auto r = GenerateSpeculative(*target, *kv, Prompt(), go, so, self, nullptr);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_GT(r->stats.acceptance_rate(), 0.97);
}

// The acceptance rule itself on a hand-made pair of distributions: the kept-or-resampled token
// is distributed as p whatever q is (exact expectations, many draws).
TEST(SpeculativeSampling, AcceptanceRuleReproducesP) {
  const std::vector<float> p = {0.5f, 0.3f, 0.2f, 0.0f};
  const std::vector<float> q = {0.1f, 0.2f, 0.3f, 0.4f};
  SamplerOptions so;
  so.seed = 11;
  Sampler s(so, 4);
  SamplerOptions draw_opts;
  draw_opts.seed = 12;
  Sampler draw(draw_opts, 4);
  std::vector<float> scratch;
  std::map<Seq, int64_t> counts;
  const int64_t n = 200000;
  for (int64_t i = 0; i < n; ++i) {
    const int32_t x = draw.SampleFrom(q);
    int32_t token = -1;
    if (AcceptSampled(p, q, x, s, &scratch, &token)) token = x;
    ++counts[{token}];
  }
  std::map<Seq, double> want;
  for (int32_t t = 0; t < 3; ++t) want[{t}] = p[static_cast<size_t>(t)];
  ExpectMatches(counts, want, n, "AcceptSampled");

  // Deterministic proposals (empty q = one-hot at x), including one p rules out.
  for (int32_t x : {0, 2, 3}) {
    counts.clear();
    for (int64_t i = 0; i < n; ++i) {
      int32_t token = -1;
      if (AcceptSampled(p, {}, x, s, &scratch, &token)) token = x;
      ++counts[{token}];
    }
    ExpectMatches(counts, want, n, "AcceptSampled one-hot at " + std::to_string(x));
  }

  // Several deterministic siblings (a token tree): recursive rejection over them, in any order,
  // including candidates p rules out and one holding most of the mass.
  for (const std::vector<int32_t>& xs : {std::vector<int32_t>{1, 0}, std::vector<int32_t>{3, 2, 1},
                                         std::vector<int32_t>{0, 1, 2}, std::vector<int32_t>{2}}) {
    counts.clear();
    std::vector<float> work;
    for (int64_t i = 0; i < n; ++i) {
      work = p;
      int32_t token = -1;
      const int32_t k = AcceptSampledAmong(work, xs, s, &token);
      if (k >= 0) token = xs[static_cast<size_t>(k)];
      ++counts[{token}];
    }
    ExpectMatches(counts, want, n, "AcceptSampledAmong " + ::testing::PrintToString(xs));
  }
}

}  // namespace
}  // namespace fastgen::speculative
