// llama.cpp's own vocabulary tests: models/ggml-vocab-*.gguf with .inp (texts separated by
// "\n__ggml_vocab_test__\n") and .out (the ids Hugging Face's tokenizer gives each, one line per
// text), from llama.cpp's source as npm's node-llama-cpp package carries it. Every pair whose
// vocabulary is BPE ("gpt2") or SentencePiece ("llama") must encode exactly, without special
// tokens added, as llama.cpp's test-tokenizer-0 runs them. The files come from
// scripts/fetch_llama_vocab (CMake runs it before this test); FASTGEN_LLAMA_VOCAB_DIR names the
// folder.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "io/gguf.h"
#include "tokenizer/gguf_pre_tokenizers.h"
#include "tokenizer_test_util.h"

namespace fastgen {
namespace {

std::string Slurp(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

std::vector<std::string> SplitInputs(const std::string& raw) {
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < raw.size()) {
    const size_t next = raw.find(sep, pos);
    if (next == std::string::npos) {
      out.push_back(raw.substr(pos));
      break;
    }
    out.push_back(raw.substr(pos, next - pos));
    pos = next + sep.size();
  }
  return out;
}

std::string Join(const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t id : ids) s += " " + std::to_string(id);
  return s;
}

std::vector<int32_t> ParseIds(const std::string& line) {
  std::vector<int32_t> ids;
  std::istringstream in(line);
  for (long v; in >> v;) ids.push_back(static_cast<int32_t>(v));
  return ids;
}

std::vector<std::filesystem::path> VocabFiles() {
  // $FASTGEN_LLAMA_VOCAB_DIR, else llama-vocab in the working directory (ctest runs the tests
  // in the build tree, where the fetch_llama_vocab fixture puts it).
  const char* env_dir = std::getenv("FASTGEN_LLAMA_VOCAB_DIR");
  const char* dir = env_dir != nullptr ? env_dir : "llama-vocab";
  std::vector<std::filesystem::path> files;
  if (!std::filesystem::is_directory(dir)) return files;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("ggml-vocab-", 0) == 0 && e.path().extension() == ".gguf" &&
        std::filesystem::exists(e.path().string() + ".inp") && std::filesystem::exists(e.path().string() + ".out"))
      files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

TEST(LlamaVocabTest, EveryBpeAndSentencePiecePairEncodesExactly) {
  const auto files = VocabFiles();
  if (files.empty()) GTEST_SKIP() << "FASTGEN_LLAMA_VOCAB_DIR holds no ggml-vocab-*.gguf test pairs "
                                     "(scripts/fetch_llama_vocab fetches them)";
  int checked = 0;
  for (const auto& path : files) {
    auto gguf = GgufFile::Open(path.string());
    ASSERT_TRUE(gguf.ok()) << path << ": " << gguf.status().message();
    auto model = gguf->GetString("tokenizer.ggml.model");
    ASSERT_TRUE(model.ok() && model->has_value()) << path;
    // Other vocabulary types (bert's WordPiece, gemma4's raw-UTF-8 BPE) are not supported yet.
    if (**model != "gpt2" && **model != "llama") continue;
    auto tok = Tokenizer::FromGguf(*gguf);
    if (!tok.ok()) {
      ADD_FAILURE() << path.filename() << ": " << tok.status().message();
      continue;
    }
    const auto inputs = SplitInputs(Slurp(path.string() + ".inp"));
    std::vector<std::string> outputs;
    std::istringstream out(Slurp(path.string() + ".out"));
    for (std::string line; std::getline(out, line);) outputs.push_back(line);
    ASSERT_EQ(inputs.size(), outputs.size()) << path;
    int failed = 0;
    for (size_t i = 0; i < inputs.size(); ++i) {
      EncodeOptions eo;
      eo.add_special_tokens = false;
      eo.parse_special = false;
      auto ids = (*tok)->Encode(inputs[i], eo);
      ASSERT_TRUE(ids.ok()) << path.filename() << " text " << i;
      if (*ids != ParseIds(outputs[i]) && failed++ < 3)
        ADD_FAILURE() << path.filename() << " text " << i << " '" << inputs[i] << "'\n  want " << outputs[i]
                      << "\n  got  " << Join(*ids);
    }
    EXPECT_EQ(failed, 0) << path.filename() << ": " << failed << " of " << inputs.size() << " texts differ";
    const auto pre_key = gguf->GetString("tokenizer.ggml.pre");
    const std::string pre = pre_key.ok() && pre_key->has_value() ? **pre_key : "";
    std::printf("%s (%s, pre '%s'): %zu texts, %d differ\n", path.filename().c_str(), (**model).c_str(),
                pre.c_str(), inputs.size(), failed);
    ++checked;
  }
  EXPECT_GT(checked, 0);
}

// Every name compiles into a working pipeline (its patterns are valid for the regex engine and
// split a hostile mix of scripts, digits, whitespace and punctuation into pieces that cover the
// text); names without a byte-level recipe, and unknown ones, are errors naming the key.
TEST(GgufPreTokenizers, EveryKnownNameBuildsAndCoversTheText) {
  const auto names = KnownGgufPreTokenizers();
  EXPECT_GE(names.size(), 80u);
  const std::string text = "Hello, WORLD's 12345 dollars!\n\n\t  fn main() { 3.14159 }  Ünïcödé "
                           "日本語のテキスト 한국어 русский \u0645\u0631\u062d\u0628\u0627 🦙  \r\n  end   ";
  for (const std::string& name : names) {
    TokenizerParts parts;
    tok::BpeOptions options;
    Status s = SetGgufBpePreTokenizer(name, &parts, &options);
    ASSERT_TRUE(s.ok()) << name << ": " << s.message();
    ASSERT_NE(parts.pre_tokenizer, nullptr) << name;
    tok::PreTokenized p;
    p.Reset(text, true);
    parts.pre_tokenizer->PreTokenize(&p);
    ASSERT_GT(p.spans.size(), 5u) << name;
    size_t covered = 0;  // isolated splits keep every byte, in order
    for (size_t i = 0; i < p.spans.size(); ++i) {
      EXPECT_EQ(p.spans[i].first, covered) << name << " span " << i;
      covered = p.spans[i].second;
    }
    EXPECT_EQ(covered, p.text.size()) << name;
  }
  for (const char* name : {"gemma4", "kimi-k2", "no-such-pre"}) {
    TokenizerParts parts;
    tok::BpeOptions options;
    Status s = SetGgufBpePreTokenizer(name, &parts, &options);
    ASSERT_FALSE(s.ok()) << name;
    EXPECT_NE(s.message().find("tokenizer.ggml.pre"), std::string::npos) << s.message();
    EXPECT_NE(s.message().find(name), std::string::npos) << s.message();
  }
}

}  // namespace
}  // namespace fastgen
