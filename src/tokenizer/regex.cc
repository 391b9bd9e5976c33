#include "tokenizer/regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "tokenizer/unicode.h"

namespace fastgen::tok {

struct Regex::Impl {
  pcre2_code* code = nullptr;
  bool jit = false;
  ~Impl() {
    if (code != nullptr) pcre2_code_free(code);
  }
};

Regex::Regex(Regex&&) noexcept = default;
Regex& Regex::operator=(Regex&&) noexcept = default;
Regex::~Regex() = default;

std::string TranslateOnigurumaPattern(std::string_view pattern) {
  // Oniguruma's Unicode \w is Alphabetic + marks + decimal digits + connector punctuation +
  // ZWNJ/ZWJ; PCRE2's UCP \w is only letters, numbers and '_'. \s, \d and \p{..} already agree.
  static constexpr std::string_view kWordInClass = "\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\x{200C}\\x{200D}";
  std::string out;
  out.reserve(pattern.size());
  int class_depth = 0;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      const char e = pattern[i + 1];
      if (e == 'w') {
        if (class_depth > 0) {
          out += kWordInClass;
        } else {
          out += "[";
          out += kWordInClass;
          out += "]";
        }
      } else if (e == 'W' && class_depth == 0) {
        out += "[^";
        out += kWordInClass;
        out += "]";
      } else {
        out.push_back(c);
        out.push_back(e);
      }
      ++i;
      continue;
    }
    if (c == '[') {
      ++class_depth;
      out.push_back(c);
      // A ']' right after '[' or '[^' is a literal member, not the end of the class.
      if (i + 1 < pattern.size() && pattern[i + 1] == '^') out.push_back(pattern[++i]);
      if (i + 1 < pattern.size() && pattern[i + 1] == ']') out.push_back(pattern[++i]);
      continue;
    }
    if (c == ']' && class_depth > 0) --class_depth;
    out.push_back(c);
  }
  return out;
}

Expected<Regex> Regex::Compile(std::string_view pattern) {
  Regex re;
  re.pattern_ = std::string(pattern);
  if (!IsValidUtf8(pattern)) return InvalidArgument("regex pattern is not valid UTF-8");
  const std::string translated = TranslateOnigurumaPattern(pattern);
  int error = 0;
  PCRE2_SIZE error_offset = 0;
  pcre2_code* code =
      pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()), translated.size(),
                    PCRE2_UTF | PCRE2_UCP | PCRE2_NO_UTF_CHECK, &error, &error_offset, nullptr);
  if (code == nullptr) {
    PCRE2_UCHAR buffer[256];
    pcre2_get_error_message(error, buffer, sizeof(buffer));
    return InvalidArgument("cannot compile regex '" + std::string(pattern) + "' at offset " +
                           std::to_string(error_offset) + ": " +
                           reinterpret_cast<const char*>(buffer));
  }
  re.impl_ = std::make_unique<Impl>();
  re.impl_->code = code;
  // JIT is an optimisation only: platforms without it fall back to the interpreter.
  re.impl_->jit = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
  return re;
}

Expected<Regex> Regex::Literal(std::string_view literal) {
  Regex re;
  re.pattern_ = std::string(literal);
  re.literal_ = std::string(literal);
  re.is_literal_ = true;
  return re;
}

void Regex::FindAll(std::string_view text, std::vector<std::pair<size_t, size_t>>* out) const {
  if (is_literal_) {
    if (literal_.empty()) return;  // an empty literal matches nothing useful; Rust agrees
    size_t pos = 0;
    while ((pos = text.find(literal_, pos)) != std::string_view::npos) {
      out->emplace_back(pos, pos + literal_.size());
      pos += literal_.size();
    }
    return;
  }
  if (impl_ == nullptr) return;
  // Match data is per call so that one compiled tokenizer can be used from many threads.
  pcre2_match_data* md = pcre2_match_data_create(1, nullptr);
  if (md == nullptr) return;
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t start = 0;
  size_t last_end = static_cast<size_t>(-1);
  while (start <= text.size()) {
    const int rc = impl_->jit ? pcre2_jit_match(impl_->code, subject, text.size(), start, 0, md, nullptr)
                              : pcre2_match(impl_->code, subject, text.size(), start,
                                            PCRE2_NO_UTF_CHECK, md, nullptr);
    if (rc < 0) break;  // no match, or a resource limit on pathological input
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    const size_t b = ov[0], e = ov[1];
    if (b == e) {
      if (b != last_end) out->emplace_back(b, e);
      // Step over one whole character so the next search cannot split it.
      if (b >= text.size()) break;
      size_t next = b;
      NextCodepoint(text, &next);
      start = next;
      last_end = e;
      continue;
    }
    out->emplace_back(b, e);
    last_end = e;
    start = e;
  }
  pcre2_match_data_free(md);
}

}  // namespace fastgen::tok
