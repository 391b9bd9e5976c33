// Speculative decoding under a grammar: greedy output equals plain constrained decoding token for
// token, for every kind of proposer; sampled output stays inside the grammar.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "decoding/constrained/output_format.h"
#include "decoding/generate.h"
#include "decoding/speculative/draft_model.h"
#include "decoding/speculative/prompt_lookup.h"
#include "decoding/speculative/speculative.h"
#include "models/model.h"
#include "tokenizer/tokenizer.h"
#include "test_util.h"

namespace fastgen::speculative {
namespace {

using fastgen::testing::SharedPath;

struct Loaded {
  std::unique_ptr<ThreadPool> pool = std::make_unique<ThreadPool>(2);
  std::unique_ptr<Model> target, draft;
  std::unique_ptr<Tokenizer> tokenizer;
  std::shared_ptr<const constrained::TokenVocabulary> vocab;
};

Loaded& Models() {
  static Loaded s = [] {
    Loaded m;
    auto t = LoadModel(SharedPath("models/fg-target"), m.pool.get());
    auto d = LoadModel(SharedPath("models/fg-draft"), m.pool.get());
    auto tok = Tokenizer::Load(SharedPath("models/fg-target"));
    EXPECT_TRUE(t.ok() && d.ok() && tok.ok());
    m.target = std::move(*t);
    m.draft = std::move(*d);
    m.tokenizer = std::move(*tok);
    m.vocab = constrained::MakeTokenVocabulary(m.tokenizer->TokenBytes(), m.target->config().vocab_size);
    return m;
  }();
  return s;
}

std::shared_ptr<const constrained::Grammar> Compile(constrained::OutputFormat::Kind kind, const std::string& text) {
  constrained::OutputFormat f;
  f.kind = kind;
  f.text = text;
  auto g = constrained::CompileOutputFormat(f);
  EXPECT_TRUE(g.ok()) << g.status().message();
  return *g;
}

// The formats: a JSON schema with nested objects and arrays, any JSON, and a grammar whose text
// repeats (prompt lookup finds copies to draft).
std::vector<std::shared_ptr<const constrained::Grammar>> Grammars() {
  using Kind = constrained::OutputFormat::Kind;
  return {Compile(Kind::kJsonSchema, R"({"type":"object","properties":{"name":{"type":"string","maxLength":30},
            "items":{"type":"array","items":{"type":"object","properties":{"id":{"type":"integer"},
            "tags":{"type":"array","items":{"enum":["a","bb","ccc"]}}},"required":["id","tags"]},"maxItems":6}},
            "required":["name","items"],"additionalProperties":false})"),
          Compile(Kind::kJson, ""),
          Compile(Kind::kGrammar, R"(root ::= ("def " [a-z_]+ "(x):\n    return x" [ +*0-9]* "\n\n"){1,6})")};
}

struct Output {
  std::vector<int32_t> tokens;
  StopReason stop;
  int64_t accepted = 0;  // drafted tokens kept
};

Output Decode(const std::shared_ptr<const constrained::Grammar>& g, const std::vector<int32_t>& prompt,
           float temperature, Proposer* proposer) {
  Loaded& m = Models();
  constrained::TokenConstraint c(g, m.vocab, m.target->config().eos_ids);
  GenerateOptions go;
  go.max_new_tokens = 160;
  go.sampler.temperature = temperature;
  go.sampler.seed = 7;
  go.constraint = &c;
  auto kv = m.target->NewKvCache(1024);
  EXPECT_TRUE(kv.ok());
  if (proposer == nullptr) {
    auto r = Generate(*m.target, *kv, prompt, go, nullptr);
    EXPECT_TRUE(r.ok()) << r.status().message();
    return {r->tokens, r->stop_reason, 0};
  }
  SpeculativeOptions so;
  so.adaptive_fallback = false;
  auto r = GenerateSpeculative(*m.target, *kv, prompt, go, so, *proposer, nullptr);
  EXPECT_TRUE(r.ok()) << r.status().message();
  return {r->generation.tokens, r->generation.stop_reason, r->stats.accepted};
}

// Every generated token is one the grammar allowed where it stood.
bool InGrammar(const std::shared_ptr<const constrained::Grammar>& g, const std::vector<int32_t>& tokens) {
  Loaded& m = Models();
  constrained::TokenConstraint c(g, m.vocab, m.target->config().eos_ids);
  for (int32_t t : tokens)
    if (!c.Accept(t)) return false;
  return true;
}

TEST(SpeculativeGrammar, GreedyEqualsPlainConstrainedDecoding) {
  Loaded& m = Models();
  auto prompt = m.tokenizer->Encode("def square(x):\n    return x * x\n\ndef cube(x):\n", {.add_special_tokens = true});
  ASSERT_TRUE(prompt.ok());
  int64_t accepted = 0;
  for (const auto& g : Grammars()) {
    const Output plain = Decode(g, *prompt, 0.0f, nullptr);
    ASSERT_FALSE(plain.tokens.empty());
    EXPECT_TRUE(InGrammar(g, plain.tokens));
    PromptLookupProposer lookup(PromptLookupOptions{});
    DraftModelOptions chain;
    DraftModelProposer draft_chain(*m.draft, chain);
    DraftModelOptions tree;
    tree.tree_width = 3;
    DraftModelProposer draft_tree(*m.draft, tree);
    for (Proposer* p : std::vector<Proposer*>{&lookup, &draft_chain, &draft_tree}) {
      const Output spec = Decode(g, *prompt, 0.0f, p);
      EXPECT_EQ(spec.tokens, plain.tokens) << p->name();
      EXPECT_EQ(static_cast<int>(spec.stop), static_cast<int>(plain.stop)) << p->name();
      accepted += spec.accepted;
    }
  }
  EXPECT_GT(accepted, 100);  // drafts were kept: the comparison exercised verification
}

TEST(SpeculativeGrammar, SampledOutputStaysInTheGrammar) {
  Loaded& m = Models();
  auto prompt = m.tokenizer->Encode("{\"name\": ", {.add_special_tokens = true});
  ASSERT_TRUE(prompt.ok());
  for (const auto& g : Grammars()) {
    DraftModelOptions chain;
    DraftModelProposer draft_chain(*m.draft, chain);
    PromptLookupProposer lookup(PromptLookupOptions{});
    for (Proposer* p : std::vector<Proposer*>{&draft_chain, &lookup}) {
      const Output spec = Decode(g, *prompt, 1.0f, p);
      ASSERT_FALSE(spec.tokens.empty()) << p->name();
      EXPECT_TRUE(InGrammar(g, spec.tokens)) << p->name();
    }
  }
}

}  // namespace
}  // namespace fastgen::speculative
