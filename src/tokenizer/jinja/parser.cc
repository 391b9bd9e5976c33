#include "tokenizer/jinja/parser.h"

#include <algorithm>
#include <cstdlib>
#include <initializer_list>
#include <string>
#include <utility>

namespace fastgen::jinja {
namespace {

class Parser {
 public:
  Parser(std::string_view source, const Tokens& tokens)
      : source_(source), tokens_(tokens.tokens), end_offset_(tokens.end_offset) {}

  Expected<std::vector<NodePtr>> Run() {
    std::vector<NodePtr> program;
    while (pos_ < tokens_.size()) {
      FG_ASSIGN_OR_RETURN(NodePtr node, ParseAny());
      program.push_back(std::move(node));
    }
    return program;
  }

 private:
  // ---- token helpers ----
  const Token* Peek(size_t ahead = 0) const {
    return pos_ + ahead < tokens_.size() ? &tokens_[pos_ + ahead] : nullptr;
  }
  bool Is(TokenType t, size_t ahead = 0) const {
    const Token* tok = Peek(ahead);
    return tok && tok->type == t;
  }
  bool IsIdentifier(std::string_view name, size_t ahead = 0) const {
    const Token* tok = Peek(ahead);
    return tok && tok->type == TokenType::kIdentifier && tok->value == name;
  }
  bool IsStatement(std::initializer_list<std::string_view> names) const {
    if (!Is(TokenType::kOpenStatement) || !Is(TokenType::kIdentifier, 1)) return false;
    return std::find(names.begin(), names.end(), Peek(1)->value) != names.end();
  }
  uint32_t Offset() const { return pos_ < tokens_.size() ? tokens_[pos_].offset : end_offset_; }
  Status Error(const std::string& what) const { return ErrorAt(Offset(), what); }
  Status ErrorAt(uint32_t offset, const std::string& what) const {
    return CorruptFile("template syntax error at " + DescribeOffset(source_, offset) + ": " + what);
  }
  Expected<const Token*> Expect(TokenType t, const char* what) {
    if (!Is(t)) return Error(std::string("expected ") + what);
    return &tokens_[pos_++];
  }
  Status ExpectKeyword(std::string_view name) {
    if (!IsIdentifier(name)) return Error("expected '" + std::string(name) + "'");
    ++pos_;
    return Status::Ok();
  }
  Status ExpectEndTag(std::string_view name) {
    if (!IsStatement({name})) return Error("expected {% " + std::string(name) + " %}");
    pos_ += 2;
    return Expect(TokenType::kCloseStatement, "'%}'").status();
  }

  // Recursion guard: statement nesting and bracket nesting both go through here.
  struct NestingGuard {
    explicit NestingGuard(int* depth) : depth_(depth) { ++*depth_; }
    ~NestingGuard() { --*depth_; }
    int* depth_;
  };
  Status CheckNesting() const {
    return nesting_ > kMaxNesting ? Error("template nested too deeply") : Status::Ok();
  }

  NodePtr Make(NodeKind kind, uint32_t offset) const { return std::make_unique<Node>(kind, offset); }

  // Sets the node's height from its children and rejects trees too tall to walk recursively.
  Expected<NodePtr> Finish(NodePtr node) const {
    int h = 0;
    const auto see = [&h](const NodePtr& n) {
      if (n) h = std::max(h, n->height);
    };
    see(node->a), see(node->b), see(node->c), see(node->d);
    for (const auto& n : node->items) see(n);
    for (const auto& [k, n] : node->kwargs) see(n);
    for (const auto& n : node->body) see(n);
    for (const auto& n : node->else_body) see(n);
    for (const auto& p : node->params) see(p.default_value);
    node->height = h + 1;
    if (node->height > kMaxNodeHeight) return ErrorAt(node->offset, "expression nested too deeply");
    return node;
  }

  // ---- statements ----
  Expected<NodePtr> ParseAny() {
    const Token& tok = tokens_[pos_];
    switch (tok.type) {
      case TokenType::kComment: {
        ++pos_;
        return Make(NodeKind::kComment, tok.offset);
      }
      case TokenType::kText: {
        NodePtr node = Make(NodeKind::kText, tok.offset);
        node->text = tok.value;
        ++pos_;
        return node;
      }
      case TokenType::kOpenStatement: return ParseStatement();
      case TokenType::kOpenExpression: {
        ++pos_;
        NodePtr node = Make(NodeKind::kOutput, tok.offset);
        FG_ASSIGN_OR_RETURN(node->a, ParseExpression());
        FG_RETURN_IF_ERROR(Expect(TokenType::kCloseExpression, "'}}'").status());
        return Finish(std::move(node));
      }
      default: return Error("unexpected '" + tok.value + "'");
    }
  }

  // Parses statements until one of `names` opens a tag (not consumed).
  Status ParseBody(std::initializer_list<std::string_view> names, std::vector<NodePtr>* out) {
    while (!IsStatement(names)) {
      if (pos_ >= tokens_.size()) {
        return Error("unexpected end of template, expected {% " + std::string(*names.begin()) + " %}");
      }
      FG_ASSIGN_OR_RETURN(NodePtr node, ParseAny());
      out->push_back(std::move(node));
    }
    return Status::Ok();
  }

  Expected<NodePtr> ParseStatement() {
    NestingGuard guard(&nesting_);
    FG_RETURN_IF_ERROR(CheckNesting());
    const uint32_t offset = Offset();
    ++pos_;  // {%
    if (!Is(TokenType::kIdentifier)) return Error("expected a statement name");
    const std::string name = tokens_[pos_++].value;
    if (name == "set") return ParseSet(offset);
    if (name == "if") {
      FG_ASSIGN_OR_RETURN(NodePtr node, ParseIf(offset));
      FG_RETURN_IF_ERROR(ExpectEndTag("endif"));
      return node;
    }
    if (name == "for") return ParseFor(offset);
    if (name == "macro") return ParseMacro(offset);
    if (name == "call") return ParseCallBlock(offset);
    if (name == "filter") return ParseFilterBlock(offset);
    if (name == "break" || name == "continue") {
      FG_RETURN_IF_ERROR(Expect(TokenType::kCloseStatement, "'%}'").status());
      return Make(name == "break" ? NodeKind::kBreak : NodeKind::kContinue, offset);
    }
    return ErrorAt(offset, "unknown statement '" + name + "'");
  }

  Expected<NodePtr> ParseSet(uint32_t offset) {
    NodePtr node = Make(NodeKind::kSet, offset);
    FG_ASSIGN_OR_RETURN(node->a, ParseExpressionSequence(false));
    if (Is(TokenType::kEquals)) {
      ++pos_;
      FG_ASSIGN_OR_RETURN(node->b, ParseExpressionSequence(false));
    } else {
      FG_RETURN_IF_ERROR(Expect(TokenType::kCloseStatement, "'%}' or '='").status());
      FG_RETURN_IF_ERROR(ParseBody({"endset"}, &node->body));
      pos_ += 2;
    }
    FG_RETURN_IF_ERROR(Expect(TokenType::kCloseStatement, "'%}'").status());
    return Finish(std::move(node));
  }

  // Parses `cond %} body [elif ...|else ...]`, leaving the closing {% endif %} to the caller.
  Expected<NodePtr> ParseIf(uint32_t offset) {
    NestingGuard guard(&nesting_);
    FG_RETURN_IF_ERROR(CheckNesting());
    NodePtr node = Make(NodeKind::kIf, offset);
    FG_ASSIGN_OR_RETURN(node->a, ParseExpression());
    FG_RETURN_IF_ERROR(Expect(TokenType::kCloseStatement, "'%}'").status());
    FG_RETURN_IF_ERROR(ParseBody({"elif", "else", "endif"}, &node->body));
    if (IsStatement({"elif"})) {
      const uint32_t elif_offset = Offset();
      pos_ += 2;
      FG_ASSIGN_OR_RETURN(NodePtr elif, ParseIf(elif_offset));
      node->else_body.push_back(std::move(elif));
    } else if (IsStatement({"else"})) {
      pos_ += 2;
      FG_RETURN_IF_ERROR(Expect(TokenType::kCloseStatement, "'%}'").status());
      FG_RETURN_IF_ERROR(ParseBody({"endif"}, &node->else_body));
    }
    return Finish(std::move(node));
  }

  Expected<NodePtr> ParseFor(uint32_t offset) {
    NodePtr node = Make(NodeKind::kFor, offset);
    FG_ASSIGN_OR_RETURN(node->b, ParseExpressionSequence(true));
    if (node->b->kind != NodeKind::kIdentifier && node->b->kind != NodeKind::kTuple) {
      return ErrorAt(node->b->offset, "expected a loop variable or tuple");
    }
    FG_RETURN_IF_ERROR(ExpectKeyword("in"));
    FG_ASSIGN_OR_RETURN(NodePtr iterable, ParseExpression());
    if (iterable->kind == NodeKind::kSelect) {  // `for x in xs if cond`
      node->a = std::move(iterable->a);
      node->c = std::move(iterable->b);
    } else {
      node->a = std::move(iterable);
    }
    FG_RETURN_IF_ERROR(Expect(TokenType::kCloseStatement, "'%}'").status());
    FG_RETURN_IF_ERROR(ParseBody({"endfor", "else"}, &node->body));
    if (IsStatement({"else"})) {
      pos_ += 2;
      FG_RETURN_IF_ERROR(Expect(TokenType::kCloseStatement, "'%}'").status());
      FG_RETURN_IF_ERROR(ParseBody({"endfor"}, &node->else_body));
    }
    FG_RETURN_IF_ERROR(ExpectEndTag("endfor"));
    return Finish(std::move(node));
  }

  Expected<NodePtr> ParseMacro(uint32_t offset) {
    NodePtr node = Make(NodeKind::kMacro, offset);
    if (!Is(TokenType::kIdentifier)) return Error("expected a macro name");
    node->text = tokens_[pos_++].value;
    FG_RETURN_IF_ERROR(ParseParams(&node->params));
    FG_RETURN_IF_ERROR(Expect(TokenType::kCloseStatement, "'%}'").status());
    FG_RETURN_IF_ERROR(ParseBody({"endmacro"}, &node->body));
    FG_RETURN_IF_ERROR(ExpectEndTag("endmacro"));
    return Finish(std::move(node));
  }

  Expected<NodePtr> ParseCallBlock(uint32_t offset) {
    NodePtr node = Make(NodeKind::kCallBlock, offset);
    if (Is(TokenType::kOpenParen)) FG_RETURN_IF_ERROR(ParseParams(&node->params));
    if (!Is(TokenType::kIdentifier)) return Error("expected a macro name after 'call'");
    NodePtr callee = Make(NodeKind::kIdentifier, Offset());
    callee->text = tokens_[pos_++].value;
    NodePtr call = Make(NodeKind::kCall, callee->offset);
    call->a = std::move(callee);
    FG_RETURN_IF_ERROR(ParseCallArgs(call.get()));
    FG_ASSIGN_OR_RETURN(node->a, Finish(std::move(call)));
    FG_RETURN_IF_ERROR(Expect(TokenType::kCloseStatement, "'%}'").status());
    FG_RETURN_IF_ERROR(ParseBody({"endcall"}, &node->body));
    FG_RETURN_IF_ERROR(ExpectEndTag("endcall"));
    return Finish(std::move(node));
  }

  Expected<NodePtr> ParseFilterBlock(uint32_t offset) {
    NodePtr node = Make(NodeKind::kFilterBlock, offset);
    if (!Is(TokenType::kIdentifier)) return Error("expected a filter name");
    NodePtr filter = Make(NodeKind::kFilter, Offset());
    filter->text = tokens_[pos_++].value;
    if (Is(TokenType::kOpenParen)) {
      filter->has_args = true;
      FG_RETURN_IF_ERROR(ParseCallArgs(filter.get()));
    }
    FG_ASSIGN_OR_RETURN(node->a, Finish(std::move(filter)));
    FG_RETURN_IF_ERROR(Expect(TokenType::kCloseStatement, "'%}'").status());
    FG_RETURN_IF_ERROR(ParseBody({"endfilter"}, &node->body));
    FG_RETURN_IF_ERROR(ExpectEndTag("endfilter"));
    return Finish(std::move(node));
  }

  // ---- argument lists ----
  // `(a, b=default)` of a macro or call block.
  Status ParseParams(std::vector<Param>* params) {
    FG_RETURN_IF_ERROR(Expect(TokenType::kOpenParen, "'('").status());
    bool saw_default = false;
    while (!Is(TokenType::kCloseParen)) {
      if (!Is(TokenType::kIdentifier)) return Error("expected a parameter name");
      Param p;
      p.name = tokens_[pos_++].value;
      for (const Param& other : *params) {
        if (other.name == p.name) return Error("duplicate parameter '" + p.name + "'");
      }
      if (Is(TokenType::kEquals)) {
        ++pos_;
        FG_ASSIGN_OR_RETURN(p.default_value, ParseExpression());
        saw_default = true;
      } else if (saw_default) {
        return Error("non-default parameter follows default parameter");
      }
      params->push_back(std::move(p));
      if (Is(TokenType::kComma)) ++pos_;
    }
    ++pos_;
    return Status::Ok();
  }

  // `(x, y, key=value)` of a call or filter, into node->items / node->kwargs.
  Status ParseCallArgs(Node* node) {
    NestingGuard guard(&nesting_);
    FG_RETURN_IF_ERROR(CheckNesting());
    FG_RETURN_IF_ERROR(Expect(TokenType::kOpenParen, "'('").status());
    while (!Is(TokenType::kCloseParen)) {
      if (pos_ >= tokens_.size()) return Error("unexpected end of template in argument list");
      if (Is(TokenType::kPower) || (Is(TokenType::kMultiplicative) && Peek()->value == "*")) {
        return Error("argument unpacking (* / **) is not supported");
      }
      if (Is(TokenType::kIdentifier) && Is(TokenType::kEquals, 1)) {
        std::string key = tokens_[pos_].value;
        pos_ += 2;
        FG_ASSIGN_OR_RETURN(NodePtr value, ParseExpression());
        for (const auto& [k, v] : node->kwargs) {
          if (k == key) return Error("keyword argument '" + key + "' repeated");
        }
        node->kwargs.emplace_back(std::move(key), std::move(value));
      } else {
        FG_ASSIGN_OR_RETURN(NodePtr value, ParseExpression());
        if (Is(TokenType::kEquals)) return Error("expected an identifier before '='");
        if (!node->kwargs.empty()) return Error("positional argument follows keyword argument");
        node->items.push_back(std::move(value));
      }
      if (Is(TokenType::kComma)) ++pos_;
    }
    ++pos_;
    return Status::Ok();
  }

  // ---- expressions, lowest precedence first ----
  Expected<NodePtr> ParseExpression() {
    NestingGuard guard(&nesting_);
    FG_RETURN_IF_ERROR(CheckNesting());
    FG_ASSIGN_OR_RETURN(NodePtr value, ParseOr());
    if (!IsIdentifier("if")) return value;
    const uint32_t offset = Offset();
    ++pos_;
    FG_ASSIGN_OR_RETURN(NodePtr cond, ParseOr());
    if (IsIdentifier("else")) {
      ++pos_;
      NodePtr node = Make(NodeKind::kTernary, offset);
      node->a = std::move(cond);
      node->b = std::move(value);
      FG_ASSIGN_OR_RETURN(node->c, ParseExpression());
      return Finish(std::move(node));
    }
    NodePtr node = Make(NodeKind::kSelect, offset);
    node->a = std::move(value);
    node->b = std::move(cond);
    return Finish(std::move(node));
  }

  // `a, b, c` as a tuple (loop targets, set targets/values, parenthesized tuples).
  Expected<NodePtr> ParseExpressionSequence(bool primary) {
    const uint32_t offset = Offset();
    auto parse_one = [&]() { return primary ? ParsePrimary() : ParseExpression(); };
    FG_ASSIGN_OR_RETURN(NodePtr first, parse_one());
    if (!Is(TokenType::kComma)) return first;
    NodePtr tuple = Make(NodeKind::kTuple, offset);
    tuple->items.push_back(std::move(first));
    while (Is(TokenType::kComma)) {
      ++pos_;
      FG_ASSIGN_OR_RETURN(NodePtr next, parse_one());
      tuple->items.push_back(std::move(next));
    }
    return Finish(std::move(tuple));
  }

  Expected<NodePtr> Binary(std::string op, NodePtr left, NodePtr right, uint32_t offset) {
    NodePtr node = Make(NodeKind::kBinary, offset);
    node->text = std::move(op);
    node->a = std::move(left);
    node->b = std::move(right);
    return Finish(std::move(node));
  }

  Expected<NodePtr> ParseOr() {
    FG_ASSIGN_OR_RETURN(NodePtr left, ParseAnd());
    while (IsIdentifier("or")) {
      const uint32_t offset = Offset();
      ++pos_;
      FG_ASSIGN_OR_RETURN(NodePtr right, ParseAnd());
      FG_ASSIGN_OR_RETURN(left, Binary("or", std::move(left), std::move(right), offset));
    }
    return left;
  }

  Expected<NodePtr> ParseAnd() {
    FG_ASSIGN_OR_RETURN(NodePtr left, ParseNot());
    while (IsIdentifier("and")) {
      const uint32_t offset = Offset();
      ++pos_;
      FG_ASSIGN_OR_RETURN(NodePtr right, ParseNot());
      FG_ASSIGN_OR_RETURN(left, Binary("and", std::move(left), std::move(right), offset));
    }
    return left;
  }

  Expected<NodePtr> ParseNot() {
    if (!IsIdentifier("not")) return ParseComparison();
    NestingGuard guard(&nesting_);
    FG_RETURN_IF_ERROR(CheckNesting());
    NodePtr node = Make(NodeKind::kUnary, Offset());
    node->text = "not";
    ++pos_;
    FG_ASSIGN_OR_RETURN(node->a, ParseNot());
    return Finish(std::move(node));
  }

  Expected<NodePtr> ParseComparison() {
    FG_ASSIGN_OR_RETURN(NodePtr left, ParseAdditive());
    while (true) {
      const uint32_t offset = Offset();
      std::string op;
      if (IsIdentifier("not") && IsIdentifier("in", 1)) {
        op = "not in";
        pos_ += 2;
      } else if (IsIdentifier("in") || Is(TokenType::kComparison)) {
        op = tokens_[pos_++].value;
      } else {
        break;
      }
      FG_ASSIGN_OR_RETURN(NodePtr right, ParseAdditive());
      FG_ASSIGN_OR_RETURN(left, Binary(op, std::move(left), std::move(right), offset));
    }
    return left;
  }

  Expected<NodePtr> ParseAdditive() {
    FG_ASSIGN_OR_RETURN(NodePtr left, ParseMultiplicative());
    while (Is(TokenType::kAdditive)) {
      const uint32_t offset = Offset();
      std::string op = tokens_[pos_++].value;
      FG_ASSIGN_OR_RETURN(NodePtr right, ParseMultiplicative());
      FG_ASSIGN_OR_RETURN(left, Binary(op, std::move(left), std::move(right), offset));
    }
    return left;
  }

  Expected<NodePtr> ParseMultiplicative() {
    FG_ASSIGN_OR_RETURN(NodePtr left, ParsePower());
    while (Is(TokenType::kMultiplicative)) {
      const uint32_t offset = Offset();
      std::string op = tokens_[pos_++].value;
      FG_ASSIGN_OR_RETURN(NodePtr right, ParsePower());
      FG_ASSIGN_OR_RETURN(left, Binary(op, std::move(left), std::move(right), offset));
    }
    return left;
  }

  Expected<NodePtr> ParsePower() {  // left-associative, as in Jinja
    FG_ASSIGN_OR_RETURN(NodePtr left, ParseTest());
    while (Is(TokenType::kPower)) {
      const uint32_t offset = Offset();
      ++pos_;
      FG_ASSIGN_OR_RETURN(NodePtr right, ParseTest());
      FG_ASSIGN_OR_RETURN(left, Binary("**", std::move(left), std::move(right), offset));
    }
    return left;
  }

  Expected<NodePtr> ParseTest() {
    FG_ASSIGN_OR_RETURN(NodePtr operand, ParseFilter());
    while (IsIdentifier("is")) {
      NodePtr node = Make(NodeKind::kTest, Offset());
      ++pos_;
      if (IsIdentifier("not")) {
        node->negate = true;
        ++pos_;
      }
      if (!Is(TokenType::kIdentifier)) return Error("expected a test name after 'is'");
      node->text = tokens_[pos_++].value;
      // Extension over the reference: tests with arguments, `x is divisibleby(3)`.
      if (Is(TokenType::kOpenParen)) FG_RETURN_IF_ERROR(ParseCallArgs(node.get()));
      node->a = std::move(operand);
      FG_ASSIGN_OR_RETURN(operand, Finish(std::move(node)));
    }
    return operand;
  }

  Expected<NodePtr> ParseFilter() {
    FG_ASSIGN_OR_RETURN(NodePtr operand, ParseUnarySign());
    while (Is(TokenType::kPipe)) {
      ++pos_;
      if (!Is(TokenType::kIdentifier)) return Error("expected a filter name after '|'");
      NodePtr node = Make(NodeKind::kFilter, Offset());
      node->text = tokens_[pos_++].value;
      if (Is(TokenType::kOpenParen)) {
        node->has_args = true;
        FG_RETURN_IF_ERROR(ParseCallArgs(node.get()));
      }
      node->a = std::move(operand);
      FG_ASSIGN_OR_RETURN(operand, Finish(std::move(node)));
    }
    return operand;
  }

  Expected<NodePtr> ParseUnarySign() {
    if ((Is(TokenType::kUnary) || Is(TokenType::kAdditive)) &&
        (Peek()->value == "-" || Peek()->value == "+")) {
      NestingGuard guard(&nesting_);
      FG_RETURN_IF_ERROR(CheckNesting());
      NodePtr node = Make(NodeKind::kUnary, Offset());
      node->text = tokens_[pos_++].value;
      FG_ASSIGN_OR_RETURN(node->a, ParseUnarySign());
      return Finish(std::move(node));
    }
    FG_ASSIGN_OR_RETURN(NodePtr primary, ParsePrimary());
    FG_ASSIGN_OR_RETURN(NodePtr expr, ParseMembers(std::move(primary)));
    while (Is(TokenType::kOpenParen)) {
      NodePtr call = Make(NodeKind::kCall, Offset());
      call->a = std::move(expr);
      FG_RETURN_IF_ERROR(ParseCallArgs(call.get()));
      FG_ASSIGN_OR_RETURN(expr, Finish(std::move(call)));
      FG_ASSIGN_OR_RETURN(expr, ParseMembers(std::move(expr)));
    }
    return expr;
  }

  Expected<NodePtr> ParseMembers(NodePtr object) {
    while (Is(TokenType::kDot) || Is(TokenType::kOpenSquare)) {
      NodePtr node = Make(NodeKind::kMember, Offset());
      const bool computed = Is(TokenType::kOpenSquare);
      ++pos_;
      node->a = std::move(object);
      if (computed) {
        FG_RETURN_IF_ERROR(ParseSubscript(node.get()));
      } else {
        const Token* tok = Peek();
        const bool integer = tok && tok->type == TokenType::kNumber &&
                             tok->value.find('.') == std::string::npos;
        if (!tok || (tok->type != TokenType::kIdentifier && !integer)) {
          return Error("expected a name after '.'");
        }
        node->text = tok->value;
        node->negate = integer;  // reused: the name is an integer index (`x.0`)
        ++pos_;
      }
      FG_ASSIGN_OR_RETURN(object, Finish(std::move(node)));
    }
    return object;
  }

  // `[expr]` or a slice `[start:stop:step]` with any part omitted.
  Status ParseSubscript(Node* member) {
    NestingGuard guard(&nesting_);
    FG_RETURN_IF_ERROR(CheckNesting());
    std::vector<NodePtr> parts;
    bool is_slice = false;
    while (!Is(TokenType::kCloseSquare)) {
      if (pos_ >= tokens_.size()) return Error("expected ']'");
      if (Is(TokenType::kColon)) {
        parts.push_back(nullptr);
        ++pos_;
        is_slice = true;
      } else {
        FG_ASSIGN_OR_RETURN(NodePtr part, ParseExpression());
        parts.push_back(std::move(part));
        if (Is(TokenType::kColon)) {
          ++pos_;
          is_slice = true;
        }
      }
    }
    ++pos_;
    if (parts.empty()) return Error("expected an index or slice inside '[]'");
    if (!is_slice) {
      member->computed = true;
      member->b = std::move(parts[0]);
      return Status::Ok();
    }
    if (parts.size() > 3) return Error("a slice takes at most 3 parts");
    member->kind = NodeKind::kSlice;
    member->b = std::move(parts[0]);
    if (parts.size() > 1) member->c = std::move(parts[1]);
    if (parts.size() > 2) member->d = std::move(parts[2]);
    return Status::Ok();
  }

  Expected<NodePtr> ParsePrimary() {
    if (pos_ >= tokens_.size()) return Error("unexpected end of template in expression");
    NestingGuard guard(&nesting_);
    FG_RETURN_IF_ERROR(CheckNesting());
    const Token& tok = tokens_[pos_++];
    switch (tok.type) {
      case TokenType::kNumber: {
        NodePtr node = Make(NodeKind::kLiteral, tok.offset);
        if (tok.value.find('.') != std::string::npos) {
          node->literal = Value::Float(std::strtod(tok.value.c_str(), nullptr));
        } else {
          const double d = std::strtod(tok.value.c_str(), nullptr);
          if (std::abs(d) > 9.2e18) return ErrorAt(tok.offset, "integer literal out of range");
          node->literal = Value::Int(std::strtoll(tok.value.c_str(), nullptr, 10));
        }
        return node;
      }
      case TokenType::kString: {
        std::string value = tok.value;
        while (Is(TokenType::kString)) value += tokens_[pos_++].value;  // 'a' 'b' == 'ab'
        NodePtr node = Make(NodeKind::kLiteral, tok.offset);
        node->literal = Value::String(std::move(value));
        return node;
      }
      case TokenType::kIdentifier: {
        NodePtr node = Make(NodeKind::kIdentifier, tok.offset);
        node->text = tok.value;
        return node;
      }
      case TokenType::kOpenParen: {
        FG_ASSIGN_OR_RETURN(NodePtr inner, ParseExpressionSequence(false));
        FG_RETURN_IF_ERROR(Expect(TokenType::kCloseParen, "')'").status());
        return inner;
      }
      case TokenType::kOpenSquare: {
        NodePtr node = Make(NodeKind::kList, tok.offset);
        while (!Is(TokenType::kCloseSquare)) {
          if (pos_ >= tokens_.size()) return Error("expected ']'");
          FG_ASSIGN_OR_RETURN(NodePtr item, ParseExpression());
          node->items.push_back(std::move(item));
          if (Is(TokenType::kComma)) ++pos_;
        }
        ++pos_;
        return Finish(std::move(node));
      }
      case TokenType::kOpenCurly: {
        NodePtr node = Make(NodeKind::kDictLiteral, tok.offset);
        while (!Is(TokenType::kCloseCurly)) {
          if (pos_ >= tokens_.size()) return Error("expected '}'");
          FG_ASSIGN_OR_RETURN(NodePtr key, ParseExpression());
          FG_RETURN_IF_ERROR(Expect(TokenType::kColon, "':' in dict literal").status());
          FG_ASSIGN_OR_RETURN(NodePtr value, ParseExpression());
          node->items.push_back(std::move(key));
          node->items.push_back(std::move(value));
          if (Is(TokenType::kComma)) ++pos_;
        }
        ++pos_;
        return Finish(std::move(node));
      }
      default: return ErrorAt(tok.offset, "unexpected '" + tok.value + "'");
    }
  }

  std::string_view source_;
  const std::vector<Token>& tokens_;
  uint32_t end_offset_;
  size_t pos_ = 0;
  int nesting_ = 0;
};

}  // namespace

Expected<std::vector<NodePtr>> Parse(std::string_view source, const Tokens& tokens) {
  return Parser(source, tokens).Run();
}

}  // namespace fastgen::jinja
