// llama.cpp's sample GBNF grammars (grammars/*.gbnf, fetched by scripts/fetch_llama_vocab into
// the build tree's llama-vocab/grammars) parse, and accept and refuse what they should.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "decoding/constrained/grammar.h"
#include "decoding/constrained/matcher.h"

namespace fastgen::constrained {
namespace {

std::map<std::string, std::string> SampleGrammars() {
  const char* env_dir = std::getenv("FASTGEN_LLAMA_VOCAB_DIR");
  const std::filesystem::path dir = std::filesystem::path(env_dir != nullptr ? env_dir : "llama-vocab") / "grammars";
  std::map<std::string, std::string> out;
  if (!std::filesystem::is_directory(dir)) return out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() != ".gbnf") continue;
    std::ifstream f(e.path());
    std::stringstream ss;
    ss << f.rdbuf();
    out[e.path().stem().string()] = ss.str();
  }
  return out;
}

bool Matches(const std::shared_ptr<const Grammar>& g, std::string_view s) {
  GrammarMatcher m(g);
  return m.Accept(s) && m.CanEnd();
}

TEST(LlamaGrammars, SamplesParseAndMatch) {
  const auto grammars = SampleGrammars();
  if (grammars.empty()) GTEST_SKIP() << "no llama-vocab/grammars (scripts/fetch_llama_vocab fetches them)";
  std::map<std::string, std::shared_ptr<const Grammar>> parsed;
  for (const auto& [name, text] : grammars) {
    auto g = Grammar::Parse(text);
    ASSERT_TRUE(g.ok()) << name << ".gbnf: " << g.status().message();
    parsed[name] = *g;
  }
  for (const char* name : {"json", "arithmetic", "list", "chess", "c", "japanese", "english", "json_arr"}) {
    EXPECT_TRUE(parsed.count(name)) << name << ".gbnf is missing from llama.cpp's samples";
  }
  if (auto g = parsed["json"]) {
    EXPECT_TRUE(Matches(g, R"({"a": [1, 2.5, {"b": null}], "c": "d\n\u00e9"})"));
    EXPECT_FALSE(Matches(g, R"({"a": [1, 2.5,]})"));
    EXPECT_FALSE(Matches(g, "[1]"));  // json.gbnf's root is an object
  }
  if (auto g = parsed["json_arr"]) {
    EXPECT_TRUE(Matches(g, "[\n{\"a\": 1},\n{\"b\": [true]}\n]"));
    EXPECT_FALSE(Matches(g, "[{\"a\": 1}]"));  // the array opens with a newline
  }
  if (auto g = parsed["arithmetic"]) {
    EXPECT_TRUE(Matches(g, "(1+2)*3-4/5=x\n"));
    EXPECT_FALSE(Matches(g, "1++2=3\n"));
  }
  if (auto g = parsed["list"]) {
    EXPECT_TRUE(Matches(g, "- apples\n- pears\n"));
    EXPECT_FALSE(Matches(g, "apples\n"));
  }
  if (auto g = parsed["chess"]) {
    EXPECT_TRUE(Matches(g, "1. e4 e5\n2. Nf3 Nc6\n3. O-O exd4\n"));
    EXPECT_FALSE(Matches(g, "1. e9 e5\n2. Nf3 Nc6\n"));
  }
}

}  // namespace
}  // namespace fastgen::constrained
