#include "tokenizer/pre_tokenizer.h"

#include <algorithm>

#include "tokenizer/unicode.h"

namespace fastgen::tok {
namespace {

using Span = std::pair<uint32_t, uint32_t>;

// A match or the text between matches, in the order the pattern found them.
struct Piece {
  uint32_t begin, end;
  bool is_match;
};

// Turns the pieces of one word into words according to `behavior`, exactly as
// tokenizers' NormalizedString::split folds them; empty results are dropped.
void EmitPieces(const std::vector<Piece>& pieces, SplitBehavior behavior, std::vector<Span>* out) {
  std::vector<Span> acc;
  acc.reserve(pieces.size());
  bool previous_match = false;
  switch (behavior) {
    case SplitBehavior::kIsolated:
      for (const Piece& p : pieces) acc.emplace_back(p.begin, p.end);
      break;
    case SplitBehavior::kRemoved:
      for (const Piece& p : pieces) {
        if (!p.is_match) acc.emplace_back(p.begin, p.end);
      }
      break;
    case SplitBehavior::kContiguous:
      for (const Piece& p : pieces) {
        if (p.is_match == previous_match && !acc.empty()) {
          acc.back().second = p.end;
        } else {
          acc.emplace_back(p.begin, p.end);
        }
        previous_match = p.is_match;
      }
      break;
    case SplitBehavior::kMergedWithPrevious:
      for (const Piece& p : pieces) {
        if (p.is_match && !previous_match && !acc.empty()) {
          acc.back().second = p.end;
        } else {
          acc.emplace_back(p.begin, p.end);
        }
        previous_match = p.is_match;
      }
      break;
    case SplitBehavior::kMergedWithNext:
      for (auto it = pieces.rbegin(); it != pieces.rend(); ++it) {
        if (it->is_match && !previous_match && !acc.empty()) {
          acc.back().first = it->begin;
        } else {
          acc.emplace_back(it->begin, it->end);
        }
        previous_match = it->is_match;
      }
      std::reverse(acc.begin(), acc.end());
      break;
  }
  for (const Span& s : acc) {
    if (s.first != s.second) out->push_back(s);
  }
}

// Pieces of [begin, end) from pattern matches (absolute offsets), gaps included.
void PiecesFromMatches(const std::vector<std::pair<size_t, size_t>>& matches, uint32_t begin, uint32_t end,
                       bool invert, std::vector<Piece>* pieces) {
  pieces->clear();
  uint32_t prev = begin;
  for (const auto& [mb, me] : matches) {
    const auto b = static_cast<uint32_t>(mb) + begin, e = static_cast<uint32_t>(me) + begin;
    if (prev != b) pieces->push_back({prev, b, invert});
    pieces->push_back({b, e, !invert});
    prev = e;
  }
  if (prev != end) pieces->push_back({prev, end, invert});
}

class SplitPreTokenizer final : public PreTokenizer {
 public:
  SplitPreTokenizer(Regex pattern, SplitBehavior behavior, bool invert)
      : pattern_(std::move(pattern)), behavior_(behavior), invert_(invert) {}

  void PreTokenize(PreTokenized* p) const override {
    std::vector<Span> out;
    out.reserve(p->spans.size() * 2);
    std::vector<std::pair<size_t, size_t>> matches;
    std::vector<Piece> pieces;
    const std::string_view text = p->text;
    for (const auto& [b, e] : p->spans) {
      matches.clear();
      pattern_.FindAll(text.substr(b, e - b), &matches);
      PiecesFromMatches(matches, b, e, invert_, &pieces);
      EmitPieces(pieces, behavior_, &out);
    }
    p->spans.swap(out);
  }

 private:
  Regex pattern_;
  SplitBehavior behavior_;
  bool invert_;
};

// Splits where a per-character predicate holds; every matching character is its own match,
// which is how tokenizers treats `Fn(char) -> bool` patterns.
class CharPredicatePreTokenizer final : public PreTokenizer {
 public:
  CharPredicatePreTokenizer(std::function<bool(uint32_t)> predicate, SplitBehavior behavior)
      : predicate_(std::move(predicate)), behavior_(behavior) {}

  void PreTokenize(PreTokenized* p) const override {
    std::vector<Span> out;
    out.reserve(p->spans.size() * 2);
    std::vector<Piece> pieces;
    const std::string_view text = p->text;
    for (const auto& [b, e] : p->spans) {
      pieces.clear();
      uint32_t last = b;
      size_t pos = b;
      while (pos < e) {
        const auto at = static_cast<uint32_t>(pos);
        const uint32_t cp = NextCodepoint(text, &pos);
        if (predicate_(cp)) {
          if (last < at) pieces.push_back({last, at, false});
          pieces.push_back({at, static_cast<uint32_t>(pos), true});
          last = static_cast<uint32_t>(pos);
        }
      }
      if (last < e) pieces.push_back({last, e, false});
      EmitPieces(pieces, behavior_, &out);
    }
    p->spans.swap(out);
  }

 private:
  std::function<bool(uint32_t)> predicate_;
  SplitBehavior behavior_;
};

class ByteLevelPreTokenizer final : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(const ByteLevelOptions& options, Regex regex)
      : options_(options), regex_(std::move(regex)) {}

  void PreTokenize(PreTokenized* p) const override {
    // Rebuild the text: each word gets its optional prefix space, is split by the GPT-2
    // pattern, and every byte is replaced by its printable stand-in.
    const auto& table = ByteToUnicode();
    std::string out_text;
    out_text.reserve(p->text.size() * 2 + p->spans.size());
    std::vector<Span> out_spans;
    out_spans.reserve(p->spans.size() * 2);
    std::string word;
    std::vector<std::pair<size_t, size_t>> matches;
    for (const auto& [b, e] : p->spans) {
      std::string_view src(p->text.data() + b, e - b);
      if (options_.add_prefix_space && src.front() != ' ') {
        word.assign(" ");
        word.append(src);
        src = word;
      }
      matches.clear();
      if (options_.use_regex) {
        regex_.FindAll(src, &matches);
        // Isolated keeps the gaps between matches as words too.
        std::vector<std::pair<size_t, size_t>> all;
        size_t prev = 0;
        for (const auto& m : matches) {
          if (prev != m.first) all.emplace_back(prev, m.first);
          all.push_back(m);
          prev = m.second;
        }
        if (prev != src.size()) all.emplace_back(prev, src.size());
        matches.swap(all);
      } else {
        matches.emplace_back(0, src.size());
      }
      for (const auto& [mb, me] : matches) {
        if (mb == me) continue;
        const auto start = static_cast<uint32_t>(out_text.size());
        for (size_t i = mb; i < me; ++i) out_text += table[static_cast<unsigned char>(src[i])];
        out_spans.emplace_back(start, static_cast<uint32_t>(out_text.size()));
      }
    }
    p->text.swap(out_text);
    p->spans.swap(out_spans);
  }

 private:
  ByteLevelOptions options_;
  Regex regex_;
};

class MetaspacePreTokenizer final : public PreTokenizer {
 public:
  explicit MetaspacePreTokenizer(MetaspaceOptions options) : options_(std::move(options)) {}

  void PreTokenize(PreTokenized* p) const override {
    const std::string& rep = options_.replacement;
    std::string out_text;
    out_text.reserve(p->text.size() * 3);
    std::vector<Span> out_spans;
    std::vector<Piece> pieces;
    for (size_t si = 0; si < p->spans.size(); ++si) {
      const auto [b, e] = p->spans[si];
      const std::string_view src(p->text.data() + b, e - b);
      const auto start = static_cast<uint32_t>(out_text.size());
      const bool starts_with_rep = src.substr(0, rep.size()) == rep || src.front() == ' ';
      const bool prepend =
          !starts_with_rep && (options_.prepend_scheme == PrependScheme::kAlways ||
                               (options_.prepend_scheme == PrependScheme::kFirst && si == 0 &&
                                b == 0 && p->at_input_start));
      if (prepend) out_text += rep;
      for (char c : src) {
        if (c == ' ') {
          out_text += rep;
        } else {
          out_text.push_back(c);
        }
      }
      const auto end = static_cast<uint32_t>(out_text.size());
      if (!options_.split) {
        out_spans.emplace_back(start, end);
        continue;
      }
      // Split on the replacement, each ▁ starting a new word (MergedWithNext).
      pieces.clear();
      uint32_t last = start;
      size_t pos = start;
      const std::string_view all = out_text;
      while ((pos = all.find(rep, pos)) != std::string_view::npos && pos < end) {
        const auto at = static_cast<uint32_t>(pos);
        if (last < at) pieces.push_back({last, at, false});
        pieces.push_back({at, static_cast<uint32_t>(at + rep.size()), true});
        last = static_cast<uint32_t>(at + rep.size());
        pos = last;
      }
      if (last < end) pieces.push_back({last, end, false});
      EmitPieces(pieces, SplitBehavior::kMergedWithNext, &out_spans);
    }
    p->text.swap(out_text);
    p->spans.swap(out_spans);
  }

 private:
  MetaspaceOptions options_;
};

class SequencePreTokenizer final : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> parts) : parts_(std::move(parts)) {}
  void PreTokenize(PreTokenized* p) const override {
    for (const auto& part : parts_) part->PreTokenize(p);
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> parts_;
};

}  // namespace

std::unique_ptr<PreTokenizer> MakeSplitPreTokenizer(Regex pattern, SplitBehavior behavior, bool invert) {
  return std::make_unique<SplitPreTokenizer>(std::move(pattern), behavior, invert);
}

std::unique_ptr<PreTokenizer> MakeByteLevelPreTokenizer(const ByteLevelOptions& options) {
  // The GPT-2 pattern is a compile-time constant known to compile.
  auto regex = Regex::Compile(kGpt2Pattern);
  return std::make_unique<ByteLevelPreTokenizer>(options, std::move(regex).value());
}

std::unique_ptr<PreTokenizer> MakeMetaspacePreTokenizer(const MetaspaceOptions& options) {
  return std::make_unique<MetaspacePreTokenizer>(options);
}

std::unique_ptr<PreTokenizer> MakeDigitsPreTokenizer(bool individual_digits) {
  return std::make_unique<CharPredicatePreTokenizer>(
      IsNumeric, individual_digits ? SplitBehavior::kIsolated : SplitBehavior::kContiguous);
}

std::unique_ptr<PreTokenizer> MakePunctuationPreTokenizer(SplitBehavior behavior) {
  return std::make_unique<CharPredicatePreTokenizer>(IsPunctuation, behavior);
}

std::unique_ptr<PreTokenizer> MakeWhitespacePreTokenizer() {
  auto regex = Regex::Compile("\\w+|[^\\w\\s]+");
  return std::make_unique<SplitPreTokenizer>(std::move(regex).value(), SplitBehavior::kRemoved,
                                             /*invert=*/true);
}

std::unique_ptr<PreTokenizer> MakeWhitespaceSplitPreTokenizer() {
  return std::make_unique<CharPredicatePreTokenizer>(IsWhitespace, SplitBehavior::kRemoved);
}

std::unique_ptr<PreTokenizer> MakeBertPreTokenizer() {
  std::vector<std::unique_ptr<PreTokenizer>> parts;
  parts.push_back(MakeWhitespaceSplitPreTokenizer());
  parts.push_back(MakePunctuationPreTokenizer(SplitBehavior::kIsolated));
  return MakeSequencePreTokenizer(std::move(parts));
}

std::unique_ptr<PreTokenizer> MakeCharDelimiterPreTokenizer(uint32_t delimiter) {
  return std::make_unique<CharPredicatePreTokenizer>([delimiter](uint32_t cp) { return cp == delimiter; },
                                                     SplitBehavior::kRemoved);
}

std::unique_ptr<PreTokenizer> MakeSequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> parts) {
  return std::make_unique<SequencePreTokenizer>(std::move(parts));
}

}  // namespace fastgen::tok
