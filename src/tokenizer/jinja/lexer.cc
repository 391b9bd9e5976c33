#include "tokenizer/jinja/lexer.h"

#include <array>
#include <utility>

#include "tokenizer/jinja/js_string.h"

namespace fastgen::jinja {

std::string DescribeOffset(std::string_view source, uint32_t offset) {
  size_t line = 1, column = 1;
  for (size_t i = 0; i < offset && i < source.size(); ++i) {
    if (source[i] == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
  return "line " + std::to_string(line) + ", column " + std::to_string(column);
}

namespace {

// Text with, for each byte, its offset in the original template.
struct MappedText {
  std::string text;
  std::vector<uint32_t> origin;

  void Push(const MappedText& from, size_t i) {
    text.push_back(from.text[i]);
    origin.push_back(from.origin[i]);
  }
  void PushRange(const MappedText& from, size_t begin, size_t end) {
    for (size_t i = begin; i < end; ++i) Push(from, i);
  }
};

bool StartsWith(std::string_view s, size_t pos, std::string_view prefix) {
  return s.substr(pos, prefix.size()) == prefix;
}

// Byte length of a JS whitespace character at `pos`, 0 if there is none.
size_t WhitespaceAt(std::string_view s, size_t pos) {
  if (pos >= s.size()) return 0;
  size_t next = pos;
  return IsJsWhitespace(DecodeUtf8(s, &next)) ? next - pos : 0;
}

size_t SkipWhitespace(std::string_view s, size_t pos) {
  while (size_t w = WhitespaceAt(s, pos)) pos += w;
  return pos;
}

// JS multiline `^` also matches after \r, U+2028 and U+2029.
bool IsLineTerminatorEnd(std::string_view s, size_t pos) {
  if (pos == 0) return true;
  const char prev = s[pos - 1];
  if (prev == '\n' || prev == '\r') return true;
  return pos >= 3 && (s.substr(pos - 3, 3) == "\xE2\x80\xA8" || s.substr(pos - 3, 3) == "\xE2\x80\xA9");
}

// Length of a `{% generation %}` / `{%- endgeneration -%}` tag at `pos` (0 if none), and its
// strip flags.
size_t GenerationTagAt(std::string_view s, size_t pos, bool* lstrip, bool* rstrip) {
  if (!StartsWith(s, pos, "{%")) return 0;
  size_t p = pos + 2;
  *lstrip = p < s.size() && s[p] == '-';
  if (*lstrip) ++p;
  p = SkipWhitespace(s, p);
  if (StartsWith(s, p, "end")) p += 3;
  if (!StartsWith(s, p, "generation")) return 0;
  p = SkipWhitespace(s, p + 10);
  *rstrip = p < s.size() && s[p] == '-';
  if (*rstrip) ++p;
  if (!StartsWith(s, p, "%}")) return 0;
  return p + 2 - pos;
}

MappedText Preprocess(std::string_view source) {
  MappedText in;
  in.text.assign(source);
  for (size_t i = 0; i < source.size(); ++i) in.origin.push_back(static_cast<uint32_t>(i));
  if (!in.text.empty() && in.text.back() == '\n') {  // Jinja drops one trailing newline
    in.text.pop_back();
    in.origin.pop_back();
  }

  // lstrip_blocks: /^[ \t]*({[#%-])/gm -> "$1".
  MappedText lstripped;
  for (size_t i = 0; i < in.text.size();) {
    if (IsLineTerminatorEnd(in.text, i)) {
      size_t j = i;
      while (j < in.text.size() && (in.text[j] == ' ' || in.text[j] == '\t')) ++j;
      if (j + 1 < in.text.size() && in.text[j] == '{' &&
          (in.text[j + 1] == '#' || in.text[j + 1] == '%' || in.text[j + 1] == '-')) {
        i = j;
      }
    }
    lstripped.Push(in, i++);
  }

  // trim_blocks: /([#%-]})\n/g -> "$1".
  MappedText trimmed;
  const std::string& t = lstripped.text;
  for (size_t i = 0; i < t.size(); ++i) {
    trimmed.Push(lstripped, i);
    if ((t[i] == '#' || t[i] == '%' || t[i] == '-') && i + 2 < t.size() && t[i + 1] == '}' &&
        t[i + 2] == '\n') {
      trimmed.Push(lstripped, ++i);
      ++i;  // skip the newline
    }
  }

  // transformers' {% generation %} markers: removed, keeping the whitespace around them unless
  // the tag's own `-` strips it (/(\s*){%(-?)\s*(?:end)?generation\s*(-?)%}(\s*)/gs).
  MappedText out;
  const std::string& g = trimmed.text;
  size_t emitted = 0;
  size_t ws_start = 0;  // start of the whitespace run ending at the cursor (never before `emitted`)
  for (size_t i = 0; i < g.size();) {
    bool lstrip = false, rstrip = false;
    if (size_t len = GenerationTagAt(g, i, &lstrip, &rstrip)) {
      const size_t after_end = SkipWhitespace(g, i + len);
      out.PushRange(trimmed, emitted, ws_start);
      if (!lstrip) out.PushRange(trimmed, ws_start, i);
      if (!rstrip) out.PushRange(trimmed, i + len, after_end);
      emitted = ws_start = i = after_end;
      continue;
    }
    if (size_t w = WhitespaceAt(g, i)) {
      i += w;
    } else {
      ++i;
      ws_start = i;
    }
  }
  out.PushRange(trimmed, emitted, g.size());
  return out;
}

struct Fixed {
  std::string_view text;
  TokenType type;
};

// Order matters: longer operators first where they share a prefix ("**" before "*").
constexpr std::array<Fixed, 30> kFixedTokens = {{
    {"{%", TokenType::kOpenStatement},  {"%}", TokenType::kCloseStatement},
    {"{{", TokenType::kOpenExpression}, {"}}", TokenType::kCloseExpression},
    {"(", TokenType::kOpenParen},       {")", TokenType::kCloseParen},
    {"{", TokenType::kOpenCurly},       {"}", TokenType::kCloseCurly},
    {"[", TokenType::kOpenSquare},      {"]", TokenType::kCloseSquare},
    {",", TokenType::kComma},           {".", TokenType::kDot},
    {":", TokenType::kColon},           {"|", TokenType::kPipe},
    {"<=", TokenType::kComparison},     {">=", TokenType::kComparison},
    {"==", TokenType::kComparison},     {"!=", TokenType::kComparison},
    {"<", TokenType::kComparison},      {">", TokenType::kComparison},
    {"+", TokenType::kAdditive},        {"-", TokenType::kAdditive},
    {"~", TokenType::kAdditive},        {"**", TokenType::kPower},
    {"*", TokenType::kMultiplicative},  {"//", TokenType::kMultiplicative},
    {"/", TokenType::kMultiplicative},  {"%", TokenType::kMultiplicative},
    {"=", TokenType::kEquals},          {"", TokenType::kText},  // sentinel, never matched
}};

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsWordChar(char c) {
  return IsDigit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
int HexValue(char c) {
  if (IsDigit(c)) return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

class Lexer {
 public:
  Lexer(std::string_view source, MappedText src) : source_(source), m_(std::move(src)), s_(m_.text) {}

  Expected<Tokens> Run() {
    while (pos_ < s_.size()) FG_RETURN_IF_ERROR(Step());
    Tokens out;
    out.tokens = std::move(tokens_);
    out.end_offset = static_cast<uint32_t>(source_.size());
    return out;
  }

 private:
  uint32_t Origin(size_t pos) const {
    return pos < m_.origin.size() ? m_.origin[pos] : static_cast<uint32_t>(source_.size());
  }
  Status Error(size_t pos, const std::string& what) const {
    return CorruptFile("template syntax error at " + DescribeOffset(source_, Origin(pos)) +
                           ": " + what);
  }
  void Push(TokenType type, std::string value, size_t pos) {
    tokens_.push_back({type, std::move(value), Origin(pos)});
  }
  void StripTrailingWhitespace() {
    if (!tokens_.empty() && tokens_.back().type == TokenType::kText) {
      tokens_.back().value = std::string(JsTrimEnd(tokens_.back().value));
      if (tokens_.back().value.empty()) tokens_.pop_back();
    }
  }
  bool LastIs(TokenType t) const { return !tokens_.empty() && tokens_.back().type == t; }

  // The reference fails when a literal or identifier runs into the end of input.
  Status CheckNotAtEnd(size_t start) const {
    return pos_ >= s_.size() ? Error(start, "unexpected end of template") : Status::Ok();
  }

  Status LexString(char quote) {
    const size_t start = pos_++;
    std::string value;
    while (true) {
      if (pos_ >= s_.size()) return Error(start, "unterminated string literal");
      const char c = s_[pos_];
      if (c == quote) break;
      if (c != '\\') {
        value.push_back(c);
        ++pos_;
        continue;
      }
      if (++pos_ >= s_.size()) return Error(start, "unterminated string literal");
      const char e = s_[pos_++];
      switch (e) {
        case 'n': value.push_back('\n'); break;
        case 't': value.push_back('\t'); break;
        case 'r': value.push_back('\r'); break;
        case 'b': value.push_back('\b'); break;
        case 'f': value.push_back('\f'); break;
        case 'v': value.push_back('\v'); break;
        case '\'': case '"': case '\\': value.push_back(e); break;
        case 'x':
        case 'u': {
          char32_t cp = 0;
          FG_RETURN_IF_ERROR(ReadHex(e == 'x' ? 2 : 4, &cp));
          if (e == 'u' && cp >= 0xD800 && cp <= 0xDBFF && s_.substr(pos_, 2) == "\\u") {
            // A surrogate pair written as two escapes is one astral character.
            const size_t save = pos_;
            pos_ += 2;
            char32_t low = 0;
            if (ReadHex(4, &low).ok() && low >= 0xDC00 && low <= 0xDFFF) {
              cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
            } else {
              pos_ = save;
            }
          }
          AppendUtf8(cp, &value);
          break;
        }
        default: return Error(pos_ - 1, std::string("unknown escape \\") + e + " in string literal");
      }
    }
    ++pos_;  // closing quote
    Push(TokenType::kString, std::move(value), start);
    return Status::Ok();
  }

  Status ReadHex(int digits, char32_t* out) {
    char32_t v = 0;
    for (int i = 0; i < digits; ++i) {
      if (pos_ >= s_.size() || HexValue(s_[pos_]) < 0) return Error(pos_, "invalid hexadecimal escape");
      v = v * 16 + static_cast<char32_t>(HexValue(s_[pos_++]));
    }
    *out = v;
    return Status::Ok();
  }

  // Digits with an optional fraction ("1", "1.5"); `allow_fraction` is false right after a dot
  // so that `x.0.1` stays two member accesses.
  std::string LexNumberBody(bool allow_fraction) {
    std::string num;
    while (pos_ < s_.size() && IsDigit(s_[pos_])) num.push_back(s_[pos_++]);
    if (allow_fraction && !num.empty() && pos_ + 1 < s_.size() && s_[pos_] == '.' &&
        IsDigit(s_[pos_ + 1])) {
      num.push_back(s_[pos_++]);
      while (pos_ < s_.size() && IsDigit(s_[pos_])) num.push_back(s_[pos_++]);
    }
    return num;
  }

  Status Step() {
    const bool text_allowed = tokens_.empty() || LastIs(TokenType::kCloseStatement) ||
                              LastIs(TokenType::kCloseExpression) || LastIs(TokenType::kComment);
    if (text_allowed) {
      const size_t start = pos_;
      while (pos_ < s_.size() &&
             !(s_[pos_] == '{' && pos_ + 1 < s_.size() &&
               (s_[pos_ + 1] == '%' || s_[pos_ + 1] == '{' || s_[pos_ + 1] == '#'))) {
        ++pos_;
      }
      if (pos_ > start) {
        Push(TokenType::kText, std::string(s_.substr(start, pos_ - start)), start);
        return Status::Ok();
      }
    }

    if (StartsWith(s_, pos_, "{#")) return LexComment();
    if (StartsWith(s_, pos_, "{%-")) {
      StripTrailingWhitespace();
      Push(TokenType::kOpenStatement, "{%", pos_);
      pos_ += 3;
      return Status::Ok();
    }
    if (StartsWith(s_, pos_, "{{-")) {
      StripTrailingWhitespace();
      Push(TokenType::kOpenExpression, "{{", pos_);
      curly_depth_ = 0;
      pos_ += 3;
      return Status::Ok();
    }

    pos_ = SkipWhitespace(s_, pos_);
    if (pos_ >= s_.size()) return Error(pos_, "unexpected end of template inside a tag");
    if (StartsWith(s_, pos_, "-%}") || StartsWith(s_, pos_, "-}}")) {
      const bool statement = s_[pos_ + 1] == '%';
      Push(statement ? TokenType::kCloseStatement : TokenType::kCloseExpression,
           statement ? "%}" : "}}", pos_);
      pos_ = SkipWhitespace(s_, pos_ + 3);
      return Status::Ok();
    }

    const size_t start = pos_;
    const char c = s_[pos_];
    if (c == '-' || c == '+') {
      if (tokens_.empty() || LastIs(TokenType::kText)) {
        return Error(pos_, std::string("unexpected character '") + c + "'");
      }
      const TokenType last = tokens_.back().type;
      const bool binary = last == TokenType::kIdentifier || last == TokenType::kNumber ||
                          last == TokenType::kString || last == TokenType::kCloseParen ||
                          last == TokenType::kCloseSquare;
      if (!binary) {
        ++pos_;
        const std::string num = LexNumberBody(true);
        Push(num.empty() ? TokenType::kUnary : TokenType::kNumber, std::string(1, c) + num, start);
        return CheckNotAtEnd(start);
      }
    }

    for (const Fixed& f : kFixedTokens) {
      if (f.text.empty()) break;
      if (f.type == TokenType::kCloseExpression && curly_depth_ > 0) continue;
      if (!StartsWith(s_, pos_, f.text)) continue;
      Push(f.type, std::string(f.text), pos_);
      if (f.type == TokenType::kOpenExpression) curly_depth_ = 0;
      if (f.type == TokenType::kOpenCurly) ++curly_depth_;
      if (f.type == TokenType::kCloseCurly) --curly_depth_;
      pos_ += f.text.size();
      return Status::Ok();
    }

    if (c == '\'' || c == '"') {
      FG_RETURN_IF_ERROR(LexString(c));
      return Status::Ok();
    }
    if (IsDigit(c)) {
      const std::string num = LexNumberBody(!LastIs(TokenType::kDot));
      Push(TokenType::kNumber, num, start);
      return CheckNotAtEnd(start);
    }
    if (IsWordChar(c)) {
      while (pos_ < s_.size() && IsWordChar(s_[pos_])) ++pos_;
      Push(TokenType::kIdentifier, std::string(s_.substr(start, pos_ - start)), start);
      return CheckNotAtEnd(start);
    }
    return Error(pos_, std::string("unexpected character '") + c + "'");
  }

  Status LexComment() {
    const size_t start = pos_;
    pos_ += 2;
    const bool strip_before = pos_ < s_.size() && s_[pos_] == '-';
    if (strip_before) ++pos_;
    std::string comment;
    while (!(pos_ + 1 < s_.size() && s_[pos_] == '#' && s_[pos_ + 1] == '}')) {
      if (pos_ + 2 >= s_.size()) return Error(start, "missing end of comment tag");
      comment.push_back(s_[pos_++]);
    }
    const bool strip_after = !comment.empty() && comment.back() == '-';
    if (strip_after) comment.pop_back();
    if (strip_before) StripTrailingWhitespace();
    Push(TokenType::kComment, std::move(comment), start);
    pos_ += 2;
    if (strip_after) pos_ = SkipWhitespace(s_, pos_);
    return Status::Ok();
  }

  std::string_view source_;
  MappedText m_;
  std::string_view s_;
  size_t pos_ = 0;
  int curly_depth_ = 0;
  std::vector<Token> tokens_;
};

}  // namespace

Expected<Tokens> Tokenize(std::string_view source) {
  if (source.size() >= UINT32_MAX) return CorruptFile("template larger than 4 GiB");
  return Lexer(source, Preprocess(source)).Run();
}

}  // namespace fastgen::jinja
