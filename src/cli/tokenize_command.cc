// `fastgen tokenize` and `fastgen detokenize`: the tokenizer alone, for checking parity with
// Hugging Face id by id.
#include <cstdio>
#include <memory>

#include "cli/common.h"
#include "cli/commands.h"
#include "tokenizer/tokenizer.h"

namespace fastgen::cli {
namespace {

struct TokenizeFlags {
  std::string model;  // directory, GGUF file or tokenizer.json
  std::string text;
  std::string file;
  bool special = false;
};

struct DetokenizeFlags {
  std::string model;
  std::string ids;
  bool skip_special = false;
};

Expected<std::unique_ptr<Tokenizer>> LoadTokenizer(const std::string& model) {
  return Tokenizer::Load(model.empty() ? DefaultModelPath() : model);
}

int Tokenize(const TokenizeFlags& f) {
  auto tok = LoadTokenizer(f.model);
  if (!tok.ok()) return ReportError(tok.status());
  std::string text = f.text;
  if (!f.file.empty()) {
    auto t = ReadTextFile(f.file, kPromptFileLimit);
    if (!t.ok()) return ReportError(t.status());
    text = *t;
  }
  WarnIfInvalidUtf8(text, f.file.empty() ? "the text" : f.file);
  EncodeOptions eo;
  eo.add_special_tokens = f.special;
  auto ids = (*tok)->Encode(text, eo);
  if (!ids.ok()) return ReportError(ids.status());
  std::string out = "[";
  for (size_t i = 0; i < ids->size(); ++i) out += (i ? ", " : "") + std::to_string((*ids)[i]);
  std::printf("%s]\n", out.c_str());
  return 0;
}

int Detokenize(const DetokenizeFlags& f) {
  auto tok = LoadTokenizer(f.model);
  if (!tok.ok()) return ReportError(tok.status());
  auto ids = ParseIdList(f.ids);
  if (!ids.ok()) return ReportError(ids.status());
  if (ids->empty()) return ReportError(InvalidArgument("no token ids given"));
  for (int32_t id : *ids)
    if (id >= (*tok)->vocab_size())
      return ReportError(InvalidArgument("token id " + std::to_string(id) +
                                         " is outside the vocabulary of " +
                                         std::to_string((*tok)->vocab_size())));
  const std::string text = (*tok)->Decode(*ids, f.skip_special);
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::printf("\n");
  return 0;
}

}  // namespace

CommandFn AddTokenizeCommands(CLI::App& app, CommandFn* detokenize) {
  auto t = std::make_shared<TokenizeFlags>();
  CLI::App* cmd = app.add_subcommand("tokenize", "Print the token ids of a text as a JSON array");
  cmd->add_option("-m,--model", t->model, "Model directory, GGUF file or tokenizer.json")->check(NonEmpty());
  CLI::Option* text = cmd->add_option("text", t->text, "Text to tokenize");
  cmd->add_option("--file", t->file, "Read the text from a file (at most 64 MiB)")->check(NonEmpty())->excludes(text);
  cmd->add_flag("--special", t->special, "Apply the post-processor (add BOS and other special tokens)");

  auto d = std::make_shared<DetokenizeFlags>();
  CLI::App* dcmd = app.add_subcommand("detokenize", "Print the text of a list of token ids");
  dcmd->add_option("-m,--model", d->model, "Model directory, GGUF file or tokenizer.json")->check(NonEmpty());
  dcmd->add_option("ids", d->ids, "Token ids, e.g. 1,2,3")->required();
  dcmd->add_flag("--skip-special", d->skip_special, "Leave special tokens out of the text");
  *detokenize = [d] { return Detokenize(*d); };
  return [t] { return Tokenize(*t); };
}

}  // namespace fastgen::cli
