#include "tokenizer/bpe_model.h"

#include <algorithm>
#include <cstdio>
#include <mutex>
#include <numeric>
#include <queue>

#include "tokenizer/unicode.h"

namespace fastgen::tok {
namespace {

// Code points below this get a direct-indexed initial-symbol table; it covers ASCII, Latin,
// Greek, Cyrillic and the GPT-2 byte stand-ins, i.e. nearly every character of typical text.
constexpr uint32_t kSmallChars = 0x800;
// Words longer than this are tokenized but not cached, bounding the cache's memory per entry.
constexpr size_t kMaxCachedWordBytes = 256;
// Entries beyond this are not inserted (tokenizers' cache stops growing the same way).
constexpr size_t kMaxCacheEntries = 1 << 18;

}  // namespace

void PairMergeMap::Reserve(size_t n) {
  size_t cap = 16;
  while (cap < n * 2) cap <<= 1;
  slots_.assign(cap, Slot{});
  shift_ = 64 - __builtin_ctzll(cap);
  size_ = 0;
}

void PairMergeMap::Grow() {
  std::vector<Slot> old;
  old.swap(slots_);
  Reserve(std::max<size_t>(16, old.size()));
  for (const Slot& s : old) {
    if (s.key != kEmpty) {
      Insert(static_cast<int32_t>(s.key >> 32), static_cast<int32_t>(s.key & 0xFFFFFFFFu), s.merge);
    }
  }
}

void PairMergeMap::Insert(int32_t a, int32_t b, Merge m) {
  if ((size_ + 1) * 2 > slots_.size()) Grow();
  const uint64_t key = Key(a, b);
  const size_t mask = slots_.size() - 1;
  for (size_t i = Index(key);; i = (i + 1) & mask) {
    if (slots_[i].key == key) return;
    if (slots_[i].key == kEmpty) {
      slots_[i].key = key;
      slots_[i].merge = m;
      ++size_;
      return;
    }
  }
}

const PairMergeMap::Merge* PairMergeMap::Find(int32_t a, int32_t b) const {
  if (slots_.empty()) return nullptr;
  const uint64_t key = Key(a, b);
  const size_t mask = slots_.size() - 1;
  for (size_t i = Index(key);; i = (i + 1) & mask) {
    if (slots_[i].key == key) return &slots_[i].merge;
    if (slots_[i].key == kEmpty) return nullptr;
  }
}

BpeModel::BpeModel(BpeModel&& other) noexcept
    : vocab_(std::move(other.vocab_)),
      id_to_token_(std::move(other.id_to_token_)),
      has_token_(std::move(other.has_token_)),
      merges_(std::move(other.merges_)),
      options_(std::move(other.options_)),
      unk_id_(other.unk_id_),
      byte_ids_(other.byte_ids_),
      small_char_ids_(std::move(other.small_char_ids_)) {}

BpeModel& BpeModel::operator=(BpeModel&& other) noexcept {
  vocab_ = std::move(other.vocab_);
  id_to_token_ = std::move(other.id_to_token_);
  has_token_ = std::move(other.has_token_);
  merges_ = std::move(other.merges_);
  options_ = std::move(other.options_);
  unk_id_ = other.unk_id_;
  byte_ids_ = other.byte_ids_;
  small_char_ids_ = std::move(other.small_char_ids_);
  cache_.clear();
  return *this;
}

Status BpeModel::CheckIds() const {
  // Ids index dense tables, so a few wild ids must not make the loader allocate gigabytes.
  const size_t limit = vocab_.size() * 4 + (1u << 16);
  for (const auto& [tok, id] : vocab_) {
    if (id < 0 || static_cast<size_t>(id) >= limit) {
      return InvalidArgument("model.vocab: token '" + tok + "' has id " + std::to_string(id) + ", outside 0.." +
                             std::to_string(limit - 1) + " for a vocabulary of " + std::to_string(vocab_.size()));
    }
  }
  return Status::Ok();
}

void BpeModel::InitLookups() {
  int32_t max_id = -1;
  for (const auto& [tok, id] : vocab_) max_id = std::max(max_id, id);
  id_to_token_.assign(static_cast<size_t>(max_id + 1), std::string());
  has_token_.assign(static_cast<size_t>(max_id + 1), false);
  for (const auto& [tok, id] : vocab_) {
    id_to_token_[id] = tok;
    has_token_[id] = true;
  }
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    auto it = vocab_.find(std::string_view(name));
    byte_ids_[b] = it == vocab_.end() ? -1 : it->second;
  }
  small_char_ids_.assign(kSmallChars, -1);
  for (uint32_t cp = 0; cp < kSmallChars; ++cp) {
    auto it = vocab_.find(CodepointToUtf8(cp));
    if (it != vocab_.end()) small_char_ids_[cp] = it->second;
  }
  unk_id_.reset();
  if (options_.unk_token) {
    auto it = vocab_.find(*options_.unk_token);
    if (it != vocab_.end()) unk_id_ = it->second;
  }
}

Expected<BpeModel> BpeModel::Create(TokenMap vocab, const std::vector<std::pair<std::string, std::string>>& merges,
                                    BpeOptions options) {
  BpeModel m;
  m.vocab_ = std::move(vocab);
  m.options_ = std::move(options);
  FG_RETURN_IF_ERROR(m.CheckIds());
  m.InitLookups();
  if (m.options_.unk_token && !m.unk_id_) {
    return InvalidArgument("model.unk_token: '" + *m.options_.unk_token + "' is not in model.vocab");
  }
  const size_t prefix_len = m.options_.continuing_subword_prefix.size();
  m.merges_.Reserve(merges.size());
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [left, right] = merges[rank];
    auto a = m.vocab_.find(left);
    auto b = m.vocab_.find(right);
    if (a == m.vocab_.end() || b == m.vocab_.end()) {
      return InvalidArgument("model.merges[" + std::to_string(rank) + "]: token '" +
                             (a == m.vocab_.end() ? left : right) + "' is not in model.vocab");
    }
    // With a continuing-subword prefix the right part carries the prefix, which the merged
    // token does not repeat ("##b" + "##c" -> "##bc").
    std::string merged = left;
    if (prefix_len > 0 && right.compare(0, prefix_len, m.options_.continuing_subword_prefix) == 0) {
      merged.append(right, prefix_len, std::string::npos);
    } else {
      merged.append(right);
    }
    auto c = m.vocab_.find(merged);
    if (c == m.vocab_.end()) {
      return InvalidArgument("model.merges[" + std::to_string(rank) + "]: merged token '" + merged +
                             "' is not in model.vocab");
    }
    m.merges_.Insert(a->second, b->second, {static_cast<int32_t>(rank), c->second});
  }
  return m;
}

Expected<BpeModel> BpeModel::CreateFromScores(TokenMap vocab, const std::vector<float>& scores,
                                              BpeOptions options) {
  BpeModel m;
  m.vocab_ = std::move(vocab);
  m.options_ = std::move(options);
  FG_RETURN_IF_ERROR(m.CheckIds());
  m.InitLookups();
  if (scores.size() < m.id_to_token_.size()) {
    return InvalidArgument("tokenizer.ggml.scores: " + std::to_string(scores.size()) + " scores for " +
                           std::to_string(m.id_to_token_.size()) + " tokens");
  }
  // Rank every token by descending score (ties by id); a pair's rank is its result's rank, so
  // different splits of the same token compete only by position, as in llama.cpp's SPM merge.
  std::vector<int32_t> order(m.id_to_token_.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int32_t x, int32_t y) { return scores[x] > scores[y]; });
  std::vector<int32_t> rank(order.size());
  for (size_t r = 0; r < order.size(); ++r) rank[order[r]] = static_cast<int32_t>(r);
  m.merges_.Reserve(m.vocab_.size() * 2);
  for (const auto& [tok, id] : m.vocab_) {
    // A token that is not UTF-8 (possible in a hostile GGUF) can never be formed from text.
    if (!IsValidUtf8(tok) || tok.empty()) continue;
    // Every split point of the token at a character boundary whose halves are tokens.
    size_t pos = 0;
    NextCodepoint(tok, &pos);
    while (pos < tok.size()) {
      auto a = m.vocab_.find(std::string_view(tok).substr(0, pos));
      auto b = m.vocab_.find(std::string_view(tok).substr(pos));
      if (a != m.vocab_.end() && b != m.vocab_.end()) m.merges_.Insert(a->second, b->second, {rank[id], id});
      NextCodepoint(tok, &pos);
    }
  }
  return m;
}

std::optional<int32_t> BpeModel::TokenToId(std::string_view token) const {
  auto it = vocab_.find(token);
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

const std::string* BpeModel::IdToToken(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= id_to_token_.size() || !has_token_[id]) return nullptr;
  return &id_to_token_[id];
}

void BpeModel::Tokenize(std::string_view word, std::vector<int32_t>* out) const {
  if (word.empty()) return;
  if (options_.ignore_merges) {
    auto it = vocab_.find(word);
    if (it != vocab_.end()) {
      out->push_back(it->second);
      return;
    }
  }
  const bool cacheable = word.size() <= kMaxCachedWordBytes;
  if (cacheable) {
    std::shared_lock lock(cache_mutex_);
    auto it = cache_.find(word);
    if (it != cache_.end()) {
      out->insert(out->end(), it->second.begin(), it->second.end());
      return;
    }
  }
  const size_t first = out->size();
  TokenizeUncached(word, out);
  if (cacheable) {
    std::unique_lock lock(cache_mutex_);
    if (cache_.size() < kMaxCacheEntries) {
      cache_.emplace(std::string(word), std::vector<int32_t>(out->begin() + first, out->end()));
    }
  }
}

void BpeModel::TokenizeUncached(std::string_view word, std::vector<int32_t>* out) const {
  std::vector<int32_t> symbols;
  symbols.reserve(word.size());
  const bool plain = options_.continuing_subword_prefix.empty() && options_.end_of_word_suffix.empty();
  int32_t pending_unk = -1;  // an unknown run waiting to be emitted (fuse_unk), -1 when none
  std::string piece;
  size_t pos = 0;
  while (pos < word.size()) {
    const size_t start = pos;
    const uint32_t cp = NextCodepoint(word, &pos);
    const bool is_first = start == 0;
    const bool is_last = pos == word.size();
    int32_t id = -1;
    std::string_view s = word.substr(start, pos - start);
    if (plain) {
      if (cp < kSmallChars) {
        id = small_char_ids_[cp];
      } else {
        auto it = vocab_.find(s);
        if (it != vocab_.end()) id = it->second;
      }
    } else {
      piece.clear();
      if (!is_first) piece += options_.continuing_subword_prefix;
      piece.append(s);
      if (is_last) piece += options_.end_of_word_suffix;
      s = piece;
      auto it = vocab_.find(s);
      if (it != vocab_.end()) id = it->second;
    }
    if (id >= 0) {
      if (pending_unk >= 0) {
        symbols.push_back(pending_unk);
        pending_unk = -1;
      }
      symbols.push_back(id);
      continue;
    }
    if (options_.byte_fallback) {
      bool all = true;
      for (unsigned char c : s) all = all && byte_ids_[c] >= 0;
      if (all) {
        // tokenizers emits the byte tokens without first flushing a pending unknown token.
        for (unsigned char c : s) symbols.push_back(byte_ids_[c]);
        continue;
      }
    }
    if (unk_id_) {
      if (pending_unk >= 0 && !options_.fuse_unk) symbols.push_back(pending_unk);
      pending_unk = *unk_id_;
    }
    // Without an unknown token the character is dropped, as in tokenizers.
  }
  if (pending_unk >= 0) symbols.push_back(pending_unk);
  MergeSymbols(&symbols);
  out->insert(out->end(), symbols.begin(), symbols.end());
}

void BpeModel::MergeSymbols(std::vector<int32_t>* ids) const {
  const size_t n = ids->size();
  if (n < 2 || merges_.size() == 0) return;
  struct Symbol {
    int32_t id;
    int32_t prev, next;  // -1 at the ends
    bool alive;
  };
  struct Candidate {
    int32_t rank;
    int32_t pos;
    int32_t new_id;
    // std::priority_queue is a max-heap: invert so the lowest rank, then leftmost, pops first.
    bool operator<(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::vector<Symbol> sym(n);
  for (size_t i = 0; i < n; ++i) {
    sym[i] = {(*ids)[i], static_cast<int32_t>(i) - 1, i + 1 < n ? static_cast<int32_t>(i + 1) : -1, true};
  }
  std::vector<Candidate> heap_storage;
  heap_storage.reserve(n);
  std::priority_queue<Candidate> queue(std::less<Candidate>(), std::move(heap_storage));
  for (size_t i = 0; i + 1 < n; ++i) {
    if (const auto* m = merges_.Find(sym[i].id, sym[i + 1].id)) {
      queue.push({m->rank, static_cast<int32_t>(i), m->new_id});
    }
  }
  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    Symbol& cur = sym[top.pos];
    if (!cur.alive || cur.next < 0) continue;
    Symbol& right = sym[cur.next];
    // Skip entries made stale by earlier merges: the pair at this position must still merge
    // into the same token.
    const auto* m = merges_.Find(cur.id, right.id);
    if (m == nullptr || m->new_id != top.new_id) continue;
    cur.id = top.new_id;
    right.alive = false;
    cur.next = right.next;
    if (right.next >= 0) sym[right.next].prev = top.pos;
    if (cur.prev >= 0) {
      if (const auto* pm = merges_.Find(sym[cur.prev].id, cur.id)) queue.push({pm->rank, cur.prev, pm->new_id});
    }
    if (cur.next >= 0) {
      if (const auto* nm = merges_.Find(cur.id, sym[cur.next].id)) queue.push({nm->rank, top.pos, nm->new_id});
    }
  }
  ids->clear();
  for (int32_t i = 0; i >= 0; i = sym[i].next) ids->push_back(sym[i].id);
}

}  // namespace fastgen::tok
