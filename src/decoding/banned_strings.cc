#include "decoding/banned_strings.h"

#include <algorithm>

namespace fastgen {

BannedStrings::BannedStrings(std::vector<std::string> banned, const std::vector<std::string>* token_bytes)
    : banned_(std::move(banned)), token_bytes_(token_bytes) {
  std::erase_if(banned_, [](const std::string& b) { return b.empty(); });
}

int64_t BannedStrings::Push(int32_t token) {
  const size_t before = text_.size();
  starts_.push_back(before);
  if (token >= 0 && static_cast<size_t>(token) < token_bytes_->size()) text_ += (*token_bytes_)[static_cast<size_t>(token)];
  // The text before this token held no banned string, so an occurrence now ends in its bytes.
  size_t first = std::string::npos;
  for (const std::string& b : banned_) {
    const size_t from = before + 1 > b.size() ? before + 1 - b.size() : 0;
    const size_t at = text_.find(b, from);
    if (at != std::string::npos) first = std::min(first, at);
  }
  if (first == std::string::npos) return -1;
  // The token whose bytes hold the occurrence's first byte: the last one starting at or before it.
  const auto it = std::upper_bound(starts_.begin(), starts_.end(), first);
  return std::max<int64_t>(static_cast<int64_t>(it - starts_.begin()) - 1, 0);
}

void BannedStrings::Rewind(int64_t index) {
  if (index >= size()) return;
  text_.resize(starts_[static_cast<size_t>(index)]);
  starts_.resize(static_cast<size_t>(index));
}

int64_t BannedStrings::Safe() const {
  // The earliest byte a banned string could still start at: a suffix of the text that is a
  // proper prefix of one.
  size_t hold = text_.size();
  for (const std::string& b : banned_) {
    const size_t longest = std::min(b.size() - 1, text_.size());
    for (size_t n = longest; n > 0; --n) {
      if (text_.compare(text_.size() - n, n, b, 0, n) == 0) {
        hold = std::min(hold, text_.size() - n);
        break;  // the longest such suffix starts earliest
      }
    }
  }
  // Tokens that end at or before `hold` are safe.
  int64_t safe = 0;
  while (safe < size()) {
    const size_t end = safe + 1 < size() ? starts_[static_cast<size_t>(safe) + 1] : text_.size();
    if (end > hold) break;
    ++safe;
  }
  return safe;
}

}  // namespace fastgen
