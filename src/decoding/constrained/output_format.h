// What shape the output must take, as a user asks for it (a flag, a request field), compiled into
// a grammar: GBNF text, a JSON Schema, a regular expression, any JSON value or any JSON object.
#pragma once

#include <list>
#include <memory>
#include <mutex>
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
  // A schema's objects without "additionalProperties" take no other keys (OpenAI's strict mode;
  // JSON Schema itself allows any).
  bool closed_objects = false;
  std::string root = "root";  // kGrammar: the start rule
};

// The grammar, or null for kText. Errors say which kind of input was at fault.
Expected<std::shared_ptr<const Grammar>> CompileOutputFormat(const OutputFormat& format);

// Compiled grammars by what they were compiled from, so that a schema sent again (every request
// of an application sends the same one) is the same Grammar object, whose mask cache the engine
// keeps. Thread-safe; holds the `capacity` most recently used.
class OutputFormatCache {
 public:
  explicit OutputFormatCache(size_t capacity = 32) : capacity_(capacity) {}
  Expected<std::shared_ptr<const Grammar>> Compile(const OutputFormat& format);

 private:
  std::mutex mu_;
  size_t capacity_;
  std::list<std::pair<std::string, std::shared_ptr<const Grammar>>> entries_;  // most recent first
};

// The model's vocabulary as grammars see it: the tokenizer's TokenBytes() padded with empty
// (never allowed) entries up to the model's vocabulary size, which may be larger. Splits it for
// JSON strings' content up front (TokenVocabulary::MadeOf).
std::shared_ptr<const TokenVocabulary> MakeTokenVocabulary(const std::vector<std::string>& token_bytes,
                                                           int64_t model_vocab);

}  // namespace fastgen::constrained
