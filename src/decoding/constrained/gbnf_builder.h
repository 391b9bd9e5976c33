// Writing GBNF text (grammar.h's notation) from code: unique rule names, escaped literals and
// character classes, repetition, and the JSON-string encoding of character sets. Shared by the
// JSON Schema and regular-expression converters, which build one grammar together when a schema's
// string has a `pattern`.
//
// Names. Grammar::Parse names the helper rules it makes for groups and repetitions
// "<rule>-<N>", and refuses a rule defined under a name it already gave a helper. A name made here
// therefore never ends in "-<digits>": "item-1" becomes "item1", and a second "item" is "item-v2".
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"

namespace fastgen::constrained {

inline constexpr uint32_t kMaxCodepoint = 0x10FFFF;

// A set of code points as inclusive ranges; the functions below return them sorted, disjoint and
// with adjacent ranges merged.
using CodepointRanges = std::vector<std::pair<uint32_t, uint32_t>>;

CodepointRanges NormalizeRanges(CodepointRanges ranges);
CodepointRanges ComplementRanges(const CodepointRanges& set);  // within [0, kMaxCodepoint]
CodepointRanges IntersectRanges(const CodepointRanges& a, const CodepointRanges& b);
bool RangesContain(const CodepointRanges& set, uint32_t cp);
uint64_t RangesSize(const CodepointRanges& set);  // number of code points

// Decodes UTF-8, refusing malformed sequences, overlong forms and surrogates; errors name the
// byte offset.
Expected<std::u32string> DecodeUtf8(std::string_view text);
void AppendUtf8(uint32_t cp, std::string* out);

class GbnfBuilder {
 public:
  // A fresh rule name derived from `hint`, to be given a body with Define().
  std::string Reserve(std::string_view hint);
  void Define(const std::string& name, std::string body);
  // Reserve + Define.
  std::string Add(std::string_view hint, std::string body);
  // A rule made once per `key` (shared pieces such as `string` or `space`), named after the key
  // when that name is free. `make` runs after the name is reserved, so it may refer to this rule
  // (recursion) or ask for other shared rules.
  std::string Shared(const std::string& key, const std::function<std::string()>& make);

  // Bytes of grammar text so far, for the converters' size limits.
  size_t bytes() const { return bytes_; }

  // "root ::= root_body", then every other rule in the order it was reserved. The name "root" is
  // never handed out by Reserve, so the caller's rules cannot take it.
  Expected<std::string> Build(std::string_view root_body) const;

  // --- text pieces (valid GBNF atoms unless noted) ---
  // A quoted literal of UTF-8 text (must be valid UTF-8): `"`, `\` and control characters
  // escaped, other characters written as they are.
  static std::string Literal(std::string_view utf8);
  static std::string LiteralCodepoints(std::u32string_view cps);
  // A bracket class matching exactly `set` (non-empty): [...] or, when shorter, [^...].
  static std::string Class(const CodepointRanges& set);
  // `item` repeated min..max times (max < 0: unbounded): item*, item+, item?, item{m,n}; an item
  // that is not one atom is parenthesized. A body, not always an atom ("" when max == 0).
  static std::string Repeat(std::string_view item, int64_t min, int64_t max);
  // `(body)` unless body is already one atom.
  static std::string Group(std::string_view body);
  // True when `text` is one GBNF atom: a name, a literal, a class, `.` or a parenthesized group.
  static bool IsAtom(std::string_view text);
  // [a-zA-Z0-9-]+ from any text, never ending in "-<digits>".
  static std::string SanitizeName(std::string_view hint);

 private:
  std::vector<std::pair<std::string, std::string>> rules_;  // (name, body), in reservation order
  std::map<std::string, size_t> index_;                     // name -> position in rules_
  std::map<std::string, std::string> shared_;               // key -> name
  size_t bytes_ = 0;
};

// How the JSON-string converters spell characters: the canonical JSON encoding of one code point
// (itself, or \" \\ \b \f \n \r \t, or \u00XX for the other control characters).
std::string JsonEncodeCodepoint(uint32_t cp);
// A GBNF expression matching the JSON string text of any one character of `set` (non-empty),
// written the canonical way: raw where JSON allows it, escaped where it must be. Other spellings
// (\u0041 for "A", \/ for "/") are not produced; a JSON string still decodes to the same values.
std::string JsonCharsExpr(const CodepointRanges& set);

// Decimal numbers, for JSON Schema's bounds.
// Canonical decimal integers (no leading zeros) in [lo, hi], 0 <= lo <= hi: an alternation of
// digit-by-digit ranges, e.g. [0, 255] is [0-9] | [1-9] [0-9] | "1" [0-9] [0-9] | "2" ([0-4] [0-9] | "5" [0-5]).
std::string UnsignedRangeGbnf(uint64_t lo, uint64_t hi);
// Integers in [lo, hi] (lo <= hi), negative ones with "-"; "-0" is not written.
std::string IntegerRangeGbnf(int64_t lo, int64_t hi);
// Non-negative decimal numbers m written without sign or exponent ("12", "12.50"), between two
// integers, either bound exclusive, with 1..max_fraction_digits digits after a point.
struct DecimalRange {
  uint64_t lo = 0;
  bool lo_exclusive = false;
  uint64_t hi = 0;
  bool hi_exclusive = false;
  int max_fraction_digits = 16;
};
std::string DecimalRangeGbnf(const DecimalRange& range);  // "" when no number is in range

}  // namespace fastgen::constrained
