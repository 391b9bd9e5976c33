#include "decoding/constrained/output_format.h"

#include "decoding/constrained/json_schema.h"
#include "decoding/constrained/regex_to_gbnf.h"

namespace fastgen::constrained {

Expected<std::shared_ptr<const Grammar>> CompileOutputFormat(const OutputFormat& format) {
  using Kind = OutputFormat::Kind;
  JsonSchemaOptions jo;
  jo.compact = format.compact;
  jo.closed_objects = format.closed_objects;
  std::string gbnf;
  switch (format.kind) {
    case Kind::kText:
      return std::shared_ptr<const Grammar>();
    case Kind::kGrammar:
      gbnf = format.text;
      break;
    case Kind::kJsonSchema: {
      auto g = JsonSchemaTextToGbnf(format.text, jo);
      if (!g.ok()) return g.status();
      gbnf = std::move(*g);
      break;
    }
    case Kind::kRegex: {
      auto g = RegexToGbnf(format.text);
      if (!g.ok()) return g.status();
      gbnf = std::move(*g);
      break;
    }
    case Kind::kJson:
      gbnf = JsonValueGbnf(jo);
      break;
    case Kind::kJsonObject:
      gbnf = JsonObjectGbnf(jo);
      break;
  }
  auto grammar = Grammar::Parse(gbnf, format.kind == Kind::kGrammar ? std::string_view(format.root) : "root");
  if (!grammar.ok() && format.kind != Kind::kGrammar) {
    // A converter wrote a grammar the parser refuses: fastgen's fault, not the user's.
    return Internal("the grammar made from the " + std::string(format.kind == Kind::kRegex ? "regex" : "JSON schema") +
                    " does not compile: " + grammar.status().message());
  }
  return grammar;
}

Expected<std::shared_ptr<const Grammar>> OutputFormatCache::Compile(const OutputFormat& format) {
  if (format.kind == OutputFormat::Kind::kText) return std::shared_ptr<const Grammar>();
  const std::string key = std::to_string(static_cast<int>(format.kind)) + (format.compact ? "c" : "w") +
                          (format.closed_objects ? "s" : "o") + format.root + '\n' + format.text;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = entries_.begin(); it != entries_.end(); ++it) {
      if (it->first == key) {
        entries_.splice(entries_.begin(), entries_, it);
        return entries_.front().second;
      }
    }
  }
  auto grammar = CompileOutputFormat(format);  // outside the lock: compiling takes a while
  if (!grammar.ok()) return grammar;
  std::lock_guard<std::mutex> lock(mu_);
  entries_.emplace_front(key, *grammar);
  if (entries_.size() > capacity_) entries_.pop_back();
  return grammar;
}

std::shared_ptr<const TokenVocabulary> MakeTokenVocabulary(const std::vector<std::string>& token_bytes,
                                                           int64_t model_vocab) {
  std::vector<std::string> bytes(static_cast<size_t>(std::max<int64_t>(model_vocab, 0)));
  for (size_t i = 0; i < bytes.size() && i < token_bytes.size(); ++i) bytes[i] = token_bytes[i];
  auto vocab = std::make_shared<const TokenVocabulary>(std::move(bytes));
  // The split every JSON string's content uses (any character but '"', '\' and controls), made
  // once here rather than during the first request that meets a string.
  CharSet json_string;
  for (int b = 0x20; b < 0x80; ++b)
    if (b != '"' && b != '\\') json_string.ascii[b >> 6] |= uint64_t{1} << (b & 63);
  json_string.non_ascii = true;
  vocab->MadeOf(json_string, json_string);
  return vocab;
}

}  // namespace fastgen::constrained
