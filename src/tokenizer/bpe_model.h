// The BPE model: turns one pre-tokenized word into ids by starting from characters (or byte
// tokens under byte fallback) and applying the lowest-ranked merge first, leftmost on ties,
// exactly as tokenizers' Word::merge_all does. Results for repeated words come from a cache.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/status.h"

namespace fastgen::tok {

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using TokenMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

// Open-addressing map from an id pair to (rank, merged id). Merge lookups dominate encoding
// time, and a flat power-of-two table is several times faster than std::unordered_map here.
class PairMergeMap {
 public:
  struct Merge {
    int32_t rank;
    int32_t new_id;
  };
  void Reserve(size_t n);
  // Keeps the first (lowest-rank) entry when a pair is inserted twice, as tokenizers does.
  void Insert(int32_t a, int32_t b, Merge m);
  const Merge* Find(int32_t a, int32_t b) const;
  size_t size() const { return size_; }

 private:
  struct Slot {
    uint64_t key = kEmpty;
    Merge merge{};
  };
  static constexpr uint64_t kEmpty = ~uint64_t{0};
  static uint64_t Key(int32_t a, int32_t b) {
    return (uint64_t{static_cast<uint32_t>(a)} << 32) | static_cast<uint32_t>(b);
  }
  size_t Index(uint64_t key) const { return static_cast<size_t>((key * 0x9E3779B97F4A7C15ull) >> shift_); }
  void Grow();
  std::vector<Slot> slots_;
  size_t size_ = 0;
  int shift_ = 64;
};

struct BpeOptions {
  std::optional<std::string> unk_token;
  bool fuse_unk = false;
  bool byte_fallback = false;
  bool ignore_merges = false;
  std::string continuing_subword_prefix;
  std::string end_of_word_suffix;
};

class BpeModel {
 public:
  // `vocab` maps token strings to ids; `merges` are (left, right) token strings in rank order.
  // Fails naming the merge whose parts or result are not in the vocabulary.
  static Expected<BpeModel> Create(TokenMap vocab, const std::vector<std::pair<std::string, std::string>>& merges,
                                   BpeOptions options);
  // SentencePiece-style BPE (GGUF "llama" vocabularies): no merge list; any adjacent pair whose
  // concatenation is a token may merge, the token with the highest score first.
  static Expected<BpeModel> CreateFromScores(TokenMap vocab, const std::vector<float>& scores, BpeOptions options);

  BpeModel(BpeModel&& other) noexcept;
  BpeModel& operator=(BpeModel&& other) noexcept;

  // Appends the ids of `word` to `out`.
  void Tokenize(std::string_view word, std::vector<int32_t>* out) const;

  std::optional<int32_t> TokenToId(std::string_view token) const;
  const std::string* IdToToken(int32_t id) const;  // nullptr when the id has no token
  // One past the largest id, i.e. the size tokenizers reports for the model.
  int32_t vocab_size() const { return static_cast<int32_t>(id_to_token_.size()); }
  const BpeOptions& options() const { return options_; }

 private:
  BpeModel() = default;
  Status CheckIds() const;
  void InitLookups();
  void TokenizeUncached(std::string_view word, std::vector<int32_t>* out) const;
  void MergeSymbols(std::vector<int32_t>* ids) const;

  TokenMap vocab_;
  std::vector<std::string> id_to_token_;
  std::vector<bool> has_token_;
  PairMergeMap merges_;
  BpeOptions options_;
  std::optional<int32_t> unk_id_;
  std::array<int32_t, 256> byte_ids_{};      // "<0xAB>" token ids, -1 when absent
  std::vector<int32_t> small_char_ids_;      // code point -> id for code points < kSmallChars

  // Word -> ids cache. Reads take a shared lock so that encoding scales across threads.
  mutable std::shared_mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> cache_;
};

}  // namespace fastgen::tok
