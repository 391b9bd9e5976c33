// String helpers with JavaScript semantics over UTF-8 storage.
//
// Chat templates must render byte-for-byte as @huggingface/jinja (the JS engine transformers.js
// uses) renders them, so string operations follow ECMAScript rather than Python: `trim` strips the
// ECMAScript WhiteSpace/LineTerminator set, `length` and `s[i]` count UTF-16 code units, slices
// work on code points (the reference goes through Array.from), numbers print as Number#toString.
// Strings stay UTF-8 in fastgen; invalid bytes decode leniently to U+FFFD so nothing here fails.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace fastgen::jinja {

// Decodes one code point at `*pos` and advances it; invalid or truncated sequences yield U+FFFD
// and advance by one byte.
char32_t DecodeUtf8(std::string_view s, size_t* pos);
void AppendUtf8(char32_t cp, std::string* out);
std::vector<char32_t> ToCodePoints(std::string_view s);
std::string FromCodePoints(const std::vector<char32_t>& cps, size_t begin, size_t end);

// ECMAScript WhiteSpace + LineTerminator (what `\s`, String#trim and the reference lexer use).
bool IsJsWhitespace(char32_t cp);
std::string_view JsTrimStart(std::string_view s);
std::string_view JsTrimEnd(std::string_view s);
std::string_view JsTrim(std::string_view s);

// Number of UTF-16 code units (String#length).
int64_t Utf16Length(std::string_view s);
// String#at(index) on UTF-16 code units, negative indices from the end. A lone surrogate (half
// of an astral character) comes back as U+FFFD. Returns false when out of range.
bool JsCharAt(std::string_view s, int64_t index, std::string* out);

// String#toUpperCase / toLowerCase through utf8proc's simple case mappings (plus the one
// expanding mapping templates plausibly meet: U+00DF -> "SS").
std::string JsToUpper(std::string_view s);
std::string JsToLower(std::string_view s);
// The reference's title(): /\b\w/g uppercased, where \w is ASCII-only.
std::string JsTitle(std::string_view s);
// The reference's capitalize(): the first UTF-16 unit uppercased, the rest unchanged.
std::string JsCapitalize(std::string_view s);

// Number#toString for a finite or non-finite double ("1e+21", "0.1", "NaN", "-Infinity").
std::string JsNumberToString(double d);
// JS `ToNumber` of a string (used by loose equality): NaN when it does not parse.
double JsStringToNumber(std::string_view s);
// parseInt(s, 10) / parseFloat(s): a numeric prefix after leading whitespace; false when none.
bool JsParseInt(std::string_view s, double* out);
bool JsParseFloat(std::string_view s, double* out);

// JSON.stringify of a string: quotes, escapes `"` `\` and control characters, keeps the rest.
void AppendJsonString(std::string_view s, std::string* out);
// Escapes every UTF-16 code unit >= 0x7f as \uXXXX (the reference's ensure_ascii).
std::string JsonEnsureAscii(std::string_view json);

}  // namespace fastgen::jinja
