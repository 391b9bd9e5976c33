// Pre-tokenizers: split normalized text into the words the model encodes one at a time, and
// rewrite them where the format asks (ByteLevel's byte-to-printable mapping, Metaspace's ▁).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tokenizer/regex.h"

namespace fastgen::tok {

// One segment of input text (text between added tokens) cut into words. `spans` are
// non-empty, ordered, non-overlapping byte ranges of `text`; stages that only split rewrite
// `spans` and keep `text`, stages that rewrite text rebuild both.
struct PreTokenized {
  std::string text;
  std::vector<std::pair<uint32_t, uint32_t>> spans;
  // True when the segment starts at the first byte of the input; Metaspace's "first" prepend
  // scheme only adds its ▁ there.
  bool at_input_start = true;

  void Reset(std::string segment, bool at_start) {
    text = std::move(segment);
    spans.clear();
    if (!text.empty()) spans.emplace_back(0, static_cast<uint32_t>(text.size()));
    at_input_start = at_start;
  }
};

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  virtual void PreTokenize(PreTokenized* p) const = 0;
};

// How matches of a Split pattern become words, as in tokenizers' SplitDelimiterBehavior.
enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

enum class PrependScheme { kAlways, kFirst, kNever };

struct ByteLevelOptions {
  bool add_prefix_space = false;
  bool use_regex = true;
};

struct MetaspaceOptions {
  std::string replacement = "\xE2\x96\x81";  // U+2581 '▁'
  PrependScheme prepend_scheme = PrependScheme::kAlways;
  bool split = true;
};

// The regular expression GPT-2's ByteLevel pre-tokenizer splits with.
inline constexpr const char* kGpt2Pattern =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

std::unique_ptr<PreTokenizer> MakeSplitPreTokenizer(Regex pattern, SplitBehavior behavior, bool invert);
std::unique_ptr<PreTokenizer> MakeByteLevelPreTokenizer(const ByteLevelOptions& options);
std::unique_ptr<PreTokenizer> MakeMetaspacePreTokenizer(const MetaspaceOptions& options);
std::unique_ptr<PreTokenizer> MakeDigitsPreTokenizer(bool individual_digits);
std::unique_ptr<PreTokenizer> MakePunctuationPreTokenizer(SplitBehavior behavior);
std::unique_ptr<PreTokenizer> MakeWhitespacePreTokenizer();       // \w+|[^\w\s]+
std::unique_ptr<PreTokenizer> MakeWhitespaceSplitPreTokenizer();  // split on whitespace
std::unique_ptr<PreTokenizer> MakeBertPreTokenizer();             // whitespace, then punctuation
std::unique_ptr<PreTokenizer> MakeCharDelimiterPreTokenizer(uint32_t delimiter);
std::unique_ptr<PreTokenizer> MakeSequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> parts);

}  // namespace fastgen::tok
