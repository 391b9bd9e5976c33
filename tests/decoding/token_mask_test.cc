// Token masks against the definition: a token is allowed iff the matcher accepts its bytes.
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "decoding/constrained/grammar.h"
#include "decoding/constrained/token_mask.h"

namespace fastgen::constrained {
namespace {

// JSON-like: objects, arrays, strings with escapes and non-ASCII, numbers; nested and recursive,
// so stacks grow deeper than the truncation depth.
constexpr const char* kJsonGrammar = R"(
root   ::= value
value  ::= object | array | string | number | ("true" | "false" | "null")
object ::= "{" ws ( string ws ":" ws value ( ws "," ws string ws ":" ws value )* )? ws "}"
array  ::= "[" ws ( value ( ws "," ws value )* )? ws "]"
string ::= "\"" ( [^"\\\x00-\x1f] | "\\" ["\\/bfnrt] | "\\u" [0-9a-fA-F]{4} )* "\""
number ::= "-"? ([0-9] | [1-9] [0-9]*) ("." [0-9]+)? ([eE] [-+]? [0-9]+)?
ws     ::= [ \t\n]{0,4}
)";

// A vocabulary like a byte-level BPE one: every byte (split UTF-8 included), common multi-byte
// pieces, and random pieces.
std::vector<std::string> MakeVocab(uint32_t seed) {
  std::vector<std::string> v;
  v.push_back("");  // a control token: never allowed
  for (int b = 1; b < 256; ++b) v.push_back(std::string(1, static_cast<char>(b)));
  const char* pieces[] = {"{\"", "\":", "\",", "\"}", "\"]", "[{", "}]", "},", "],", ", ", ": ", "true",
                          "false", "null", "nul", "12", "3.5", "e+", "-0", "\\n", "\\u00", "\"a\"", "ab",
                          "é", "\xC3", "\xA9", "日本", "\xE6\x97", "\x9C\xAC", "  ", "\n\n", "{}", "[]",
                          "\"\"", "\",\"", "\":\"", "0.", "00", "\": {\"", "\"]}", "}}", "]]", "x\"",
                          "\\\"", "\t", " \"", "\"\n"};
  for (const char* p : pieces) v.push_back(p);
  v.push_back("ab");  // a duplicate spelling: both ids must get the same verdict
  std::mt19937 rng(seed);
  const std::string alphabet = "{}[]\",:.-+eE0123456789 abtrufsnl\\\n";
  for (int i = 0; i < 400; ++i) {
    std::string s;
    const int len = 1 + static_cast<int>(rng() % 6);
    for (int j = 0; j < len; ++j) s.push_back(alphabet[rng() % alphabet.size()]);
    v.push_back(s);
  }
  return v;
}

TEST(TokenMask, EqualsTokenByTokenCheckAlongRandomPaths) {
  auto g = Grammar::Parse(kJsonGrammar);
  ASSERT_TRUE(g.ok()) << g.status().message();
  const int32_t end_id = 256 + 48;  // an id past the pieces: the end-of-sequence token
  std::vector<std::string> bytes = MakeVocab(7);
  bytes.insert(bytes.begin() + end_id, "</s>");
  auto vocab = std::make_shared<TokenVocabulary>(bytes);
  std::mt19937 rng(11);
  int64_t total_allowed = 0;
  auto cache = std::make_shared<GrammarMaskCache>(*g, vocab);
  for (int path = 0; path < 30; ++path) {
    TokenConstraint c(cache, {end_id});
    std::string text;
    for (int step = 0; step < 60; ++step) {
      std::vector<uint64_t> mask;
      c.FillMask(&mask);
      // The reference: each token on its own, from the text so far, on a fresh matcher.
      std::vector<int32_t> allowed;
      for (int32_t id = 0; id < vocab->size(); ++id) {
        bool ok;
        if (id == end_id) {
          ok = c.CanEnd();
        } else if (bytes[id].empty()) {
          ok = false;
        } else {
          GrammarMatcher m(*g);
          ok = m.Accept(text) && m.Accept(bytes[id]);
        }
        const bool got = (mask[id >> 6] >> (id & 63)) & 1;
        ASSERT_EQ(got, ok) << "path " << path << " step " << step << " text '" << text << "' token '"
                           << bytes[id] << "'";
        ASSERT_EQ(c.Allows(id), ok);
        if (ok) allowed.push_back(id);
      }
      total_allowed += static_cast<int64_t>(allowed.size());
      if (allowed.empty()) break;
      const int32_t pick = allowed[rng() % allowed.size()];
      if (pick == end_id) break;
      ASSERT_TRUE(c.Accept(pick));
      text += bytes[pick];
    }
  }
  EXPECT_GT(total_allowed, 1000);
  // Strings' contents were classified as loops (their plain characters accepted unwalked).
  EXPECT_GT(cache->stats().loop_walks, 0);
}

// Long bounded repetitions (a JSON string's maxLength, a counted class) are classified from
// their loops' walk, one for every count left, with the tokens too long for the count checked
// against the whole stack: masks still equal the token-by-token check, down to the last counts.
TEST(TokenMask, BoundedRepetitionsClassifiedFromTheirLoopsAreExact) {
  auto g = Grammar::Parse(R"(
root ::= "{" ws "\"s\":" ws str ws "," ws "\"u\":" ws req ws "," ws "\"t\":" ws tag ws "," ws "\"n\":" ws num ws "}"
str  ::= "\"" char{0,12} "\""
req  ::= "\"" char{3,14} "\""
char ::= [^"\\\x00-\x1f] | "\\" ["\\/bfnrt]
tag  ::= [a-z]{2,11}
num  ::= [0-9]{1,10}
ws   ::= [ ]{0,2}
)");
  ASSERT_TRUE(g.ok()) << g.status().message();
  std::vector<std::string> bytes;
  for (int b = 1; b < 128; ++b) bytes.push_back(std::string(1, static_cast<char>(b)));
  for (const char* p : {"{\"s\":", "\"u\":", "\"t\":", "\"n\":", "\",", "é", "日本語", "\xE6\x97", "\\n", "\\\"", "a\"", "ab\",", "\"\","}) {
    bytes.push_back(p);
  }
  std::mt19937 rng(5);
  const std::string alphabet = "abcxyz0123456789\",: {}\\";
  for (int i = 0; i < 600; ++i) {
    std::string s;
    const int len = 1 + static_cast<int>(rng() % 9);
    for (int j = 0; j < len; ++j) s.push_back(alphabet[rng() % alphabet.size()]);
    bytes.push_back(s);
  }
  auto vocab = std::make_shared<TokenVocabulary>(bytes);
  auto cache = std::make_shared<GrammarMaskCache>(*g, vocab);
  int completed = 0;
  for (int path = 0; path < 40; ++path) {
    TokenConstraint c(cache, {});
    std::string text;
    for (int step = 0; step < 80; ++step) {
      std::vector<uint64_t> mask;
      c.FillMask(&mask);
      std::vector<int32_t> allowed;
      for (int32_t id = 0; id < vocab->size(); ++id) {
        GrammarMatcher m(*g);
        const bool ok = m.Accept(text) && m.Accept(bytes[id]);
        ASSERT_EQ(((mask[id >> 6] >> (id & 63)) & 1) != 0, ok)
            << "path " << path << " step " << step << " text '" << text << "' token '" << bytes[id] << "'";
        if (ok) allowed.push_back(id);
      }
      if (allowed.empty()) break;
      // Longest tokens first half of the time, to run the counts down to their last values.
      int32_t pick = allowed[rng() % allowed.size()];
      if (rng() % 2)
        for (int32_t id : allowed)
          if (bytes[id].size() > bytes[pick].size()) pick = id;
      ASSERT_TRUE(c.Accept(pick));
      text += bytes[pick];
      if (c.Finished()) {
        ++completed;
        break;
      }
    }
  }
  EXPECT_GT(cache->stats().counted_classified, 20);
  EXPECT_GT(completed, 5);
}

// A loop over ASCII characters only, then over every character but one: the strings made of the
// loop's characters are accepted without a walk, never those with a character the loop refuses
// (a non-ASCII one in the first, a broken UTF-8 sequence in the second).
TEST(TokenMask, LoopsAcceptTheirOwnCharactersOnly) {
  // The third: a loop nested deeper than the truncation, with optional closers after it (masks
  // exact whatever path its walks take).
  int grammar = 0;
  for (const char* text : {R"(root ::= "<" [ -=?-~]* ">" [a-z]{0,3})", R"(root ::= "<" [^>]* ">" [a-z]{0,3})",
                           "root ::= \"(\" a \")\" [a-z]*\na ::= b \"]\"?\nb ::= c \"}\"?\nc ::= \"{\" [^)\\]}]*"}) {
    auto g = Grammar::Parse(text);
    ASSERT_TRUE(g.ok()) << g.status().message();
    std::vector<std::string> bytes;
    for (int b = 1; b < 256; ++b) bytes.push_back(std::string(1, static_cast<char>(b)));
    for (const char* p : {"é", "日本", "\xE6\x97", "\x97\xA5", "ab\xC3", "x\xC0\xAF", "\xED\xA0\x80", "a>", "<a", ">b",
                          "é>", "hello world", "\xF0\x9F\x98\x80", "\xF4\x90\x80", "\xE0\x80", ")", ")x", "))", ")ab",
                          "}])", "{", "{ab"}) {
      bytes.push_back(p);
    }
    auto vocab = std::make_shared<TokenVocabulary>(bytes);
    auto cache = std::make_shared<GrammarMaskCache>(*g, vocab);
    std::mt19937 rng(3);
    for (int path = 0; path < 10; ++path) {
      TokenConstraint c(cache, {});
      std::string prefix;
      for (int step = 0; step < 12; ++step) {
        std::vector<uint64_t> mask;
        c.FillMask(&mask);
        std::vector<int32_t> allowed;
        for (int32_t id = 0; id < vocab->size(); ++id) {
          GrammarMatcher m(*g);
          const bool ok = m.Accept(prefix) && m.Accept(bytes[id]);
          ASSERT_EQ(((mask[id >> 6] >> (id & 63)) & 1) != 0, ok) << text << " after '" << prefix << "': '" << bytes[id] << "'";
          if (ok) allowed.push_back(id);
        }
        if (allowed.empty()) break;
        const int32_t pick = allowed[rng() % allowed.size()];
        ASSERT_TRUE(c.Accept(pick));
        prefix += bytes[pick];
      }
    }
    if (grammar++ < 2) {
      EXPECT_GT(cache->stats().loop_walks, 0) << text;
    }
  }
}

TEST(TokenMask, CachesServeRepeatedStacks) {
  auto g = Grammar::Parse(kJsonGrammar);
  ASSERT_TRUE(g.ok());
  std::vector<std::string> bytes = MakeVocab(3);
  auto vocab = std::make_shared<TokenVocabulary>(bytes);
  TokenConstraint c(*g, vocab, {});
  std::vector<uint64_t> mask;
  auto feed = [&](const std::string& text) {
    for (char ch : text) {
      c.FillMask(&mask);
      ASSERT_TRUE(c.Accept(static_cast<int32_t>(static_cast<uint8_t>(ch))));  // id b is the byte b
    }
  };
  feed("{\"key\": \"ab");
  const TokenMaskStats before = c.stats();
  // Inside the string every character leaves the same stacks: hits, not walks.
  feed("abababababababab");
  EXPECT_EQ(c.stats().stack_misses, before.stack_misses);
  EXPECT_EQ(c.stats().truncated_walks, before.truncated_walks);
  EXPECT_GT(c.stats().stack_hits, before.stack_hits + 16);
}

TEST(TokenMask, EndOnlyWhereTheGrammarMayEnd) {
  auto g = Grammar::Parse(R"(root ::= "a" "b"?)");
  ASSERT_TRUE(g.ok());
  // The end id 3 spells text ("a", as GPT-2's <|endoftext|> does): only the grammar's end decides.
  auto vocab = std::make_shared<TokenVocabulary>(std::vector<std::string>{"a", "b", "ab", "a", "c"});
  TokenConstraint c(*g, vocab, {3});
  std::vector<uint64_t> mask;
  c.FillMask(&mask);
  EXPECT_EQ(mask[0], 0b00101u);  // "a", "ab"
  ASSERT_TRUE(c.Accept(0));
  c.FillMask(&mask);
  EXPECT_EQ(mask[0], 0b01010u);  // "b" or end
  EXPECT_FALSE(c.Finished());
  ASSERT_TRUE(c.Accept(1));
  EXPECT_TRUE(c.Finished());
  c.FillMask(&mask);
  EXPECT_EQ(mask[0], 0b01000u);  // only the end
  EXPECT_FALSE(c.Accept(4));
}

TEST(TokenMask, RestoreRollsBack) {
  auto g = Grammar::Parse(R"(root ::= "x" [0-9]+ "y")");
  ASSERT_TRUE(g.ok());
  auto vocab = std::make_shared<TokenVocabulary>(std::vector<std::string>{"x", "1", "2", "y", "x1"});
  TokenConstraint c(*g, vocab, {});
  const MatchState start = c.state();
  ASSERT_TRUE(c.Accept(4));
  ASSERT_TRUE(c.Accept(2));
  EXPECT_TRUE(c.Allows(3));
  c.Restore(start);
  EXPECT_FALSE(c.Allows(3));
  EXPECT_TRUE(c.Allows(0));
}

}  // namespace
}  // namespace fastgen::constrained
