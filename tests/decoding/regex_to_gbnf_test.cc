// Regular expressions as GBNF: every test parses the converter's output with Grammar::Parse and
// checks membership with the matcher, against expected strings and, for ASCII patterns, against
// std::regex (ECMAScript) over every short string of a small alphabet.
#include "decoding/constrained/regex_to_gbnf.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <vector>

#include "decoding/constrained/grammar.h"
#include "decoding/constrained/matcher.h"

namespace fastgen::constrained {
namespace {

std::shared_ptr<const Grammar> Compile(std::string_view pattern, const RegexGbnfOptions& opts = {}) {
  auto text = RegexToGbnf(pattern, opts);
  EXPECT_TRUE(text.ok()) << pattern << ": " << text.status().message();
  if (!text.ok()) return nullptr;
  auto g = Grammar::Parse(*text);
  EXPECT_TRUE(g.ok()) << pattern << "\n" << *text << g.status().message();
  return g.ok() ? *g : nullptr;
}

bool Matches(const std::shared_ptr<const Grammar>& g, std::string_view s) {
  if (!g) return false;
  GrammarMatcher m(g);
  return m.Accept(s) && m.CanEnd();
}

void ExpectLanguage(std::string_view pattern, const std::vector<std::string>& yes, const std::vector<std::string>& no,
                    const RegexGbnfOptions& opts = {}) {
  auto g = Compile(pattern, opts);
  ASSERT_NE(g, nullptr);
  for (const std::string& s : yes) EXPECT_TRUE(Matches(g, s)) << pattern << " should match '" << s << "'";
  for (const std::string& s : no) EXPECT_FALSE(Matches(g, s)) << pattern << " should not match '" << s << "'";
}

// Every string over `alphabet` of length 0..max_len.
std::vector<std::string> AllStrings(std::string_view alphabet, size_t max_len) {
  std::vector<std::string> out = {""};
  for (size_t begin = 0, len = 0; len < max_len; ++len) {
    const size_t end = out.size();
    for (size_t i = begin; i < end; ++i) {
      for (char c : alphabet) out.push_back(out[i] + c);
    }
    begin = end;
  }
  return out;
}

Status ErrorOf(std::string_view pattern) {
  auto text = RegexToGbnf(pattern);
  return text.ok() ? Status::Ok() : text.status();
}

TEST(RegexToGbnf, LiteralsAndEscapes) {
  ExpectLanguage("abc", {"abc"}, {"", "ab", "abcd", "abd"});
  ExpectLanguage(R"(a\.b\*\+\?\(\)\[\]\{\}\|\\\/\^\$)", {R"(a.b*+?()[]{}|\/^$)"}, {"axb"});
  ExpectLanguage(R"(\t\n\r\v\f\0)", {std::string("\t\n\r\v\f\0", 6)}, {"tnrvf0"});
  ExpectLanguage(R"(\x41\u00e9\u{1F600}\uD83D\uDE00\cJ)", {"A\xC3\xA9\xF0\x9F\x98\x80\xF0\x9F\x98\x80\n"}, {"A"});
  ExpectLanguage("é+ü", {"éü", "ééü"}, {"ü", "eü"});
  ExpectLanguage("a{", {"a{"}, {"a"});        // '{' that is not a quantifier is itself
  ExpectLanguage("a{,3}", {"a{,3}"}, {"a"});  // (as in browsers)
  ExpectLanguage("x}]", {"x}]"}, {"x"});
}

TEST(RegexToGbnf, ShorthandClassesAndDot) {
  ExpectLanguage(R"(\d\w\s)", {"1a ", "9_\t", "0Z\n", "5z\xC2\xA0", "5z\xE3\x80\x80"}, {"a1 ", "1- ", "11a"});
  ExpectLanguage(R"(\D\W\S)", {"a-x", "--1"}, {"1-x", "aax", "a- "});
  ExpectLanguage(".", {"a", " ", "\t", "\xC3\xA9", "\xF0\x9F\x98\x80"}, {"\n", "\r", "\xE2\x80\xA8", "", "ab"});
}

TEST(RegexToGbnf, BracketClasses) {
  ExpectLanguage("[a-cx-z_]", {"a", "b", "c", "x", "z", "_"}, {"d", "w", "A", "-"});
  ExpectLanguage("[^a-c\\n]", {"d", "-", "\xC3\xA9"}, {"a", "c", "\n"});
  ExpectLanguage(R"([-a][a-]\d[\d-z][\]\\\-^])", {"-a1-]", "aa1z\\", "a-1--", "--10^"}, {"ba1-]", "-a1y]"});
  ExpectLanguage(R"([\b][\s\d]*)", {"\b", "\b 1\t2"}, {"b", "\bx"});
  ExpectLanguage("[^]", {"a", "\n"}, {"", "ab"});
  ExpectLanguage("[α-ω]+", {"αβω"}, {"a", "Ω"});
}

TEST(RegexToGbnf, GroupsAlternationAndQuantifiers) {
  ExpectLanguage("(ab|c)+(?:d|)e?", {"ab", "c", "abcd", "cabde", "ce", "abe"}, {"", "d", "abd d", "e"});
  ExpectLanguage("(?<year>\\d{4})-(?<m>\\d{2})", {"2024-01"}, {"24-01", "2024-1"});
  ExpectLanguage("a{3}", {"aaa"}, {"aa", "aaaa"});
  ExpectLanguage("a{2,}", {"aa", "aaaaaaa"}, {"a", ""});
  ExpectLanguage("a{1,3}b{0}", {"a", "aa", "aaa"}, {"", "aaaa", "ab"});
  ExpectLanguage("a*?b+?c??d{1,2}?", {"bd", "aabbcdd"}, {"ad", "bccd"});  // lazy: the same language
  ExpectLanguage("|a", {"", "a"}, {"aa"});
  ExpectLanguage("", {""}, {"a"});
  ExpectLanguage("()", {""}, {"a"});
}

TEST(RegexToGbnf, RepeatedNullableBodiesAreNotLeftRecursive) {
  // X* with X able to match "" would be the left-recursive R ::= X R | ""; the converter repeats
  // X's non-empty part instead.
  ExpectLanguage("(a*)*", {"", "a", "aaaa"}, {"b"});
  ExpectLanguage("(a|)+b", {"b", "ab", "aaab"}, {"a", "bb"});
  ExpectLanguage("(a?b?)*c", {"c", "abc", "bac", "aabbbac"}, {"", "ca"});
  ExpectLanguage("((a*)(b*))+", {"", "ab", "ba", "aabba"}, {"c"});
  ExpectLanguage("(a*){2,3}x", {"x", "ax", "aaaaax"}, {"", "a"});
  ExpectLanguage("(|)*x", {"x"}, {"", "xx"});
}

TEST(RegexToGbnf, Anchors) {
  ExpectLanguage("^abc$", {"abc"}, {"xabc", "abcx"});
  ExpectLanguage("^a|b$", {"a", "b"}, {"ab", ""});
  ExpectLanguage("(^a|^b)(c$|d$)", {"ac", "bd"}, {"a", "cd"});
  ExpectLanguage("^$", {""}, {"a"});
  for (const char* p : {"a^b", "a$b", "(a$)b", "(^a)*", "a|b^c", "x(^a)"}) {
    const Status s = ErrorOf(p);
    EXPECT_EQ(s.code(), ErrorCode::kUnsupported) << p;
    EXPECT_NE(s.message().find("offset"), std::string::npos) << s.message();
  }
}

TEST(RegexToGbnf, SearchModeMatchesAnywhere) {
  RegexGbnfOptions search;
  search.anchoring = RegexAnchoring::kSearch;
  ExpectLanguage("b+c", {"bc", "abbcd", "xx\nbc\n"}, {"", "b c", "cb"}, search);
  ExpectLanguage("^ab", {"ab", "abzz"}, {"zab"}, search);
  ExpectLanguage("ab$", {"ab", "zzab"}, {"abz"}, search);
  ExpectLanguage("^ab$", {"ab"}, {"zab", "abz"}, search);
  ExpectLanguage("(^a|b)c", {"ac", "acz", "zbc", "bcz"}, {"zac", "c"}, search);
  ExpectLanguage("", {"", "anything"}, {}, search);
}

// ASCII patterns compared with std::regex (ECMAScript) on every string of length <= 5 over a
// small alphabet: whole-string matching against regex_match, search against regex_search.
TEST(RegexToGbnf, AgreesWithStdRegexOnAllShortStrings) {
  const std::vector<std::string> strings = AllStrings("ab1-\n", 5);
  const char* patterns[] = {
      "a*b",
      "(a|b)*a(a|b)",
      "[ab]{2,3}",
      "a?b?1?",
      "(ab|a)(b1|1)?",
      "\\d+-?\\w*",
      "[^a]*",
      "(a|b1|-)+",
      ".*1",
      "\\s",
      "\\S{2}",
      "(a*b*)*1",
      "(?:a{1,2}|b)-{0,1}",
      "a|b|1|-|",
      "((a|b)(1|-)){1,2}",
      "[\\w-]{3,}",
      "^(a|b)+$",
      "\\W*",
      "[a-b1]+?-",
  };
  for (const char* pattern : patterns) {
    const std::regex re(pattern, std::regex::ECMAScript);
    auto whole = Compile(pattern);
    RegexGbnfOptions search_opts;
    search_opts.anchoring = RegexAnchoring::kSearch;
    auto search = Compile(pattern, search_opts);
    ASSERT_TRUE(whole && search) << pattern;
    int mismatches = 0;
    for (const std::string& s : strings) {
      const bool want = std::regex_match(s, re), want_search = std::regex_search(s, re);
      if (Matches(whole, s) != want || Matches(search, s) != want_search) {
        ADD_FAILURE() << pattern << " on '" << s << "': regex_match " << want << ", regex_search " << want_search;
        if (++mismatches > 5) break;
      }
    }
  }
}

// Inside a JSON string the grammar matches the string's JSON text: the canonical escapes for
// '"', '\' and control characters, raw text for everything else.
TEST(RegexToGbnf, JsonStringContent) {
  RegexGbnfOptions json;
  json.output = RegexOutput::kJsonStringContent;
  auto encoded = [](const std::string& s) {
    const std::string quoted = nlohmann::json(s).dump();
    return quoted.substr(1, quoted.size() - 2);
  };
  struct Case {
    const char* pattern;
    std::vector<std::string> yes, no;
  } cases[] = {
      {R"(a"b\\c)", {"a\"b\\c"}, {"ab"}},
      {".+", {"x", "\"", "\\", "\t", "\x01", std::string(1, '\0') + "z", "é"}, {"", "\n", "\r"}},
      {R"([^a]{2})", {"\"\n", "\\\x1f", "\b\f"}, {"a\"", "\""}},
      {R"(\s+)", {" \t\n\r\v\f"}, {"a"}},
      {"[\\x00-\\x1f]", {std::string(1, '\0'), "\x1b", "\n", "\x1f"}, {" "}},
  };
  for (const Case& c : cases) {
    auto g = Compile(c.pattern, json);
    ASSERT_NE(g, nullptr);
    for (const std::string& s : c.yes) EXPECT_TRUE(Matches(g, encoded(s))) << c.pattern << " on " << encoded(s);
    for (const std::string& s : c.no) EXPECT_FALSE(Matches(g, encoded(s))) << c.pattern << " on " << encoded(s);
  }
  // Raw quotes, backslashes and control characters are never allowed: the text stays JSON.
  auto any = Compile("[^]*", json);
  EXPECT_FALSE(Matches(any, "\""));
  EXPECT_FALSE(Matches(any, "\\"));
  EXPECT_FALSE(Matches(any, "\n"));
  EXPECT_TRUE(Matches(any, "\\\"\\\\\\n\\u0001"));
  EXPECT_FALSE(Matches(any, "\\u0041"));  // only the canonical spelling
}

TEST(RegexToGbnf, UnsupportedConstructsNameThemselvesAndTheirOffset) {
  struct Case {
    const char* pattern;
    const char* message;
  } cases[] = {
      {"a(?=b)", "lookahead (?= at offset 1"},
      {"a(?!b)", "negative lookahead"},
      {"(?<=a)b", "lookbehind (?<= at offset 0"},
      {"(?<!a)b", "negative lookbehind"},
      {"(a)\\1", "backreference at offset 3"},
      {"\\bword", "word boundary \\b at offset 0"},
      {"a\\B", "word boundary \\B"},
      {"\\p{L}", "Unicode property class"},
      {"(?i)abc", "group modifier '(?i'"},
      {"\\k<x>", "named backreference"},
      {"[]", "matches nothing"},
      {"a{20000}", "above the limit of 10000"},
      {"\\ud800", "lone surrogate"},
      {"\\012", "octal escape"},
  };
  for (const Case& c : cases) {
    const Status s = ErrorOf(c.pattern);
    EXPECT_EQ(s.code(), ErrorCode::kUnsupported) << c.pattern << ": " << s.message();
    EXPECT_NE(s.message().find(c.message), std::string::npos) << c.pattern << ": " << s.message();
  }
}

TEST(RegexToGbnf, MalformedPatternsAreInvalidArguments) {
  struct Case {
    const char* pattern;
    const char* message;
  } cases[] = {
      {"(ab", "missing ')'"},
      {"ab)", "unmatched ')' at offset 2"},
      {"*a", "nothing to repeat"},
      {"a**", "nothing to repeat"},
      {"a{3,1}", "out of order"},
      {"[z-a]", "out of order"},
      {"[abc", "unterminated"},
      {"abc\\", "at the end"},
      {"\\xZZ", "hexadecimal"},
      {"\\q", "unknown escape \\q"},
      {"^*", "anchor cannot be quantified"},
      {"a\xff", "malformed UTF-8"},
      {"(?<name", "unterminated group name"},
  };
  for (const Case& c : cases) {
    const Status s = ErrorOf(c.pattern);
    EXPECT_EQ(s.code(), ErrorCode::kInvalidArgument) << c.pattern << ": " << s.message();
    EXPECT_NE(s.message().find(c.message), std::string::npos) << c.pattern << ": " << s.message();
  }
  std::string deep(200, '(');
  deep += std::string(200, ')');
  EXPECT_EQ(ErrorOf(deep).code(), ErrorCode::kInvalidArgument);
}

TEST(RegexToGbnf, RulesShareAGrammarUnderTheirOwnNames) {
  GbnfBuilder builder;
  auto a = AddRegexRules("[0-9]+", {}, "digits", &builder);
  auto b = AddRegexRules("[a-z]+", {}, "digits", &builder);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(*a, *b);
  auto text = builder.Build(*a + " \"=\" " + *b);
  ASSERT_TRUE(text.ok());
  auto g = Grammar::Parse(*text);
  ASSERT_TRUE(g.ok()) << *text << g.status().message();
  EXPECT_TRUE(Matches(*g, "42=abc"));
  EXPECT_FALSE(Matches(*g, "abc=42"));
}

}  // namespace
}  // namespace fastgen::constrained
