// Banned strings: text the output must never contain, however the tokens split it (a word, a
// known-vulnerable call such as "strcpy(", a leaked secret's prefix). As vulnerability-constrained
// decoding does, generation rewinds to the token where a banned string began and samples that
// position again with the token that led there banned; text that could still turn into a banned
// string is held back from the stream until it cannot.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace fastgen {

class BannedStrings {
 public:
  // token_bytes[id]: each token's bytes mid-text (Tokenizer::TokenBytes); must outlive this.
  BannedStrings(std::vector<std::string> banned, const std::vector<std::string>* token_bytes);

  // Appends a generated token. Returns the index (into the generated tokens) of the token where a
  // banned string now present begins, or -1 when the text is clean.
  int64_t Push(int32_t token);
  // Drops the generated tokens from `index` on.
  void Rewind(int64_t index);
  // Generated tokens no banned string can still reach: [0, Safe()) may be shown.
  int64_t Safe() const;
  int64_t size() const { return static_cast<int64_t>(starts_.size()); }
  const std::vector<std::string>& banned() const { return banned_; }

 private:
  std::vector<std::string> banned_;
  const std::vector<std::string>* token_bytes_;
  std::string text_;             // the generated tokens' bytes
  std::vector<size_t> starts_;   // [generated] where each token's bytes begin in text_
};

}  // namespace fastgen
