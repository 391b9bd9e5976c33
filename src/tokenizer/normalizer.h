// Normalizers: the text rewrites Hugging Face applies before pre-tokenization (Unicode
// normalization forms, lowercasing, literal or regex replacement, prepending, stripping).
// They run on valid UTF-8 and cannot fail.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "tokenizer/regex.h"

namespace fastgen::tok {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual void Normalize(std::string* text) const = 0;
};

enum class UnicodeForm { kNfc, kNfd, kNfkc, kNfkd };

std::unique_ptr<Normalizer> MakeUnicodeNormalizer(UnicodeForm form);
std::unique_ptr<Normalizer> MakeLowercaseNormalizer();
std::unique_ptr<Normalizer> MakeStripAccentsNormalizer();  // drops nonspacing marks (Mn)
std::unique_ptr<Normalizer> MakePrependNormalizer(std::string prefix);
std::unique_ptr<Normalizer> MakeReplaceNormalizer(Regex pattern, std::string content);
std::unique_ptr<Normalizer> MakeStripNormalizer(bool left, bool right);
// Maps every byte to its GPT-2 printable code point (the "ByteLevel" normalizer).
std::unique_ptr<Normalizer> MakeByteLevelNormalizer();
std::unique_ptr<Normalizer> MakeSequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> parts);

// Shared with the Replace decoder: replaces every match of `pattern` in `text` by `content`.
std::string ReplaceAll(const Regex& pattern, std::string_view text, std::string_view content);

}  // namespace fastgen::tok
