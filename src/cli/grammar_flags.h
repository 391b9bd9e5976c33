// The structured-output flags of `run`: --grammar, --json-schema, --regex, --json (one of them).
#pragma once

#include <CLI/CLI.hpp>

#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "decoding/constrained/output_format.h"
#include "decoding/constrained/token_mask.h"
#include "models/model.h"
#include "tokenizer/tokenizer.h"

namespace fastgen::cli {

struct GrammarFlags {
  std::string grammar;      // GBNF: a file's path or the text itself
  std::string json_schema;  // a file's path or the schema's JSON text
  std::string regex;
  bool json = false;
  bool compact = false;     // no whitespace between JSON tokens
  bool any() const { return !grammar.empty() || !json_schema.empty() || !regex.empty() || json; }
};

void AddGrammarFlags(CLI::App* cmd, GrammarFlags* flags);

// The compiled grammar the flags ask for, as a mask cache over the model's vocabulary (null when
// none). Errors name the flag.
Expected<std::shared_ptr<constrained::GrammarMaskCache>> GrammarCacheFromFlags(const GrammarFlags& flags,
                                                                               const Model& model,
                                                                               const Tokenizer* tokenizer);

// The constraint the flags ask for over the model's vocabulary (null when none): end_ids are the
// ids that end generation (allowed where the grammar may end). Errors name the flag.
Expected<std::unique_ptr<constrained::TokenConstraint>> ConstraintFromFlags(const GrammarFlags& flags,
                                                                             const Model& model,
                                                                             const Tokenizer* tokenizer,
                                                                             std::vector<int32_t> end_ids);

}  // namespace fastgen::cli
