// Syntax tree of a parsed template.
//
// One node struct with a kind tag rather than a class per construct: the evaluator switches on
// the kind, and the handful of fields below cover every construct of the subset. Which fields a
// kind uses is listed next to it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tokenizer/jinja/value.h"

namespace fastgen::jinja {

enum class NodeKind {
  // Statements
  kText,         // text: literal output
  kOutput,       // a: expression printed by {{ }}
  kComment,      // nothing
  kIf,           // a: condition; body; else_body (an elif is a nested kIf in else_body)
  kFor,          // a: iterable, b: loop target (identifier or tuple), c: `if` filter; body, else_body
  kSet,          // a: target (identifier, tuple or member); b: value, or body for a block set
  kMacro,        // text: name; params; body
  kCallBlock,    // a: the call expression; params: caller's parameters; body
  kFilterBlock,  // a: filter (identifier or call); body
  kBreak,
  kContinue,
  // Expressions
  kLiteral,     // literal
  kIdentifier,  // text
  kList,        // items
  kTuple,       // items
  kDictLiteral, // items: key0, value0, key1, value1, ...
  kMember,      // a: object; computed: b is the key expression; else text (name or digits)
  kSlice,       // a: object; b, c, d: start, stop, step (each may be null)
  kCall,        // a: callee; items: positional; kwargs
  kUnary,       // text: "not", "-", "+"; a
  kBinary,      // text: operator; a, b
  kFilter,      // a: operand; text: filter name; has_args: items + kwargs were given
  kTest,        // a: operand; text: test name; negate; items: test arguments (extension)
  kTernary,     // a: condition, b: value if true, c: value if false
  kSelect,      // a: value, b: condition (`x if c` without else: undefined when false)
};

struct Node;
using NodePtr = std::unique_ptr<Node>;

struct Param {
  std::string name;
  NodePtr default_value;  // may be null
};

struct Node {
  NodeKind kind;
  uint32_t offset = 0;  // offset in the template source, for error messages
  std::string text;
  Value literal;
  NodePtr a, b, c, d;
  std::vector<NodePtr> items;
  std::vector<std::pair<std::string, NodePtr>> kwargs;
  std::vector<NodePtr> body, else_body;
  std::vector<Param> params;
  bool computed = false;
  bool negate = false;
  bool has_args = false;
  int height = 1;  // longest path to a leaf; the parser caps it so no walk recurses too deep

  Node(NodeKind k, uint32_t off) : kind(k), offset(off) {}
};

}  // namespace fastgen::jinja
