// GBNF parsing and compilation into the flat element array the matcher walks.
#include "decoding/constrained/grammar.h"

#include <algorithm>
#include <functional>
#include <unordered_map>

namespace fastgen::constrained {
namespace {

constexpr uint32_t kMaxCodepoint = 0x10FFFF;
// Bounded repetitions with at least this many optional iterations get a counted chain.
constexpr int64_t kMinCountedChain = 8;
// Bounds on what a grammar may compile to: repetition counts are expanded into copies, so a
// hostile "x{1000000}" must be refused rather than allocate without limit.
constexpr int64_t kMaxRepetition = 100000;
constexpr size_t kMaxElements = 4'000'000;

struct Element {
  GrammarElement::Kind kind;
  int32_t index;  // class id or rule id
};
using Sequence = std::vector<Element>;
using Alternatives = std::vector<Sequence>;

bool IsNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

bool CharClass::Contains(uint32_t cp) const {
  if (cp < 128) return (ascii[cp >> 6] >> (cp & 63)) & 1;
  // Ranges are sorted and disjoint: the last range starting at or below cp decides.
  auto it = std::upper_bound(ranges.begin(), ranges.end(), cp,
                             [](uint32_t v, const std::pair<uint32_t, uint32_t>& r) { return v < r.first; });
  if (it == ranges.begin()) return false;
  --it;
  return cp <= it->second;
}

bool CharClass::Intersects(uint32_t lo, uint32_t hi) const {
  for (const auto& [a, b] : ranges) {
    if (a > hi) break;
    if (b >= lo) return true;
  }
  return false;
}

// Builds the compiled grammar while the parser reads rules.
class GrammarBuilder {
 public:
  explicit GrammarBuilder(std::string_view text) : text_(text) {}

  Expected<std::shared_ptr<const Grammar>> Build(std::string_view root);

 private:
  // --- lexing ---
  bool AtEnd() const { return pos_ >= text_.size(); }
  char Peek() const { return AtEnd() ? '\0' : text_[pos_]; }
  Status Error(const std::string& what) const {
    int line = 1, col = 1;
    for (size_t i = 0; i < pos_ && i < text_.size(); ++i) {
      if (text_[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    return InvalidArgument("grammar line " + std::to_string(line) + ", column " + std::to_string(col) +
                           ": " + what);
  }
  // Skips blanks and comments; newlines too when `newlines` (inside parentheses, after | or ::=).
  void SkipSpace(bool newlines);
  Expected<uint32_t> ReadChar();          // one literal or class character, escapes resolved
  Expected<uint32_t> ReadUtf8();          // one raw UTF-8 character of the grammar text
  std::string ReadName();

  // --- parsing ---
  Expected<Alternatives> ParseAlternatives(bool nested);
  Expected<Sequence> ParseSequence(bool nested);
  Status ParseLiteral(Sequence* seq);
  Status ParseClass(Sequence* seq);
  Status ApplyRepetition(Sequence* seq, size_t item_start, int64_t min, int64_t max);
  Expected<int64_t> ReadCount();

  // --- rules ---
  int32_t RuleId(const std::string& name);  // creates an undefined rule on first reference
  int32_t NewHelperRule(const std::string& base, Alternatives alts);
  int32_t AddClass(CharClass c);
  int32_t SingleCharClass(uint32_t cp);
  Status CheckLeftRecursion() const;
  std::vector<bool> Nullable() const;  // [rule]

  std::string_view text_;
  size_t pos_ = 0;
  bool skipped_newline_ = false;  // the last SkipSpace crossed a line break
  bool at_next_rule_ = false;     // a sequence stopped at the next rule's "name ::="
  std::string current_rule_;  // for helper rule names
  std::vector<std::string> names_;
  std::vector<Alternatives> rules_;
  std::vector<bool> defined_;
  std::vector<size_t> first_use_;  // text offset of the first reference, for undefined-rule errors
  std::unordered_map<std::string, int32_t> ids_;
  std::unordered_map<std::string, int> helper_counts_;
  std::vector<CharClass> classes_;
  std::unordered_map<uint32_t, int32_t> single_char_classes_;
  size_t element_count_ = 0;
  // Bounded repetitions X{m,n} with n - m >= kMinCountedChain: the optionals' rules, innermost
  // (one iteration left) first, and the loop rule X* standing for all of them (Grammar::counted).
  struct Chain {
    std::vector<int32_t> optionals;
    std::vector<int32_t> required;  // the m required copies' rules, the last one first
    std::string base;  // the rule it appears in (helper names)
    Sequence item;
    int32_t loop = -1;
  };
  void AddCountedLoops();
  std::vector<Chain> chains_;
};

void GrammarBuilder::SkipSpace(bool newlines) {
  const size_t start = pos_;
  bool newline = false;
  while (!AtEnd()) {
    const char c = Peek();
    if (c == ' ' || c == '\t' || (newlines && (c == '\n' || c == '\r'))) {
      newline |= c == '\n';
      ++pos_;
    } else if (c == '#') {
      while (!AtEnd() && Peek() != '\n') ++pos_;
    } else {
      break;
    }
  }
  if (pos_ != start) skipped_newline_ = newline;  // a call that moves nothing keeps what the last one saw
}

Expected<uint32_t> GrammarBuilder::ReadUtf8() {
  const auto b0 = static_cast<uint8_t>(text_[pos_]);
  int n = b0 < 0x80 ? 1 : (b0 >> 5) == 0x6 ? 2 : (b0 >> 4) == 0xE ? 3 : (b0 >> 3) == 0x1E ? 4 : 0;
  if (n == 0 || pos_ + n > text_.size()) return Error("malformed UTF-8 in the grammar text");
  uint32_t cp = n == 1 ? b0 : (b0 & (0x7F >> n));
  for (int i = 1; i < n; ++i) {
    const auto b = static_cast<uint8_t>(text_[pos_ + i]);
    if ((b & 0xC0) != 0x80) return Error("malformed UTF-8 in the grammar text");
    cp = (cp << 6) | (b & 0x3F);
  }
  static constexpr uint32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[n] || cp > kMaxCodepoint || (cp >= 0xD800 && cp <= 0xDFFF)) {
    return Error("malformed UTF-8 in the grammar text");
  }
  pos_ += n;
  return cp;
}

Expected<uint32_t> GrammarBuilder::ReadChar() {
  if (AtEnd()) return Error("unexpected end of the grammar");
  if (Peek() != '\\') return ReadUtf8();
  ++pos_;
  if (AtEnd()) return Error("unexpected end of the grammar after '\\'");
  const char e = text_[pos_++];
  int digits = 0;
  switch (e) {
    case 'n': return uint32_t{'\n'};
    case 'r': return uint32_t{'\r'};
    case 't': return uint32_t{'\t'};
    case 'f': return uint32_t{'\f'};
    case 'v': return uint32_t{'\v'};
    case '0': return uint32_t{0};
    case '\\': case '"': case '\'': case '[': case ']': case '-': case '^': case '/': case '.':
      return static_cast<uint32_t>(static_cast<uint8_t>(e));
    case 'x': digits = 2; break;
    case 'u': digits = 4; break;
    case 'U': digits = 8; break;
    default:
      --pos_;
      return Error(std::string("unknown escape '\\") + e + "'");
  }
  uint32_t cp = 0;
  for (int i = 0; i < digits; ++i) {
    const int d = AtEnd() ? -1 : HexDigit(text_[pos_]);
    if (d < 0) return Error(std::string("'\\") + e + "' needs " + std::to_string(digits) + " hex digits");
    cp = cp * 16 + static_cast<uint32_t>(d);
    ++pos_;
  }
  if (cp > kMaxCodepoint || (cp >= 0xD800 && cp <= 0xDFFF)) return Error("escape is not a Unicode scalar value");
  return cp;
}

std::string GrammarBuilder::ReadName() {
  const size_t start = pos_;
  while (!AtEnd() && IsNameChar(Peek())) ++pos_;
  return std::string(text_.substr(start, pos_ - start));
}

int32_t GrammarBuilder::RuleId(const std::string& name) {
  auto [it, inserted] = ids_.emplace(name, static_cast<int32_t>(names_.size()));
  if (inserted) {
    names_.push_back(name);
    rules_.emplace_back();
    defined_.push_back(false);
    first_use_.push_back(pos_);
  }
  return it->second;
}

int32_t GrammarBuilder::NewHelperRule(const std::string& base, Alternatives alts) {
  // '~' cannot appear in a written rule name, so a helper never takes a name the grammar defines
  // later ("root ::= (a)" then "root-1 ::= ..." is a grammar like any other).
  const std::string name = base + "~" + std::to_string(++helper_counts_[base]);
  const int32_t id = RuleId(name);
  rules_[id] = std::move(alts);
  defined_[id] = true;
  return id;
}

int32_t GrammarBuilder::AddClass(CharClass c) {
  for (const auto& [a, b] : c.ranges) {
    for (uint32_t cp = a; cp <= std::min<uint32_t>(b, 127); ++cp) c.ascii[cp >> 6] |= uint64_t{1} << (cp & 63);
  }
  classes_.push_back(std::move(c));
  return static_cast<int32_t>(classes_.size() - 1);
}

int32_t GrammarBuilder::SingleCharClass(uint32_t cp) {
  auto it = single_char_classes_.find(cp);
  if (it != single_char_classes_.end()) return it->second;
  CharClass c;
  c.ranges.emplace_back(cp, cp);
  const int32_t id = AddClass(std::move(c));
  single_char_classes_.emplace(cp, id);
  return id;
}

Status GrammarBuilder::ParseLiteral(Sequence* seq) {
  ++pos_;  // opening quote
  while (true) {
    if (AtEnd()) return Error("unterminated string literal");
    if (Peek() == '"') {
      ++pos_;
      return Status::Ok();
    }
    if (Peek() == '\n') return Error("newline inside a string literal (write \\n)");
    auto cp = ReadChar();
    if (!cp.ok()) return cp.status();
    seq->push_back({GrammarElement::Kind::kChars, SingleCharClass(*cp)});
  }
}

Status GrammarBuilder::ParseClass(Sequence* seq) {
  ++pos_;  // '['
  bool negated = false;
  if (Peek() == '^') {
    negated = true;
    ++pos_;
  }
  std::vector<std::pair<uint32_t, uint32_t>> ranges;
  while (true) {
    if (AtEnd()) return Error("unterminated character class");
    if (Peek() == ']') {
      ++pos_;
      break;
    }
    auto lo = ReadChar();
    if (!lo.ok()) return lo.status();
    uint32_t hi = *lo;
    if (Peek() == '-' && pos_ + 1 < text_.size() && text_[pos_ + 1] != ']') {
      ++pos_;
      auto h = ReadChar();
      if (!h.ok()) return h.status();
      if (*h < *lo) return Error("character range is backwards");
      hi = *h;
    }
    ranges.emplace_back(*lo, hi);
  }
  std::sort(ranges.begin(), ranges.end());
  CharClass c;
  for (const auto& r : ranges) {
    if (!c.ranges.empty() && r.first <= c.ranges.back().second + 1) {
      c.ranges.back().second = std::max(c.ranges.back().second, r.second);
    } else {
      c.ranges.push_back(r);
    }
  }
  if (negated) {
    std::vector<std::pair<uint32_t, uint32_t>> complement;
    uint32_t next = 0;
    for (const auto& [a, b] : c.ranges) {
      if (a > next) complement.emplace_back(next, a - 1);
      next = b + 1;
    }
    if (next <= kMaxCodepoint) complement.emplace_back(next, kMaxCodepoint);
    c.ranges = std::move(complement);
  }
  seq->push_back({GrammarElement::Kind::kChars, AddClass(std::move(c))});
  return Status::Ok();
}

Expected<int64_t> GrammarBuilder::ReadCount() {
  SkipSpace(false);
  if (AtEnd() || Peek() < '0' || Peek() > '9') return Error("expected a number in {m,n}");
  int64_t v = 0;
  while (!AtEnd() && Peek() >= '0' && Peek() <= '9') {
    v = v * 10 + (Peek() - '0');
    if (v > kMaxRepetition) return Error("repetition count above " + std::to_string(kMaxRepetition));
    ++pos_;
  }
  SkipSpace(false);
  return v;
}

// Replaces seq[item_start..] (the item X) with its repetition, through helper rules:
//   X{min,max}  =  X ... X (min times)  then  rest
//   rest        =  X* (max unbounded) | opt_(max-min) where opt_k ::= X opt_(k-1) | ε
// (for a long bounded one, the min copies are rules of their own; see Chain).
Status GrammarBuilder::ApplyRepetition(Sequence* seq, size_t item_start, int64_t min, int64_t max) {
  if (item_start >= seq->size()) return Error("repetition with nothing before it");
  const Sequence item(seq->begin() + static_cast<ptrdiff_t>(item_start), seq->end());
  seq->resize(item_start);
  const int64_t copies = min + (max < 0 ? 1 : max - min);
  if (static_cast<size_t>(copies) * (item.size() + 2) + element_count_ > kMaxElements) {
    return Error("repetition makes the grammar too large");
  }
  element_count_ += static_cast<size_t>(copies) * (item.size() + 2);
  const bool counted = max >= 0 && max - min >= kMinCountedChain;
  if (!counted) {
    for (int64_t i = 0; i < min; ++i) seq->insert(seq->end(), item.begin(), item.end());
  }
  if (max < 0) {
    // X* as R ::= X R | ε: the reference to R is the last element, so the matcher continues
    // with R without pushing a frame.
    const int32_t id = NewHelperRule(current_rule_, {});
    Sequence again = item;
    again.push_back({GrammarElement::Kind::kRule, id});
    rules_[id] = {again, {}};
    seq->push_back({GrammarElement::Kind::kRule, id});
    return Status::Ok();
  }
  Chain chain;
  int32_t inner = -1;
  for (int64_t k = 0; k < max - min; ++k) {
    Sequence more = item;
    if (inner >= 0) more.push_back({GrammarElement::Kind::kRule, inner});
    inner = NewHelperRule(current_rule_, {more, {}});
    chain.optionals.push_back(inner);
  }
  if (counted && min > 0) {
    // The required copies as rules too (must_k ::= X must_(k-1), must_1 ::= X opt_(max-min)),
    // so that their positions map to the loop as well.
    int32_t next = inner;
    for (int64_t k = 0; k < min; ++k) {
      Sequence must = item;
      if (next >= 0) must.push_back({GrammarElement::Kind::kRule, next});
      next = NewHelperRule(current_rule_, {must});
      chain.required.push_back(next);
    }
    seq->push_back({GrammarElement::Kind::kRule, next});
  } else if (inner >= 0) {
    seq->push_back({GrammarElement::Kind::kRule, inner});
  }
  if (counted) {
    chain.base = current_rule_;
    chain.item = item;
    chains_.push_back(std::move(chain));
  }
  return Status::Ok();
}

Expected<Sequence> GrammarBuilder::ParseSequence(bool nested) {
  Sequence seq;
  size_t item_start = 0;  // where the last item (what a postfix operator applies to) begins
  bool have_item = false;
  while (true) {
    SkipSpace(nested);
    if (AtEnd()) break;
    const bool after_newline = skipped_newline_;
    const char c = Peek();
    const size_t start = seq.size();
    if (c == '"') {
      if (Status s = ParseLiteral(&seq); !s.ok()) return s;
    } else if (c == '[') {
      if (Status s = ParseClass(&seq); !s.ok()) return s;
    } else if (c == '.') {
      ++pos_;
      CharClass any;
      any.ranges.emplace_back(0, kMaxCodepoint);
      seq.push_back({GrammarElement::Kind::kChars, AddClass(std::move(any))});
    } else if (IsNameChar(c)) {
      const size_t name_pos = pos_;
      const std::string name = ReadName();
      const size_t after = pos_;
      SkipSpace(false);
      if (text_.substr(pos_, 3) == "::=") {
        pos_ = name_pos;
        // "a ::= b |" then "c ::= ..." on the next line: an empty last alternative.
        if (after_newline) {
          at_next_rule_ = true;
          break;
        }
        return Error("expected a newline before the definition of '" + name + "'");  // "a ::= b c ::= d"
      }
      pos_ = name_pos;  // an undefined rule's error points at its first use
      const int32_t id = RuleId(name);
      pos_ = after;
      seq.push_back({GrammarElement::Kind::kRule, id});
    } else if (c == '(') {
      ++pos_;
      SkipSpace(true);
      auto alts = ParseAlternatives(true);
      if (!alts.ok()) return alts.status();
      SkipSpace(true);
      if (Peek() != ')') return Error("expected ')'");
      ++pos_;
      seq.push_back({GrammarElement::Kind::kRule, NewHelperRule(current_rule_, std::move(*alts))});
    } else if (c == '*' || c == '+' || c == '?') {
      ++pos_;
      if (!have_item) return Error(std::string("'") + c + "' with nothing before it");
      const int64_t min = c == '+' ? 1 : 0, max = c == '?' ? 1 : -1;
      if (Status s = ApplyRepetition(&seq, item_start, min, max); !s.ok()) return s;
      have_item = false;  // "x**" is refused: apply postfix operators once
      continue;
    } else if (c == '{') {
      ++pos_;
      if (!have_item) return Error("'{' with nothing before it");
      auto min = ReadCount();
      if (!min.ok()) return min.status();
      int64_t max = *min;
      if (Peek() == ',') {
        ++pos_;
        SkipSpace(false);
        if (Peek() == '}') {
          max = -1;
        } else {
          auto m = ReadCount();
          if (!m.ok()) return m.status();
          max = *m;
          if (max < *min) return Error("{m,n} with n < m");
        }
      }
      if (Peek() != '}') return Error("expected '}'");
      ++pos_;
      if (Status s = ApplyRepetition(&seq, item_start, *min, max); !s.ok()) return s;
      have_item = false;
      continue;
    } else {
      break;  // '|', ')', a newline ending the rule, or an error the caller reports
    }
    item_start = start;
    have_item = true;
    element_count_ += seq.size() - start;
    if (element_count_ > kMaxElements) return Error("grammar too large");
  }
  return seq;
}

Expected<Alternatives> GrammarBuilder::ParseAlternatives(bool nested) {
  Alternatives alts;
  while (true) {
    auto seq = ParseSequence(nested);
    if (!seq.ok()) return seq.status();
    alts.push_back(std::move(*seq));
    // A rule may continue on the next line with '|' (a common way to lay out alternatives).
    const size_t before = pos_;
    SkipSpace(true);
    if (Peek() != '|') {
      pos_ = before;
      break;
    }
    ++pos_;
    SkipSpace(true);
  }
  return alts;
}

// The loop X* beside each long chain X{m,n} whose iterations read a character at least (a
// nullable X could repeat without reading, and its loop would be left-recursive). Reached from
// nowhere: token masks classify a position in the chain from the loop's, the same for every count
// left (Grammar::counted).
void GrammarBuilder::AddCountedLoops() {
  const std::vector<bool> nullable = Nullable();
  for (Chain& c : chains_) {
    const bool reads = std::any_of(c.item.begin(), c.item.end(), [&](const Element& e) {
      return e.kind == GrammarElement::Kind::kChars || !nullable[static_cast<size_t>(e.index)];
    });
    if (!reads || element_count_ + c.item.size() + 2 > kMaxElements) continue;
    element_count_ += c.item.size() + 2;
    c.loop = NewHelperRule(c.base, {});
    Sequence again = c.item;
    again.push_back({GrammarElement::Kind::kRule, c.loop});
    rules_[static_cast<size_t>(c.loop)] = {again, {}};
  }
}

std::vector<bool> GrammarBuilder::Nullable() const {
  // Rules that can match the empty string, to a fixed point.
  const size_t n = rules_.size();
  std::vector<bool> nullable(n, false);
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t r = 0; r < n; ++r) {
      if (nullable[r]) continue;
      for (const Sequence& alt : rules_[r]) {
        const bool all = std::all_of(alt.begin(), alt.end(), [&](const Element& e) {
          return e.kind == GrammarElement::Kind::kRule && nullable[e.index];
        });
        if (all) {
          nullable[r] = true;
          changed = true;
          break;
        }
      }
    }
  }
  return nullable;
}

Status GrammarBuilder::CheckLeftRecursion() const {
  const size_t n = rules_.size();
  const std::vector<bool> nullable = Nullable();
  // r -> s when s can be the first thing r matches; a cycle is left recursion.
  std::vector<std::vector<int32_t>> first(n);
  for (size_t r = 0; r < n; ++r) {
    for (const Sequence& alt : rules_[r]) {
      for (const Element& e : alt) {
        if (e.kind != GrammarElement::Kind::kRule) break;
        first[r].push_back(e.index);
        if (!nullable[e.index]) break;
      }
    }
  }
  std::vector<int8_t> color(n, 0);  // 0 new, 1 on the path, 2 done
  std::vector<int32_t> path;
  std::function<Status(int32_t)> visit = [&](int32_t r) -> Status {
    color[r] = 1;
    path.push_back(r);
    for (int32_t s : first[r]) {
      if (color[s] == 1) {
        std::string cycle;
        auto it = std::find(path.begin(), path.end(), s);
        for (; it != path.end(); ++it) cycle += names_[*it] + " -> ";
        return InvalidArgument("grammar rule '" + names_[s] + "' is left-recursive (" + cycle + names_[s] +
                               "); rewrite it with repetition, e.g. a ::= b (\",\" b)*");
      }
      if (color[s] == 0) {
        if (Status st = visit(s); !st.ok()) return st;
      }
    }
    path.pop_back();
    color[r] = 2;
    return Status::Ok();
  };
  for (size_t r = 0; r < n; ++r) {
    if (color[r] == 0) {
      if (Status st = visit(static_cast<int32_t>(r)); !st.ok()) return st;
    }
  }
  return Status::Ok();
}

Expected<std::shared_ptr<const Grammar>> GrammarBuilder::Build(std::string_view root) {
  while (true) {
    SkipSpace(true);
    if (AtEnd()) break;
    if (!IsNameChar(Peek())) return Error(std::string("expected a rule name, found '") + Peek() + "'");
    const std::string name = ReadName();
    SkipSpace(false);
    if (text_.substr(pos_, 3) != "::=") return Error("expected '::=' after '" + name + "'");
    pos_ += 3;
    SkipSpace(true);
    const int32_t id = RuleId(name);
    if (defined_[id]) return Error("rule '" + name + "' is defined twice");
    current_rule_ = name;
    auto alts = ParseAlternatives(false);
    if (!alts.ok()) return alts.status();
    rules_[id] = std::move(*alts);
    defined_[id] = true;
    SkipSpace(false);
    if (at_next_rule_) {
      at_next_rule_ = false;
    } else if (!AtEnd() && Peek() != '\n' && Peek() != '\r') {
      return Error(std::string("unexpected '") + Peek() + "' in rule '" + name + "'");
    }
  }
  for (size_t r = 0; r < rules_.size(); ++r) {
    if (!defined_[r]) {
      pos_ = first_use_[r];
      return Error("rule '" + names_[r] + "' is used but never defined");
    }
  }
  auto root_it = ids_.find(std::string(root));
  if (root_it == ids_.end()) return InvalidArgument("grammar has no rule '" + std::string(root) + "' to start from");
  AddCountedLoops();
  if (Status s = CheckLeftRecursion(); !s.ok()) return s;

  auto g = std::make_shared<Grammar>();
  g->classes_ = std::move(classes_);
  g->names_ = names_;
  g->root_ = root_it->second;
  g->alternatives_.resize(rules_.size());
  for (size_t r = 0; r < rules_.size(); ++r) {
    for (const Sequence& alt : rules_[r]) {
      g->alternatives_[r].push_back(static_cast<int32_t>(g->elements_.size()));
      for (const Element& e : alt) g->elements_.push_back({e.kind, e.index});
      g->elements_.push_back({GrammarElement::Kind::kEnd, 0});
    }
  }
  if (g->elements_.size() > kMaxElements) return InvalidArgument("grammar too large");
  // Positions inside a counted chain: the loop's position at the same offset, and the
  // iterations the chain allows after the current one.
  for (const Chain& c : chains_) {
    if (c.loop < 0) continue;
    if (g->counted_.empty()) g->counted_.assign(g->elements_.size(), {-1, 0});
    const int32_t loop_start = g->alternatives_[static_cast<size_t>(c.loop)][0];
    const auto map = [&](int32_t rule, size_t left, bool required) {
      const int32_t start = g->alternatives_[static_cast<size_t>(rule)][0];
      for (size_t i = 0; i <= c.item.size(); ++i)
        g->counted_[static_cast<size_t>(start) + i] = {loop_start + static_cast<int32_t>(i), static_cast<int32_t>(left), required};
    };
    for (size_t k = 1; k <= c.optionals.size(); ++k) map(c.optionals[k - 1], k - 1, false);
    for (size_t k = 1; k <= c.required.size(); ++k) map(c.required[k - 1], k - 1 + c.optionals.size(), true);
  }
  return std::shared_ptr<const Grammar>(std::move(g));
}

Expected<std::shared_ptr<const Grammar>> Grammar::Parse(std::string_view gbnf, std::string_view root) {
  GrammarBuilder builder(gbnf);
  return builder.Build(root);
}

}  // namespace fastgen::constrained
