// GBNF parsing and the byte-level matcher.
#include <gtest/gtest.h>

#include <string>

#include "decoding/constrained/grammar.h"
#include "decoding/constrained/matcher.h"

namespace fastgen::constrained {
namespace {

std::shared_ptr<const Grammar> MustParse(std::string_view text) {
  auto g = Grammar::Parse(text);
  EXPECT_TRUE(g.ok()) << g.status().message();
  return g.ok() ? *g : nullptr;
}

// Whole-string membership: accepted byte by byte and may end there.
bool Matches(const std::shared_ptr<const Grammar>& g, std::string_view s) {
  GrammarMatcher m(g);
  return m.Accept(s) && m.CanEnd();
}

// A prefix of some sentence: every byte accepted.
bool IsPrefix(const std::shared_ptr<const Grammar>& g, std::string_view s) {
  GrammarMatcher m(g);
  return m.Accept(s);
}

TEST(Grammar, LiteralsClassesAndAlternatives) {
  auto g = MustParse(R"(root ::= "ab" [0-9] | "c" [^a-z\n] # trailing comment
)");
  EXPECT_TRUE(Matches(g, "ab7"));
  EXPECT_TRUE(Matches(g, "cX"));
  EXPECT_FALSE(Matches(g, "cq"));
  EXPECT_FALSE(Matches(g, "c\n"));
  EXPECT_FALSE(Matches(g, "ab"));
  EXPECT_TRUE(IsPrefix(g, "ab"));
  EXPECT_FALSE(IsPrefix(g, "b"));
  EXPECT_FALSE(Matches(g, "ab77"));
}

TEST(Grammar, Repetitions) {
  auto g = MustParse(R"(root ::= "x"* "-" [a]+ "-" "y"? "-" "z"{2} "-" "w"{1,3} "-" "v"{2,}
)");
  EXPECT_TRUE(Matches(g, "-a--zz-w-vv"));
  EXPECT_TRUE(Matches(g, "xxx-aaa-y-zz-www-vvvvv"));
  EXPECT_FALSE(Matches(g, "--zz-w-vv"));       // a+ needs one
  EXPECT_FALSE(Matches(g, "-a-yy-zz-w-vv"));   // y? at most one
  EXPECT_FALSE(Matches(g, "-a--z-w-vv"));      // z{2} exactly two
  EXPECT_FALSE(Matches(g, "-a--zz--vv"));      // w{1,3} at least one
  EXPECT_FALSE(Matches(g, "-a--zz-wwww-vv"));  // at most three
  EXPECT_FALSE(Matches(g, "-a--zz-w-v"));      // v{2,} at least two
}

TEST(Grammar, GroupsRecursionAndRulesAcrossLines) {
  auto g = MustParse(R"(
# nested lists of digits
root  ::= list
list  ::= "[" ws ( item ( ws "," ws item )* )? ws "]"
item  ::= [0-9]+ | list
ws    ::= [ ]*
)");
  EXPECT_TRUE(Matches(g, "[]"));
  EXPECT_TRUE(Matches(g, "[1, [2,3], [[]], 45]"));
  EXPECT_FALSE(Matches(g, "[1,]"));
  EXPECT_FALSE(Matches(g, "[[1]"));
  EXPECT_TRUE(IsPrefix(g, "[[[[[[1"));
}

TEST(Grammar, AlternativesOnFollowingLines) {
  auto g = MustParse("root ::= \"a\"\n   | \"b\"\n   | \"c\"\n");
  EXPECT_TRUE(Matches(g, "b"));
  EXPECT_TRUE(Matches(g, "c"));
}

TEST(Grammar, UnicodeAcrossSplitBytes) {
  auto g = MustParse(R"(root ::= "é" [α-ω]+ "\u00e9" "\U0001F600")");
  const std::string s = "é" "αβγ" "é" "\xF0\x9F\x98\x80";
  EXPECT_TRUE(Matches(g, s));
  // Fed one byte at a time, a character split across calls is held as a partial sequence.
  GrammarMatcher m(g);
  for (char c : s) ASSERT_TRUE(m.Accept(std::string_view(&c, 1)));
  EXPECT_TRUE(m.CanEnd());
  // A prefix byte no member of the class can start with is refused at once: 'é' is C3 A9, so
  // C3 is fine but a following A8 (è) is not.
  GrammarMatcher m2(g);
  EXPECT_TRUE(m2.Accept("\xC3"));
  EXPECT_FALSE(m2.CanEnd());
  EXPECT_FALSE(m2.Accept("\xA8"));
  // Malformed UTF-8 is refused: a lone continuation byte, an overlong form, a surrogate.
  auto any = MustParse("root ::= .*");
  EXPECT_FALSE(IsPrefix(any, "\x80"));
  EXPECT_FALSE(IsPrefix(any, "\xC0\xAF"));
  EXPECT_FALSE(IsPrefix(any, "\xED\xA0\x80"));
  EXPECT_TRUE(Matches(any, "any text \xE2\x82\xAC"));
}

// The standard's well-formed UTF-8 (Unicode Table 3-7), written out independently of the matcher.
bool WellFormedUtf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const auto b = [&](size_t k) { return static_cast<uint8_t>(s[k]); };
    const uint8_t c = b(i);
    size_t n;
    uint8_t lo = 0x80, hi = 0xBF;
    if (c < 0x80) {
      ++i;
      continue;
    }
    if (c >= 0xC2 && c <= 0xDF) {
      n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 3;
      lo = c == 0xE0 ? 0xA0 : 0x80;
      hi = c == 0xED ? 0x9F : 0xBF;
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 4;
      lo = c == 0xF0 ? 0x90 : 0x80;
      hi = c == 0xF4 ? 0x8F : 0xBF;
    } else {
      return false;
    }
    if (i + n > s.size()) return false;
    if (b(i + 1) < lo || b(i + 1) > hi) return false;
    for (size_t k = 2; k < n; ++k)
      if (b(i + k) < 0x80 || b(i + k) > 0xBF) return false;
    i += n;
  }
  return true;
}

// Where every class admits any non-ASCII character, partial characters of the same shape are one
// state; what the matcher accepts byte by byte is still exactly well-formed UTF-8, including the
// lead bytes that limit the next one (E0, ED, F0, F4), and a class that admits fewer characters
// keeps the bytes it needs.
TEST(Grammar, PartialCharactersMergeWithoutChangingWhatIsAccepted) {
  auto any = MustParse("root ::= .*");
  const uint8_t seconds[] = {0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0};
  const uint8_t thirds[] = {0x41, 0x80, 0xBF, 0xC3};
  for (int lead = 0x80; lead <= 0xFF; ++lead) {
    for (uint8_t b2 : seconds) {
      for (uint8_t b3 : thirds) {
        for (uint8_t b4 : thirds) {
          const std::string s = {static_cast<char>(lead), static_cast<char>(b2), static_cast<char>(b3),
                                 static_cast<char>(b4)};
          for (size_t len = 1; len <= 4; ++len) {
            const std::string_view v(s.data(), len);
            GrammarMatcher m(any);
            bool ok = true;
            for (char c : v) ok = ok && m.Accept(std::string_view(&c, 1));
            EXPECT_EQ(ok && m.CanEnd(), WellFormedUtf8(v)) << std::hex << lead << " " << int(b2) << " " << len;
          }
        }
      }
    }
  }
  // The merge happens: the first bytes of "ж" (D0) and "é" (C3) leave the same state, as do
  // two different CJK prefixes.
  GrammarMatcher a(any), b(any);
  ASSERT_TRUE(a.Accept("\xD0") && b.Accept("\xC3"));
  EXPECT_TRUE(a.state() == b.state());
  ASSERT_TRUE(a.Accept("\xB6") && b.Accept("\xA9"));
  GrammarMatcher c(any), d(any);
  ASSERT_TRUE(c.Accept("\xE4\xB8") && d.Accept("\xE6\x97"));
  EXPECT_TRUE(c.state() == d.state());
  // A narrow class beside the broad one keeps the bytes: after C3, A9 (é) may continue with
  // "z" but A8 (è) may not.
  auto mixed = MustParse(R"(root ::= [^a]+ | "é" "z")");
  EXPECT_TRUE(Matches(mixed, "éz"));
  EXPECT_TRUE(Matches(mixed, "èz"));  // [^a]+ takes it
  auto narrow = MustParse(R"(root ::= [é] "z" | [ж-я]+)");
  EXPECT_TRUE(Matches(narrow, "éz"));
  EXPECT_FALSE(Matches(narrow, "èz"));
  EXPECT_TRUE(Matches(narrow, "жя"));
  EXPECT_FALSE(Matches(narrow, "жz"));
}

TEST(Grammar, RejectedInputLeavesTheStateUnchanged) {
  auto g = MustParse(R"(root ::= "abc" | "abd")");
  GrammarMatcher m(g);
  ASSERT_TRUE(m.Accept("ab"));
  EXPECT_FALSE(m.Accept("cx"));
  EXPECT_TRUE(m.Accept("d"));
  EXPECT_TRUE(m.CanEnd());
  EXPECT_TRUE(m.Finished());
}

TEST(Grammar, EmptyAlternativesAndNullableRules) {
  auto g = MustParse(R"(
root ::= a b "!"
a ::= "a" |
b ::= | "b"
)");
  EXPECT_TRUE(Matches(g, "!"));
  EXPECT_TRUE(Matches(g, "ab!"));
  EXPECT_TRUE(Matches(g, "b!"));
  EXPECT_FALSE(Matches(g, "ba!"));
}

TEST(Grammar, ErrorsNameWhatIsWrong) {
  struct Case {
    const char* text;
    const char* message;
  } cases[] = {
      {"root ::= foo", "rule 'foo' is used but never defined"},
      {"start ::= \"a\"", "no rule 'root'"},
      {"root ::= \"abc", "unterminated string literal"},
      {"root ::= [a-", "unterminated character class"},
      {"root ::= [z-a]", "backwards"},
      {"root ::= (\"a\"", "expected ')'"},
      {"root ::= * \"a\"", "with nothing before it"},
      {"root ::= \"a\"{3,1}", "n < m"},
      {"root ::= \"a\"{9999999}", "repetition count above"},
      {"root ::= \"\\q\"", "unknown escape"},
      {"root ::= root \"a\"", "left-recursive"},
      {"root ::= x\nx ::= y? root \"a\"\ny ::= \"b\"", "left-recursive"},
      {"root ::= \"a\"\nroot ::= \"b\"", "defined twice"},
      {"root ::= \"a\" b ::= \"c\"", "expected a newline"},
      {"root = \"a\"", "expected '::='"},
      {"root ::= \"\xff\"", "malformed UTF-8"},
  };
  for (const Case& c : cases) {
    auto g = Grammar::Parse(c.text);
    ASSERT_FALSE(g.ok()) << c.text;
    EXPECT_NE(g.status().message().find(c.message), std::string::npos)
        << c.text << " -> " << g.status().message();
  }
  auto g = Grammar::Parse("root ::= \"a\"\n\nitem ::= \"b\" ]\n");
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.status().message().find("line 3"), std::string::npos) << g.status().message();
}

}  // namespace
}  // namespace fastgen::constrained

namespace fastgen::constrained {
namespace {

// x{0,n} of a nullable x reaches the same stacks along 2^n paths; expanding each node once per
// step keeps it linear (this test would not finish otherwise), and a long chain of nullable rules
// does not recurse on the C++ stack.
// Groups and repetitions become helper rules; their names never collide with a rule the grammar
// defines afterwards.
TEST(Grammar, HelperRulesDoNotTakeUserNames) {
  auto g = Grammar::Parse("root ::= (\"a\")* root-1\nroot-1 ::= \"b\"\n");
  ASSERT_TRUE(g.ok()) << g.status().message();
  GrammarMatcher m(*g);
  EXPECT_TRUE(m.Accept("aab"));
  EXPECT_TRUE(m.CanEnd());
}

TEST(Grammar, NullableRepetitionsExpandOnce) {
  auto g = Grammar::Parse(R"(root ::= ("a"?){0,3000} "b")");
  ASSERT_TRUE(g.ok()) << g.status().message();
  GrammarMatcher m(*g);
  EXPECT_TRUE(m.Accept(std::string(100, 'a') + "b"));
  EXPECT_TRUE(m.CanEnd());
}

}  // namespace
}  // namespace fastgen::constrained
