#include "tokenizer/added_vocabulary.h"

#include "tokenizer/normalizer.h"
#include "tokenizer/unicode.h"

namespace fastgen::tok {
namespace {

// Word characters for single_word: Rust's char::is_alphanumeric plus '_'.
bool IsWordChar(uint32_t cp) { return cp == '_' || IsAlphanumeric(cp); }

uint32_t LastCodepoint(std::string_view s) {
  size_t i = s.size();
  while (i > 0 && (static_cast<unsigned char>(s[i - 1]) & 0xC0) == 0x80) --i;
  if (i > 0) --i;
  size_t pos = i;
  return NextCodepoint(s, &pos);
}

}  // namespace

void AddedVocabulary::Trie::Insert(std::string_view key, int32_t token) {
  if (key.empty()) return;
  if (nodes.empty()) nodes.emplace_back();
  int32_t node = 0;
  for (unsigned char c : key) {
    int32_t next = -1;
    for (const auto& [byte, child] : nodes[node].children) {
      if (byte == c) next = child;
    }
    if (next < 0) {
      next = static_cast<int32_t>(nodes.size());
      nodes[node].children.emplace_back(c, next);
      nodes.emplace_back();
    }
    node = next;
  }
  // The first token with a given content wins, as a duplicate pattern in Aho-Corasick would.
  if (nodes[node].token < 0) {
    nodes[node].token = token;
    ++count;
  }
  first_byte[static_cast<unsigned char>(key[0])] = true;
}

int32_t AddedVocabulary::Trie::LongestAt(std::string_view text, size_t pos, size_t* end) const {
  int32_t node = 0, best = -1;
  for (size_t i = pos; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    int32_t next = -1;
    for (const auto& [byte, child] : nodes[node].children) {
      if (byte == c) {
        next = child;
        break;
      }
    }
    if (next < 0) break;
    node = next;
    if (nodes[node].token >= 0) {
      best = nodes[node].token;
      *end = i + 1;
    }
  }
  return best;
}

void AddedVocabulary::Build(std::vector<AddedToken> tokens, const Normalizer* normalizer) {
  tokens_ = std::move(tokens);
  by_id_.clear();
  by_content_.clear();
  raw_ = Trie();
  normalized_ = Trie();
  for (size_t i = 0; i < tokens_.size(); ++i) {
    const AddedToken& t = tokens_[i];
    by_id_.emplace(t.id, i);
    by_content_.emplace(t.content, i);
    if (t.normalized) {
      std::string key = t.content;
      if (normalizer != nullptr) normalizer->Normalize(&key);
      normalized_.Insert(key, static_cast<int32_t>(i));
    } else {
      raw_.Insert(t.content, static_cast<int32_t>(i));
    }
  }
}

const AddedToken* AddedVocabulary::FindById(int32_t id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &tokens_[it->second];
}

const AddedToken* AddedVocabulary::FindByContent(std::string_view content) const {
  auto it = by_content_.find(std::string(content));
  return it == by_content_.end() ? nullptr : &tokens_[it->second];
}

void AddedVocabulary::Split(const Trie& trie, std::string_view text, bool parse_special,
                            std::vector<TextSegment>* out) const {
  out->clear();
  size_t start_offset = 0;
  if (trie.count > 0) {
    size_t pos = 0;
    while (pos < text.size()) {
      if (!trie.first_byte[static_cast<unsigned char>(text[pos])]) {
        ++pos;
        continue;
      }
      size_t stop = 0;
      const int32_t index = trie.LongestAt(text, pos, &stop);
      if (index < 0) {
        ++pos;
        continue;
      }
      size_t start = pos;
      // Like Aho-Corasick's non-overlapping iterator, a match that is then rejected still
      // consumes its bytes.
      pos = stop;
      const AddedToken& token = tokens_[index];
      if (!parse_special && token.special) continue;
      if (token.single_word) {
        const bool space_before = start == 0 || !IsWordChar(LastCodepoint(text.substr(0, start)));
        size_t after = stop;
        const bool space_after = stop == text.size() || !IsWordChar(NextCodepoint(text, &after));
        if (!space_before || !space_after) continue;
      }
      if (token.lstrip) {
        // Back over the whitespace before the token, but never into the previous match.
        size_t s = start;
        while (s > start_offset) {
          size_t b = s - 1;
          while (b > 0 && (static_cast<unsigned char>(text[b]) & 0xC0) == 0x80) --b;
          size_t tmp = b;
          if (!IsWhitespace(NextCodepoint(text, &tmp))) break;
          s = b;
        }
        start = s;
      }
      if (token.rstrip) {
        size_t e = stop;
        while (e < text.size()) {
          size_t tmp = e;
          if (!IsWhitespace(NextCodepoint(text, &tmp))) break;
          e = tmp;
        }
        stop = e;
        pos = stop;
      }
      if (start_offset < start) out->push_back({start_offset, start, -1});
      out->push_back({start, stop, token.id});
      start_offset = stop;
    }
  }
  if (start_offset < text.size() || out->empty()) out->push_back({start_offset, text.size(), -1});
}

}  // namespace fastgen::tok
