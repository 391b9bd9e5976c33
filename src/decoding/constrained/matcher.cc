#include "decoding/constrained/matcher.h"

#include <algorithm>

namespace fastgen::constrained {
namespace {

using Kind = GrammarElement::Kind;

void SortUnique(std::vector<int32_t>* v) {
  std::sort(v->begin(), v->end());
  v->erase(std::unique(v->begin(), v->end()), v->end());
}

// The code points a UTF-8 character of `total` bytes may encode (overlong forms excluded).
std::pair<uint32_t, uint32_t> ValidRange(int total) {
  switch (total) {
    case 2: return {0x80, 0x7FF};
    case 3: return {0x800, 0xFFFF};
    default: return {0x10000, 0x10FFFF};
  }
}

// Whether a class admits every non-ASCII Unicode scalar value.
bool ClassAdmitsAnyNonAscii(const CharClass& c) {
  const auto covers = [&](uint32_t lo, uint32_t hi) {
    uint32_t need = lo;
    for (const auto& [a, b] : c.ranges) {
      if (a > need) return false;
      if (b >= need) {
        if (b >= hi) return true;
        need = b + 1;
      }
    }
    return false;
  };
  return covers(0x80, 0xD7FF) && covers(0xE000, 0x10FFFF);
}

// The bits of a partial character of `total` bytes, `read` of them read, standing for every
// partial character of that shape whose continuation cannot be refused: from the second byte on
// any continuation bytes make a valid character, and so do they after a lead byte other than
// E0, ED, F0 and F4 (which limit the byte after them). 0 where the value must be kept as read.
uint32_t CanonicalPartial(const PartialUtf8& p) {
  const int total = p.read + p.remaining;
  if (p.read == 1) {
    switch (total) {
      case 2: return 0x02;                                        // C2..DF -> C2
      case 3: return (p.value == 0x0 || p.value == 0xD) ? 0 : 0x1;  // E1..EC, EE, EF -> E1
      default: return (p.value >= 1 && p.value <= 3) ? 0x1 : 0;     // F1..F3 -> F1
    }
  }
  // E1 80 (U+1000..), F1 80 (U+40000..), F1 80 80.
  if (total == 3) return 0x40;
  return p.read == 2 ? 0x40 : 0x1000;
}

}  // namespace

int32_t StackArena::Push(int32_t parent, int32_t position) {
  const uint64_t key = (static_cast<uint64_t>(static_cast<uint32_t>(parent)) << 32) | static_cast<uint32_t>(position);
  auto [it, inserted] = index_.emplace(key, static_cast<int32_t>(nodes_.size()));
  if (inserted) nodes_.push_back({position, parent});
  return it->second;
}

GrammarMatcher::GrammarMatcher(std::shared_ptr<const Grammar> grammar) : grammar_(std::move(grammar)) {
  for (const CharClass& c : grammar_->classes()) {
    any_non_ascii_.push_back(ClassAdmitsAnyNonAscii(c) ? 1 : 0);
    no_non_ascii_.push_back(c.ranges.empty() || c.ranges.back().second < 0x80 ? 1 : 0);
  }
  // The start state: the root rule called from the empty stack.
  NewStep();
  for (int32_t alt : grammar_->alternatives(grammar_->root())) {
    Expand(grammar_->elements()[alt].kind == Kind::kEnd ? StackArena::kEmptyStack
                                                         : arena_.Push(StackArena::kEmptyStack, alt),
           &state_.stacks);
  }
  SortUnique(&state_.stacks);
  initial_ = state_;
}

void GrammarMatcher::Expand(int32_t node, std::vector<int32_t>* out) {
  // Depth-first over the expansions, each node once per step: nullable rules reach the same node
  // along many paths (x{0,n} of a nullable x has 2^n of them), and the arena's hash-consing makes
  // "the same node" an int comparison. An explicit stack: a chain of n nullable rules is n deep.
  const std::vector<GrammarElement>& elems = grammar_->elements();
  work_.clear();
  work_.push_back(node);
  while (!work_.empty()) {
    const int32_t n = work_.back();
    work_.pop_back();
    if (n < 0) {  // the empty stack or the cut of a truncated one
      out->push_back(n);
      continue;
    }
    if (static_cast<size_t>(n) >= visited_.size()) visited_.resize(arena_.size() + 1024, 0);
    if (visited_[n] == stamp_) continue;
    visited_[n] = stamp_;
    const int32_t pos = arena_.position(n);
    const GrammarElement& e = elems[pos];
    if (e.kind != Kind::kRule) {
      out->push_back(n);
      continue;
    }
    // Replace the reference by each alternative of the rule, above the place the caller resumes
    // (nothing is pushed when the reference ends its alternative: a tail call).
    const int32_t parent = arena_.parent(n);
    const int32_t resume = elems[pos + 1].kind == Kind::kEnd ? parent : arena_.Push(parent, pos + 1);
    const std::vector<int32_t>& alts = grammar_->alternatives(e.index);
    for (auto it = alts.rbegin(); it != alts.rend(); ++it) {
      work_.push_back(elems[*it].kind == Kind::kEnd ? resume : arena_.Push(resume, *it));
    }
  }
}

void GrammarMatcher::AdvanceCodepoint(const std::vector<int32_t>& stacks, uint32_t cp, std::vector<int32_t>* out,
                                      bool* bottom_hit) {
  NewStep();
  const std::vector<GrammarElement>& elems = grammar_->elements();
  const std::vector<CharClass>& classes = grammar_->classes();
  for (int32_t s : stacks) {
    if (s == StackArena::kEmptyStack) continue;
    if (s == StackArena::kBottom) {
      if (bottom_hit) *bottom_hit = true;
      continue;
    }
    const int32_t pos = arena_.position(s);
    if (!classes[elems[pos].index].Contains(cp)) continue;
    const int32_t parent = arena_.parent(s);
    Expand(elems[pos + 1].kind == Kind::kEnd ? parent : arena_.Push(parent, pos + 1), out);
  }
  SortUnique(out);
  if (out->size() > kMaxStacks) {
    // A grammar this ambiguous would make every step slower than generating: refuse to go on.
    overflowed_ = true;
    out->clear();
  }
}

void GrammarMatcher::NewStep() {
  if (++stamp_ == 0) {  // wrapped: forget every mark
    std::fill(visited_.begin(), visited_.end(), 0);
    stamp_ = 1;
  }
}

bool GrammarMatcher::Advance(const MatchState& from, uint8_t byte, MatchState* to, bool* bottom_hit) {
  to->stacks.clear();
  PartialUtf8 p = from.partial;
  if (p.remaining == 0) {
    if (byte < 0x80) {
      to->partial = {};
      AdvanceCodepoint(from.stacks, byte, &to->stacks, bottom_hit);
      return !to->stacks.empty();
    }
    int total = (byte >> 5) == 0x6 ? 2 : (byte >> 4) == 0xE ? 3 : (byte >> 3) == 0x1E ? 4 : 0;
    if (total == 0) return false;  // a continuation byte or 0xF8.. cannot start a character
    p = {static_cast<uint32_t>(byte & (0x7F >> total)), static_cast<uint8_t>(total - 1), 1};
  } else {
    if ((byte & 0xC0) != 0x80) return false;
    p.value = (p.value << 6) | (byte & 0x3F);
    --p.remaining;
    ++p.read;
  }
  const int total = p.read + p.remaining;
  // The code points still possible: the bits read so far followed by any continuation bits.
  const int free_bits = 6 * p.remaining;
  uint32_t lo = p.value << free_bits;
  uint32_t hi = lo | ((uint32_t{1} << free_bits) - 1);
  const auto [vlo, vhi] = ValidRange(total);
  lo = std::max(lo, vlo);
  hi = std::min(hi, vhi);
  if (lo > hi) return false;                           // overlong or above U+10FFFF
  if (lo >= 0xD800 && hi <= 0xDFFF) return false;      // a UTF-16 surrogate
  if (p.remaining == 0) {
    to->partial = {};
    AdvanceCodepoint(from.stacks, p.value, &to->stacks, bottom_hit);
    return !to->stacks.empty();
  }
  // Mid-character: keep the stacks whose class admits some character with this prefix.
  const std::vector<GrammarElement>& elems = grammar_->elements();
  const std::vector<CharClass>& classes = grammar_->classes();
  for (int32_t s : from.stacks) {
    if (s == StackArena::kEmptyStack) continue;
    if (s == StackArena::kBottom) {
      if (bottom_hit) *bottom_hit = true;
      continue;
    }
    if (classes[elems[arena_.position(s)].index].Intersects(lo, hi)) to->stacks.push_back(s);
  }
  bool canonical = true;
  for (int32_t s : to->stacks) canonical = canonical && any_non_ascii_[static_cast<size_t>(elems[arena_.position(s)].index)];
  if (canonical) {
    if (const uint32_t v = CanonicalPartial(p); v != 0) p.value = v;
  }
  to->partial = p;
  return !to->stacks.empty();
}

bool GrammarMatcher::Accept(MatchState* state, std::string_view bytes) {
  MatchState cur = *state, next;
  for (char c : bytes) {
    if (!Advance(cur, static_cast<uint8_t>(c), &next, nullptr)) return false;
    std::swap(cur, next);
  }
  *state = std::move(cur);
  return true;
}

bool GrammarMatcher::NonAsciiAlike(const MatchState& state) {
  const std::vector<GrammarElement>& elems = grammar_->elements();
  for (int32_t s : state.stacks) {
    if (s == StackArena::kEmptyStack || s == StackArena::kBottom) continue;
    const auto c = static_cast<size_t>(elems[arena_.position(s)].index);
    if (!any_non_ascii_[c] && !no_non_ascii_[c]) return false;
  }
  return true;
}

bool GrammarMatcher::CanEnd(const MatchState& state) {
  return state.partial.remaining == 0 &&
         std::binary_search(state.stacks.begin(), state.stacks.end(), StackArena::kEmptyStack);
}

bool GrammarMatcher::Finished(const MatchState& state) {
  return state.partial.remaining == 0 && state.stacks.size() == 1 && state.stacks[0] == StackArena::kEmptyStack;
}

}  // namespace fastgen::constrained
