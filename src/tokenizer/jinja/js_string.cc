#include "tokenizer/jinja/js_string.h"
#include "tokenizer/unicode.h"

#include <utf8proc.h>

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>

namespace fastgen::jinja {

char32_t DecodeUtf8(std::string_view s, size_t* pos) {
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char b0 = byte(*pos);
  if (b0 < 0x80) {
    ++*pos;
    return b0;
  }
  int extra = 0;
  char32_t cp = 0;
  char32_t min = 0;
  if ((b0 & 0xE0) == 0xC0) {
    extra = 1, cp = b0 & 0x1F, min = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    extra = 2, cp = b0 & 0x0F, min = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    extra = 3, cp = b0 & 0x07, min = 0x10000;
  } else {
    ++*pos;
    return 0xFFFD;
  }
  if (*pos + extra >= s.size()) {  // truncated sequence
    ++*pos;
    return 0xFFFD;
  }
  for (int i = 1; i <= extra; ++i) {
    const unsigned char b = byte(*pos + i);
    if ((b & 0xC0) != 0x80) {
      ++*pos;
      return 0xFFFD;
    }
    cp = (cp << 6) | (b & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
    ++*pos;
    return 0xFFFD;
  }
  *pos += extra + 1;
  return cp;
}

void AppendUtf8(char32_t cp, std::string* out) {
  if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xFFFD;  // lone surrogates cannot be encoded
  tok::AppendUtf8(static_cast<uint32_t>(cp), out);
}

std::vector<char32_t> ToCodePoints(std::string_view s) {
  std::vector<char32_t> cps;
  cps.reserve(s.size());
  for (size_t pos = 0; pos < s.size();) cps.push_back(DecodeUtf8(s, &pos));
  return cps;
}

std::string FromCodePoints(const std::vector<char32_t>& cps, size_t begin, size_t end) {
  std::string out;
  for (size_t i = begin; i < end; ++i) AppendUtf8(cps[i], &out);
  return out;
}

bool IsJsWhitespace(char32_t cp) {
  switch (cp) {
    case 0x09: case 0x0A: case 0x0B: case 0x0C: case 0x0D: case 0x20: case 0xA0: case 0x1680:
    case 0x2028: case 0x2029: case 0x202F: case 0x205F: case 0x3000: case 0xFEFF:
      return true;
    default:
      return cp >= 0x2000 && cp <= 0x200A;
  }
}

std::string_view JsTrimStart(std::string_view s) {
  size_t pos = 0;
  while (pos < s.size()) {
    size_t next = pos;
    if (!IsJsWhitespace(DecodeUtf8(s, &next))) break;
    pos = next;
  }
  return s.substr(pos);
}

std::string_view JsTrimEnd(std::string_view s) {
  // Decoding backwards is fiddly; scan forward remembering where the trailing run starts.
  size_t keep = 0;
  for (size_t pos = 0; pos < s.size();) {
    const char32_t cp = DecodeUtf8(s, &pos);
    if (!IsJsWhitespace(cp)) keep = pos;
  }
  return s.substr(0, keep);
}

std::string_view JsTrim(std::string_view s) { return JsTrimEnd(JsTrimStart(s)); }

int64_t Utf16Length(std::string_view s) {
  int64_t n = 0;
  for (size_t pos = 0; pos < s.size();) n += DecodeUtf8(s, &pos) >= 0x10000 ? 2 : 1;
  return n;
}

bool JsCharAt(std::string_view s, int64_t index, std::string* out) {
  const int64_t length = Utf16Length(s);
  if (index < 0) index += length;
  if (index < 0 || index >= length) return false;
  int64_t unit = 0;
  for (size_t pos = 0; pos < s.size();) {
    const char32_t cp = DecodeUtf8(s, &pos);
    const int64_t width = cp >= 0x10000 ? 2 : 1;
    if (index < unit + width) {
      out->clear();
      AppendUtf8(width == 2 ? 0xFFFD : cp, out);
      return true;
    }
    unit += width;
  }
  return false;
}

namespace {

void AppendUpper(char32_t cp, std::string* out) {
  if (cp == 0xDF) {
    out->append("SS");
    return;
  }
  AppendUtf8(static_cast<char32_t>(utf8proc_toupper(static_cast<utf8proc_int32_t>(cp))), out);
}

bool IsAsciiWord(char32_t cp) {
  return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || (cp >= '0' && cp <= '9') ||
         cp == '_';
}

}  // namespace

std::string JsToUpper(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t pos = 0; pos < s.size();) AppendUpper(DecodeUtf8(s, &pos), &out);
  return out;
}

std::string JsToLower(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t pos = 0; pos < s.size();) {
    const char32_t cp = DecodeUtf8(s, &pos);
    AppendUtf8(static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(cp))), &out);
  }
  return out;
}

std::string JsTitle(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  bool prev_word = false;
  for (size_t pos = 0; pos < s.size();) {
    char32_t cp = DecodeUtf8(s, &pos);
    const bool word = IsAsciiWord(cp);
    if (word && !prev_word && cp >= 'a' && cp <= 'z') cp -= 32;
    prev_word = word;
    AppendUtf8(cp, &out);
  }
  return out;
}

std::string JsCapitalize(std::string_view s) {
  if (s.empty()) return {};
  size_t pos = 0;
  const char32_t first = DecodeUtf8(s, &pos);
  std::string out;
  if (first >= 0x10000) {
    AppendUtf8(first, &out);  // charAt(0) is half a surrogate pair: toUpperCase leaves it alone
  } else {
    AppendUpper(first, &out);
  }
  out.append(s.substr(pos));
  return out;
}

std::string JsNumberToString(double d) {
  if (std::isnan(d)) return "NaN";
  if (std::isinf(d)) return d < 0 ? "-Infinity" : "Infinity";
  if (d == 0) return "0";  // JS prints -0 as "0" too
  // Shortest round-trip digits, then ECMAScript's Number::toString layout rules.
  char buf[64];
  const auto res = std::to_chars(buf, buf + sizeof(buf), std::fabs(d), std::chars_format::scientific);
  const std::string_view sci(buf, static_cast<size_t>(res.ptr - buf));
  const size_t e_pos = sci.find('e');
  std::string digits;
  for (char c : sci.substr(0, e_pos)) {
    if (c != '.') digits.push_back(c);
  }
  const int exponent = std::atoi(std::string(sci.substr(e_pos + 1)).c_str());
  const int k = static_cast<int>(digits.size());
  const int n = exponent + 1;
  std::string out = d < 0 ? "-" : "";
  if (k <= n && n <= 21) {
    out += digits + std::string(static_cast<size_t>(n - k), '0');
  } else if (0 < n && n <= 21) {
    out += digits.substr(0, static_cast<size_t>(n)) + "." + digits.substr(static_cast<size_t>(n));
  } else if (-6 < n && n <= 0) {
    out += "0." + std::string(static_cast<size_t>(-n), '0') + digits;
  } else {
    out += digits.substr(0, 1);
    if (k > 1) out += "." + digits.substr(1);
    out += n - 1 >= 0 ? "e+" : "e-";
    out += std::to_string(std::abs(n - 1));
  }
  return out;
}

namespace {

// Length of the longest prefix of `s` that is a StrDecimalLiteral without sign (digits, optional
// fraction, optional exponent), or "Infinity". Zero when there is none.
size_t DecimalPrefix(std::string_view s) {
  if (s.substr(0, 8) == "Infinity") return 8;
  size_t i = 0;
  size_t int_digits = 0, frac_digits = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i, ++int_digits;
  if (i < s.size() && s[i] == '.') {
    size_t j = i + 1;
    while (j < s.size() && s[j] >= '0' && s[j] <= '9') ++j, ++frac_digits;
    if (int_digits + frac_digits > 0) i = j;
  }
  if (int_digits + frac_digits == 0) return 0;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    size_t j = i + 1;
    if (j < s.size() && (s[j] == '+' || s[j] == '-')) ++j;
    const size_t exp_start = j;
    while (j < s.size() && s[j] >= '0' && s[j] <= '9') ++j;
    if (j > exp_start) i = j;
  }
  return i;
}

double ParseDecimal(std::string_view s, bool negative) {
  double v = 0;
  if (s == "Infinity") {
    v = std::numeric_limits<double>::infinity();
  } else {
    v = std::strtod(std::string(s).c_str(), nullptr);
  }
  return negative ? -v : v;
}

}  // namespace

double JsStringToNumber(std::string_view s) {
  s = JsTrim(s);
  if (s.empty()) return 0;
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X' || s[1] == 'o' || s[1] == 'O' ||
                                      s[1] == 'b' || s[1] == 'B')) {
    const int base = (s[1] == 'x' || s[1] == 'X') ? 16 : (s[1] == 'o' || s[1] == 'O') ? 8 : 2;
    double v = 0;
    for (char c : s.substr(2)) {
      int digit = -1;
      if (c >= '0' && c <= '9') digit = c - '0';
      if (c >= 'a' && c <= 'f') digit = c - 'a' + 10;
      if (c >= 'A' && c <= 'F') digit = c - 'A' + 10;
      if (digit < 0 || digit >= base) return std::nan("");
      v = v * base + digit;
    }
    return v;
  }
  bool negative = false;
  if (s[0] == '+' || s[0] == '-') {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  const size_t len = DecimalPrefix(s);
  if (len == 0 || len != s.size()) return std::nan("");
  return ParseDecimal(s, negative);
}

bool JsParseInt(std::string_view s, double* out) {
  s = JsTrimStart(s);
  bool negative = false;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  size_t i = 0;
  double v = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') v = v * 10 + (s[i++] - '0');
  if (i == 0) return false;
  *out = negative ? -v : v;
  return true;
}

bool JsParseFloat(std::string_view s, double* out) {
  s = JsTrimStart(s);
  bool negative = false;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  const size_t len = DecimalPrefix(s);
  if (len == 0) return false;
  *out = ParseDecimal(s.substr(0, len), negative);
  return true;
}

void AppendJsonString(std::string_view s, std::string* out) {
  static const char kHex[] = "0123456789abcdef";
  out->push_back('"');
  for (char c : s) {
    const unsigned char u = static_cast<unsigned char>(c);
    switch (c) {
      case '"': out->append("\\\""); break;
      case '\\': out->append("\\\\"); break;
      case '\b': out->append("\\b"); break;
      case '\f': out->append("\\f"); break;
      case '\n': out->append("\\n"); break;
      case '\r': out->append("\\r"); break;
      case '\t': out->append("\\t"); break;
      default:
        if (u < 0x20) {
          out->append("\\u00");
          out->push_back(kHex[u >> 4]);
          out->push_back(kHex[u & 15]);
        } else {
          out->push_back(c);
        }
    }
  }
  out->push_back('"');
}

std::string JsonEnsureAscii(std::string_view json) {
  std::string out;
  out.reserve(json.size());
  static const char kHex[] = "0123456789abcdef";
  const auto unit = [&](unsigned v) {
    out.append("\\u");
    for (int shift = 12; shift >= 0; shift -= 4) out.push_back(kHex[(v >> shift) & 15]);
  };
  for (size_t pos = 0; pos < json.size();) {
    const char32_t cp = DecodeUtf8(json, &pos);
    if (cp < 0x7F) {
      out.push_back(static_cast<char>(cp));
    } else if (cp < 0x10000) {
      unit(static_cast<unsigned>(cp));
    } else {
      const char32_t v = cp - 0x10000;
      unit(static_cast<unsigned>(0xD800 + (v >> 10)));
      unit(static_cast<unsigned>(0xDC00 + (v & 0x3FF)));
    }
  }
  return out;
}

}  // namespace fastgen::jinja
