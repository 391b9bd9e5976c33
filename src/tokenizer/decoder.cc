#include "tokenizer/decoder.h"

#include "tokenizer/normalizer.h"
#include "tokenizer/unicode.h"

namespace fastgen::tok {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

class ByteLevelDecoder final : public Decoder {
 public:
  void DecodeChain(std::vector<std::string>* tokens) const override { Decode(tokens, true); }
  void DecodeChainBytes(std::vector<std::string>* tokens) const override { Decode(tokens, false); }

 private:
  static void Decode(std::vector<std::string>* tokens, bool sanitize) {
    // Every character of a token maps back to one byte; a token with a character outside the
    // table (an added token such as "<|im_start|>" is fine, its characters are all in it)
    // contributes its raw UTF-8 instead. Invalid UTF-8 in the result becomes U+FFFD.
    std::string bytes;
    for (const std::string& t : *tokens) {
      const size_t mark = bytes.size();
      size_t pos = 0;
      bool ok = true;
      while (pos < t.size()) {
        const int b = UnicodeToByte(NextCodepoint(t, &pos));
        if (b < 0) {
          ok = false;
          break;
        }
        bytes.push_back(static_cast<char>(b));
      }
      if (!ok) {
        bytes.resize(mark);
        bytes += t;
      }
    }
    tokens->assign(1, !sanitize || IsValidUtf8(bytes) ? std::move(bytes) : SanitizeUtf8(bytes));
  }
};

class MetaspaceDecoder final : public Decoder {
 public:
  MetaspaceDecoder(std::string replacement, PrependScheme scheme)
      : replacement_(std::move(replacement)), scheme_(scheme) {}
  void DecodeChain(std::vector<std::string>* tokens) const override {
    for (size_t i = 0; i < tokens->size(); ++i) {
      std::string& t = (*tokens)[i];
      std::string out;
      out.reserve(t.size());
      size_t pos = 0;
      while (pos < t.size()) {
        if (!replacement_.empty() && t.compare(pos, replacement_.size(), replacement_) == 0) {
          // The first token's ▁ was added by the pre-tokenizer, so it decodes to nothing.
          if (i != 0 || scheme_ == PrependScheme::kNever) out.push_back(' ');
          pos += replacement_.size();
        } else {
          out.push_back(t[pos++]);
        }
      }
      t.swap(out);
    }
  }

 private:
  std::string replacement_;
  PrependScheme scheme_;
};

class ReplaceDecoder final : public Decoder {
 public:
  ReplaceDecoder(Regex pattern, std::string content) : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void DecodeChain(std::vector<std::string>* tokens) const override {
    for (std::string& t : *tokens) t = ReplaceAll(pattern_, t, content_);
  }

 private:
  Regex pattern_;
  std::string content_;
};

class ByteFallbackDecoder final : public Decoder {
 public:
  void DecodeChain(std::vector<std::string>* tokens) const override { Decode(tokens, true); }
  void DecodeChainBytes(std::vector<std::string>* tokens) const override { Decode(tokens, false); }

 private:
  static void Decode(std::vector<std::string>* tokens, bool sanitize) {
    std::vector<std::string> out;
    out.reserve(tokens->size());
    std::string pending;
    auto flush = [&] {
      if (pending.empty()) return;
      if (!sanitize || IsValidUtf8(pending)) {
        out.push_back(pending);
      } else {
        // tokenizers emits one U+FFFD per byte of an invalid run, not per maximal subpart.
        for (size_t i = 0; i < pending.size(); ++i) out.push_back(CodepointToUtf8(kReplacementChar));
      }
      pending.clear();
    };
    for (std::string& t : *tokens) {
      if (t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>' && HexValue(t[3]) >= 0 &&
          HexValue(t[4]) >= 0) {
        pending.push_back(static_cast<char>(HexValue(t[3]) * 16 + HexValue(t[4])));
        continue;
      }
      flush();
      out.push_back(std::move(t));
    }
    flush();
    tokens->swap(out);
  }
};

class FuseDecoder final : public Decoder {
 public:
  void DecodeChain(std::vector<std::string>* tokens) const override {
    std::string all;
    for (const std::string& t : *tokens) all += t;
    tokens->assign(1, std::move(all));
  }
};

class StripDecoder final : public Decoder {
 public:
  StripDecoder(std::string content, size_t start, size_t stop)
      : content_(std::move(content)), start_(start), stop_(stop) {}
  void DecodeChain(std::vector<std::string>* tokens) const override {
    for (std::string& t : *tokens) {
      // Work on whole characters: `content` is one character in tokenizer.json.
      std::vector<std::pair<size_t, size_t>> chars;
      size_t pos = 0;
      while (pos < t.size()) {
        const size_t b = pos;
        NextCodepoint(t, &pos);
        chars.emplace_back(b, pos);
      }
      auto is_content = [&](size_t i) {
        return std::string_view(t).substr(chars[i].first, chars[i].second - chars[i].first) == content_;
      };
      size_t start_cut = 0;
      for (size_t i = 0; i < start_ && i < chars.size() && is_content(i); ++i) start_cut = i + 1;
      size_t stop_cut = chars.size();
      for (size_t i = 0; i < stop_ && i < chars.size(); ++i) {
        const size_t index = chars.size() - i - 1;
        if (index < start_cut || !is_content(index)) break;
        stop_cut = index;
      }
      if (start_cut >= stop_cut) {
        t.clear();
      } else {
        const size_t b = chars[start_cut].first;
        const size_t e = stop_cut == chars.size() ? t.size() : chars[stop_cut].first;
        t = t.substr(b, e - b);
      }
    }
  }

 private:
  std::string content_;
  size_t start_, stop_;
};

void ReplaceEvery(std::string* s, std::string_view from, std::string_view to) {
  if (from.empty()) return;
  size_t pos = 0;
  while ((pos = s->find(from, pos)) != std::string::npos) {
    s->replace(pos, from.size(), to);
    pos += to.size();
  }
}

class WordPieceDecoder final : public Decoder {
 public:
  WordPieceDecoder(std::string prefix, bool cleanup) : prefix_(std::move(prefix)), cleanup_(cleanup) {}
  void DecodeChain(std::vector<std::string>* tokens) const override {
    for (size_t i = 0; i < tokens->size(); ++i) {
      std::string& t = (*tokens)[i];
      if (i != 0) {
        if (!prefix_.empty() && t.compare(0, prefix_.size(), prefix_) == 0) {
          t.erase(0, prefix_.size());
        } else {
          t.insert(0, " ");
        }
      }
      if (cleanup_) {
        static constexpr std::pair<std::string_view, std::string_view> kRules[] = {
            {" .", "."},   {" ?", "?"},     {" !", "!"},     {" ,", ","},         {" ' ", "'"},  {" n't", "n't"},
            {" 'm", "'m"}, {" do not", " don't"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
        for (const auto& [from, to] : kRules) ReplaceEvery(&t, from, to);
      }
    }
  }

 private:
  std::string prefix_;
  bool cleanup_;
};

class BpeSuffixDecoder final : public Decoder {
 public:
  explicit BpeSuffixDecoder(std::string suffix) : suffix_(std::move(suffix)) {}
  void DecodeChain(std::vector<std::string>* tokens) const override {
    for (size_t i = 0; i < tokens->size(); ++i) {
      ReplaceEvery(&(*tokens)[i], suffix_, i + 1 == tokens->size() ? "" : " ");
    }
  }

 private:
  std::string suffix_;
};

class SequenceDecoder final : public Decoder {
 public:
  explicit SequenceDecoder(std::vector<std::unique_ptr<Decoder>> parts) : parts_(std::move(parts)) {}
  void DecodeChain(std::vector<std::string>* tokens) const override {
    for (const auto& p : parts_) p->DecodeChain(tokens);
  }
  void DecodeChainBytes(std::vector<std::string>* tokens) const override {
    for (const auto& p : parts_) p->DecodeChainBytes(tokens);
  }

 private:
  std::vector<std::unique_ptr<Decoder>> parts_;
};

}  // namespace

std::unique_ptr<Decoder> MakeByteLevelDecoder() { return std::make_unique<ByteLevelDecoder>(); }
std::unique_ptr<Decoder> MakeMetaspaceDecoder(std::string replacement, PrependScheme scheme) {
  return std::make_unique<MetaspaceDecoder>(std::move(replacement), scheme);
}
std::unique_ptr<Decoder> MakeReplaceDecoder(Regex pattern, std::string content) {
  return std::make_unique<ReplaceDecoder>(std::move(pattern), std::move(content));
}
std::unique_ptr<Decoder> MakeByteFallbackDecoder() { return std::make_unique<ByteFallbackDecoder>(); }
std::unique_ptr<Decoder> MakeFuseDecoder() { return std::make_unique<FuseDecoder>(); }
std::unique_ptr<Decoder> MakeStripDecoder(std::string content, size_t start, size_t stop) {
  return std::make_unique<StripDecoder>(std::move(content), start, stop);
}
std::unique_ptr<Decoder> MakeWordPieceDecoder(std::string prefix, bool cleanup) {
  return std::make_unique<WordPieceDecoder>(std::move(prefix), cleanup);
}
std::unique_ptr<Decoder> MakeBpeSuffixDecoder(std::string suffix) {
  return std::make_unique<BpeSuffixDecoder>(std::move(suffix));
}
std::unique_ptr<Decoder> MakeSequenceDecoder(std::vector<std::unique_ptr<Decoder>> parts) {
  return std::make_unique<SequenceDecoder>(std::move(parts));
}

}  // namespace fastgen::tok
