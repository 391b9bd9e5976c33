#include "tokenizer/unicode.h"

#include <utf8proc.h>

namespace fastgen::tok {

size_t Utf8SequenceLength(uint8_t lead) {
  if (lead < 0x80) return 1;
  if (lead < 0xC2) return 0;  // continuation byte or overlong two-byte lead
  if (lead < 0xE0) return 2;
  if (lead < 0xF0) return 3;
  if (lead < 0xF5) return 4;
  return 0;
}

uint32_t NextCodepoint(std::string_view s, size_t* pos) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data()) + *pos;
  const uint8_t b0 = p[0];
  if (b0 < 0x80) {
    *pos += 1;
    return b0;
  }
  if (b0 < 0xE0) {
    *pos += 2;
    return ((b0 & 0x1Fu) << 6) | (p[1] & 0x3Fu);
  }
  if (b0 < 0xF0) {
    *pos += 3;
    return ((b0 & 0x0Fu) << 12) | ((p[1] & 0x3Fu) << 6) | (p[2] & 0x3Fu);
  }
  *pos += 4;
  return ((b0 & 0x07u) << 18) | ((p[1] & 0x3Fu) << 12) | ((p[2] & 0x3Fu) << 6) | (p[3] & 0x3Fu);
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

std::string CodepointToUtf8(uint32_t cp) {
  std::string s;
  AppendUtf8(cp, &s);
  return s;
}

namespace {

// Length of the longest valid prefix of a UTF-8 sequence starting at s[i] (at least 1 when
// the sequence is invalid, so callers always make progress), and whether it is complete.
// The second-byte ranges follow the Unicode "well-formed byte sequences" table, which is what
// makes the maximal-subpart replacement policy come out right.
size_t ValidPrefix(const uint8_t* s, size_t n, size_t i, bool* complete) {
  const uint8_t b0 = s[i];
  const size_t len = Utf8SequenceLength(b0);
  *complete = false;
  if (len == 0) return 1;
  if (len == 1) {
    *complete = true;
    return 1;
  }
  uint8_t lo = 0x80, hi = 0xBF;
  if (b0 == 0xE0) lo = 0xA0;
  if (b0 == 0xED) hi = 0x9F;
  if (b0 == 0xF0) lo = 0x90;
  if (b0 == 0xF4) hi = 0x8F;
  size_t k = 1;
  for (; k < len && i + k < n; ++k) {
    const uint8_t b = s[i + k];
    const uint8_t l = k == 1 ? lo : 0x80;
    const uint8_t h = k == 1 ? hi : 0xBF;
    if (b < l || b > h) return k;
  }
  *complete = k == len;
  return k;
}

}  // namespace

bool IsValidUtf8(std::string_view s) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  size_t i = 0;
  while (i < s.size()) {
    if (p[i] < 0x80) {
      ++i;
      continue;
    }
    bool complete = false;
    const size_t k = ValidPrefix(p, s.size(), i, &complete);
    if (!complete) return false;
    i += k;
  }
  return true;
}

std::string SanitizeUtf8(std::string_view s) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    if (p[i] < 0x80) {
      out.push_back(s[i++]);
      continue;
    }
    bool complete = false;
    const size_t k = ValidPrefix(p, s.size(), i, &complete);
    if (complete) {
      out.append(s.substr(i, k));
    } else {
      AppendUtf8(kReplacementChar, &out);
    }
    i += k;
  }
  return out;
}

size_t IncompleteUtf8Suffix(std::string_view s) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  // A sequence is at most four bytes long, so only the last three bytes can start an
  // incomplete one.
  const size_t n = s.size();
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    const size_t i = n - back;
    if ((p[i] & 0xC0) == 0x80) continue;
    bool complete = false;
    const size_t k = ValidPrefix(p, n, i, &complete);
    if (!complete && k == back && Utf8SequenceLength(p[i]) > back) return back;
    return 0;
  }
  return 0;
}

bool IsWhitespace(uint32_t cp) {
  if (cp == ' ' || (cp >= 0x09 && cp <= 0x0D)) return true;
  if (cp < 0x80) return false;
  if (cp == 0x85) return true;
  const auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(cp));
  return cat == UTF8PROC_CATEGORY_ZS || cat == UTF8PROC_CATEGORY_ZL || cat == UTF8PROC_CATEGORY_ZP;
}

bool IsNumeric(uint32_t cp) {
  if (cp < 0x80) return cp >= '0' && cp <= '9';
  const auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(cp));
  return cat == UTF8PROC_CATEGORY_ND || cat == UTF8PROC_CATEGORY_NL || cat == UTF8PROC_CATEGORY_NO;
}

bool IsAlphanumeric(uint32_t cp) {
  if (cp < 0x80) {
    return (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z');
  }
  // Rust's is_alphabetic uses the Alphabetic property, which utf8proc does not expose; letters,
  // letter numbers and spacing/nonspacing marks cover it for every script in practice.
  const auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(cp));
  return (cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_MC) ||
         (cat >= UTF8PROC_CATEGORY_ND && cat <= UTF8PROC_CATEGORY_NO);
}

bool IsPunctuation(uint32_t cp) {
  if (cp < 0x80) {
    return (cp >= 0x21 && cp <= 0x2F) || (cp >= 0x3A && cp <= 0x40) || (cp >= 0x5B && cp <= 0x60) ||
           (cp >= 0x7B && cp <= 0x7E);
  }
  const auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(cp));
  return cat >= UTF8PROC_CATEGORY_PC && cat <= UTF8PROC_CATEGORY_PO;
}

namespace {

struct ByteTables {
  std::array<std::string, 256> byte_to_unicode;
  std::array<int16_t, 512> unicode_to_byte;  // every table code point is below 0x144

  ByteTables() {
    unicode_to_byte.fill(-1);
    // Printable Latin-1 bytes stand for themselves; the rest are shifted to 256 + n in byte
    // order, which keeps every token string printable and the mapping reversible.
    int shifted = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      const uint32_t cp = printable ? static_cast<uint32_t>(b) : 256u + static_cast<uint32_t>(shifted++);
      byte_to_unicode[b] = CodepointToUtf8(cp);
      unicode_to_byte[cp] = static_cast<int16_t>(b);
    }
  }
};

const ByteTables& Tables() {
  static const ByteTables tables;
  return tables;
}

}  // namespace

const std::array<std::string, 256>& ByteToUnicode() { return Tables().byte_to_unicode; }

int UnicodeToByte(uint32_t cp) {
  if (cp >= 512) return -1;
  return Tables().unicode_to_byte[cp];
}

}  // namespace fastgen::tok
