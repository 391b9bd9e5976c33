// Context-free grammars for constrained decoding, written in llama.cpp's GBNF notation, and a
// matcher that advances over UTF-8 bytes.
//
// GBNF, as accepted here:
//   rule-name ::= alternative | alternative ...        # comments run to the end of the line
//   - literals "..." and character classes [a-z0-9_] / [^"\\] with escapes \n \r \t \\ \" \]
//     \- \xHH \uHHHH \UHHHHHHHH; `.` is any character;
//   - rule references by name, groups ( ... ), postfix * + ? {m} {m,} {m,n};
//   - a newline ends a rule unless it follows `|` or `::=` or sits inside parentheses.
// Names are [a-zA-Z0-9-]+ (an underscore is accepted too). Matching is over Unicode code points;
// input arrives as bytes and may stop in the middle of a character (a token can hold part of one).
//
// Compiled form: every rule is a list of alternatives, each a run of elements (character class or
// rule reference) ended by kEnd, all in one flat array, so that a parse position is one int32.
// Repetition and groups become helper rules: X* is `R ::= X R | ` (right recursion, which the
// matcher runs as a tail call, so a long repetition does not grow the stack), X{m,n} is m copies
// of X and n-m nested optionals. Left recursion (direct or through nullable prefixes) is refused at
// compile time, naming the rule, because the matcher would never stop expanding it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"

namespace fastgen::constrained {

// A set of code points: sorted, disjoint, inclusive ranges (negation resolved at compile time).
struct CharClass {
  std::vector<std::pair<uint32_t, uint32_t>> ranges;
  uint64_t ascii[2] = {0, 0};  // membership of code points 0..127, for the common case
  bool Contains(uint32_t cp) const;
  bool Intersects(uint32_t lo, uint32_t hi) const;  // any member in [lo, hi]
};

struct GrammarElement {
  enum class Kind : uint8_t { kEnd, kChars, kRule };
  Kind kind = Kind::kEnd;
  int32_t index = 0;  // kChars: into Grammar::classes(); kRule: the rule id
};

class Grammar {
 public:
  // Parses and compiles GBNF text; `root` names the start rule. Errors name the line and column
  // (or the rule) at fault: a syntax error, an undefined rule, a missing root, left recursion.
  static Expected<std::shared_ptr<const Grammar>> Parse(std::string_view gbnf,
                                                        std::string_view root = "root");

  const std::vector<GrammarElement>& elements() const { return elements_; }
  const std::vector<CharClass>& classes() const { return classes_; }
  // Positions (into elements()) of the first element of each alternative of `rule`.
  const std::vector<int32_t>& alternatives(int32_t rule) const { return alternatives_[rule]; }
  int32_t root() const { return root_; }
  int32_t rule_count() const { return static_cast<int32_t>(alternatives_.size()); }
  const std::string& rule_name(int32_t rule) const { return names_[rule]; }

  // A position inside a long bounded repetition X{m,n} (its n - m nested optionals): `loop` is
  // the same position in a loop X* that the grammar holds beside it, `left` the iterations the
  // repetition allows after the current one (-1 / 0 elsewhere). Token masks classify such a
  // position from the loop's, one walk for every count left: a token of c characters that the
  // loop accepts with c <= left is accepted by the chain too (an iteration reads a character at
  // least), unless it ends the loop before a required iteration; what the loop refuses the chain
  // refuses.
  struct Counted {
    int32_t loop = -1;
    int32_t left = 0;
    bool required = false;  // one of the m required iterations: the loop may end here, X{m,n} not
  };
  Counted counted(int32_t position) const {
    return counted_.empty() ? Counted{} : counted_[static_cast<size_t>(position)];
  }

 private:
  friend class GrammarBuilder;
  std::vector<GrammarElement> elements_;
  std::vector<CharClass> classes_;
  std::vector<std::vector<int32_t>> alternatives_;  // [rule][alternative] -> element position
  std::vector<std::string> names_;                  // [rule]
  std::vector<Counted> counted_;                    // [element] (empty: no counted chains)
  int32_t root_ = 0;
};

}  // namespace fastgen::constrained
