// Regular expressions (the ECMAScript dialect JSON Schema's `pattern` and OpenAI's tools use) as
// GBNF, for constrained decoding.
//
// Supported: literals and escapes (\t \n \r \v \f \0 \xHH \uHHHH \u{H..} \cX, and \ before any
// punctuation), the classes \d \w \s \D \W \S and `.` (any character but a line terminator:
// \n \r U+2028 U+2029), bracket classes with ranges, negation and the escapes above ([^] is any
// character), groups ( ) (?: ) (?<name> ), alternation |, quantifiers * + ? {m} {m,} {m,n}, each
// optionally lazy (a trailing ?, which changes which match a regex engine reports but not the set
// of strings matched, so it is the same grammar), and the anchors ^ and $ where they can only
// mean the start and end of the string (leading / trailing a top-level alternative, possibly
// inside groups). A `{` that does not start a quantifier is a literal, as in web browsers.
//
// Refused with kUnsupported, naming the construct and its byte offset: lookahead and lookbehind,
// backreferences, \b \B word boundaries, \p{..} property classes, inline flags like (?i), and
// anchors elsewhere. Malformed patterns (unbalanced parentheses, a quantifier with nothing to
// repeat, {3,1}, a backwards range) are kInvalidArgument.
//
// The grammar matches code points, as JavaScript with the `u` flag does; counts in {m,n} count
// code points. Repetition counts above RegexGbnfOptions::max_repetition are refused: GBNF spells
// x{m,n} as n copies of x.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"
#include "decoding/constrained/gbnf_builder.h"

namespace fastgen::constrained {

// Which strings a pattern describes.
enum class RegexAnchoring {
  kWholeString,  // the pattern matches the whole string, as if written ^(...)$
  kSearch,       // the pattern matches somewhere in the string (JSON Schema's reading of
                 // `pattern`): unanchored ends may be preceded or followed by anything
};

// What the grammar's text is.
enum class RegexOutput {
  kRawText,            // the string itself
  kJsonStringContent,  // the string as written between the quotes of a JSON string: `"` and
                       // `\` and control characters escaped (the canonical spelling only)
};

struct RegexGbnfOptions {
  RegexAnchoring anchoring = RegexAnchoring::kWholeString;
  RegexOutput output = RegexOutput::kRawText;
  int64_t max_repetition = 10000;  // largest m or n in x{m,n}
};

// Adds the rules for `pattern` to `builder` (names derived from `name_hint`) and returns one GBNF
// atom matching the pattern's language.
Expected<std::string> AddRegexRules(std::string_view pattern, const RegexGbnfOptions& opts, std::string_view name_hint,
                                    GbnfBuilder* builder);

// A whole grammar whose `root` matches the pattern's language.
Expected<std::string> RegexToGbnf(std::string_view pattern, const RegexGbnfOptions& opts = {});

}  // namespace fastgen::constrained
