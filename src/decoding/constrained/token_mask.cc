#include "decoding/constrained/token_mask.h"

#include <algorithm>
#include <climits>
#include <iterator>
#include <numeric>

namespace fastgen::constrained {
namespace {

// Frames kept when a stack is classified from its top alone. Deeper cuts leave fewer undecided
// tokens but make more distinct truncated stacks (which all need a walk of their own); three
// cover a JSON string's characters, its repetition and its closing quote, so every string of a
// schema that uses the same string rule shares one walk (3 gave the fewest walks in
// tools/grammar_bench's document: 173, against 302 for 2 and similar totals for 4 and 5).
constexpr int kTruncateDepth = 3;
// Per-stack masks kept before the cache is cleared (a bitset is vocab/8 bytes: 16 KB at 128k).
constexpr size_t kMaxCachedStacks = 2048;
// Inside a long bounded repetition the loop's walk serves every count left when at most this
// many strings are too long for the count (they are checked against the whole stack): on Llama
// 3's vocabulary, counts of 10 and more.
constexpr size_t kFewLonger = 8192;
// A walk's start state that at least this many ASCII bytes lead back to is walked as a loop
// (GrammarMaskCache::LoopStringsOf): a JSON string's content has 94.
constexpr int kMinLoopingBytes = 64;
// Walk states kept with their transition tables before the table is dropped and rebuilt.
constexpr size_t kMaxDfaStates = 16384;

void SetBit(std::vector<uint64_t>* bits, int32_t id) { (*bits)[id >> 6] |= uint64_t{1} << (id & 63); }

}  // namespace

TokenVocabulary::TokenVocabulary(std::vector<std::string> token_bytes) : bytes_(std::move(token_bytes)) {
  std::vector<int32_t> order;
  for (int32_t id = 0; id < size(); ++id) {
    if (!bytes_[id].empty()) order.push_back(id);
  }
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
    return bytes_[a] != bytes_[b] ? bytes_[a] < bytes_[b] : a < b;
  });
  id_offsets_.push_back(0);
  for (int32_t id : order) {
    const std::string& s = bytes_[id];
    if (strings_.empty() || strings_.back() != s) {
      if (!strings_.empty()) id_offsets_.push_back(static_cast<int32_t>(id_list_.size()));
      strings_.push_back(s);
    }
    id_list_.push_back(id);
  }
  id_offsets_.push_back(static_cast<int32_t>(id_list_.size()));
  if (strings_.empty()) id_offsets_.assign(1, 0);

  // The trie in depth-first order: string k adds the nodes for its bytes past the common prefix
  // with string k-1; a node's subtree ends where a later string's common prefix drops below the
  // node's depth (open[d] is the node at depth d on the current path).
  std::vector<int32_t> open;
  for (int32_t k = 0; k < string_count(); ++k) {
    const std::string& str = strings_[k];
    size_t keep = 0;  // the common prefix with string k-1
    if (k > 0) {
      const std::string& prev = strings_[k - 1];
      while (keep < std::min(prev.size(), str.size()) && prev[keep] == str[keep]) ++keep;
    }
    while (open.size() > keep) {
      trie_.end[open.back()] = static_cast<int32_t>(trie_.size());
      open.pop_back();
    }
    for (size_t d = keep; d < str.size(); ++d) {
      open.push_back(static_cast<int32_t>(trie_.size()));
      trie_.byte.push_back(static_cast<uint8_t>(str[d]));
      trie_.depth.push_back(static_cast<int32_t>(d + 1));
      trie_.end.push_back(0);
      trie_.string.push_back(-1);
    }
    trie_.string[open.back()] = k;  // strings are distinct and non-empty: the path ends at a new node
  }
  while (!open.empty()) {
    trie_.end[open.back()] = static_cast<int32_t>(trie_.size());
    open.pop_back();
  }

  // Characters per string: the bytes that do not continue a character, plus one for a string
  // that starts inside one.
  std::vector<int32_t> chars(strings_.size());
  int32_t most = 0;
  for (size_t k = 0; k < strings_.size(); ++k) {
    int32_t n = 0;
    for (char c : strings_[k]) n += (static_cast<uint8_t>(c) & 0xC0) != 0x80;
    if (n == 0 || (static_cast<uint8_t>(strings_[k][0]) & 0xC0) == 0x80) ++n;
    chars[k] = n;
    most = std::max(most, n);
  }
  by_chars_.resize(strings_.size());
  std::iota(by_chars_.begin(), by_chars_.end(), 0);
  std::stable_sort(by_chars_.begin(), by_chars_.end(), [&](int32_t a, int32_t b) { return chars[a] > chars[b]; });
  longer_.assign(static_cast<size_t>(most) + 1, 0);
  for (int32_t c = 0; c <= most; ++c)
    while (longer_[c] < by_chars_.size() && chars[by_chars_[longer_[c]]] > c) ++longer_[c];
}

GrammarMaskCache::GrammarMaskCache(std::shared_ptr<const Grammar> grammar, std::shared_ptr<const TokenVocabulary> vocab)
    : vocab_(std::move(vocab)), matcher_(std::move(grammar)), words_((vocab_->size() + 63) / 64) {
  size_t longest = 0;
  for (int32_t k = 0; k < vocab_->string_count(); ++k) longest = std::max(longest, vocab_->string(k).size());
  depth_states_.resize(longest + 1);
  ClearDfa();
}

void GrammarMaskCache::ClearDfa() {
  dfa_states_.assign(2, WalkState{});
  dfa_states_[kUndecided].bottom = true;
  dfa_index_.clear();
  dfa_next_.assign(2 * 256, kDead);  // the dead states stay dead
}

int32_t GrammarMaskCache::Intern(MatchState match, bool bottom) {
  if (match.stacks.empty()) return bottom ? kUndecided : kDead;
  uint64_t h = bottom ? 0x9e3779b97f4a7c15ull : 0;
  for (int32_t s : match.stacks) h = (h ^ static_cast<uint32_t>(s)) * 0x100000001b3ull;
  h ^= (uint64_t{match.partial.value} << 8) ^ (uint64_t{match.partial.remaining} << 40) ^ (uint64_t{match.partial.read} << 48);
  std::vector<int32_t>& bucket = dfa_index_[h];
  for (int32_t id : bucket) {
    if (dfa_states_[id].bottom == bottom && dfa_states_[id].match == match) return id;
  }
  const auto id = static_cast<int32_t>(dfa_states_.size());
  dfa_states_.push_back({std::move(match), bottom});
  dfa_next_.resize(dfa_states_.size() * 256, -1);
  bucket.push_back(id);
  return id;
}

int32_t GrammarMaskCache::Next(int32_t state, uint8_t byte) {
  const size_t slot = static_cast<size_t>(state) * 256 + byte;
  if (dfa_next_[slot] >= 0) return dfa_next_[slot];
  bool bottom = dfa_states_[state].bottom;
  MatchState to;
  matcher_.Advance(dfa_states_[state].match, byte, &to, &bottom);
  const int32_t next = Intern(std::move(to), bottom);
  dfa_next_[slot] = next;  // after Intern: it may have grown the table
  return next;
}

void GrammarMaskCache::Walk(const MatchState& start, const std::vector<int32_t>* subset,
                           std::vector<uint64_t>* accepted, std::vector<int32_t>* uncertain) {
  const int32_t s0 = Intern(start, false);
  if (subset) {
    WalkSubset(s0, *subset, accepted);
  } else {
    WalkTrie(s0, accepted, uncertain);
  }
}

namespace {

// Whether `s` is UTF-8 made of whole characters but for a last one that may be cut short, its
// first character in `first` and the others in `rest`.
bool IsMadeOf(const std::string& s, const CharSet& first, const CharSet& rest) {
  for (size_t i = 0; i < s.size();) {
    const CharSet& set = i == 0 ? first : rest;
    const auto c = static_cast<uint8_t>(s[i]);
    if (c < 0x80) {
      if (!set.Has(c)) return false;
      ++i;
      continue;
    }
    if (!set.non_ascii) return false;
    size_t n;
    uint8_t lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
      n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 3;
      lo = c == 0xE0 ? 0xA0 : 0x80;
      hi = c == 0xED ? 0x9F : 0xBF;
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 4;
      lo = c == 0xF0 ? 0x90 : 0x80;
      hi = c == 0xF4 ? 0x8F : 0xBF;
    } else {
      return false;
    }
    for (size_t k = 1; k < n && i + k < s.size(); ++k) {
      const auto b = static_cast<uint8_t>(s[i + k]);
      if (b < (k == 1 ? lo : 0x80) || b > (k == 1 ? hi : 0xBF)) return false;
    }
    i += n;
  }
  return true;
}

}  // namespace

const LoopStrings& TokenVocabulary::MadeOf(const CharSet& first, const CharSet& rest) const {
  const std::array<uint64_t, 5> key = {first.ascii[0], first.ascii[1], rest.ascii[0], rest.ascii[1],
                                       uint64_t{first.non_ascii} | uint64_t{rest.non_ascii} << 1};
  std::lock_guard<std::mutex> lock(made_of_mutex_);
  std::unique_ptr<LoopStrings>& slot = made_of_[key];
  if (!slot) {
    slot = std::make_unique<LoopStrings>();
    slot->inside.assign((bytes_.size() + 63) / 64, 0);
    for (int32_t k = 0; k < string_count(); ++k) {
      if (IsMadeOf(strings_[k], first, rest)) {
        for (int32_t id : ids(k)) SetBit(&slot->inside, id);
      } else {
        slot->outside.push_back(k);
      }
    }
  }
  return *slot;
}

const LoopStrings* GrammarMaskCache::LoopStringsOf(int32_t start) {
  if (dfa_states_[start].match.partial.remaining > 0) return nullptr;
  // The state most ASCII bytes lead to from the start (inside a JSON string: the string's
  // content, with the closing quote possible), and whether it reads them back to itself.
  int32_t next[128];
  std::unordered_map<int32_t, int> count;
  int32_t loop = kDead;
  for (int b = 0; b < 128; ++b) {
    next[b] = Next(start, static_cast<uint8_t>(b));
    if (next[b] > kUndecided && ++count[next[b]] > count[loop]) loop = next[b];
  }
  if (loop == kDead || count[loop] < kMinLoopingBytes) return nullptr;
  CharSet first, rest;
  int loops = 0;
  for (int b = 0; b < 128; ++b) {
    if (next[b] == loop) first.ascii[b >> 6] |= uint64_t{1} << (b & 63);
    if (Next(loop, static_cast<uint8_t>(b)) == loop) {
      rest.ascii[b >> 6] |= uint64_t{1} << (b & 63);
      ++loops;
    }
  }
  if (loops < kMinLoopingBytes) return nullptr;
  // Non-ASCII characters go where "é" goes when each stack admits all of them or none: they
  // then all take the same path (partial characters keep only their shape).
  const auto reads_e = [&](int32_t from) {
    int32_t s = Next(from, 0xC3);
    return s > kUndecided ? Next(s, 0xA9) : s;
  };
  first.non_ascii = reads_e(start) == loop && matcher_.NonAsciiAlike(dfa_states_[start].match);
  rest.non_ascii = reads_e(loop) == loop && matcher_.NonAsciiAlike(dfa_states_[loop].match);
  return &vocab_->MadeOf(first, rest);
}

void GrammarMaskCache::WalkTrie(int32_t start, std::vector<uint64_t>* accepted, std::vector<int32_t>* uncertain) {
  if (const LoopStrings* loop = LoopStringsOf(start)) {
    ++stats_.loop_walks;
    for (size_t w = 0; w < words_; ++w) (*accepted)[w] |= loop->inside[w];
    WalkSubset(start, loop->outside, accepted, uncertain);
    return;
  }
  // depth_states_[d]: the state after the first d bytes of the current path.
  const TokenVocabulary::Trie& t = vocab_->trie();
  depth_states_[0] = start;
  const auto n = static_cast<int32_t>(t.size());
  for (int32_t i = 0; i < n;) {
    const int32_t d = t.depth[i];
    const int32_t s = Next(depth_states_[d - 1], t.byte[i]);
    if (s <= kUndecided) {
      // Dead: every string through this node is rejected, or undecided when a path reached the
      // cut of a truncated stack on the way.
      if (s == kUndecided && uncertain) {
        for (int32_t j = i; j < t.end[i]; ++j) {
          if (t.string[j] >= 0) uncertain->push_back(t.string[j]);
        }
      }
      i = t.end[i];
      continue;
    }
    depth_states_[d] = s;
    if (t.string[i] >= 0) {
      for (int32_t id : vocab_->ids(t.string[i])) SetBit(accepted, id);
    }
    ++i;
  }
}

void GrammarMaskCache::WalkSubset(int32_t start, const std::vector<int32_t>& subset, std::vector<uint64_t>* accepted,
                                  std::vector<int32_t>* uncertain) {
  // Ascending strings: each reuses the states of the common prefix with the one before.
  depth_states_[0] = start;
  size_t valid = 0;
  const std::string* prev = nullptr;
  for (size_t i = 0; i < subset.size(); ++i) {
    const std::string& str = vocab_->string(subset[i]);
    size_t common = 0;
    if (prev) {
      const size_t m = std::min(prev->size(), str.size());
      while (common < m && (*prev)[common] == str[common]) ++common;
    }
    prev = &str;
    size_t d = std::min(common, valid);
    while (d < str.size() && depth_states_[d] > kUndecided) {
      depth_states_[d + 1] = Next(depth_states_[d], static_cast<uint8_t>(str[d]));
      ++d;
    }
    valid = d;
    if (depth_states_[d] > kUndecided) {
      for (int32_t id : vocab_->ids(subset[i])) SetBit(accepted, id);
      continue;
    }
    size_t last = i;
    if (d == 1) {
      // Its first byte is refused, and so is every following string that starts with it: one
      // search skips them (every non-ASCII string where only ASCII may follow).
      const char first = str[0];
      last = static_cast<size_t>(std::partition_point(subset.begin() + static_cast<ptrdiff_t>(i) + 1, subset.end(),
                                                      [&](int32_t k) { return vocab_->string(k)[0] == first; }) -
                                 subset.begin()) - 1;
      prev = &vocab_->string(subset[last]);
    }
    if (depth_states_[d] == kUndecided && uncertain) uncertain->insert(uncertain->end(), subset.begin() + i, subset.begin() + last + 1);
    i = last;
  }
}

int32_t GrammarMaskCache::Truncate(int32_t stack) {
  int32_t frames[kTruncateDepth];
  int depth = 0;
  int32_t node = stack;
  StackArena& arena = matcher_.arena();
  while (node >= 0 && depth < kTruncateDepth) {
    frames[depth++] = arena.position(node);
    node = arena.parent(node);
  }
  if (node < 0) return stack;  // shallow enough to classify exactly
  int32_t cut = StackArena::kBottom;
  for (int i = depth - 1; i >= 0; --i) cut = arena.Push(cut, frames[i]);
  return cut;
}

const GrammarMaskCache::TruncatedResult& GrammarMaskCache::TruncatedWalk(int32_t cut) {
  auto it = truncated_.find(cut);
  if (it == truncated_.end()) {
    ++stats_.truncated_walks;
    TruncatedResult r;
    r.accepted.assign(words_, 0);
    MatchState top;
    top.stacks = {cut};
    Walk(top, nullptr, &r.accepted, &r.uncertain);
    it = truncated_.emplace(cut, std::move(r)).first;
  }
  return it->second;
}

int32_t GrammarMaskCache::LoopCut(int32_t cut, int64_t* left, bool* required) {
  const Grammar& g = matcher_.grammar();
  StackArena& arena = matcher_.arena();
  int32_t frames[kTruncateDepth];
  int depth = 0;
  bool any = false;
  *left = INT64_MAX;
  *required = false;
  int32_t node = cut;
  for (; node >= 0 && depth < kTruncateDepth; node = arena.parent(node)) {
    const int32_t pos = arena.position(node);
    const Grammar::Counted c = g.counted(pos);
    frames[depth++] = c.loop >= 0 ? c.loop : pos;
    if (c.loop >= 0) {
      any = true;
      *left = std::min<int64_t>(*left, c.left);
      *required |= c.required;
    }
  }
  if (!any) return cut;
  for (int i = depth - 1; i >= 0; --i) node = arena.Push(node, frames[i]);  // on the cut's own end
  return node;
}

const std::vector<uint64_t>& GrammarMaskCache::StackMask(int32_t stack) {
  if (auto it = stack_masks_.find(stack); it != stack_masks_.end()) {
    ++stats_.stack_hits;
    return it->second;
  }
  ++stats_.stack_misses;
  if (stack_masks_.size() >= kMaxCachedStacks) stack_masks_.clear();
  std::vector<uint64_t> bits(words_, 0);
  MatchState whole;
  whole.stacks = {stack};
  const int32_t cut = Truncate(stack);
  int64_t left = 0;
  bool required = false;
  const int32_t loop = LoopCut(cut, &left, &required);
  // A required iteration: the loop's strings that leave it (its "outside") may leave too early.
  const LoopStrings* leave = nullptr;
  if (loop != cut && required) {
    MatchState top;
    top.stacks = {loop};
    leave = LoopStringsOf(Intern(std::move(top), false));
  }
  if (loop != cut && vocab_->longer_than(left).size() <= kFewLonger && (!required || leave)) {
    // Inside a long bounded repetition: the loop's walk, shared by every count left, decides
    // the tokens short enough to fit (and, in a required iteration, made of the loop's own
    // characters); the others it accepted are checked against the stack.
    const TruncatedResult& r = TruncatedWalk(loop);
    bits = r.accepted;
    std::vector<int32_t> check;
    const auto recheck = [&](int32_t k) {
      bool accepted = false;
      for (int32_t id : vocab_->ids(k)) {
        uint64_t& w = bits[static_cast<size_t>(id) >> 6];
        accepted |= (w >> (id & 63)) & 1;
        w &= ~(uint64_t{1} << (id & 63));
      }
      if (accepted) check.push_back(k);
    };
    for (int32_t k : vocab_->longer_than(left)) recheck(k);
    if (leave)
      for (int32_t k : leave->outside) recheck(k);
    std::sort(check.begin(), check.end());
    check.erase(std::unique(check.begin(), check.end()), check.end());
    std::vector<int32_t> merged;
    std::merge(check.begin(), check.end(), r.uncertain.begin(), r.uncertain.end(), std::back_inserter(merged));
    merged.erase(std::unique(merged.begin(), merged.end()), merged.end());
    ++stats_.counted_classified;
    stats_.uncertain_checked += static_cast<int64_t>(merged.size());
    Walk(whole, &merged, &bits, nullptr);
  } else if (cut == stack) {
    Walk(whole, nullptr, &bits, nullptr);
  } else {
    const TruncatedResult& r = TruncatedWalk(cut);
    bits = r.accepted;
    stats_.uncertain_checked += static_cast<int64_t>(r.uncertain.size());
    Walk(whole, &r.uncertain, &bits, nullptr);
  }
  return stack_masks_.emplace(stack, std::move(bits)).first->second;
}

void GrammarMaskCache::AddAllowed(const MatchState& st, std::vector<uint64_t>* mask) {
  ++stats_.masks;
  if (dfa_states_.size() > kMaxDfaStates) ClearDfa();  // 1 KB of transitions per state
  if (st.partial.remaining > 0) {
    // A token ended inside a character: rare, and not worth caching.
    Walk(st, nullptr, mask, nullptr);
    return;
  }
  for (int32_t s : st.stacks) {
    if (s < 0) continue;  // the empty stack allows ending, which the constraint decides
    const std::vector<uint64_t>& bits = StackMask(s);
    for (size_t w = 0; w < words_; ++w) (*mask)[w] |= bits[w];
  }
}

TokenConstraint::TokenConstraint(std::shared_ptr<GrammarMaskCache> cache, std::vector<int32_t> end_ids)
    : cache_(std::move(cache)), end_ids_(std::move(end_ids)), state_(cache_->matcher().initial()) {
  std::sort(end_ids_.begin(), end_ids_.end());
  end_ids_.erase(std::unique(end_ids_.begin(), end_ids_.end()), end_ids_.end());
  std::erase_if(end_ids_, [&](int32_t id) { return id < 0 || id >= cache_->vocab().size(); });
}

TokenConstraint::TokenConstraint(std::shared_ptr<const Grammar> grammar, std::shared_ptr<const TokenVocabulary> vocab,
                                 std::vector<int32_t> end_ids)
    : TokenConstraint(std::make_shared<GrammarMaskCache>(std::move(grammar), std::move(vocab)), std::move(end_ids)) {}

void TokenConstraint::FillMask(std::vector<uint64_t>* mask) {
  mask->assign(cache_->words(), 0);
  cache_->AddAllowed(state_, mask);
  // End ids by the grammar's verdict alone, even where their bytes spell text (GPT-2's
  // <|endoftext|> is an ordinary token of its vocabulary).
  const bool can_end = CanEnd();
  for (int32_t id : end_ids_) {
    uint64_t& w = (*mask)[id >> 6];
    w = can_end ? w | (uint64_t{1} << (id & 63)) : w & ~(uint64_t{1} << (id & 63));
  }
}

bool TokenConstraint::IsEnd(int32_t id) const { return std::binary_search(end_ids_.begin(), end_ids_.end(), id); }

bool TokenConstraint::Allows(int32_t id) {
  if (id < 0 || id >= cache_->vocab().size()) return false;
  if (IsEnd(id)) return CanEnd();
  const std::string& b = cache_->vocab().bytes(id);
  if (b.empty()) return false;
  MatchState probe = state_;
  return cache_->matcher().Accept(&probe, b);
}

bool TokenConstraint::Accept(int32_t id) {
  if (id < 0 || id >= cache_->vocab().size()) return false;
  if (IsEnd(id)) return CanEnd();
  const std::string& b = cache_->vocab().bytes(id);
  return !b.empty() && cache_->matcher().Accept(&state_, b);
}

}  // namespace fastgen::constrained
