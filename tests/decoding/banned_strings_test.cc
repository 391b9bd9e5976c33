// Banned strings: never in the output however tokens split them, never shown before they are
// ruled out, and no effect when they do not come up.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "decoding/banned_strings.h"
#include "decoding/constrained/output_format.h"
#include "decoding/generate.h"
#include "models/model.h"
#include "tokenizer/tokenizer.h"
#include "test_util.h"

namespace fastgen {
namespace {

TEST(BannedStrings, FindsOccurrencesAcrossTokensAndHoldsBackPrefixes) {
  const std::vector<std::string> bytes = {"str", "cpy", "(", "x", "", "s", "trcpy"};
  BannedStrings b({"strcpy("}, &bytes);
  EXPECT_EQ(b.Push(3), -1);   // "x"
  EXPECT_EQ(b.Safe(), 1);
  EXPECT_EQ(b.Push(0), -1);   // "xstr": "str" may become "strcpy("
  EXPECT_EQ(b.Safe(), 1);
  EXPECT_EQ(b.Push(4), -1);   // an empty token changes nothing
  EXPECT_EQ(b.Push(1), -1);   // "xstrcpy"
  EXPECT_EQ(b.Safe(), 1);
  EXPECT_EQ(b.Push(2), 1);    // "xstrcpy(": it began at token 1
  b.Rewind(1);
  EXPECT_EQ(b.size(), 1);
  EXPECT_EQ(b.Safe(), 1);
  EXPECT_EQ(b.Push(5), -1);   // "xs"
  EXPECT_EQ(b.Push(6), -1);   // "xstrcpy"
  EXPECT_EQ(b.Push(2), 1);    // the same string split differently
  BannedStrings none({"zzz"}, &bytes);
  EXPECT_EQ(none.Push(0), -1);
  EXPECT_EQ(none.Safe(), 1);  // "str" is no prefix of "zzz"
}

struct Fixture {
  std::unique_ptr<ThreadPool> pool = std::make_unique<ThreadPool>(2);
  std::unique_ptr<Model> model;
  std::unique_ptr<Tokenizer> tokenizer;
};

Fixture& Target() {
  static Fixture f = [] {
    Fixture x;
    auto m = LoadModel(testing::SharedPath("models/fg-target"), x.pool.get());
    auto t = Tokenizer::Load(testing::SharedPath("models/fg-target"));
    EXPECT_TRUE(m.ok() && t.ok());
    x.model = std::move(*m);
    x.tokenizer = std::move(*t);
    return x;
  }();
  return f;
}

struct Out {
  std::vector<int32_t> tokens, shown;
  std::string text;
};

Out GenerateWithBans(const std::string& prompt, std::vector<std::string> banned, float temperature, uint64_t seed,
                     const std::string& gbnf = "") {
  Fixture& f = Target();
  auto ids = f.tokenizer->Encode(prompt, {.add_special_tokens = true});
  EXPECT_TRUE(ids.ok());
  auto kv = f.model->NewKvCache(512);
  EXPECT_TRUE(kv.ok());
  GenerateOptions go;
  go.max_new_tokens = 96;
  go.sampler.temperature = temperature;
  go.sampler.seed = seed;
  go.ignore_eos = true;
  go.banned_strings = std::move(banned);
  go.token_bytes = &f.tokenizer->TokenBytes();
  std::unique_ptr<constrained::TokenConstraint> constraint;
  if (!gbnf.empty()) {
    auto g = constrained::Grammar::Parse(gbnf);
    EXPECT_TRUE(g.ok()) << g.status().message();
    constraint = std::make_unique<constrained::TokenConstraint>(
        *g, constrained::MakeTokenVocabulary(f.tokenizer->TokenBytes(), f.model->config().vocab_size),
        std::vector<int32_t>{});
    go.constraint = constraint.get();
  }
  Out out;
  auto r = Generate(*f.model, *kv, *ids, go, [&](int32_t id) {
    out.shown.push_back(id);
    return true;
  });
  EXPECT_TRUE(r.ok()) << r.status().message();
  if (!r.ok()) return out;
  out.tokens = r->tokens;
  for (int32_t id : out.tokens) out.text += f.tokenizer->TokenBytes()[static_cast<size_t>(id)];
  return out;
}

TEST(BannedStrings, GreedyOutputAvoidsWhatItWouldHaveWritten) {
  const std::string prompt = "def fib(n):";
  const Out plain = GenerateWithBans(prompt, {}, 0.0f, 0);
  ASSERT_NE(plain.text.find("return"), std::string::npos) << plain.text;  // the model writes it
  const Out banned = GenerateWithBans(prompt, {"return", "fib"}, 0.0f, 0);
  EXPECT_EQ(banned.text.find("return"), std::string::npos) << banned.text;
  EXPECT_EQ(banned.text.find("fib"), std::string::npos) << banned.text;
  EXPECT_EQ(banned.tokens.size(), 96u);
  EXPECT_EQ(banned.shown, banned.tokens);  // nothing shown was taken back
  // Up to the first token a ban touched, the output is the plain one.
  const Out unrelated = GenerateWithBans(prompt, {"@@@@ never written @@@@"}, 0.0f, 0);
  EXPECT_EQ(unrelated.tokens, plain.tokens);
  EXPECT_EQ(unrelated.shown, plain.tokens);
}

TEST(BannedStrings, SampledOutputNeverContainsThem) {
  for (uint64_t seed = 1; seed <= 4; ++seed) {
    const Out o = GenerateWithBans("import os\n", {"self", "(", "e"}, 1.0f, seed);
    EXPECT_EQ(o.text.find("self"), std::string::npos) << o.text;
    EXPECT_EQ(o.text.find('('), std::string::npos) << o.text;
    EXPECT_EQ(o.text.find('e'), std::string::npos) << o.text;
    EXPECT_EQ(o.shown, o.tokens);
  }
}

// With a grammar too: each rewind rolls the grammar back with the tokens.
TEST(BannedStrings, ComposeWithAGrammar) {
  for (uint64_t seed = 1; seed <= 3; ++seed) {
    const Out o = GenerateWithBans("x = ", {"e", "th"}, 1.0f, seed, "root ::= [a-z ]{30,80} \";\"");
    EXPECT_EQ(o.text.find('e'), std::string::npos) << o.text;
    EXPECT_EQ(o.text.find("th"), std::string::npos) << o.text;
    ASSERT_GE(o.text.size(), 31u) << o.text;
    EXPECT_EQ(o.text.back(), ';') << o.text;
    EXPECT_EQ(o.text.find_first_not_of("abcdefghijklmnopqrstuvwxyz "), o.text.size() - 1) << o.text;
  }
}

}  // namespace
}  // namespace fastgen
