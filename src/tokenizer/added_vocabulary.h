// Added tokens (tokenizer.json "added_tokens", GGUF control and user-defined tokens): matched
// in the text before normalization and pre-tokenization, leftmost-longest, with tokenizers'
// lstrip / rstrip / single_word rules. Tokens with `normalized: true` are matched in the
// normalized text instead, against their own normalized form.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace fastgen::tok {

class Normalizer;

struct AddedToken {
  std::string content;
  int32_t id = 0;
  bool special = false;
  bool lstrip = false;
  bool rstrip = false;
  bool single_word = false;
  bool normalized = false;
};

// A piece of text: either an added token (`id >= 0`) or plain text (`id == -1`).
struct TextSegment {
  size_t begin, end;
  int32_t id;
};

class AddedVocabulary {
 public:
  // `normalizer` (may be null) is applied to the content of `normalized` tokens.
  void Build(std::vector<AddedToken> tokens, const Normalizer* normalizer);

  // Cuts `text` at the added tokens matched in raw text (normalized == false). With
  // `parse_special` false, special tokens are read as plain text.
  void SplitRaw(std::string_view text, bool parse_special, std::vector<TextSegment>* out) const {
    Split(raw_, text, parse_special, out);
  }
  // Cuts already-normalized text at the `normalized == true` tokens.
  void SplitNormalized(std::string_view text, bool parse_special, std::vector<TextSegment>* out) const {
    Split(normalized_, text, parse_special, out);
  }
  bool has_normalized_tokens() const { return !normalized_.nodes.empty() && normalized_.count > 0; }

  const AddedToken* FindById(int32_t id) const;
  const AddedToken* FindByContent(std::string_view content) const;
  const std::vector<AddedToken>& tokens() const { return tokens_; }

 private:
  // A byte trie over token contents; `token` is the index into tokens_ ending at a node.
  struct Trie {
    struct Node {
      std::vector<std::pair<uint8_t, int32_t>> children;
      int32_t token = -1;
    };
    std::vector<Node> nodes;
    bool first_byte[256] = {};
    size_t count = 0;
    void Insert(std::string_view key, int32_t token);
    // Longest token starting at text[pos]: returns its index and sets *end, or -1.
    int32_t LongestAt(std::string_view text, size_t pos, size_t* end) const;
  };
  void Split(const Trie& trie, std::string_view text, bool parse_special, std::vector<TextSegment>* out) const;

  std::vector<AddedToken> tokens_;
  std::unordered_map<int32_t, size_t> by_id_;
  std::unordered_map<std::string, size_t> by_content_;
  Trie raw_, normalized_;
};

}  // namespace fastgen::tok
