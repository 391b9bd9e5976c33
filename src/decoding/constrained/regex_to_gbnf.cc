// Regex -> syntax tree -> checks and rewrites -> GBNF text.
//
// The rewrites keep the language and make the grammar one Grammar::Parse accepts and the matcher
// runs well: anchors become empty (after checking they can only mean the string's ends), and a
// repetition of something that can match the empty string, such as (a*)* or (a|)+, repeats only
// its non-empty part instead, because GBNF's X* is the right-recursive R ::= X R | "", which is
// left-recursive (and refused) when X can be empty.
#include "decoding/constrained/regex_to_gbnf.h"

#include <optional>
#include <utility>
#include <vector>

namespace fastgen::constrained {
namespace {

constexpr int kMaxNesting = 100;                      // parentheses; recursion depth of every pass
constexpr size_t kMaxGrammarBytes = size_t{1} << 20;  // of the emitted text

struct Node {
  enum class Kind { kEmpty, kChars, kSeq, kAlt, kRepeat, kStart, kEnd };
  Kind kind = Kind::kEmpty;
  CodepointRanges chars;     // kChars: non-empty
  std::vector<Node> kids;    // kSeq, kAlt; kRepeat: exactly one
  int64_t min = 0, max = 0;  // kRepeat; max < 0 is unbounded
  size_t offset = 0;         // where it starts in the pattern, for errors
};
using Kind = Node::Kind;

Node MakeChars(CodepointRanges set, size_t offset = 0) {
  Node n;
  n.kind = Kind::kChars;
  n.chars = NormalizeRanges(std::move(set));
  n.offset = offset;
  return n;
}
Node MakeList(Kind kind, std::vector<Node> kids) {
  Node n;
  n.kind = kind;
  n.kids = std::move(kids);
  return n;
}
Node MakeRepeat(Node kid, int64_t min, int64_t max) {
  Node n;
  n.kind = Kind::kRepeat;
  n.offset = kid.offset;
  n.kids.push_back(std::move(kid));
  n.min = min;
  n.max = max;
  return n;
}
bool IsAnchor(const Node& n) { return n.kind == Kind::kStart || n.kind == Kind::kEnd; }

CodepointRanges Digits() { return {{'0', '9'}}; }
CodepointRanges WordChars() { return {{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}}; }
// ECMAScript's WhiteSpace and LineTerminator characters.
CodepointRanges SpaceChars() {
  return {{0x09, 0x0D},     {0x20, 0x20},     {0xA0, 0xA0},     {0x1680, 0x1680}, {0x2000, 0x200A},
          {0x2028, 0x2029}, {0x202F, 0x202F}, {0x205F, 0x205F}, {0x3000, 0x3000}, {0xFEFF, 0xFEFF}};
}
CodepointRanges DotChars() { return ComplementRanges({{'\n', '\n'}, {'\r', '\r'}, {0x2028, 0x2029}}); }

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// ---- parsing ----

class RegexParser {
 public:
  RegexParser(std::string_view pattern, int64_t max_repetition) : p_(pattern), max_repetition_(max_repetition) {}

  Expected<Node> Parse() {
    auto n = ParseAlternation(0);
    if (!n.ok()) return n;
    if (pos_ < p_.size()) return Invalid("unmatched ')'", pos_);  // the only way to stop early
    return n;
  }

 private:
  // One escape or character: a set, or a single character (usable as a range bound).
  struct Atom {
    CodepointRanges set;
    bool single = false;
    uint32_t cp = 0;
  };

  Status Invalid(const std::string& what, size_t at) const {
    return InvalidArgument("regex: " + what + " at offset " + std::to_string(at));
  }
  Status Unsupported(const std::string& what, size_t at) const {
    return fastgen::Unsupported("regex: " + what + " at offset " + std::to_string(at) + " is not supported");
  }
  bool AtEnd() const { return pos_ >= p_.size(); }
  char Peek(size_t ahead = 0) const { return pos_ + ahead < p_.size() ? p_[pos_ + ahead] : '\0'; }

  Expected<uint32_t> NextCodepoint() {
    const auto b0 = static_cast<uint8_t>(p_[pos_]);
    const size_t n = b0 < 0x80 ? 1 : (b0 >> 5) == 0x6 ? 2 : (b0 >> 4) == 0xE ? 3 : (b0 >> 3) == 0x1E ? 4 : 0;
    if (n == 0 || pos_ + n > p_.size()) return Invalid("malformed UTF-8", pos_);
    auto cps = DecodeUtf8(p_.substr(pos_, n));
    if (!cps.ok()) return Invalid("malformed UTF-8", pos_);
    pos_ += n;
    return (*cps)[0];
  }

  Expected<Node> ParseAlternation(int depth) {
    if (depth > kMaxNesting) return Invalid("groups nested too deeply", pos_);
    std::vector<Node> alts;
    while (true) {
      auto seq = ParseSequence(depth);
      if (!seq.ok()) return seq;
      alts.push_back(std::move(*seq));
      if (Peek() != '|' || AtEnd()) break;
      ++pos_;
    }
    return alts.size() == 1 ? std::move(alts[0]) : MakeList(Kind::kAlt, std::move(alts));
  }

  Expected<Node> ParseSequence(int depth) {
    std::vector<Node> items;
    while (!AtEnd() && Peek() != '|' && Peek() != ')') {
      const size_t start = pos_;
      auto atom = ParseAtom(depth);
      if (!atom.ok()) return atom;
      Node item = std::move(*atom);
      item.offset = start;
      auto quantified = ParseQuantifier(std::move(item));
      if (!quantified.ok()) return quantified;
      items.push_back(std::move(*quantified));
    }
    return MakeList(Kind::kSeq, std::move(items));
  }

  // {m}, {m,} or {m,n} at pos_: the counts and the position after '}', or nothing (then '{' is
  // a literal character).
  std::optional<std::pair<int64_t, int64_t>> TryBraces(size_t* end) const {
    size_t i = pos_ + 1;
    auto number = [&](int64_t* v) {
      const size_t start = i;
      *v = 0;
      for (; i < p_.size() && p_[i] >= '0' && p_[i] <= '9'; ++i) {
        *v = std::min<int64_t>(*v * 10 + (p_[i] - '0'), 1 << 30);
      }
      return i > start;
    };
    int64_t min = 0, max = 0;
    if (!number(&min)) return std::nullopt;
    max = min;
    if (i < p_.size() && p_[i] == ',') {
      ++i;
      if (!number(&max)) max = -1;
    }
    if (i >= p_.size() || p_[i] != '}') return std::nullopt;
    *end = i + 1;
    return std::make_pair(min, max);
  }

  bool AtQuantifier() const {
    size_t end;
    return Peek() == '*' || Peek() == '+' || Peek() == '?' || (Peek() == '{' && TryBraces(&end));
  }

  Expected<Node> ParseQuantifier(Node item) {
    if (AtEnd()) return item;
    const size_t at = pos_;
    int64_t min = 0, max = 0;
    size_t end = pos_ + 1;
    const char c = Peek();
    if (c == '*') {
      max = -1;
    } else if (c == '+') {
      min = 1;
      max = -1;
    } else if (c == '?') {
      max = 1;
    } else if (c == '{' && TryBraces(&end)) {
      std::tie(min, max) = *TryBraces(&end);
      if (max >= 0 && max < min) {
        return Invalid("numbers out of order in {" + std::to_string(min) + "," + std::to_string(max) + "}", at);
      }
    } else {
      return item;
    }
    if (std::max(min, max) > max_repetition_) {
      return fastgen::Unsupported("regex: repetition count " + std::to_string(std::max(min, max)) + " at offset " +
                                  std::to_string(at) + " is above the limit of " + std::to_string(max_repetition_));
    }
    if (IsAnchor(item)) return Invalid("nothing to repeat (an anchor cannot be quantified)", at);
    pos_ = end;
    if (Peek() == '?') ++pos_;  // lazy: the same set of strings
    if (AtQuantifier()) return Invalid("nothing to repeat", pos_);
    return MakeRepeat(std::move(item), min, max);
  }

  Expected<Node> ParseAtom(int depth) {
    const size_t at = pos_;
    const char c = Peek();
    switch (c) {
      case '(': return ParseGroup(depth);
      case '[': return ParseClass();
      case '.': ++pos_; return MakeChars(DotChars(), at);
      case '^':
      case '$': {
        ++pos_;
        Node n;
        n.kind = c == '^' ? Kind::kStart : Kind::kEnd;
        n.offset = at;
        return n;
      }
      case '*':
      case '+':
      case '?': return Invalid(std::string("nothing to repeat before '") + c + "'", at);
      case '{': {
        size_t end;
        if (TryBraces(&end)) return Invalid("nothing to repeat before '{'", at);
        ++pos_;
        return MakeChars({{'{', '{'}}, at);
      }
      case '\\': {
        auto a = ParseEscape(false);
        if (!a.ok()) return a.status();
        return MakeChars(a->set, at);
      }
      default: {
        auto cp = NextCodepoint();
        if (!cp.ok()) return cp.status();
        return MakeChars({{*cp, *cp}}, at);
      }
    }
  }

  Expected<Node> ParseGroup(int depth) {
    const size_t at = pos_;
    ++pos_;  // '('
    if (Peek() == '?') {
      const char k = Peek(1), k2 = Peek(2);
      if (k == ':') {
        pos_ += 2;
      } else if (k == '=' || k == '!') {
        return Unsupported(k == '=' ? "lookahead (?=" : "negative lookahead (?!", at);
      } else if (k == '<' && (k2 == '=' || k2 == '!')) {
        return Unsupported(k2 == '=' ? "lookbehind (?<=" : "negative lookbehind (?<!", at);
      } else if (k == '<') {  // a named group: the name does not change what matches
        const size_t close = p_.find('>', pos_);
        if (close == std::string_view::npos) return Invalid("unterminated group name", at);
        pos_ = close + 1;
      } else {
        return Unsupported("the group modifier '(?" + std::string(1, k) + "'", at);
      }
    }
    auto inner = ParseAlternation(depth + 1);
    if (!inner.ok()) return inner;
    if (Peek() != ')' || AtEnd()) return Invalid("missing ')' for the group", at);
    ++pos_;
    inner->offset = at;
    return inner;
  }

  Expected<Node> ParseClass() {
    const size_t at = pos_;
    ++pos_;  // '['
    bool negated = false;
    if (Peek() == '^') {
      negated = true;
      ++pos_;
    }
    CodepointRanges set;
    while (true) {
      if (AtEnd()) return Invalid("unterminated character class", at);
      if (Peek() == ']') {
        ++pos_;
        break;
      }
      auto lo = ParseClassAtom();
      if (!lo.ok()) return lo.status();
      if (Peek() == '-' && Peek(1) != ']' && pos_ + 1 < p_.size()) {
        const size_t dash = pos_;
        ++pos_;
        auto hi = ParseClassAtom();
        if (!hi.ok()) return hi.status();
        if (lo->single && hi->single) {
          if (hi->cp < lo->cp) return Invalid("character range out of order", dash);
          set.emplace_back(lo->cp, hi->cp);
        } else {  // [\d-z]: a class cannot bound a range, so '-' is itself (as browsers read it)
          set.insert(set.end(), lo->set.begin(), lo->set.end());
          set.emplace_back('-', '-');
          set.insert(set.end(), hi->set.begin(), hi->set.end());
        }
        continue;
      }
      set.insert(set.end(), lo->set.begin(), lo->set.end());
    }
    set = NormalizeRanges(std::move(set));
    if (negated) set = ComplementRanges(set);
    if (set.empty()) return Unsupported("a character class that matches nothing", at);
    return MakeChars(std::move(set), at);
  }

  Expected<Atom> ParseClassAtom() {
    if (Peek() == '\\') return ParseEscape(true);
    auto cp = NextCodepoint();
    if (!cp.ok()) return cp.status();
    return Atom{{{*cp, *cp}}, true, *cp};
  }

  Expected<uint32_t> ReadHex(size_t digits, size_t at) {
    uint32_t v = 0;
    for (size_t i = 0; i < digits; ++i) {
      const int d = HexValue(Peek());
      if (d < 0) return Invalid("malformed hexadecimal escape", at);
      v = v * 16 + static_cast<uint32_t>(d);
      ++pos_;
    }
    return v;
  }

  Expected<Atom> ParseEscape(bool in_class) {
    const size_t at = pos_;
    ++pos_;  // '\'
    if (AtEnd()) return Invalid("'\\' at the end of the pattern", at);
    const char e = Peek();
    auto single = [](uint32_t cp) { return Atom{{{cp, cp}}, true, cp}; };
    auto set = [](CodepointRanges s) { return Atom{NormalizeRanges(std::move(s)), false, 0}; };
    switch (e) {
      case 'd': ++pos_; return set(Digits());
      case 'D': ++pos_; return set(ComplementRanges(Digits()));
      case 'w': ++pos_; return set(WordChars());
      case 'W': ++pos_; return set(ComplementRanges(WordChars()));
      case 's': ++pos_; return set(SpaceChars());
      case 'S': ++pos_; return set(ComplementRanges(SpaceChars()));
      case 't': ++pos_; return single('\t');
      case 'n': ++pos_; return single('\n');
      case 'r': ++pos_; return single('\r');
      case 'v': ++pos_; return single('\v');
      case 'f': ++pos_; return single('\f');
      case 'b':
        if (in_class) {
          ++pos_;
          return single('\b');
        }
        return Unsupported("the word boundary \\b", at);
      case 'B': return Unsupported("the word boundary \\B", at);
      case 'k': return Unsupported("the named backreference \\k", at);
      case 'p':
      case 'P': return Unsupported(std::string("the Unicode property class \\") + e, at);
      case '0':
        if (Peek(1) >= '0' && Peek(1) <= '9') return Unsupported("an octal escape", at);
        ++pos_;
        return single(0);
      case 'c': {
        const char l = Peek(1);
        if (!((l >= 'a' && l <= 'z') || (l >= 'A' && l <= 'Z'))) return Invalid("\\c needs a letter", at);
        pos_ += 2;
        return single(static_cast<uint32_t>(l) % 32);
      }
      case 'x': {
        ++pos_;
        auto v = ReadHex(2, at);
        if (!v.ok()) return v.status();
        return single(*v);
      }
      case 'u': {
        ++pos_;
        uint32_t cp = 0;
        if (Peek() == '{') {
          ++pos_;
          size_t n = 0;
          for (; HexValue(Peek()) >= 0 && cp <= kMaxCodepoint; ++n, ++pos_) {
            cp = cp * 16 + static_cast<uint32_t>(HexValue(Peek()));
          }
          if (n == 0 || Peek() != '}' || cp > kMaxCodepoint) return Invalid("malformed \\u{...} escape", at);
          ++pos_;
        } else {
          auto v = ReadHex(4, at);
          if (!v.ok()) return v.status();
          cp = *v;
          // A surrogate pair written as two escapes is one character.
          if (cp >= 0xD800 && cp <= 0xDBFF && Peek() == '\\' && Peek(1) == 'u') {
            const size_t save = pos_;
            pos_ += 2;
            auto low = ReadHex(4, at);
            if (low.ok() && *low >= 0xDC00 && *low <= 0xDFFF) {
              cp = 0x10000 + ((cp - 0xD800) << 10) + (*low - 0xDC00);
            } else {
              pos_ = save;
            }
          }
        }
        if (cp >= 0xD800 && cp <= 0xDFFF) return Unsupported("a lone surrogate escape", at);
        return single(cp);
      }
      default: break;
    }
    if (e >= '1' && e <= '9') return Unsupported(in_class ? "an octal escape" : "a backreference", at);
    if ((e >= 'a' && e <= 'z') || (e >= 'A' && e <= 'Z')) {
      return Invalid(std::string("unknown escape \\") + e, at);
    }
    auto cp = NextCodepoint();  // \ before punctuation (or any other character) is the character
    if (!cp.ok()) return cp.status();
    return single(*cp);
  }

  std::string_view p_;
  size_t pos_ = 0;
  int64_t max_repetition_;
};

// ---- checks and rewrites ----

// '^' and '$' are accepted where nothing can come before (after) them in any match: an anchor at
// the start (end) of the pattern, of a top-level alternative, or of a group in such a place.
Status CheckAnchors(const Node& n, bool at_start, bool at_end, int depth) {
  if (depth > kMaxNesting) return InvalidArgument("regex: nested too deeply");
  switch (n.kind) {
    case Kind::kStart:
      if (!at_start) {
        return Unsupported("regex: '^' at offset " + std::to_string(n.offset) +
                           " is not at the start of the pattern (only whole-string anchors are supported)");
      }
      return Status::Ok();
    case Kind::kEnd:
      if (!at_end) {
        return Unsupported("regex: '$' at offset " + std::to_string(n.offset) +
                           " is not at the end of the pattern (only whole-string anchors are supported)");
      }
      return Status::Ok();
    case Kind::kSeq:
      for (size_t i = 0; i < n.kids.size(); ++i) {
        bool start = at_start, end = at_end;
        for (size_t j = 0; j < i; ++j) start = start && IsAnchor(n.kids[j]);
        for (size_t j = i + 1; j < n.kids.size(); ++j) end = end && IsAnchor(n.kids[j]);
        FG_RETURN_IF_ERROR(CheckAnchors(n.kids[i], start, end, depth + 1));
      }
      return Status::Ok();
    case Kind::kAlt:
      for (const Node& k : n.kids) FG_RETURN_IF_ERROR(CheckAnchors(k, at_start, at_end, depth + 1));
      return Status::Ok();
    case Kind::kRepeat: return CheckAnchors(n.kids[0], false, false, depth + 1);
    default: return Status::Ok();
  }
}

Node AnyStar() { return MakeRepeat(MakeChars({{0, kMaxCodepoint}}), 0, -1); }

// For kSearch: anything may precede the pattern unless a '^' pins it. Pushed into the first
// element (and every branch of an alternation there), so "(^a|b)c" becomes "(a|.*b)c".
Node FreeStart(Node n, bool front) {
  // `front`: work on the start (true) or, mirrored, the end (false).
  const Kind anchor = front ? Kind::kStart : Kind::kEnd;
  if (n.kind == anchor) return Node{};
  if (n.kind == Kind::kAlt) {
    for (Node& k : n.kids) k = FreeStart(std::move(k), front);
    return n;
  }
  if (n.kind == Kind::kSeq && !n.kids.empty()) {
    Node& edge = front ? n.kids.front() : n.kids.back();
    if (edge.kind == anchor) return n;  // pinned; the anchor is removed later
    edge = FreeStart(std::move(edge), front);
    return n;
  }
  std::vector<Node> kids;
  if (front) kids.push_back(AnyStar());
  kids.push_back(std::move(n));
  if (!front) kids.push_back(AnyStar());
  return MakeList(Kind::kSeq, std::move(kids));
}

bool Nullable(const Node& n) {
  switch (n.kind) {
    case Kind::kChars: return false;
    case Kind::kSeq:
      for (const Node& k : n.kids) {
        if (!Nullable(k)) return false;
      }
      return true;
    case Kind::kAlt:
      for (const Node& k : n.kids) {
        if (Nullable(k)) return true;
      }
      return false;
    case Kind::kRepeat: return n.min == 0 || Nullable(n.kids[0]);
    default: return true;  // empty, anchors
  }
}

// The same language without the empty string; nothing when that leaves nothing.
std::optional<Node> NonEmpty(const Node& n) {
  switch (n.kind) {
    case Kind::kChars: return n;
    case Kind::kSeq: {
      if (!Nullable(n)) return n;
      // Every element can be empty: a non-empty match has a first non-empty element.
      std::vector<Node> alts;
      for (size_t i = 0; i < n.kids.size(); ++i) {
        std::optional<Node> first = NonEmpty(n.kids[i]);
        if (!first) continue;
        std::vector<Node> seq{std::move(*first)};
        seq.insert(seq.end(), n.kids.begin() + static_cast<ptrdiff_t>(i) + 1, n.kids.end());
        alts.push_back(MakeList(Kind::kSeq, std::move(seq)));
      }
      if (alts.empty()) return std::nullopt;
      return alts.size() == 1 ? std::move(alts[0]) : MakeList(Kind::kAlt, std::move(alts));
    }
    case Kind::kAlt: {
      std::vector<Node> alts;
      for (const Node& k : n.kids) {
        if (std::optional<Node> ne = NonEmpty(k)) alts.push_back(std::move(*ne));
      }
      if (alts.empty()) return std::nullopt;
      return alts.size() == 1 ? std::move(alts[0]) : MakeList(Kind::kAlt, std::move(alts));
    }
    case Kind::kRepeat: {
      if (n.max == 0) return std::nullopt;
      std::optional<Node> body = NonEmpty(n.kids[0]);
      if (!body) return std::nullopt;
      // x{m,n} minus "" is x'{1,n} where x' is x minus "" (pieces that match "" add nothing).
      return MakeRepeat(std::move(*body), Nullable(n.kids[0]) ? 1 : std::max<int64_t>(n.min, 1), n.max);
    }
    default: return std::nullopt;
  }
}

// Anchors to empty, sequences and alternations flattened, repetitions of nullable bodies
// rewritten (see the top of the file).
Node Simplify(Node n) {
  switch (n.kind) {
    case Kind::kStart:
    case Kind::kEnd: return Node{};
    case Kind::kRepeat: {
      Node body = Simplify(std::move(n.kids[0]));
      if (n.max == 0 || body.kind == Kind::kEmpty) return Node{};
      if (Nullable(body)) {
        std::optional<Node> ne = NonEmpty(body);
        if (!ne) return Node{};
        return MakeRepeat(std::move(*ne), 0, n.max);
      }
      if (n.min == 1 && n.max == 1) return body;
      return MakeRepeat(std::move(body), n.min, n.max);
    }
    case Kind::kSeq:
    case Kind::kAlt: {
      std::vector<Node> kids;
      for (Node& k : n.kids) {
        Node s = Simplify(std::move(k));
        if (s.kind == n.kind) {
          for (Node& g : s.kids) kids.push_back(std::move(g));
        } else if (!(n.kind == Kind::kSeq && s.kind == Kind::kEmpty)) {
          kids.push_back(std::move(s));
        }
      }
      if (kids.empty()) return Node{};
      if (kids.size() == 1) return std::move(kids[0]);
      return MakeList(n.kind, std::move(kids));
    }
    default: return n;
  }
}

// ---- emission ----

bool IsSingle(const Node& n) {
  return n.kind == Kind::kChars && n.chars.size() == 1 && n.chars[0].first == n.chars[0].second;
}

std::string Emit(const Node& n, RegexOutput out) {
  switch (n.kind) {
    case Kind::kChars:
      if (out == RegexOutput::kJsonStringContent) return JsonCharsExpr(n.chars);
      if (IsSingle(n)) return GbnfBuilder::LiteralCodepoints(std::u32string(1, n.chars[0].first));
      if (RangesSize(n.chars) + 0x800 >= kMaxCodepoint + 1) {  // everything (surrogates aside)
        const CodepointRanges all_but_surrogates = {{0, 0xD7FF}, {0xE000, kMaxCodepoint}};
        if (IntersectRanges(n.chars, all_but_surrogates) == all_but_surrogates) return ".";
      }
      return GbnfBuilder::Class(n.chars);
    case Kind::kSeq: {
      std::string text;
      for (size_t i = 0; i < n.kids.size();) {
        if (!text.empty()) text += ' ';
        if (IsSingle(n.kids[i])) {  // a run of single characters is one literal
          std::string run;
          std::u32string cps;
          for (; i < n.kids.size() && IsSingle(n.kids[i]); ++i) {
            run += JsonEncodeCodepoint(n.kids[i].chars[0].first);
            cps.push_back(n.kids[i].chars[0].first);
          }
          text +=
              out == RegexOutput::kJsonStringContent ? GbnfBuilder::Literal(run) : GbnfBuilder::LiteralCodepoints(cps);
          continue;
        }
        const std::string kid = Emit(n.kids[i], out);
        text += n.kids[i].kind == Kind::kRepeat ? kid : GbnfBuilder::Group(kid);
        ++i;
      }
      return text;
    }
    case Kind::kAlt: {
      std::string text;
      for (size_t i = 0; i < n.kids.size(); ++i) text += (i ? " | " : "") + Emit(n.kids[i], out);
      return text;
    }
    case Kind::kRepeat: return GbnfBuilder::Repeat(Emit(n.kids[0], out), n.min, n.max);
    default: return "\"\"";
  }
}

}  // namespace

Expected<std::string> AddRegexRules(std::string_view pattern, const RegexGbnfOptions& opts, std::string_view name_hint,
                                    GbnfBuilder* builder) {
  RegexParser parser(pattern, opts.max_repetition);
  FG_ASSIGN_OR_RETURN(Node tree, parser.Parse());
  FG_RETURN_IF_ERROR(CheckAnchors(tree, true, true, 0));
  if (opts.anchoring == RegexAnchoring::kSearch) tree = FreeStart(FreeStart(std::move(tree), true), false);
  tree = Simplify(std::move(tree));
  std::string body = Emit(tree, opts.output);
  if (body.size() > kMaxGrammarBytes) return Unsupported("regex: the pattern makes a grammar over 1 MiB");
  return builder->Add(name_hint, std::move(body));
}

Expected<std::string> RegexToGbnf(std::string_view pattern, const RegexGbnfOptions& opts) {
  GbnfBuilder builder;
  FG_ASSIGN_OR_RETURN(std::string rule, AddRegexRules(pattern, opts, "pattern", &builder));
  return builder.Build(rule);
}

}  // namespace fastgen::constrained
