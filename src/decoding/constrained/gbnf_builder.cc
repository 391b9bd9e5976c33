#include "decoding/constrained/gbnf_builder.h"

#include <algorithm>
#include <cstdio>

namespace fastgen::constrained {
namespace {

constexpr uint32_t kSurrogateLo = 0xD800, kSurrogateHi = 0xDFFF;

bool IsNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
}

// "-<digits>" at the end: the shape of Grammar::Parse's helper-rule names.
bool EndsInDashDigits(std::string_view s) {
  size_t i = s.size();
  while (i > 0 && s[i - 1] >= '0' && s[i - 1] <= '9') --i;
  return i < s.size() && i > 0 && s[i - 1] == '-';
}

std::string Hex(uint32_t v, int digits) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%0*X", digits, v);
  return buf;
}

// One code point as it may appear inside a literal (`in_class` false) or a bracket class.
std::string EscapeCodepoint(uint32_t cp, bool in_class) {
  switch (cp) {
    case '\n': return "\\n";
    case '\r': return "\\r";
    case '\t': return "\\t";
    case '\\': return "\\\\";
    case '"': return "\\\"";
    default: break;
  }
  if (in_class && (cp == ']' || cp == '-' || cp == '^' || cp == '[')) {
    return std::string("\\") + static_cast<char>(cp);
  }
  if (cp < 0x20 || cp == 0x7F) return "\\x" + Hex(cp, 2);
  if (cp < 0x80) return std::string(1, static_cast<char>(cp));
  // Class bounds are written as escapes (a range of raw multi-byte characters is hard to read);
  // literal text stays as it was written.
  if (in_class) return cp <= 0xFFFF ? "\\u" + Hex(cp, 4) : "\\U" + Hex(cp, 8);
  std::string out;
  AppendUtf8(cp, &out);
  return out;
}

std::string ClassBody(const CodepointRanges& ranges) {
  std::string out;
  for (const auto& [lo, hi] : ranges) {
    out += EscapeCodepoint(lo, true);
    if (hi == lo) continue;
    if (hi > lo + 1) out += '-';
    out += EscapeCodepoint(hi, true);
  }
  return out;
}

// Skips one literal or class starting at text[i]; returns the position after it, or npos.
size_t SkipQuoted(std::string_view text, size_t i, char close) {
  for (++i; i < text.size(); ++i) {
    if (text[i] == '\\') {
      ++i;
    } else if (text[i] == close) {
      return i + 1;
    }
  }
  return std::string_view::npos;
}

// Decimal digits of v > 0 (1 for 0).
int DigitCount(uint64_t v) {
  int n = 1;
  while (v >= 10) {
    v /= 10;
    ++n;
  }
  return n;
}
uint64_t Pow10(int n) {
  uint64_t v = 1;
  while (n-- > 0) v *= 10;
  return v;
}

// Decimal strings of equal length n with lo <= s <= hi (digit by digit; leading zeros are part of
// the string here, as when these are the trailing digits of a longer number).
std::string SameLengthRange(const std::string& lo, const std::string& hi) {
  if (lo == hi) return GbnfBuilder::Literal(lo);
  size_t i = 0;
  while (lo[i] == hi[i]) ++i;
  const std::string prefix = i ? GbnfBuilder::Literal(lo.substr(0, i)) + " " : "";
  const size_t rest = lo.size() - i - 1;
  auto digits = [](char a, char b) {
    return a == b ? GbnfBuilder::Literal(std::string(1, a)) : std::string("[") + a + "-" + b + "]";
  };
  if (rest == 0) return prefix + digits(lo[i], hi[i]);
  const std::string lo_rest = lo.substr(i + 1), hi_rest = hi.substr(i + 1);
  const bool lo_full = lo_rest == std::string(rest, '0'), hi_full = hi_rest == std::string(rest, '9');
  std::vector<std::string> alts;
  if (!lo_full) {
    alts.push_back(GbnfBuilder::Literal(std::string(1, lo[i])) + " " +
                   GbnfBuilder::Group(SameLengthRange(lo_rest, std::string(rest, '9'))));
  }
  const char first = lo_full ? lo[i] : lo[i] + 1, last = hi_full ? hi[i] : hi[i] - 1;
  if (first <= last) alts.push_back(digits(first, last) + " " + GbnfBuilder::Repeat("[0-9]", rest, rest));
  if (!hi_full) {
    alts.push_back(GbnfBuilder::Literal(std::string(1, hi[i])) + " " +
                   GbnfBuilder::Group(SameLengthRange(std::string(rest, '0'), hi_rest)));
  }
  std::string body;
  for (size_t k = 0; k < alts.size(); ++k) body += (k ? " | " : "") + alts[k];
  return prefix + (alts.size() == 1 ? body : "(" + body + ")");
}

}  // namespace

CodepointRanges NormalizeRanges(CodepointRanges ranges) {
  std::sort(ranges.begin(), ranges.end());
  CodepointRanges out;
  for (const auto& r : ranges) {
    if (!out.empty() && r.first <= out.back().second + 1) {
      out.back().second = std::max(out.back().second, r.second);
    } else {
      out.push_back(r);
    }
  }
  return out;
}

CodepointRanges ComplementRanges(const CodepointRanges& set) {
  CodepointRanges out;
  uint32_t next = 0;
  for (const auto& [lo, hi] : NormalizeRanges(set)) {
    if (lo > next) out.emplace_back(next, lo - 1);
    next = hi + 1;
  }
  if (next <= kMaxCodepoint) out.emplace_back(next, kMaxCodepoint);
  return out;
}

CodepointRanges IntersectRanges(const CodepointRanges& a, const CodepointRanges& b) {
  const CodepointRanges x = NormalizeRanges(a), y = NormalizeRanges(b);
  CodepointRanges out;
  size_t i = 0, j = 0;
  while (i < x.size() && j < y.size()) {
    const uint32_t lo = std::max(x[i].first, y[j].first), hi = std::min(x[i].second, y[j].second);
    if (lo <= hi) out.emplace_back(lo, hi);
    if (x[i].second < y[j].second) {
      ++i;
    } else {
      ++j;
    }
  }
  return out;
}

bool RangesContain(const CodepointRanges& set, uint32_t cp) {
  return std::any_of(set.begin(), set.end(), [cp](const auto& r) { return r.first <= cp && cp <= r.second; });
}

uint64_t RangesSize(const CodepointRanges& set) {
  uint64_t n = 0;
  for (const auto& [lo, hi] : NormalizeRanges(set)) n += uint64_t{hi} - lo + 1;
  return n;
}

Expected<std::u32string> DecodeUtf8(std::string_view text) {
  std::u32string out;
  for (size_t i = 0; i < text.size();) {
    const auto b0 = static_cast<uint8_t>(text[i]);
    const int n = b0 < 0x80 ? 1 : (b0 >> 5) == 0x6 ? 2 : (b0 >> 4) == 0xE ? 3 : (b0 >> 3) == 0x1E ? 4 : 0;
    const Status bad = InvalidArgument("malformed UTF-8 at byte " + std::to_string(i));
    if (n == 0 || i + n > text.size()) return bad;
    uint32_t cp = n == 1 ? b0 : (b0 & (0x7F >> n));
    for (int k = 1; k < n; ++k) {
      const auto b = static_cast<uint8_t>(text[i + k]);
      if ((b & 0xC0) != 0x80) return bad;
      cp = (cp << 6) | (b & 0x3F);
    }
    static constexpr uint32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > kMaxCodepoint || (cp >= kSurrogateLo && cp <= kSurrogateHi)) return bad;
    out.push_back(cp);
    i += n;
  }
  return out;
}

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// ---- GbnfBuilder ----

std::string GbnfBuilder::SanitizeName(std::string_view hint) {
  std::string name;
  for (char c : hint) {
    if (IsNameChar(c) && c != '-') {
      name += c;
    } else if (!name.empty() && name.back() != '-') {
      name += '-';  // runs of other characters become one dash
    }
  }
  while (!name.empty() && name.back() == '-') name.pop_back();
  if (name.empty()) name = "rule";
  while (EndsInDashDigits(name)) name.erase(name.rfind('-'), 1);  // "a-1-2" -> "a-12" -> "a12"
  return name;
}

std::string GbnfBuilder::Reserve(std::string_view hint) {
  const std::string base = SanitizeName(hint);
  std::string name = base;
  for (int n = 2; name == "root" || index_.count(name); ++n) name = base + "-v" + std::to_string(n);
  index_.emplace(name, rules_.size());
  rules_.emplace_back(name, std::string());
  return name;
}

void GbnfBuilder::Define(const std::string& name, std::string body) {
  bytes_ += name.size() + body.size() + 6;
  rules_[index_.at(name)].second = std::move(body);
}

std::string GbnfBuilder::Add(std::string_view hint, std::string body) {
  std::string name = Reserve(hint);
  Define(name, std::move(body));
  return name;
}

std::string GbnfBuilder::Shared(const std::string& key, const std::function<std::string()>& make) {
  auto it = shared_.find(key);
  if (it != shared_.end()) return it->second;
  std::string name = Reserve(key);
  shared_.emplace(key, name);
  Define(name, make());
  return name;
}

Expected<std::string> GbnfBuilder::Build(std::string_view root_body) const {
  std::string out = "root ::= " + std::string(root_body) + "\n";
  for (const auto& [name, body] : rules_) {
    if (body.empty()) return Internal("grammar rule '" + name + "' was reserved but never defined");
    out += name + " ::= " + body + "\n";
  }
  return out;
}

std::string GbnfBuilder::Literal(std::string_view utf8) {
  std::string out = "\"";
  for (size_t i = 0; i < utf8.size(); ++i) {
    const auto c = static_cast<uint8_t>(utf8[i]);
    if (c >= 0x80) {
      out += static_cast<char>(c);  // UTF-8 sequences pass through
    } else {
      out += EscapeCodepoint(c, false);
    }
  }
  return out + "\"";
}

std::string GbnfBuilder::LiteralCodepoints(std::u32string_view cps) {
  std::string out = "\"";
  for (char32_t cp : cps) out += EscapeCodepoint(cp, false);
  return out + "\"";
}

std::string GbnfBuilder::Class(const CodepointRanges& set) {
  // Surrogates never reach the matcher, and the parser refuses them as range bounds, so they are
  // left out of (or, in the negated form, added to) what is written.
  const CodepointRanges surrogates = {{kSurrogateLo, kSurrogateHi}};
  const CodepointRanges positive = IntersectRanges(set, ComplementRanges(surrogates));
  CodepointRanges with_surrogates = set;
  with_surrogates.push_back(surrogates[0]);
  const CodepointRanges negative = ComplementRanges(with_surrogates);
  if (negative.size() < positive.size()) return "[^" + ClassBody(negative) + "]";
  return "[" + ClassBody(positive) + "]";
}

bool GbnfBuilder::IsAtom(std::string_view t) {
  if (t.empty()) return false;
  if (t == ".") return true;
  if (t[0] == '"') return SkipQuoted(t, 0, '"') == t.size();
  if (t[0] == '[') return SkipQuoted(t, 0, ']') == t.size();
  if (t[0] == '(') {
    int depth = 0;
    for (size_t i = 0; i < t.size();) {
      if (t[i] == '"' || t[i] == '[') {
        i = SkipQuoted(t, i, t[i] == '"' ? '"' : ']');
        if (i == std::string_view::npos) return false;
        continue;
      }
      if (t[i] == '(') ++depth;
      if (t[i] == ')' && --depth == 0) return i + 1 == t.size();
      ++i;
    }
    return false;
  }
  return std::all_of(t.begin(), t.end(), IsNameChar);
}

std::string GbnfBuilder::Group(std::string_view body) {
  if (IsAtom(body)) return std::string(body);
  return "(" + std::string(body) + ")";
}

std::string GbnfBuilder::Repeat(std::string_view item, int64_t min, int64_t max) {
  if (max == 0) return "\"\"";
  const std::string atom = Group(item);
  if (min == 1 && max == 1) return atom;
  if (max < 0) {
    if (min == 0) return atom + "*";
    if (min == 1) return atom + "+";
    return atom + "{" + std::to_string(min) + ",}";
  }
  if (min == 0 && max == 1) return atom + "?";
  if (min == max) return atom + "{" + std::to_string(min) + "}";
  return atom + "{" + std::to_string(min) + "," + std::to_string(max) + "}";
}

// ---- JSON string characters ----

std::string JsonEncodeCodepoint(uint32_t cp) {
  switch (cp) {
    case '"': return "\\\"";
    case '\\': return "\\\\";
    case '\b': return "\\b";
    case '\f': return "\\f";
    case '\n': return "\\n";
    case '\r': return "\\r";
    case '\t': return "\\t";
    default: break;
  }
  if (cp < 0x20) {
    static const char kHex[] = "0123456789abcdef";
    return std::string("\\u00") + kHex[cp >> 4] + kHex[cp & 15];
  }
  std::string out;
  AppendUtf8(cp, &out);
  return out;
}

std::string JsonCharsExpr(const CodepointRanges& set) {
  const CodepointRanges norm = NormalizeRanges(set);
  if (norm.size() == 1 && norm[0].first == norm[0].second) {
    return GbnfBuilder::Literal(JsonEncodeCodepoint(norm[0].first));
  }
  std::vector<std::string> alts;
  // Characters JSON lets a string hold as they are.
  const CodepointRanges raw = IntersectRanges(norm, {{0x20, 0x21}, {0x23, 0x5B}, {0x5D, kMaxCodepoint}});
  if (RangesSize(raw) == 1) {
    alts.push_back(GbnfBuilder::Literal(JsonEncodeCodepoint(raw[0].first)));
  } else if (!raw.empty()) {
    alts.push_back(GbnfBuilder::Class(raw));
  }
  // Two-character escapes: \" \\ \b \f \n \r \t.
  static constexpr std::pair<uint32_t, char> kShort[] = {{'"', '"'},  {'\\', '\\'}, {'\b', 'b'}, {'\f', 'f'},
                                                         {'\n', 'n'}, {'\r', 'r'},  {'\t', 't'}};
  CodepointRanges letters;
  for (const auto& [cp, letter] : kShort) {
    if (RangesContain(norm, cp)) letters.emplace_back(letter, letter);
  }
  if (letters.size() == 1) {
    alts.push_back(GbnfBuilder::Literal(std::string("\\") + static_cast<char>(letters[0].first)));
  } else if (!letters.empty()) {
    alts.push_back("\"\\\\\" " + GbnfBuilder::Class(NormalizeRanges(letters)));
  }
  // The other control characters: \u00XX with lowercase hex digits.
  std::vector<std::string> high;  // per high nibble 0, 1
  for (uint32_t hi = 0; hi < 2; ++hi) {
    CodepointRanges lows;
    for (uint32_t lo = 0; lo < 16; ++lo) {
      const uint32_t cp = hi * 16 + lo;
      if (!RangesContain(norm, cp) || JsonEncodeCodepoint(cp).size() == 2) continue;
      const char digit = "0123456789abcdef"[lo];
      lows.emplace_back(digit, digit);
    }
    if (lows.empty()) continue;
    const CodepointRanges digits = NormalizeRanges(lows);
    const std::string d = RangesSize(digits) == 1 ? GbnfBuilder::LiteralCodepoints(std::u32string(1, digits[0].first))
                                                  : GbnfBuilder::Class(digits);
    high.push_back("\"" + std::to_string(hi) + "\" " + d);
  }
  if (high.size() == 1) alts.push_back("\"\\\\u00\" " + high[0]);
  if (high.size() == 2) alts.push_back("\"\\\\u00\" (" + high[0] + " | " + high[1] + ")");
  if (alts.size() == 1) return GbnfBuilder::Group(alts[0]);
  std::string out = "(";
  for (size_t i = 0; i < alts.size(); ++i) out += (i ? " | " : "") + alts[i];
  return out + ")";
}

// ---- decimal numbers ----

std::string UnsignedRangeGbnf(uint64_t lo, uint64_t hi) {
  std::vector<std::string> alts;
  int full_from = 0;  // a run of digit counts whose every value is in range, written as one
  auto flush_full = [&](int to) {
    if (full_from == 0) return;
    alts.push_back("[1-9] " + GbnfBuilder::Repeat("[0-9]", full_from - 1, to - 1));
    full_from = 0;
  };
  for (int d = DigitCount(lo); d <= DigitCount(hi); ++d) {
    const uint64_t first = std::max(lo, d == 1 ? 0 : Pow10(d - 1)), last = std::min(hi, Pow10(d) - 1);
    if (d > 1 && first == Pow10(d - 1) && last == Pow10(d) - 1) {
      if (full_from == 0) full_from = d;
      continue;
    }
    flush_full(d - 1);
    alts.push_back(SameLengthRange(std::to_string(first), std::to_string(last)));
  }
  flush_full(DigitCount(hi));
  std::string body;
  for (size_t k = 0; k < alts.size(); ++k) body += (k ? " | " : "") + alts[k];
  return body;
}

std::string IntegerRangeGbnf(int64_t lo, int64_t hi) {
  std::vector<std::string> alts;
  if (lo < 0) {
    const uint64_t mag_lo = hi < 0 ? static_cast<uint64_t>(-hi) : 1, mag_hi = static_cast<uint64_t>(-lo);
    alts.push_back("\"-\" " + GbnfBuilder::Group(UnsignedRangeGbnf(mag_lo, mag_hi)));
  }
  if (hi >= 0) {
    alts.push_back(UnsignedRangeGbnf(static_cast<uint64_t>(std::max<int64_t>(lo, 0)), static_cast<uint64_t>(hi)));
  }
  return alts.size() == 1 ? alts[0] : alts[0] + " | " + alts[1];
}

std::string DecimalRangeGbnf(const DecimalRange& r) {
  if (r.hi < r.lo) return "";
  const std::string digits = std::to_string(r.max_fraction_digits), fewer = std::to_string(r.max_fraction_digits - 1);
  const std::string frac_any = "(\".\" [0-9]{1," + digits + "})?";
  const std::string frac_zero = "(\".\" \"0\"{1," + digits + "})?";
  const std::string frac_nonzero = "\".\" \"0\"{0," + fewer + "} [1-9] [0-9]{0," + fewer + "}";
  std::vector<std::string> alts;
  // Integer parts strictly inside the range take any fraction; at the bounds the fraction must be
  // non-zero (an exclusive lo) or zero (an inclusive hi).
  const uint64_t first = r.lo_exclusive ? r.lo + 1 : r.lo;
  if (r.hi >= 1 && first <= r.hi - 1) {
    alts.push_back(GbnfBuilder::Group(UnsignedRangeGbnf(first, r.hi - 1)) + " " + frac_any);
  }
  if (r.lo_exclusive && r.lo < r.hi) alts.push_back(GbnfBuilder::Literal(std::to_string(r.lo)) + " " + frac_nonzero);
  if (!r.hi_exclusive && (r.hi > r.lo || !r.lo_exclusive)) {
    alts.push_back(GbnfBuilder::Literal(std::to_string(r.hi)) + " " + frac_zero);
  }
  std::string body;
  for (size_t k = 0; k < alts.size(); ++k) body += (k ? " | " : "") + alts[k];
  return body;
}

}  // namespace fastgen::constrained
