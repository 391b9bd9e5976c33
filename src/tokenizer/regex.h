// A compiled Unicode regular expression (PCRE2, UTF + UCP, JIT-compiled when the platform
// supports it) with the matching semantics Hugging Face tokenizers get from Oniguruma.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"

namespace fastgen::tok {

class Regex {
 public:
  // Compiles an Oniguruma-flavoured pattern (the syntax tokenizer.json files are written in).
  // `\w`/`\W` are rewritten to Oniguruma's Unicode word class, which is wider than PCRE2's.
  static Expected<Regex> Compile(std::string_view pattern);
  // Matches `literal` verbatim (Split and Replace stages with a "String" pattern).
  static Expected<Regex> Literal(std::string_view literal);

  Regex(Regex&&) noexcept;
  Regex& operator=(Regex&&) noexcept;
  ~Regex();

  // Appends the [begin, end) byte ranges of all non-overlapping matches in `text`, left to
  // right. An empty match right where the previous match ended is skipped, as Rust's and
  // Oniguruma's iterators do. `text` must be valid UTF-8.
  void FindAll(std::string_view text, std::vector<std::pair<size_t, size_t>>* out) const;

  const std::string& pattern() const { return pattern_; }

 private:
  Regex() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string pattern_;
  std::string literal_;  // non-empty: plain substring search instead of PCRE2
  bool is_literal_ = false;
};

// Oniguruma's `\w` class spelled in PCRE2 syntax.
std::string TranslateOnigurumaPattern(std::string_view pattern);

}  // namespace fastgen::tok
