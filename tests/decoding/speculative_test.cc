// Speculative decoding is lossless: for every proposer, chain and tree, greedy output equals
// plain greedy decoding token for token, and the stop rules stop at the same token.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "decoding/generate.h"
#include "decoding/speculative/draft_model.h"
#include "decoding/speculative/jacobi.h"
#include "decoding/speculative/prompt_lookup.h"
#include "decoding/speculative/setup.h"
#include "decoding/speculative/speculative.h"
#include "models/model.h"
#include "tokenizer/tokenizer.h"
#include "test_util.h"

namespace fastgen::speculative {
namespace {

using fastgen::testing::ReadJson;
using fastgen::testing::SharedPath;

ThreadPool& Pool() {
  static ThreadPool pool(2);
  return pool;
}

// Models are loaded once per test binary: the fg models take a moment.
Model& Get(const std::string& rel) {
  static std::map<std::string, std::unique_ptr<Model>> models;
  auto& m = models[rel];
  if (!m) {
    auto loaded = LoadModel(SharedPath(rel), &Pool());
    EXPECT_TRUE(loaded.ok()) << loaded.status().message();
    if (loaded.ok()) m = std::move(*loaded);
  }
  return *m;
}

GenerateResult Plain(Model& m, const std::vector<int32_t>& prompt, const GenerateOptions& go, int64_t ctx) {
  auto kv = m.NewKvCache(ctx);
  EXPECT_TRUE(kv.ok());
  auto r = Generate(m, *kv, prompt, go, nullptr);
  EXPECT_TRUE(r.ok()) << r.status().message();
  return r.ok() ? *r : GenerateResult{};
}

SpeculativeResult Spec(Model& m, const std::vector<int32_t>& prompt, const GenerateOptions& go,
                       int64_t ctx, Proposer& proposer, const SpeculativeOptions& so = {}) {
  auto kv = m.NewKvCache(ctx);
  EXPECT_TRUE(kv.ok());
  auto r = GenerateSpeculative(m, *kv, prompt, go, so, proposer, nullptr);
  EXPECT_TRUE(r.ok()) << r.status().message();
  return r.ok() ? *r : SpeculativeResult{};
}

struct ProposerCase {
  std::string name;
  // Builds the proposer for `target`.
  std::function<std::unique_ptr<Proposer>(Model& target)> make;
  bool lookup_first = false;  // prompt lookup ahead of it (SpeculativeOptions::lookup_first)
};

std::vector<ProposerCase> Proposers(const std::string& draft_rel) {
  // vocab_prefix: the draft proposes only the first half of the ids (--draft-vocab).
  auto draft = [draft_rel](int32_t width, bool half_vocab = false) {
    return [draft_rel, width, half_vocab](Model& target) -> std::unique_ptr<Proposer> {
      DraftModelOptions o;
      o.tree_width = width;
      if (half_vocab) o.vocab_prefix = target.config().vocab_size / 2;
      return std::make_unique<DraftModelProposer>(draft_rel.empty() ? target : Get(draft_rel), o);
    };
  };
  auto lookup = [](int32_t branches) {
    return [branches](Model&) -> std::unique_ptr<Proposer> {
      PromptLookupOptions o;
      o.branches = branches;
      return std::make_unique<PromptLookupProposer>(o);
    };
  };
  auto layer_skip = [](int32_t width) {
    return [width](Model& target) -> std::unique_ptr<Proposer> {
      DraftModelOptions o;
      o.tree_width = width;
      o.skip_layers = {static_cast<int32_t>(target.config().n_layer - 1)};
      return std::make_unique<DraftModelProposer>(target, o);
    };
  };
  auto jacobi = [](int32_t candidates) {
    return [candidates](Model&) -> std::unique_ptr<Proposer> {
      JacobiOptions o;
      o.candidates = candidates;
      return std::make_unique<JacobiProposer>(o);
    };
  };
  return {{"jacobi_guess_only", jacobi(0)}, {"jacobi_pool", jacobi(3)},
          {"draft_chain", draft(1)},        {"draft_tree", draft(3)},
          {"draft_chain_half_vocab", draft(1, true)}, {"draft_tree_half_vocab", draft(3, true)},
          {"lookup_chain", lookup(1)},      {"lookup_tree", lookup(4)},
          {"layerskip_chain", layer_skip(1)}, {"layerskip_tree", layer_skip(3)},
          {"lookup_first_draft_chain", draft(1), true}, {"lookup_first_draft_tree", draft(3), true},
          {"lookup_first_jacobi", jacobi(3), true}};
}

void ExpectSameAsPlain(Model& target, const std::string& draft_rel, const std::vector<int32_t>& prompt,
                       const GenerateOptions& go, int64_t ctx, const std::string& what) {
  const GenerateResult want = Plain(target, prompt, go, ctx);
  for (const ProposerCase& pc : Proposers(draft_rel)) {
    // Fallback off: every step speculates, whatever the timings say.
    SpeculativeOptions so;
    so.adaptive_fallback = false;
    so.max_draft = 12;  // bigger trees and longer chains than the CPU-tuned default
    so.lookup_first = pc.lookup_first;
    auto proposer = pc.make(target);
    const SpeculativeResult got = Spec(target, prompt, go, ctx, *proposer, so);
    EXPECT_EQ(got.generation.tokens, want.tokens) << what << " " << pc.name;
    EXPECT_EQ(got.generation.stop_reason, want.stop_reason) << what << " " << pc.name;
    EXPECT_GT(got.stats.spec_steps, 0) << what << " " << pc.name;
    EXPECT_LE(got.stats.steps, static_cast<int64_t>(want.tokens.size())) << what << " " << pc.name;
    if (pc.lookup_first) {
      // Copies were verified (the proposer drafts where there is nothing to copy; some fixture
      // models repeat themselves from the first step, so not every case has such a step).
      EXPECT_GT(got.stats.lookup_steps, 0) << what << " " << pc.name;
    } else {
      EXPECT_EQ(got.stats.lookup_steps, 0) << what << " " << pc.name;
    }
  }
}

std::vector<int32_t> FixturePrompt(int salt) {
  std::vector<int32_t> p;
  for (int i = 0; i < 12; ++i) p.push_back(static_cast<int32_t>((i * 53 + salt * 17 + 3) % 256));
  return p;
}

// Lines [first, last) (1-based) of ../shared/corpus/valid.txt, tokenized for fg-target.
std::vector<int32_t> CorpusPrompt(int first, int last) {
  std::ifstream in(SharedPath("corpus/valid.txt"));
  std::string line, text;
  for (int n = 1; std::getline(in, line) && n < last; ++n)
    if (n >= first) text += line + "\n";
  auto tok = Tokenizer::Load(SharedPath("models/fg-target/tokenizer.json"));
  EXPECT_TRUE(tok.ok()) << tok.status().message();
  if (!tok.ok()) return {};
  auto ids = (*tok)->Encode(text);
  EXPECT_TRUE(ids.ok());
  return ids.ok() ? *ids : std::vector<int32_t>{};
}

class FixtureGreedy : public ::testing::TestWithParam<std::string> {};

// Draft: the llama fixture (a different random model, so drafts get rejected) for the others,
// qwen2 for llama; layer skip and lookup use the target.
TEST_P(FixtureGreedy, EveryProposerMatchesPlainGreedy) {
  const std::string name = GetParam();
  Model& target = Get("fixtures/" + name);
  const std::string draft = name == "llama" ? "fixtures/qwen2" : "fixtures/llama";
  GenerateOptions go;
  go.max_new_tokens = 40;
  go.sampler.temperature = 0;
  go.ignore_eos = true;
  for (int salt = 0; salt < 2; ++salt)
    ExpectSameAsPlain(target, draft, FixturePrompt(salt), go, 64, name + " prompt " + std::to_string(salt));
}

INSTANTIATE_TEST_SUITE_P(Fixtures, FixtureGreedy,
                         ::testing::Values("llama", "llama_tied_rope500k", "llama_rope_llama3", "mistral",
                                           "qwen2", "qwen3", "gemma", "phi3", "gpt2"),
                         [](const auto& info) { return info.param; });

// The target drafting for itself: every drafted token is kept, so a step commits the whole
// draft plus one (within the budget) and the stop rules are hit mid-draft.
TEST(SpeculativeGreedy, SelfDraftKeepsEverythingAndStopsWherePlainStops) {
  Model& m = Get("fixtures/llama");
  GenerateOptions go;
  go.sampler.temperature = 0;
  go.ignore_eos = true;
  go.max_new_tokens = 23;
  DraftModelOptions o;
  o.adaptive_length = false;
  o.initial_length = 6;
  DraftModelProposer self(m, o);
  SpeculativeOptions so;
  so.adaptive_fallback = false;
  so.max_draft = 16;
  const auto got = Spec(m, FixturePrompt(5), go, 64, self, so);
  const auto want = Plain(m, FixturePrompt(5), go, 64);
  EXPECT_EQ(got.generation.tokens, want.tokens);
  EXPECT_EQ(got.stats.accepted, got.stats.drafted);
  EXPECT_EQ(got.stats.steps, 4);  // 1 + 7 + 7 + 7 + 1: the last step's budget is what remains

  // Context full: plain stops once the cache is full; so must speculation.
  go.max_new_tokens = 100;
  const auto want_full = Plain(m, FixturePrompt(5), go, 30);
  const auto got_full = Spec(m, FixturePrompt(5), go, 30, self, so);
  EXPECT_EQ(want_full.stop_reason, StopReason::kContextFull);
  EXPECT_EQ(got_full.generation.stop_reason, StopReason::kContextFull);
  EXPECT_EQ(got_full.generation.tokens, want_full.tokens);

  // A stop id in the middle of an accepted draft ends generation there.
  go.ignore_eos = false;
  go.stop_ids = {want.tokens[9]};
  const auto want_stop = Plain(m, FixturePrompt(5), go, 64);
  const auto got_stop = Spec(m, FixturePrompt(5), go, 64, self, so);
  EXPECT_EQ(want_stop.stop_reason, StopReason::kStopToken);
  EXPECT_EQ(got_stop.generation.tokens, want_stop.tokens);
  EXPECT_EQ(got_stop.generation.stop_reason, StopReason::kStopToken);
}

// Penalties depend on the history, which grows inside a verified draft.
TEST(SpeculativeGreedy, PenaltiesAndBiasSeeTheDraftedHistory) {
  Model& m = Get("fixtures/qwen3");
  GenerateOptions go;
  go.sampler.temperature = 0;
  go.sampler.repetition_penalty = 1.5f;
  go.sampler.frequency_penalty = 0.3f;
  go.sampler.logit_bias = {{7, 2.0f}};
  go.ignore_eos = true;
  go.max_new_tokens = 40;
  ExpectSameAsPlain(m, "fixtures/llama", FixturePrompt(3), go, 64, "qwen3 with penalties");
}

// The fallback controller only changes speed, never output.
TEST(SpeculativeGreedy, AdaptiveFallbackKeepsOutput) {
  Model& m = Get("fixtures/gemma");
  GenerateOptions go;
  go.sampler.temperature = 0;
  go.ignore_eos = true;
  go.max_new_tokens = 60;
  DraftModelProposer draft(Get("fixtures/llama"), {});
  SpeculativeOptions so;
  so.probe_every = 3;
  const auto got = Spec(m, FixturePrompt(1), go, 80, draft, so);
  EXPECT_EQ(got.generation.tokens, Plain(m, FixturePrompt(1), go, 80).tokens);
  EXPECT_LT(got.stats.spec_steps, got.stats.steps);  // the two warm-up steps are plain
}

// fg-target with fg-draft, one test per prompt: 'def fibonacci(n):\n' and 'class Stack: ...' from
// the reference file, and code from the corpus, ParserBase.parse_declaration's first lines
// (valid.txt lines 930-945), which the continuation copies from and departs from by turns.
class FgTargetGreedy : public ::testing::TestWithParam<int> {};

TEST_P(FgTargetGreedy, ThreeHundredTokens) {
  Model& target = Get("models/fg-target");
  const auto ref = ReadJson(SharedPath("models/fg-target/ref.json"));
  GenerateOptions go;
  go.sampler.temperature = 0;
  go.ignore_eos = true;
  // Sanitizer builds run ~10x slower: they check shorter continuations, the same assertions.
#if defined(__SANITIZE_ADDRESS__)
  go.max_new_tokens = 60;
#else
  go.max_new_tokens = 300;
#endif
  const int which = GetParam();
  const std::vector<int32_t> prompt =
      which >= 0 ? ref["refs"][which]["prompt_ids"].get<std::vector<int32_t>>() : CorpusPrompt(930, 946);
  ASSERT_GT(prompt.size(), which >= 0 ? 0u : 100u);
  ExpectSameAsPlain(target, "models/fg-draft", prompt, go, static_cast<int64_t>(prompt.size()) + 320,
                    "fg-target prompt " + std::to_string(which));
}

INSTANTIATE_TEST_SUITE_P(Prompts, FgTargetGreedy, ::testing::Values(1, 4, -1), [](const auto& info) {
  return info.param == 1 ? std::string("fibonacci") : info.param == 4 ? std::string("stack") : std::string("corpus_parser");
});

// Compact KV caches: verification writes drafted rows in the cache's type and rollback moves
// them as bytes, so speculation still equals plain decoding with the same cache type.
TEST(SpeculativeGreedy, CompactKvCachesMatchPlainGreedy) {
  const auto ref = ReadJson(SharedPath("models/fg-target/ref.json"));
  const auto prompt = ref["refs"][4]["prompt_ids"].get<std::vector<int32_t>>();  // 'class Stack: ...'
  GenerateOptions go;
  go.sampler.temperature = 0;
  go.ignore_eos = true;
#if defined(__SANITIZE_ADDRESS__)
  go.max_new_tokens = 40;
#else
  go.max_new_tokens = 120;
#endif
  for (DType type : {DType::kF16, DType::kQ8_0}) {
    ModelOptions options;
    options.kv_type = type;
    auto target = LoadModel(SharedPath("models/fg-target"), &Pool(), options);
    ASSERT_TRUE(target.ok()) << target.status().message();
    ExpectSameAsPlain(**target, "models/fg-draft", prompt, go, 200, "fg-target KV " + std::string(Name(type)));
  }
}

// BiLD: a rollback threshold no token passes degenerates to greedy verification (lossless);
// a loose one keeps draft tokens the target would not have chosen (lossy, by design).
TEST(Bild, ThresholdsBoundWhatIsKept) {
  Model& target = Get("fixtures/llama");
  GenerateOptions go;
  go.sampler.temperature = 0;
  go.ignore_eos = true;
  go.max_new_tokens = 40;
  const auto want = Plain(target, FixturePrompt(2), go, 64);
  DraftModelProposer draft(Get("fixtures/qwen2"), {});
  SpeculativeOptions so;
  so.adaptive_fallback = false;
  so.bild = true;
  so.bild_rollback = -1.0f;
  const auto strict = Spec(target, FixturePrompt(2), go, 64, draft, so);
  EXPECT_EQ(strict.generation.tokens, want.tokens);
  so.bild_rollback = 100.0f;  // every draft token passes
  const auto loose = Spec(target, FixturePrompt(2), go, 64, draft, so);
  EXPECT_EQ(loose.stats.accepted, loose.stats.drafted);
  EXPECT_NE(loose.generation.tokens, want.tokens);
  EXPECT_GT(strict.stats.steps, loose.stats.steps);
}

TEST(LayerSkipSearch, PicksLayersAndPredictsSpeed) {
  // Verification costing one decode step, the draft a quarter of one (the textbook setting).
  const PassCosts ideal{std::vector<double>(9, 1.0), 0.25};
  EXPECT_DOUBLE_EQ(PredictedSpeedup(0.0, ideal), 1.0);
  EXPECT_GT(PredictedSpeedup(0.9, ideal), 2.0);  // ~2.09 at k = 5
  EXPECT_GT(PredictedSpeedup(0.8, ideal), PredictedSpeedup(0.6, ideal));
  // A CPU: a pass over k + 1 tokens costs 1.2 + 0.1 k decode steps past k = 0. An agreement of
  // 0.6 pays with a cheap draft; 0.23, fg-target's best layer subset on code, does not.
  PassCosts cpu{{1.0}, 0.15};
  for (int k = 1; k <= 8; ++k) cpu.verify.push_back(1.2 + 0.1 * k);
  EXPECT_GT(PredictedSpeedup(0.6, cpu), 1.1);
  EXPECT_DOUBLE_EQ(PredictedSpeedup(0.23, cpu), 1.0);
  EXPECT_DOUBLE_EQ(PredictedSpeedup(0.9, PassCosts{}), 1.0);  // nothing measured: no claim
  Model& target = Get("models/fg-target");
  const auto ref = ReadJson(SharedPath("models/fg-target/ref.json"));
  std::vector<int32_t> calibration;
  for (int i : {1, 2}) {  // two code prompts and their continuations: ~120 tokens
    const auto& r = ref["refs"][i];
    for (int32_t id : r["prompt_ids"].get<std::vector<int32_t>>()) calibration.push_back(id);
    for (int32_t id : r["greedy_48"].get<std::vector<int32_t>>()) calibration.push_back(id);
  }
  auto choice = SearchSkipLayers(target, calibration, {});
  ASSERT_TRUE(choice.ok()) << choice.status().message();
  EXPECT_LT(choice->layers.size(), static_cast<size_t>(target.config().n_layer));
  EXPECT_TRUE(std::is_sorted(choice->layers.begin(), choice->layers.end()));
  if (!choice->layers.empty()) {
    EXPECT_GT(choice->predicted_speedup, 1.0);
  }
  std::cout << "[ info ] fg-target layer-skip choice: " << choice->layers.size() << " layers, agreement "
            << choice->agreement << ", predicted speedup " << choice->predicted_speedup << "\n";
  EXPECT_FALSE(SearchSkipLayers(target, std::span<const int32_t>(calibration).first(4), {}).ok());
}

// A draft model processes the prompt in Prefill (timed with the target's prefill); its first
// draft afterwards is the one it would make without the call.
TEST(SpeculativeDraft, PrefillThenProposeDraftsTheSame) {
  Model& target = Get("models/fg-target");
  Model& draft_model = Get("models/fg-draft");
  const auto ref = ReadJson(SharedPath("models/fg-target/ref.json"))["refs"][0];
  const std::vector<int32_t> prompt = ref["prompt_ids"].get<std::vector<int32_t>>();
  std::vector<int32_t> context = prompt;
  context.push_back(ref["greedy_48"][0].get<int32_t>());
  GenerationSetup setup{prompt, SamplerOptions{}, 256, static_cast<int32_t>(target.config().vocab_size)};
  setup.sampler.temperature = 0.0f;
  Draft with, without;
  DraftModelProposer a(draft_model, {}), b(draft_model, {});
  ASSERT_TRUE(a.Start(setup).ok());
  ASSERT_TRUE(a.Prefill(prompt).ok());
  ASSERT_TRUE(a.Propose({context, 5}, &with).ok());
  ASSERT_TRUE(b.Start(setup).ok());
  ASSERT_TRUE(b.Propose({context, 5}, &without).ok());
  ASSERT_FALSE(with.empty());
  EXPECT_EQ(with.tokens, without.tokens);
  EXPECT_EQ(with.parents, without.parents);
}

// Layer skipping over the target's cache (Draft & Verify): an early exit (the last layers
// skipped) computes the kept layers' rows exactly as the target does, so it drafts what the
// skipped model with its own cache drafts, chains and trees alike; the target's cache comes back
// at its length with its rows untouched.
TEST(SpeculativeLayerSkip, EarlyExitOverTheTargetsCacheDraftsTheSame) {
  Model& target = Get("models/fg-target");
  const auto ref = ReadJson(SharedPath("models/fg-target/ref.json"))["refs"][4];
  const std::vector<int32_t> prompt = ref["prompt_ids"].get<std::vector<int32_t>>();
  std::vector<int32_t> context = prompt;
  for (int i = 0; i < 6; ++i) context.push_back(ref["greedy_48"][i].get<int32_t>());
  const auto n_layer = static_cast<int32_t>(target.config().n_layer);
  auto kv = target.NewKvCache(256);
  ASSERT_TRUE(kv.ok());
  std::vector<float> logits;
  // The verifier's invariant: the cache holds the context but its last token.
  ASSERT_TRUE(target.Forward(std::span<const int32_t>(context).first(context.size() - 1), *kv, LogitsMode::kLast,
                             &logits).ok());
  const int64_t cached = kv->length();
  const std::vector<uint8_t> k_before(kv->key_data(n_layer - 1), kv->key_data(n_layer - 1) + cached * kv->row_bytes());
  for (int32_t width : {1, 3}) {
    DraftModelOptions o;
    o.skip_layers = {n_layer - 2, n_layer - 1};
    o.tree_width = width;
    o.adaptive_length = false;
    o.initial_length = 4;
    GenerationSetup own{prompt, SamplerOptions{}, 256, static_cast<int32_t>(target.config().vocab_size)};
    own.sampler.temperature = 0.0f;
    GenerationSetup shared = own;
    shared.target = &target;
    shared.target_cache = &*kv;
    DraftModelProposer a(target, o), b(target, o);
    Draft over_own, over_target;
    ASSERT_TRUE(a.Start(own).ok());
    ASSERT_TRUE(a.Propose({context, 8}, &over_own).ok());
    ASSERT_TRUE(b.Start(shared).ok());
    ASSERT_TRUE(b.Prefill(prompt).ok());
    ASSERT_TRUE(b.Propose({context, 8}, &over_target).ok());
    ASSERT_FALSE(over_own.empty());
    EXPECT_EQ(over_target.tokens, over_own.tokens) << "width " << width;
    EXPECT_EQ(over_target.parents, over_own.parents) << "width " << width;
    EXPECT_EQ(kv->length(), cached);
    EXPECT_TRUE(std::equal(k_before.begin(), k_before.end(), kv->key_data(n_layer - 1)));
  }
}

// Speculative Jacobi decoding: in sampling mode the iterate after a verification is drawn from
// the target's distributions, and each guessed token comes with the q it was drawn from.
TEST(SpeculativeJacobi, SampledIterateCarriesItsDistributions) {
  constexpr int32_t kVocab = 8;
  const std::vector<int32_t> prompt = {1, 2, 3, 4};
  JacobiOptions jo;
  jo.window = 3;
  JacobiProposer jacobi(jo);
  GenerationSetup setup{prompt, SamplerOptions{}, 64, kVocab};
  setup.sampler.temperature = 1.0f;
  setup.sampler.top_k = 0;
  setup.sampler.top_p = 1.0f;
  setup.sampler.min_p = 0.0f;
  setup.sampler.seed = 11;
  ASSERT_TRUE(jacobi.Start(setup).ok());
  Draft first;
  ASSERT_TRUE(jacobi.Propose({prompt, 3}, &first).ok());
  ASSERT_EQ(first.tokens, (std::vector<int32_t>{2, 3, 4}));  // the first iterate: the context's tail
  EXPECT_TRUE(first.q.empty());                              // copied, so deterministic
  // The target's logits after the last token and after each guessed node.
  std::vector<float> logits(4 * kVocab);
  for (size_t i = 0; i < logits.size(); ++i) logits[i] = static_cast<float>((i * 37) % 11) * 0.3f;
  jacobi.ObserveVerification({first, logits, kVocab, /*committed=*/1});
  const std::vector<int32_t> context = {1, 2, 3, 4, 6};
  Draft next;
  ASSERT_TRUE(jacobi.Propose({context, 3}, &next).ok());
  ASSERT_FALSE(next.empty());
  ASSERT_EQ(next.q.size(), next.size());
  for (size_t i = 0; i < next.size(); ++i) {
    ASSERT_EQ(next.q[i].size(), static_cast<size_t>(kVocab));
    double sum = 0;
    for (float p : next.q[i]) sum += p;
    EXPECT_NEAR(sum, 1.0, 1e-5);
    EXPECT_GT(next.q[i][static_cast<size_t>(next.tokens[i])], 0.0f) << "token " << i << " drawn from q";
  }
}

TEST(SpeculativeGreedy, RejectsBadInput) {
  Model& m = Get("fixtures/llama");
  PromptLookupProposer lookup({});
  GenerateOptions go;
  go.sampler.temperature = 0.7f;
  SpeculativeOptions so;
  so.bild = true;
  auto kv = m.NewKvCache(32);
  ASSERT_TRUE(kv.ok());
  EXPECT_FALSE(GenerateSpeculative(m, *kv, FixturePrompt(0), go, so, lookup, nullptr).ok());
  DraftModelProposer other_vocab(Get("models/fg-draft"), {});
  EXPECT_FALSE(GenerateSpeculative(m, *kv, FixturePrompt(0), go, {}, other_vocab, nullptr).ok());
}

}  // namespace
}  // namespace fastgen::speculative
