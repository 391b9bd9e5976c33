#include "cli/grammar_flags.h"

#include <sys/stat.h>

#include "cli/common.h"
#include "core/mapped_file.h"

namespace fastgen::cli {
namespace {

// FILE|TEXT: a path to a regular file is read; anything else is the text itself.
Expected<std::string> FileOrText(const std::string& value) {
  struct stat st {};
  if (value.size() < 4096 && ::stat(value.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
    return ReadTextFile(value, kGrammarFileLimit);
  }
  return value;
}

}  // namespace

void AddGrammarFlags(CLI::App* cmd, GrammarFlags* f) {
  auto* g = cmd->add_option("--grammar", f->grammar, "Constrain the output to a GBNF grammar (a file or the text; start rule 'root')")
                ->check(NonEmpty());
  auto* s = cmd->add_option("--json-schema", f->json_schema, "Constrain the output to JSON valid under a JSON Schema (a file or the text)")
                ->check(NonEmpty());
  auto* r = cmd->add_option("--regex", f->regex, "Constrain the whole output to match a regular expression")->check(NonEmpty());
  auto* j = cmd->add_flag("--json", f->json, "Constrain the output to one JSON value");
  g->excludes(s)->excludes(r)->excludes(j);
  s->excludes(r)->excludes(j);
  r->excludes(j);
  cmd->add_flag("--json-compact", f->compact, "With --json / --json-schema: no whitespace between JSON tokens");
}

Expected<std::shared_ptr<constrained::GrammarMaskCache>> GrammarCacheFromFlags(const GrammarFlags& f, const Model& model,
                                                                               const Tokenizer* tokenizer) {
  using Kind = constrained::OutputFormat::Kind;
  constrained::OutputFormat format;
  std::string flag;
  if (!f.grammar.empty()) {
    format.kind = Kind::kGrammar;
    flag = "--grammar";
    FG_ASSIGN_OR_RETURN(format.text, FileOrText(f.grammar));
  } else if (!f.json_schema.empty()) {
    format.kind = Kind::kJsonSchema;
    flag = "--json-schema";
    FG_ASSIGN_OR_RETURN(format.text, FileOrText(f.json_schema));
  } else if (!f.regex.empty()) {
    format.kind = Kind::kRegex;
    flag = "--regex";
    format.text = f.regex;
  } else if (f.json) {
    format.kind = Kind::kJson;
    flag = "--json";
  } else {
    return std::shared_ptr<constrained::GrammarMaskCache>();
  }
  format.compact = f.compact;
  auto grammar = constrained::CompileOutputFormat(format);
  if (!grammar.ok()) return grammar.status().WithContext(flag);
  if (tokenizer == nullptr) return InvalidArgument(flag + " needs the model's tokenizer (the output is text)");
  auto vocab = constrained::MakeTokenVocabulary(tokenizer->TokenBytes(), model.config().vocab_size);
  return std::make_shared<constrained::GrammarMaskCache>(*grammar, std::move(vocab));
}

Expected<std::unique_ptr<constrained::TokenConstraint>> ConstraintFromFlags(const GrammarFlags& f, const Model& model,
                                                                             const Tokenizer* tokenizer,
                                                                             std::vector<int32_t> end_ids) {
  FG_ASSIGN_OR_RETURN(auto cache, GrammarCacheFromFlags(f, model, tokenizer));
  if (!cache) return std::unique_ptr<constrained::TokenConstraint>();
  return std::make_unique<constrained::TokenConstraint>(std::move(cache), std::move(end_ids));
}

}  // namespace fastgen::cli
