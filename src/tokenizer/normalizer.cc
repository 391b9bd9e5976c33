#include "tokenizer/normalizer.h"

#include <utf8proc.h>

#include <cstdlib>

#include "tokenizer/unicode.h"

namespace fastgen::tok {

std::string ReplaceAll(const Regex& pattern, std::string_view text, std::string_view content) {
  std::vector<std::pair<size_t, size_t>> matches;
  pattern.FindAll(text, &matches);
  if (matches.empty()) return std::string(text);
  std::string out;
  out.reserve(text.size() + matches.size() * content.size());
  size_t prev = 0;
  for (const auto& [b, e] : matches) {
    out.append(text.substr(prev, b - prev));
    out.append(content);
    prev = e;
  }
  out.append(text.substr(prev));
  return out;
}

namespace {

bool IsAscii(const std::string& s) {
  for (unsigned char c : s) {
    if (c >= 0x80) return false;
  }
  return true;
}

class UnicodeNormalizer final : public Normalizer {
 public:
  explicit UnicodeNormalizer(UnicodeForm form) : form_(form) {}
  void Normalize(std::string* text) const override {
    // ASCII is invariant under every normalization form; skipping it keeps code and prose fast.
    if (text->empty() || IsAscii(*text)) return;
    int options = UTF8PROC_STABLE;
    switch (form_) {
      case UnicodeForm::kNfc: options |= UTF8PROC_COMPOSE; break;
      case UnicodeForm::kNfd: options |= UTF8PROC_DECOMPOSE; break;
      case UnicodeForm::kNfkc: options |= UTF8PROC_COMPOSE | UTF8PROC_COMPAT; break;
      case UnicodeForm::kNfkd: options |= UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT; break;
    }
    utf8proc_uint8_t* result = nullptr;
    const utf8proc_ssize_t n =
        utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text->data()),
                     static_cast<utf8proc_ssize_t>(text->size()), &result,
                     static_cast<utf8proc_option_t>(options));
    if (n >= 0 && result != nullptr) text->assign(reinterpret_cast<const char*>(result), n);
    std::free(result);
  }

 private:
  UnicodeForm form_;
};

class LowercaseNormalizer final : public Normalizer {
 public:
  void Normalize(std::string* text) const override {
    std::string out;
    out.reserve(text->size());
    size_t pos = 0;
    while (pos < text->size()) {
      const uint32_t cp = NextCodepoint(*text, &pos);
      if (cp < 0x80) {
        out.push_back(static_cast<char>(cp >= 'A' && cp <= 'Z' ? cp + 32 : cp));
      } else if (cp == 0x130) {
        // Rust's char::to_lowercase maps U+0130 to "i" + U+0307 (the only unconditional
        // multi-character lowercase mapping); utf8proc only knows the simple mapping.
        out += "i\xCC\x87";
      } else {
        AppendUtf8(static_cast<uint32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(cp))), &out);
      }
    }
    text->swap(out);
  }
};

class StripAccentsNormalizer final : public Normalizer {
 public:
  void Normalize(std::string* text) const override {
    std::string out;
    out.reserve(text->size());
    size_t pos = 0;
    while (pos < text->size()) {
      const size_t start = pos;
      const uint32_t cp = NextCodepoint(*text, &pos);
      if (cp >= 0x80 && utf8proc_category(static_cast<utf8proc_int32_t>(cp)) == UTF8PROC_CATEGORY_MN) {
        continue;
      }
      out.append(*text, start, pos - start);
    }
    text->swap(out);
  }
};

class PrependNormalizer final : public Normalizer {
 public:
  explicit PrependNormalizer(std::string prefix) : prefix_(std::move(prefix)) {}
  void Normalize(std::string* text) const override {
    if (!text->empty()) text->insert(0, prefix_);
  }

 private:
  std::string prefix_;
};

class ReplaceNormalizer final : public Normalizer {
 public:
  ReplaceNormalizer(Regex pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void Normalize(std::string* text) const override { *text = ReplaceAll(pattern_, *text, content_); }

 private:
  Regex pattern_;
  std::string content_;
};

class StripNormalizer final : public Normalizer {
 public:
  StripNormalizer(bool left, bool right) : left_(left), right_(right) {}
  void Normalize(std::string* text) const override {
    size_t begin = 0, end = text->size();
    if (left_) {
      size_t pos = 0;
      while (pos < text->size()) {
        const size_t at = pos;
        if (!IsWhitespace(NextCodepoint(*text, &pos))) {
          begin = at;
          break;
        }
        begin = pos;
      }
    }
    if (right_) {
      // Walk forward remembering where the trailing whitespace run starts.
      size_t pos = begin, run_start = text->size();
      bool in_run = false;
      while (pos < text->size()) {
        const size_t at = pos;
        const bool ws = IsWhitespace(NextCodepoint(*text, &pos));
        if (ws && !in_run) run_start = at;
        in_run = ws;
      }
      end = in_run ? run_start : text->size();
    }
    *text = text->substr(begin, end > begin ? end - begin : 0);
  }

 private:
  bool left_, right_;
};

class ByteLevelNormalizer final : public Normalizer {
 public:
  void Normalize(std::string* text) const override {
    const auto& table = ByteToUnicode();
    std::string out;
    out.reserve(text->size() * 2);
    for (unsigned char c : *text) out += table[c];
    text->swap(out);
  }
};

class SequenceNormalizer final : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> parts) : parts_(std::move(parts)) {}
  void Normalize(std::string* text) const override {
    for (const auto& p : parts_) p->Normalize(text);
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> parts_;
};

}  // namespace

std::unique_ptr<Normalizer> MakeUnicodeNormalizer(UnicodeForm form) {
  return std::make_unique<UnicodeNormalizer>(form);
}
std::unique_ptr<Normalizer> MakeLowercaseNormalizer() { return std::make_unique<LowercaseNormalizer>(); }
std::unique_ptr<Normalizer> MakeStripAccentsNormalizer() {
  return std::make_unique<StripAccentsNormalizer>();
}
std::unique_ptr<Normalizer> MakePrependNormalizer(std::string prefix) {
  return std::make_unique<PrependNormalizer>(std::move(prefix));
}
std::unique_ptr<Normalizer> MakeReplaceNormalizer(Regex pattern, std::string content) {
  return std::make_unique<ReplaceNormalizer>(std::move(pattern), std::move(content));
}
std::unique_ptr<Normalizer> MakeStripNormalizer(bool left, bool right) {
  return std::make_unique<StripNormalizer>(left, right);
}
std::unique_ptr<Normalizer> MakeByteLevelNormalizer() { return std::make_unique<ByteLevelNormalizer>(); }
std::unique_ptr<Normalizer> MakeSequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> parts) {
  return std::make_unique<SequenceNormalizer>(std::move(parts));
}

}  // namespace fastgen::tok
