// GGUF-loaded tokenizers against their tokenizer.json twins, and the fg-target references.
#include <gtest/gtest.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include "io/gguf.h"
#include "io/gguf_writer.h"
#include "tokenizer/unicode.h"
#include "tokenizer_test_util.h"

namespace fastgen {
namespace {

std::unique_ptr<Tokenizer> LoadOrFail(const std::string& path) {
  auto tok = Tokenizer::Load(path);
  EXPECT_TRUE(tok.ok()) << tok.status().message();
  return tok.ok() ? std::move(tok).value() : nullptr;
}

// The first `bytes` of the validation corpus, cut at a line end.
std::string CorpusPrefix(size_t bytes) {
  std::string text;
  EXPECT_TRUE(testing::ReadAsset(testing::SharedPath("corpus/valid.txt"), &text));
  if (text.size() > bytes) {
    const size_t nl = text.find('\n', bytes);
    text.resize(nl == std::string::npos ? text.size() : nl + 1);
  }
  return text;
}

TEST(GgufTokenizerTest, FgTargetGgufMatchesTokenizerJsonOnCorpus) {
  const Tokenizer* json_tok = testing::ReferenceTokenizer("fg-target");
  auto gguf_tok = LoadOrFail(testing::SharedPath("gguf/fg-target.bf16.gguf"));
  ASSERT_NE(json_tok, nullptr);
  ASSERT_NE(gguf_tok, nullptr);
  EXPECT_EQ(gguf_tok->vocab_size(), json_tok->vocab_size());
  EXPECT_EQ(gguf_tok->bos_id(), std::optional<int32_t>(0));
  EXPECT_EQ(gguf_tok->eos_id(), std::optional<int32_t>(0));
  EXPECT_TRUE(gguf_tok->IsSpecial(0));
  const std::string text = CorpusPrefix(300 << 10);
  // Encode in documents so that a mismatch is reported near where it happens.
  size_t pos = 0, docs = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos + 4096);
    end = end == std::string::npos ? text.size() : end + 1;
    const std::string_view doc(text.data() + pos, end - pos);
    auto a = json_tok->Encode(doc);
    auto b = gguf_tok->Encode(doc);
    ASSERT_TRUE(a.ok() && b.ok());
    ASSERT_EQ(*a, *b) << "document at byte " << pos;
    EncodeOptions special;
    special.add_special_tokens = true;
    ASSERT_EQ(*json_tok->Encode(doc, special), *gguf_tok->Encode(doc, special));
    EXPECT_EQ(gguf_tok->Decode(*b), json_tok->Decode(*a));
    pos = end;
    ++docs;
  }
  EXPECT_GT(docs, 10u);
}

TEST(GgufTokenizerTest, FgTargetPromptsMatchReference) {
  std::string ref_text;
  ASSERT_TRUE(testing::ReadAsset(testing::SharedPath("models/fg-target/ref.json"), &ref_text));
  const auto ref = nlohmann::json::parse(ref_text);
  auto dir_tok = LoadOrFail(testing::SharedPath("models/fg-target"));
  auto gguf_tok = LoadOrFail(testing::SharedPath("gguf/fg-target.bf16.gguf"));
  ASSERT_NE(dir_tok, nullptr);
  ASSERT_NE(gguf_tok, nullptr);
  // tokenizer_config.json names <|endoftext|> as both BOS and EOS.
  EXPECT_EQ(dir_tok->bos_id(), std::optional<int32_t>(0));
  EXPECT_EQ(dir_tok->eos_id(), std::optional<int32_t>(0));
  int n = 0;
  for (const auto& r : ref["refs"]) {
    const std::string prompt = r["prompt"].get<std::string>();
    const auto want = r["prompt_ids"].get<std::vector<int32_t>>();
    EXPECT_EQ(*dir_tok->Encode(prompt), want) << prompt;
    EXPECT_EQ(*gguf_tok->Encode(prompt), want) << prompt;
    EXPECT_EQ(dir_tok->Decode(want), prompt);
    ++n;
  }
  EXPECT_EQ(n, 5);
}

TEST(GgufTokenizerTest, ByteVocabularyFixturesEncodeEveryByte) {
  // The llama-family fixtures carry a 256-token byte-level vocabulary without merges: every
  // byte of the text becomes the token of its GPT-2 stand-in character.
  for (const char* name : {"gguf/llama.f32.gguf", "gguf/mistral.f32.gguf"}) {
    auto tok = LoadOrFail(testing::SharedPath(name));
    ASSERT_NE(tok, nullptr) << name;
    EXPECT_EQ(tok->vocab_size(), 256);
    const std::string text = "Hello, wörld!\n\tdef f(x): return x  # 日本";
    auto ids = tok->Encode(text);
    ASSERT_TRUE(ids.ok());
    ASSERT_EQ(ids->size(), text.size()) << name;
    for (size_t i = 0; i < text.size(); ++i) {
      EXPECT_EQ(tok->IdToToken((*ids)[i]), tok::ByteToUnicode()[static_cast<unsigned char>(text[i])]);
    }
    EXPECT_EQ(tok->Decode(*ids), text);
  }
}

// Writes a vocabulary-only GGUF to a temporary file and loads it through Tokenizer::Load.
class TempGguf {
 public:
  explicit TempGguf(const GgufWriter& w) {
    char name[] = "/tmp/fastgen_tok_XXXXXX";
    const int fd = ::mkstemp(name);
    if (fd >= 0) ::close(fd);
    path_ = name;
    status_ = w.WriteFile(path_);
  }
  ~TempGguf() { std::remove(path_.c_str()); }
  const std::string& path() const { return path_; }
  const Status& status() const { return status_; }

 private:
  std::string path_;
  Status status_;
};

// A small SentencePiece-style ("llama") vocabulary exercising scores, byte fallback, control
// tokens and the ▁ space handling.
GgufWriter SpmWriter() {
  const std::string sp = "\xE2\x96\x81";
  std::vector<std::string> tokens = {"<unk>", "<s>", "</s>"};
  std::vector<int64_t> types = {2, 3, 3};
  std::vector<double> scores = {0, 0, 0};
  for (int b = 0; b < 256; ++b) {
    char buf[8];
    std::snprintf(buf, sizeof(buf), "<0x%02X>", b);
    tokens.push_back(buf);
    types.push_back(6);
    scores.push_back(0);
  }
  const std::vector<std::pair<std::string, double>> pieces = {
      {sp, -1},          {"h", -2},           {"e", -3},          {"l", -4},     {"o", -5},
      {"w", -6},         {"r", -7},           {"d", -8},          {"ld", -8.5},  {"ll", -9},    {"he", -10},
      {"hell", -11},     {"hello", -12},      {sp + "hello", -13}, {"or", -14},   {sp + "w", -15},
      {sp + "wor", -16}, {sp + "world", -17}, {"<tool>", 0},
  };
  for (const auto& [p, s] : pieces) {
    tokens.push_back(p);
    types.push_back(p == "<tool>" ? 4 : 1);
    scores.push_back(s);
  }
  GgufWriter w;
  EXPECT_TRUE(w.AddString("general.architecture", "llama").ok());
  EXPECT_TRUE(w.AddString("tokenizer.ggml.model", "llama").ok());
  EXPECT_TRUE(w.AddStringArray("tokenizer.ggml.tokens", tokens).ok());
  EXPECT_TRUE(w.AddIntArray("tokenizer.ggml.token_type", GgufType::kInt32, types).ok());
  EXPECT_TRUE(w.AddFloatArray("tokenizer.ggml.scores", GgufType::kFloat32, scores).ok());
  EXPECT_TRUE(w.AddUint32("tokenizer.ggml.bos_token_id", 1).ok());
  EXPECT_TRUE(w.AddUint32("tokenizer.ggml.eos_token_id", 2).ok());
  EXPECT_TRUE(w.AddUint32("tokenizer.ggml.unknown_token_id", 0).ok());
  return w;
}

TEST(GgufTokenizerTest, SentencePieceStyleVocabulary) {
  TempGguf file(SpmWriter());
  ASSERT_TRUE(file.status().ok()) << file.status().message();
  auto tok = LoadOrFail(file.path());
  ASSERT_NE(tok, nullptr);
  auto id = [&](const std::string& t) { return tok->TokenToId(t).value_or(-1); };
  const std::string sp = "\xE2\x96\x81";
  EXPECT_EQ(tok->bos_id(), std::optional<int32_t>(1));
  EXPECT_EQ(tok->eos_id(), std::optional<int32_t>(2));
  // "hello world" -> ▁hello ▁world; add_bos defaults to true for llama vocabularies.
  EXPECT_EQ(*tok->Encode("hello world"), (std::vector<int32_t>{id(sp + "hello"), id(sp + "world")}));
  EncodeOptions special;
  special.add_special_tokens = true;
  EXPECT_EQ(*tok->Encode("hello world", special), (std::vector<int32_t>{1, id(sp + "hello"), id(sp + "world")}));
  // Characters outside the vocabulary fall back to byte tokens: "é" = C3 A9.
  EXPECT_EQ(*tok->Encode("\xC3\xA9"), (std::vector<int32_t>{id(sp), id("<0xC3>"), id("<0xA9>")}));
  // Control tokens are special; user-defined ones are matched even without parse_special.
  EXPECT_EQ(*tok->Encode("</s>"), (std::vector<int32_t>{2}));
  EXPECT_TRUE(tok->IsSpecial(2));
  EXPECT_FALSE(tok->IsSpecial(id("<tool>")));
  EncodeOptions no_special;
  no_special.parse_special = false;
  EXPECT_NE(*tok->Encode("</s>", no_special), (std::vector<int32_t>{2}));
  EXPECT_EQ(tok->Encode("<tool>", no_special)->back(), id("<tool>"));
  // Decode drops the prefix space and reassembles byte tokens.
  EXPECT_EQ(tok->Decode(*tok->Encode("hello world \xC3\xA9")), "hello world \xC3\xA9");
  EXPECT_EQ(tok->Decode(std::vector<int32_t>{1, id(sp + "hello")}, /*skip_special_tokens=*/true), "hello");
}

TEST(GgufTokenizerTest, MalformedMetadataIsAnError) {
  GgufWriter w;
  ASSERT_TRUE(w.AddString("tokenizer.ggml.model", "gpt2").ok());
  ASSERT_TRUE(w.AddStringArray("tokenizer.ggml.tokens", {"a", "b"}).ok());
  ASSERT_TRUE(w.AddStringArray("tokenizer.ggml.merges", {"a c"}).ok());
  TempGguf bad_merge(w);
  auto r = Tokenizer::Load(bad_merge.path());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("tokenizer.ggml.merges"), std::string::npos) << r.status().message();

  GgufWriter w2;
  ASSERT_TRUE(w2.AddString("tokenizer.ggml.model", "bert").ok());
  ASSERT_TRUE(w2.AddStringArray("tokenizer.ggml.tokens", {"a"}).ok());
  TempGguf bert(w2);
  r = Tokenizer::Load(bert.path());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("tokenizer.ggml.model"), std::string::npos) << r.status().message();

  GgufWriter w3;
  ASSERT_TRUE(w3.AddString("general.architecture", "llama").ok());
  TempGguf none(w3);
  r = Tokenizer::Load(none.path());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("tokenizer.ggml.model"), std::string::npos) << r.status().message();
}

}  // namespace
}  // namespace fastgen

namespace fastgen {
namespace {

// Converts a byte-level tokenizer.json into GGUF metadata the way llama.cpp's converter does
// (tokens by id, control / user-defined types for added tokens, merges as "a b").
GgufWriter GgufFromTokenizerJson(const std::string& json_text, const std::string& pre) {
  const auto j = nlohmann::json::parse(json_text);
  std::vector<std::string> tokens(j["model"]["vocab"].size());
  std::vector<int64_t> types(tokens.size(), 1);
  for (auto it = j["model"]["vocab"].begin(); it != j["model"]["vocab"].end(); ++it) {
    tokens[it.value().get<size_t>()] = it.key();
  }
  for (const auto& a : j["added_tokens"]) {
    const size_t id = a["id"].get<size_t>();
    if (id >= tokens.size()) {
      tokens.resize(id + 1);
      types.resize(id + 1, 1);
    }
    tokens[id] = a["content"].get<std::string>();
    types[id] = a["special"].get<bool>() ? 3 : 4;
  }
  std::vector<std::string> merges;
  for (const auto& m : j["model"]["merges"]) {
    merges.push_back(m.is_string() ? m.get<std::string>() : m[0].get<std::string>() + " " + m[1].get<std::string>());
  }
  GgufWriter w;
  EXPECT_TRUE(w.AddString("tokenizer.ggml.model", "gpt2").ok());
  EXPECT_TRUE(w.AddString("tokenizer.ggml.pre", pre).ok());
  EXPECT_TRUE(w.AddStringArray("tokenizer.ggml.tokens", tokens).ok());
  EXPECT_TRUE(w.AddIntArray("tokenizer.ggml.token_type", GgufType::kInt32, types).ok());
  EXPECT_TRUE(w.AddStringArray("tokenizer.ggml.merges", merges).ok());
  EXPECT_TRUE(w.AddBool("tokenizer.ggml.add_bos_token", false).ok());
  return w;
}

class ConvertedGgufTest : public ::testing::TestWithParam<std::pair<const char*, const char*>> {};

TEST_P(ConvertedGgufTest, MatchesTokenizerJson) {
  const auto [name, pre] = GetParam();
  std::string json_text;
  ASSERT_TRUE(testing::ReadAsset(testing::SharedPath(std::string("tokenizers/") + name + ".tokenizer.json.gz"), &json_text));
  TempGguf file(GgufFromTokenizerJson(json_text, pre));
  ASSERT_TRUE(file.status().ok());
  auto gguf_tok = LoadOrFail(file.path());
  const Tokenizer* json_tok = testing::ReferenceTokenizer(name);
  ASSERT_NE(gguf_tok, nullptr);
  ASSERT_NE(json_tok, nullptr);
  std::string lines;
  ASSERT_TRUE(testing::ReadAsset(testing::SharedPath(std::string("tokenizers/") + name + ".vectors.jsonl"), &lines));
  size_t start = 0;
  while (start < lines.size()) {
    size_t end = lines.find('\n', start);
    if (end == std::string::npos) end = lines.size();
    if (end > start) {
      const auto v = nlohmann::json::parse(lines.substr(start, end - start));
      const std::string text = v["text"].get<std::string>();
      EXPECT_EQ(*gguf_tok->Encode(text), v["ids"].get<std::vector<int32_t>>()) << text;
      EXPECT_EQ(gguf_tok->Decode(v["ids"].get<std::vector<int32_t>>()), v["decoded"].get<std::string>());
    }
    start = end + 1;
  }
  const std::string corpus = CorpusPrefix(200 << 10);
  EXPECT_EQ(*gguf_tok->Encode(corpus), *json_tok->Encode(corpus));
}

INSTANTIATE_TEST_SUITE_P(ByteLevel, ConvertedGgufTest,
                         ::testing::Values(std::make_pair("llama3", "llama-bpe"), std::make_pair("qwen3", "qwen2")));

}  // namespace
}  // namespace fastgen
