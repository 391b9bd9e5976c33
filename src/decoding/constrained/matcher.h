// The grammar matcher: which byte strings a grammar allows from where generation stands.
//
// The parse state is a set of stacks, as in a nondeterministic pushdown automaton: each stack
// holds grammar positions (element indices), the top one a character class still to be matched,
// the ones below it where each enclosing rule resumes. An empty stack means the sentence may end
// there. Stacks live in an arena of hash-consed (position, parent) nodes, so a stack is one
// int32, equal stacks are the same int32, and a step shares every frame below the top with the
// step before it (persistent stacks: saving and restoring a state is copying a few ints).
//
// Input is bytes. A character split across tokens is held as a partial UTF-8 sequence; while it
// is incomplete the stacks stay as they were, filtered to those whose class admits some
// character starting with the bytes read so far. Where every such class admits any non-ASCII
// character (a JSON string's [^"\\], `.`), which character it is cannot change what follows:
// the partial sequence keeps only its shape (length, bytes read, and the lead bytes that limit
// the next one), so the states of all of them are one state (the token-mask walks meet a few
// partial states instead of one per prefix of every multilingual token).
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "decoding/constrained/grammar.h"

namespace fastgen::constrained {

// Bytes of a UTF-8 character read so far (none when `remaining` is 0).
struct PartialUtf8 {
  uint32_t value = 0;     // the code point's bits read so far
  uint8_t remaining = 0;  // continuation bytes still expected
  uint8_t read = 0;       // bytes read of this character
  bool operator==(const PartialUtf8&) const = default;
};

// Hash-consed stack nodes. kEmptyStack is the empty stack (the sentence may end); kBottom marks
// the cut of a truncated stack (see TokenMasker): reaching it means "the rest depends on frames
// not looked at".
class StackArena {
 public:
  static constexpr int32_t kEmptyStack = -1;
  static constexpr int32_t kBottom = -2;

  int32_t Push(int32_t parent, int32_t position);
  int32_t position(int32_t node) const { return nodes_[node].position; }
  int32_t parent(int32_t node) const { return nodes_[node].parent; }
  size_t size() const { return nodes_.size(); }

 private:
  struct Node {
    int32_t position;
    int32_t parent;
  };
  std::vector<Node> nodes_;
  std::unordered_map<uint64_t, int32_t> index_;  // (parent, position) -> node
};

// A parse state: its stacks (sorted, unique) and the partial character read past them.
struct MatchState {
  std::vector<int32_t> stacks;
  PartialUtf8 partial;
  bool operator==(const MatchState&) const = default;
};

class GrammarMatcher {
 public:
  explicit GrammarMatcher(std::shared_ptr<const Grammar> grammar);

  // Advances over `bytes`. Returns false and leaves the state unchanged when the grammar does not
  // allow them (malformed UTF-8 included).
  bool Accept(std::string_view bytes) { return Accept(&state_, bytes); }
  // The text so far is a complete sentence of the grammar (and no character is half read).
  bool CanEnd() const { return CanEnd(state_); }
  // No byte can follow: the only way on is to end (or the state is dead: CanEnd() false too).
  bool Finished() const { return Finished(state_); }

  // The same on a state kept outside (several sequences may share one matcher's arena).
  bool Accept(MatchState* state, std::string_view bytes);
  static bool CanEnd(const MatchState& state);
  // Every non-ASCII character takes the same path from `state`: each stack's top class admits
  // all of them or none (partial characters keep only their shape, so the bytes agree too).
  bool NonAsciiAlike(const MatchState& state);
  static bool Finished(const MatchState& state);
  // The state before any input.
  const MatchState& initial() const { return initial_; }

  const MatchState& state() const { return state_; }
  void set_state(MatchState s) { state_ = std::move(s); }
  const Grammar& grammar() const { return *grammar_; }
  StackArena& arena() { return arena_; }

  // The steps the matcher is built from, exposed for the token masker, which runs them on states
  // of its own. Advance reads one byte from `from` into `to` (cleared first); false when no stack
  // survives. `bottom_hit` (may be null) is set when a stack that reached kBottom had to read on.
  bool Advance(const MatchState& from, uint8_t byte, MatchState* to, bool* bottom_hit);
  // The stacks, with every top expanded to a character class (or to the empty stack / kBottom),
  // reachable from `node` (a stack whose top may be a rule reference). Nodes already expanded
  // since the last NewStep() are skipped (their stacks are in `out` already).
  void Expand(int32_t node, std::vector<int32_t>* out);

  // More stacks than this after one character ends the parse (Advance fails, overflowed() says
  // why): only a wildly ambiguous grammar gets there, and each step would cost milliseconds.
  static constexpr size_t kMaxStacks = 8192;
  bool overflowed() const { return overflowed_; }

 private:
  void NewStep();
  void AdvanceCodepoint(const std::vector<int32_t>& stacks, uint32_t cp, std::vector<int32_t>* out,
                        bool* bottom_hit);

  std::shared_ptr<const Grammar> grammar_;
  StackArena arena_;
  MatchState initial_;
  MatchState state_;
  std::vector<int32_t> work_;      // Expand's stack
  std::vector<uint32_t> visited_;  // [arena node] the step that last expanded it
  std::vector<uint8_t> any_non_ascii_;  // [class] admits every non-ASCII scalar value
  std::vector<uint8_t> no_non_ascii_;   // [class] admits none
  uint32_t stamp_ = 0;
  bool overflowed_ = false;
};

}  // namespace fastgen::constrained
