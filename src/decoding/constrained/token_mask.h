// Token masks: which tokens of the vocabulary a grammar allows next, fast enough to run every step.
//
// A token is allowed when the grammar accepts all of its bytes from the current state. Checking
// every token every step is what makes naive grammar sampling cost milliseconds; three things
// make it cost microseconds here:
//   1. The vocabulary is walked as a trie stored in depth-first order: the state after "abc" is
//      computed once for every token that starts with "abc", and a dead prefix skips its whole
//      subtree in one jump. States met in walks are interned and their transitions per byte kept
//      in a table (a DFA built lazily), so after the first visit a trie edge costs one load.
//   2. Masks are cached per stack. The matcher's stacks are hash-consed, so a stack is an int32
//      and the same stack is the same int32: inside a JSON string every character leaves the
//      stack as it was (the repetition is a tail call), and every step after the first is a
//      cache hit, a bitwise OR over the vocabulary.
//   3. A new stack is classified from its top few frames alone (XGrammar's context-independent
//      tokens): walking from the truncated stack, a token is accepted if some path reads all of
//      it above the cut, rejected if every path dies above it, and uncertain only when a path
//      reaches the cut with bytes left (e.g. `",` after a string's closing quote). The truncated
//      stacks recur across fields and depths, so that walk is cached too, and only the few
//      uncertain tokens are checked against the whole stack.
// Each step's mask is exact: the caches store results, never approximations.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "decoding/constrained/matcher.h"

namespace fastgen::constrained {

// Which characters a string may be made of: ASCII bytes (a bitset) and, as a whole, the
// non-ASCII ones.
struct CharSet {
  uint64_t ascii[2] = {0, 0};
  bool non_ascii = false;
  bool Has(uint8_t c) const { return (ascii[c >> 6] >> (c & 63)) & 1; }
};

// The vocabulary split by what its strings are made of (TokenVocabulary::MadeOf).
struct LoopStrings {
  std::vector<uint64_t> inside;   // bitset over ids: well-formed UTF-8 (the last character may be cut short) of the sets
  std::vector<int32_t> outside;   // the other strings, ascending
};

class TokenVocabulary {
 public:
  // token_bytes[id]: the bytes a token adds to the text (empty for control tokens such as
  // <|im_start|>, which no grammar allows). Built once per model and shared by every sequence.
  explicit TokenVocabulary(std::vector<std::string> token_bytes);

  int32_t size() const { return static_cast<int32_t>(bytes_.size()); }
  const std::string& bytes(int32_t id) const { return bytes_[id]; }

  // The distinct non-empty byte strings, sorted; ids(k) the tokens spelled string k.
  int32_t string_count() const { return static_cast<int32_t>(strings_.size()); }
  const std::string& string(int32_t k) const { return strings_[k]; }
  std::span<const int32_t> ids(int32_t k) const {
    return {id_list_.data() + id_offsets_[k], id_list_.data() + id_offsets_[k + 1]};
  }

  // The trie of the strings, depth-first: node i reads byte trie_byte[i] at depth trie_depth[i]
  // (1 for the root's children), its subtree is nodes [i, trie_end[i]), and trie_string[i] is the
  // string ending there (-1 for none).
  struct Trie {
    std::vector<uint8_t> byte;
    std::vector<int32_t> depth, end, string;
    size_t size() const { return byte.size(); }
  };
  const Trie& trie() const { return trie_; }

  // The strings with more than c characters (a character cut by the string's end or start
  // counts as one), most characters first.
  // The strings whose first character is in `first` and whose others are in `rest`, and the
  // others; computed once per pair of sets and kept (thread-safe: a vocabulary is shared by every
  // grammar of a model, so a JSON string's split serves every schema).
  const LoopStrings& MadeOf(const CharSet& first, const CharSet& rest) const;

  std::span<const int32_t> longer_than(int64_t c) const {
    const size_t n = c < 0 ? by_chars_.size() : c >= static_cast<int64_t>(longer_.size()) ? 0 : longer_[static_cast<size_t>(c)];
    return {by_chars_.data(), n};
  }

 private:
  std::vector<std::string> bytes_;      // [vocab]
  std::vector<std::string> strings_;    // [n_strings], sorted
  std::vector<int32_t> id_offsets_;     // [n_strings + 1] into id_list_
  std::vector<int32_t> id_list_;        // [tokens with bytes]
  Trie trie_;
  std::vector<int32_t> by_chars_;  // string indices, most characters first
  std::vector<size_t> longer_;     // [c] strings with more than c characters
  mutable std::mutex made_of_mutex_;
  mutable std::map<std::array<uint64_t, 5>, std::unique_ptr<LoopStrings>> made_of_;
};

// Counters for benchmarks and tests.
struct TokenMaskStats {
  int64_t masks = 0;              // FillMask calls
  int64_t stack_hits = 0;         // per-stack masks served from the cache
  int64_t stack_misses = 0;
  int64_t truncated_walks = 0;    // vocabulary walks from a truncated stack
  int64_t uncertain_checked = 0;  // tokens checked against a whole stack
  int64_t counted_classified = 0; // stacks inside a bounded repetition classified from its loop
  int64_t loop_walks = 0;         // walks that accepted a loop's strings without walking them
};

// The per-grammar half of masking: the stacks' arena, the walk DFA and the mask caches, shared
// by every sequence that follows the same grammar over the same vocabulary, so that a grammar
// used again (the same schema in another request) finds its masks computed. Not thread-safe: one
// thread at a time (the serving engine samples every sequence on its own thread).
class GrammarMaskCache {
 public:
  GrammarMaskCache(std::shared_ptr<const Grammar> grammar, std::shared_ptr<const TokenVocabulary> vocab);

  // ORs the tokens the grammar allows from `state` into `mask` (words() words; end ids are the
  // constraint's business).
  void AddAllowed(const MatchState& state, std::vector<uint64_t>* mask);

  GrammarMatcher& matcher() { return matcher_; }
  const Grammar& grammar() const { return matcher_.grammar(); }
  const TokenVocabulary& vocab() const { return *vocab_; }
  size_t words() const { return words_; }
  const TokenMaskStats& stats() const { return stats_; }

 private:
  // A state of a walk: the parse state and whether a path reached a truncated stack's cut on
  // the way (which makes a dead end undecided rather than a rejection). Ids 0 and 1 are the dead
  // states (no stack left), without and with the cut reached.
  static constexpr int32_t kDead = 0, kUndecided = 1;
  struct WalkState {
    MatchState match;
    bool bottom = false;
  };
  int32_t Intern(MatchState match, bool bottom);
  int32_t Next(int32_t state, uint8_t byte);  // the DFA's transition, computed on first use
  void ClearDfa();

  struct TruncatedResult {
    std::vector<uint64_t> accepted;  // bitset over ids
    std::vector<int32_t> uncertain;  // string indices, ascending
  };
  // Walks the strings `subset` (ascending; all when null) from `start`, setting accepted tokens'
  // bits in `accepted` and listing the strings a truncated stack could not decide.
  void Walk(const MatchState& start, const std::vector<int32_t>* subset, std::vector<uint64_t>* accepted,
            std::vector<int32_t>* uncertain);
  void WalkTrie(int32_t start, std::vector<uint64_t>* accepted, std::vector<int32_t>* uncertain);
  void WalkSubset(int32_t start, const std::vector<int32_t>& subset, std::vector<uint64_t>* accepted,
                  std::vector<int32_t>* uncertain = nullptr);
  // A start from which most characters lead to one state that reads most characters back to
  // itself (inside a JSON string): the strings made of such characters alone are accepted without
  // a walk, and only the others are walked (TokenVocabulary::MadeOf); null where the start is
  // no such.
  const LoopStrings* LoopStringsOf(int32_t state);
  // The mask of one whole stack (cached).
  const std::vector<uint64_t>& StackMask(int32_t stack);
  // The walk from a truncated stack (cached per cut).
  const TruncatedResult& TruncatedWalk(int32_t cut);
  // `cut` with its positions inside counted repetitions replaced by their loops' (Grammar::counted),
  // the fewest iterations any of them has left, and whether one is a required iteration; `cut`
  // itself when it has none.
  int32_t LoopCut(int32_t cut, int64_t* left, bool* required);
  // The stack cut below its top kTruncateDepth frames (ending in kBottom), or the stack itself
  // when it is no deeper than that.
  int32_t Truncate(int32_t stack);

  std::shared_ptr<const TokenVocabulary> vocab_;
  GrammarMatcher matcher_;
  size_t words_;
  std::unordered_map<int32_t, std::vector<uint64_t>> stack_masks_;
  std::unordered_map<int32_t, TruncatedResult> truncated_;
  std::vector<int32_t> depth_states_;  // walk scratch: [max token length + 1] DFA states
  std::vector<WalkState> dfa_states_;
  std::unordered_map<uint64_t, std::vector<int32_t>> dfa_index_;  // hash -> states with it
  std::vector<int32_t> dfa_next_;  // [state * 256 + byte] -> state, -1 not computed yet
  TokenMaskStats stats_;
};

// One sequence's grammar state over a (possibly shared) mask cache. Used by one thread at a time,
// like its cache.
class TokenConstraint {
 public:
  // end_ids: the ids that end generation (end of sequence, end of a chat turn): allowed exactly
  // where the grammar may end, whatever their bytes.
  TokenConstraint(std::shared_ptr<GrammarMaskCache> cache, std::vector<int32_t> end_ids);
  // With a cache of its own.
  TokenConstraint(std::shared_ptr<const Grammar> grammar, std::shared_ptr<const TokenVocabulary> vocab,
                  std::vector<int32_t> end_ids);

  // Writes the allowed set as a bitset over the vocabulary: bit (id % 64) of word id / 64.
  // Nothing allowed means the grammar is stuck (no token can continue it and it may not end).
  void FillMask(std::vector<uint64_t>* mask);
  // Whether one token is allowed, without building a mask (the greedy fast path).
  bool Allows(int32_t id);
  // Advances over a token; false (and no change) when the grammar does not allow it. An end id
  // is accepted where the grammar may end and leaves the state as it is.
  bool Accept(int32_t id);

  bool CanEnd() const { return GrammarMatcher::CanEnd(state_); }
  // Only ending is possible (nothing may follow).
  bool Finished() const { return GrammarMatcher::Finished(state_); }

  // The state, for rollback (speculative decoding rejects drafted tokens).
  const MatchState& state() const { return state_; }
  void Restore(const MatchState& s) { state_ = s; }
  // Back to the grammar's start (a lazy grammar's next use).
  void Reset() { state_ = cache_->matcher().initial(); }

  bool IsEnd(int32_t id) const;
  // The grammar proved too ambiguous to follow (GrammarMatcher::kMaxStacks).
  bool overflowed() const { return cache_->matcher().overflowed(); }
  const TokenMaskStats& stats() const { return cache_->stats(); }
  const TokenVocabulary& vocab() const { return cache_->vocab(); }

 private:
  std::shared_ptr<GrammarMaskCache> cache_;
  std::vector<int32_t> end_ids_;  // sorted
  MatchState state_;
};

}  // namespace fastgen::constrained
