// The serving runtime on its own: continuous batching gives every request exactly the tokens it
// gets alone (and the same as `fastgen run`), however requests arrive, share prefixes, get
// preempted or fork into several choices; cancellation frees blocks at once; bad requests are
// refused naming the parameter.
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <regex>
#include <thread>

#include "decoding/constrained/grammar.h"
#include "decoding/generate.h"
#include "runtime/engine.h"
#include "test_util.h"

namespace fastgen::runtime {
namespace {

using fastgen::testing::SharedPath;

struct Loaded {
  std::unique_ptr<ThreadPool> pool;
  std::unique_ptr<Model> model;
  std::unique_ptr<Tokenizer> tokenizer;
};

Loaded& Target() {
  static Loaded l = [] {
    Loaded x;
    x.pool = std::make_unique<ThreadPool>(2);
    auto m = LoadModel(SharedPath("models/fg-target"), x.pool.get());
    EXPECT_TRUE(m.ok()) << m.status().message();
    x.model = std::move(*m);
    auto t = Tokenizer::Load(SharedPath("models/fg-target"));
    EXPECT_TRUE(t.ok());
    x.tokenizer = std::move(*t);
    return x;
  }();
  return l;
}

struct Choice {
  std::vector<int32_t> ids;
  std::string text;
  FinishReason finish = FinishReason::kNone;
  std::vector<TokenDelta> deltas;
};

struct Outcome {
  std::map<int, Choice> choices;
  Usage usage;
  Status error;
};

Outcome Collect(RequestHandle& h, int timeout_ms = 120000) {
  Outcome o;
  Event e;
  while (h.Next(&e, timeout_ms)) {
    if (e.kind == Event::Kind::kDelta) {
      Choice& c = o.choices[e.index];
      for (auto& d : e.tokens) {
        c.ids.push_back(d.id);
        c.deltas.push_back(d);
      }
      c.text += e.text;
    } else if (e.kind == Event::Kind::kFinish) {
      o.choices[e.index].finish = e.finish;
      o.choices[e.index].text += e.text;
    } else if (e.kind == Event::Kind::kDone) {
      o.usage = e.usage;
      return o;
    } else {
      o.error = e.error;
      return o;
    }
  }
  o.error = Internal("timed out");
  return o;
}

std::vector<int32_t> Encode(const std::string& text) {
  auto ids = Target().tokenizer->Encode(text, {});
  EXPECT_TRUE(ids.ok());
  return *ids;
}

// Prompts of mixed lengths from the corpus the model was trained on.
std::vector<std::vector<int32_t>> Prompts(int count, uint32_t seed) {
  const std::string corpus = fastgen::testing::ReadFileText(SharedPath("corpus/valid.txt"));
  std::mt19937 rng(seed);
  std::vector<std::vector<int32_t>> out;
  for (int i = 0; i < count; ++i) {
    const size_t len = 20 + rng() % 900;
    const size_t at = rng() % (corpus.size() - len);
    out.push_back(Encode(corpus.substr(at, len)));
  }
  return out;
}

Request Greedy(std::vector<int32_t> prompt, int64_t max_tokens) {
  Request r;
  r.prompt = std::move(prompt);
  r.params.sampler.temperature = 0;
  r.params.max_tokens = max_tokens;
  r.params.ignore_eos = true;
  return r;
}

std::unique_ptr<Engine> MakeEngine(EngineOptions o) {
  auto e = Engine::Create(*Target().model, Target().tokenizer.get(), o);
  EXPECT_TRUE(e.ok()) << e.status().message();
  return std::move(*e);
}

// What `fastgen run` computes for the same request.
std::vector<int32_t> PlainGreedy(const std::vector<int32_t>& prompt, int64_t n) {
  Model& m = *Target().model;
  auto kv = m.NewKvCache(static_cast<int64_t>(prompt.size()) + n);
  GenerateOptions go;
  go.max_new_tokens = n;
  go.sampler.temperature = 0;
  go.ignore_eos = true;
  auto r = Generate(m, *kv, prompt, go, nullptr);
  EXPECT_TRUE(r.ok());
  return r->tokens;
}

TEST(Engine, GreedyRequestMatchesPlainGeneration) {
  auto engine = MakeEngine({});
  for (const auto& prompt : Prompts(3, 1)) {
    auto h = engine->Submit(Greedy(prompt, 40));
    ASSERT_TRUE(h.ok()) << h.status().message();
    Outcome o = Collect(**h);
    ASSERT_TRUE(o.error.ok()) << o.error.message();
    EXPECT_EQ(o.choices[0].ids, PlainGreedy(prompt, 40));
    EXPECT_EQ(o.choices[0].finish, FinishReason::kLength);
    EXPECT_EQ(o.usage.prompt_tokens, static_cast<int64_t>(prompt.size()));
    EXPECT_EQ(o.usage.completion_tokens, 40);
  }
}

// 16 concurrent greedy requests with mixed prompt lengths, submitted in two different orders,
// with chunked prefill (small step budget), a small KV pool (preemptions) and speculation off and
// on: every request returns exactly what it returns alone.
TEST(Engine, SixteenConcurrentRequestsMatchEachAlone) {
  const auto prompts = Prompts(16, 7);
  std::vector<std::vector<int32_t>> alone;
  {
    auto solo_engine = MakeEngine({});
    for (const auto& p : prompts) {
      auto h = solo_engine->Submit(Greedy(p, 24));
      ASSERT_TRUE(h.ok());
      alone.push_back(Collect(**h).choices[0].ids);
    }
  }
  struct Setup {
    const char* name;
    EngineOptions o;
    bool reverse;
  };
  EngineOptions chunked;
  chunked.step_tokens = 96;
  EngineOptions tight;
  tight.kv_tokens = 2048;  // less than 16 prompts + outputs: preemption and recompute
  tight.spec_max_running = 0;
  EngineOptions spec_all;
  spec_all.spec_max_running = 16;
  for (const Setup& setup : {Setup{"default", {}, false}, Setup{"chunked prefill", chunked, true},
                             Setup{"tight KV budget", tight, false}, Setup{"speculating", spec_all, true}}) {
    SCOPED_TRACE(setup.name);
    auto engine = MakeEngine(setup.o);
    std::vector<std::shared_ptr<RequestHandle>> handles(prompts.size());
    for (size_t k = 0; k < prompts.size(); ++k) {
      const size_t i = setup.reverse ? prompts.size() - 1 - k : k;
      auto h = engine->Submit(Greedy(prompts[i], 24));
      ASSERT_TRUE(h.ok()) << h.status().message();
      handles[i] = *h;
    }
    for (size_t i = 0; i < prompts.size(); ++i) {
      Outcome o = Collect(*handles[i]);
      ASSERT_TRUE(o.error.ok()) << o.error.message();
      EXPECT_EQ(o.choices[0].ids, alone[i]) << "request " << i;
    }
    const EngineStats st = engine->Stats();
    if (setup.o.kv_tokens == 2048) {
      EXPECT_GT(st.preemptions, 0);
    }
    EXPECT_EQ(st.running, 0);
  }
}

TEST(Engine, SharedPrefixIsPrefilledOnce) {
  auto engine = MakeEngine({});
  const std::vector<int32_t> doc = Prompts(1, 3)[0];
  std::vector<int32_t> a = doc, b = doc;
  a.push_back(Encode(" A")[0]);
  b.push_back(Encode(" B")[0]);
  auto h1 = engine->Submit(Greedy(a, 8));
  ASSERT_TRUE(h1.ok());
  Outcome first = Collect(**h1);
  EXPECT_EQ(first.usage.cached_prompt_tokens, 0);
  auto h2 = engine->Submit(Greedy(b, 8));
  ASSERT_TRUE(h2.ok());
  Outcome second = Collect(**h2);
  // Every full block of the shared document comes from the cache.
  EXPECT_EQ(second.usage.cached_prompt_tokens, static_cast<int64_t>(doc.size()) / 16 * 16);
  EXPECT_EQ(second.choices[0].ids, PlainGreedy(b, 8));
  EXPECT_GT(engine->Stats().prefix_block_hits, 0);
}

TEST(Engine, CancellationFreesBlocksAtOnce) {
  auto engine = MakeEngine({});
  auto h = engine->Submit(Greedy(Prompts(1, 5)[0], 1500));
  ASSERT_TRUE(h.ok()) << h.status().message();
  Event e;
  ASSERT_TRUE((*h)->Next(&e, 60000));  // generating
  // The gauges are refreshed at the end of each step: wait for one.
  for (int i = 0; i < 1000 && engine->Stats().kv_blocks_used == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_GT(engine->Stats().kv_blocks_used, 0);
  (*h)->Cancel();
  Outcome o = Collect(**h);
  EXPECT_TRUE(o.error.ok());
  EXPECT_LT(o.usage.completion_tokens, 1500);
  // Freed when the cancellation is seen, before the next step; the gauges follow at once.
  for (int i = 0; i < 1000 && engine->Stats().kv_blocks_used > 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(engine->Stats().kv_blocks_used, 0);
}

TEST(Engine, SeveralChoicesShareThePromptCopyOnWrite) {
  auto engine = MakeEngine({});
  const auto prompt = Prompts(1, 9)[0];  // not a multiple of 16 long: the last block is shared, then copied
  Request greedy = Greedy(prompt, 12);
  greedy.params.n = 3;
  auto h = engine->Submit(greedy);
  ASSERT_TRUE(h.ok());
  Outcome o = Collect(**h);
  ASSERT_EQ(o.choices.size(), 3u);
  const auto want = PlainGreedy(prompt, 12);
  for (auto& [i, c] : o.choices) EXPECT_EQ(c.ids, want) << "choice " << i;
  EXPECT_EQ(o.usage.completion_tokens, 36);

  Request sampled = greedy;
  sampled.params.sampler.temperature = 1.0f;
  sampled.params.sampler.seed = 11;
  auto hs = engine->Submit(sampled);
  ASSERT_TRUE(hs.ok());
  Outcome s = Collect(**hs);
  ASSERT_EQ(s.choices.size(), 3u);
  EXPECT_NE(s.choices[0].ids, s.choices[1].ids);  // different random streams
  // The same seed gives the same choices again.
  auto again = engine->Submit(sampled);
  ASSERT_TRUE(again.ok());
  Outcome s2 = Collect(**again);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(s.choices[i].ids, s2.choices[i].ids);
  EXPECT_EQ(engine->Stats().kv_blocks_used, 0);
}

TEST(Engine, SpeculationGivesPlainSamplingsTokens) {
  // A prompt that repeats itself, so prompt lookup drafts a lot.
  std::vector<int32_t> prompt = Encode("def add(a, b):\n    return a + b\n\ndef add(a, b):\n    return a + b\n\ndef add(");
  for (float temp : {0.0f, 0.8f}) {
    Request r;
    r.prompt = prompt;
    r.params.sampler.temperature = temp;
    r.params.sampler.seed = 3;
    r.params.max_tokens = 60;
    r.params.ignore_eos = true;
    EngineOptions plain;
    plain.spec_max_running = 0;
    Outcome oa, ob;
    {
      auto a = MakeEngine(plain);
      auto ha = a->Submit(r);
      ASSERT_TRUE(ha.ok());
      oa = Collect(**ha);
      EXPECT_EQ(a->Stats().spec_drafted, 0);
    }
    auto b = MakeEngine({});
    auto hb = b->Submit(r);
    ASSERT_TRUE(hb.ok());
    ob = Collect(**hb);
    EXPECT_EQ(oa.choices.at(0).ids, ob.choices.at(0).ids) << "temperature " << temp;
    EXPECT_GT(b->Stats().spec_accepted, 0) << "temperature " << temp;
  }
}

TEST(Engine, DraftModelSpeculationGivesPlainTokens) {
  ModelOptions mo;
  mo.weight_type = DType::kQ8_0;
  auto draft = LoadModel(SharedPath("models/fg-draft"), Target().pool.get(), mo);
  ASSERT_TRUE(draft.ok()) << draft.status().message();
  const auto prompts = Prompts(2, 17);
  for (float temp : {0.0f, 0.8f}) {
    for (const auto& prompt : prompts) {
      Request r;
      r.prompt = prompt;
      r.params.sampler.temperature = temp;
      r.params.sampler.seed = 5;
      r.params.max_tokens = 40;
      r.params.ignore_eos = true;
      Outcome plain_out;
      {
        EngineOptions plain;
        plain.spec_max_running = 0;
        auto e = MakeEngine(plain);
        auto h = e->Submit(r);
        ASSERT_TRUE(h.ok());
        plain_out = Collect(**h);
      }
      EngineOptions o;
      o.draft = draft->get();
      o.spec_draft = 1;  // prompt lookup can barely help: the draft model does the drafting
      auto e = MakeEngine(o);
      auto h = e->Submit(r);
      ASSERT_TRUE(h.ok());
      const Outcome spec_out = Collect(**h);
      EXPECT_EQ(spec_out.choices.at(0).ids, plain_out.choices.at(0).ids) << "temperature " << temp;
      EXPECT_GT(e->Stats().spec_drafted, 0);
    }
  }
}

TEST(Engine, StopStringsEndTheTextBeforeThem) {
  auto engine = MakeEngine({});
  const auto prompt = Encode("def fibonacci(n):\n");
  auto h0 = engine->Submit(Greedy(prompt, 40));
  ASSERT_TRUE(h0.ok());
  const Outcome full = Collect(**h0);
  const std::string text = full.choices.at(0).text;
  ASSERT_GT(text.size(), 12u);
  const std::string stop = text.substr(6, 5);  // spans tokens, most likely
  Request r = Greedy(prompt, 40);
  r.params.stop = {stop, "never appears"};
  auto h = engine->Submit(r);
  ASSERT_TRUE(h.ok());
  const Outcome o = Collect(**h);
  EXPECT_EQ(o.choices.at(0).text, text.substr(0, text.find(stop)));
  EXPECT_EQ(o.choices.at(0).finish, FinishReason::kStop);
}

// A lazy grammar: the choice writes what it writes alone until its text ends with the trigger,
// then follows the grammar until it is complete, then writes freely again.
TEST(Engine, LazyGrammarTakesOverAtItsTriggerAndLetsGo) {
  auto engine = MakeEngine({});
  const auto prompt = Encode("def fibonacci(n):\n");
  auto h0 = engine->Submit(Greedy(prompt, 40));
  ASSERT_TRUE(h0.ok());
  const Outcome free = Collect(**h0);
  const std::vector<int32_t>& ids = free.choices.at(0).ids;
  // The trigger: the text of the greedy output's first tokens through the third non-empty one.
  const auto& bytes = Target().tokenizer->TokenBytes();
  std::string trigger;
  size_t through = 0, nonempty = 0;
  while (through < ids.size() && nonempty < 3) {
    trigger += bytes[static_cast<size_t>(ids[through])];
    nonempty += !bytes[static_cast<size_t>(ids[through])].empty();
    ++through;
  }
  ASSERT_EQ(nonempty, 3u);
  auto grammar = constrained::Grammar::Parse("root ::= \"<\" [a-z]{2,4} \">\"");
  ASSERT_TRUE(grammar.ok());
  Request r = Greedy(prompt, 40);
  r.params.grammar = *grammar;
  r.params.grammar_trigger = trigger;
  auto h = engine->Submit(r);
  ASSERT_TRUE(h.ok());
  const Outcome o = Collect(**h);
  ASSERT_TRUE(o.error.ok()) << o.error.message();
  const Choice& c = o.choices.at(0);
  ASSERT_GT(c.ids.size(), through);
  EXPECT_EQ(std::vector<int32_t>(c.ids.begin(), c.ids.begin() + static_cast<ptrdiff_t>(through)),
            std::vector<int32_t>(ids.begin(), ids.begin() + static_cast<ptrdiff_t>(through)));
  std::string after;
  for (size_t i = through; i < c.ids.size(); ++i) after += bytes[static_cast<size_t>(c.ids[i])];
  std::smatch m;
  ASSERT_TRUE(std::regex_search(after, m, std::regex("^<[a-z]{2,4}>"))) << after;
  // Free again: the choice ran on past the grammar to its token budget.
  EXPECT_EQ(c.finish, FinishReason::kLength);
  EXPECT_EQ(c.ids.size(), 40u);
  EXPECT_GT(after.size(), m.length(0));
}

TEST(Engine, LogprobsAreTheModelsLogSoftmax) {
  auto engine = MakeEngine({});
  Request r = Greedy(Encode("import os\nimport"), 4);
  r.params.top_logprobs = 3;
  auto h = engine->Submit(r);
  ASSERT_TRUE(h.ok());
  const Outcome o = Collect(**h);
  for (const TokenDelta& d : o.choices.at(0).deltas) {
    ASSERT_TRUE(d.logprob.has_value());
    ASSERT_EQ(d.top.size(), 3u);
    EXPECT_EQ(d.top[0].id, d.id);  // greedy: the chosen token is the most likely
    EXPECT_FLOAT_EQ(d.top[0].logprob, d.logprob->logprob);
    EXPECT_LE(d.logprob->logprob, 0.0f);
    EXPECT_GE(d.top[0].logprob, d.top[1].logprob);
  }
}

TEST(Engine, OneModelServesOneEngineAtATime) {
  auto first = MakeEngine({});
  auto second = Engine::Create(*Target().model, Target().tokenizer.get(), {});
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.status().message().find("already served"), std::string::npos);
}

TEST(Engine, BadRequestsAreRefusedNamingTheParameter) {
  EngineOptions o;
  o.max_queue = 2;
  auto engine = MakeEngine(o);
  auto expect = [&](Request r, const std::string& fragment) {
    auto h = engine->Submit(std::move(r));
    ASSERT_FALSE(h.ok());
    EXPECT_EQ(h.status().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(h.status().message().find(fragment), std::string::npos) << h.status().message();
  };
  expect(Greedy({}, 4), "prompt");
  expect(Greedy({1, 99999}, 4), "prompt");
  expect(Greedy(std::vector<int32_t>(3000, 5), 4), "prompt");
  expect(Greedy({1, 2}, 0), "max_tokens");
  expect(Greedy({1, 2}, 5000), "max_tokens");
  Request n = Greedy({1, 2}, 4);
  n.params.n = 99;
  expect(n, "n:");
  Request lp = Greedy({1, 2}, 4);
  lp.params.top_logprobs = 50;
  expect(lp, "top_logprobs");
  Request tp = Greedy({1, 2}, 4);
  tp.params.sampler.top_p = 3;
  expect(tp, "top_p");
}

TEST(Engine, FullQueueIsUnavailableAndDrainFinishesEverything) {
  EngineOptions o;
  o.max_queue = 3;
  o.max_running = 1;
  auto engine = MakeEngine(o);
  std::vector<std::shared_ptr<RequestHandle>> handles;
  int refused = 0;
  for (int i = 0; i < 20; ++i) {
    auto h = engine->Submit(Greedy({1, 2, 3}, 30));
    if (h.ok()) {
      handles.push_back(*h);
    } else {
      EXPECT_EQ(h.status().code(), ErrorCode::kUnavailable) << h.status().message();
      ++refused;
    }
  }
  EXPECT_GT(refused, 0);
  engine->Drain();
  for (auto& h : handles) EXPECT_TRUE(Collect(*h, 1000).error.ok());
  auto late = engine->Submit(Greedy({1, 2, 3}, 3));
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.status().code(), ErrorCode::kUnavailable);
}

}  // namespace
}  // namespace fastgen::runtime
