// Parser from tokens to the syntax tree, following @huggingface/jinja's grammar and operator
// precedence (which differs from Python Jinja in a few corners, e.g. filters bind looser than a
// unary minus) so that templates parse as they do in the reference.
#pragma once

#include <string_view>
#include <vector>

#include "core/status.h"
#include "tokenizer/jinja/ast.h"
#include "tokenizer/jinja/lexer.h"

namespace fastgen::jinja {

// Deepest statement/bracket nesting and tallest expression tree accepted; both keep parsing and
// evaluation recursion far from the stack limit (also under sanitizers).
inline constexpr int kMaxNesting = 100;
inline constexpr int kMaxNodeHeight = 400;

// Parses the template `source` (used for error locations) from its tokens into a statement list.
Expected<std::vector<NodePtr>> Parse(std::string_view source, const Tokens& tokens);

}  // namespace fastgen::jinja
