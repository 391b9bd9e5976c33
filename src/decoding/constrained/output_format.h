// What shape the output must take, as a user asks for it (a flag, a request field), compiled into
// a grammar: GBNF text, a JSON Schema, a regular expression, any JSON value or any JSON object.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "decoding/constrained/grammar.h"
#include "decoding/constrained/token_mask.h"

namespace fastgen::constrained {

struct OutputFormat {
  enum class Kind { kText, kGrammar, kJsonSchema, kRegex, kJson, kJsonObject };
  Kind kind = Kind::kText;
  std::string text;     // the GBNF, the schema's JSON text (its key order is kept) or the regex
  bool compact = false;  // JSON without whitespace between tokens
};

// The grammar, or null for kText. Errors say which kind of input was at fault.
Expected<std::shared_ptr<const Grammar>> CompileOutputFormat(const OutputFormat& format);

// The model's vocabulary as grammars see it: the tokenizer's TokenBytes() padded with empty
// (never allowed) entries up to the model's vocabulary size, which may be larger.
std::shared_ptr<const TokenVocabulary> MakeTokenVocabulary(const std::vector<std::string>& token_bytes,
                                                           int64_t model_vocab);

}  // namespace fastgen::constrained
