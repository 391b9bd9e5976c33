// Jinja lexer with the whitespace rules of transformers' chat templates.
//
// transformers (and @huggingface/jinja) configure Jinja with trim_blocks=True and
// lstrip_blocks=True: the first newline after a `%}` / `#}` is dropped, and spaces/tabs before a
// `{%` / `{#` at the start of a line are dropped. Like the reference, these rules (plus dropping
// one trailing newline of the template and the transformers-only `{% generation %}` tag) are
// applied as a text pass before tokenizing; `{%-`, `-%}`, `{{-`, `-}}`, `{#-`, `-#}` then trim
// whitespace (JS `\s`) next to tags while tokenizing. The pass keeps a map back to the original
// offsets so syntax errors point at the template the user wrote.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace fastgen::jinja {

enum class TokenType {
  kText,
  kNumber,      // value holds the literal, with a leading '-' or '+' when the lexer folded a sign
  kString,      // value holds the unescaped contents
  kIdentifier,  // names and keywords alike (if, for, in, not, and, ...)
  kEquals,
  kOpenParen,
  kCloseParen,
  kOpenStatement,   // {%
  kCloseStatement,  // %}
  kOpenExpression,  // {{
  kCloseExpression, // }}
  kOpenSquare,
  kCloseSquare,
  kOpenCurly,
  kCloseCurly,
  kComma,
  kDot,
  kColon,
  kPipe,
  kAdditive,        // + - ~
  kMultiplicative,  // * / // %
  kPower,           // **
  kComparison,      // < > <= >= == !=
  kUnary,           // a + or - that starts an operand
  kComment,
};

struct Token {
  TokenType type;
  std::string value;
  uint32_t offset = 0;  // offset in the original template source
};

struct Tokens {
  std::vector<Token> tokens;
  uint32_t end_offset = 0;  // original offset of the end of input, for "unexpected end" errors
};

// Tokenizes `source`; errors name the line and column.
Expected<Tokens> Tokenize(std::string_view source);

// "line L, column C" of a byte offset in `source` (1-based; columns count bytes).
std::string DescribeOffset(std::string_view source, uint32_t offset);

}  // namespace fastgen::jinja
