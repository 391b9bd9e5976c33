// StreamDecoder: the chunks concatenate to Decode(all ids) and never end inside a character.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>

#include "tokenizer/unicode.h"
#include "tokenizer_test_util.h"

namespace fastgen {
namespace {

// Streams `ids` and checks both properties; returns the streamed text.
std::string StreamAndCheck(const Tokenizer& tok, const std::vector<int32_t>& ids, bool skip_special = false) {
  StreamDecoder stream(tok, skip_special);
  std::string all;
  for (int32_t id : ids) {
    const std::string chunk = stream.Push(id);
    EXPECT_TRUE(tok::IsValidUtf8(chunk)) << "chunk after id " << id;
    all += chunk;
  }
  const std::string rest = stream.Flush();
  EXPECT_TRUE(tok::IsValidUtf8(rest));
  all += rest;
  EXPECT_EQ(all, tok.Decode(ids, skip_special));
  return all;
}

class StreamDecoderTest : public ::testing::TestWithParam<std::string> {};

TEST_P(StreamDecoderTest, VectorsAndCorpusStreamLikeDecode) {
  const Tokenizer* tok = testing::ReferenceTokenizer(GetParam());
  ASSERT_NE(tok, nullptr);
  std::string lines;
  ASSERT_TRUE(testing::ReadAsset(testing::SharedPath("tokenizers/gpt2.vectors.jsonl"), &lines));
  size_t start = 0;
  while (start < lines.size()) {
    size_t end = lines.find('\n', start);
    if (end == std::string::npos) end = lines.size();
    if (end > start) {
      const std::string text = nlohmann::json::parse(lines.substr(start, end - start))["text"].get<std::string>();
      EncodeOptions opts;
      opts.add_special_tokens = true;
      const auto ids = *tok->Encode(text, opts);
      StreamAndCheck(*tok, ids);
      StreamAndCheck(*tok, ids, /*skip_special=*/true);
    }
    start = end + 1;
  }
}

TEST_P(StreamDecoderTest, RandomIdsStreamLikeDecode) {
  // Random ids produce byte sequences that are not UTF-8 at all; the stream must still agree
  // with Decode and emit only whole characters.
  const Tokenizer* tok = testing::ReferenceTokenizer(GetParam());
  ASSERT_NE(tok, nullptr);
  std::mt19937 rng(1234);
  std::uniform_int_distribution<int32_t> any_id(0, tok->vocab_size() - 1);
  for (int iter = 0; iter < 500; ++iter) {
    std::vector<int32_t> ids(rng() % 64);
    for (auto& id : ids) id = any_id(rng);
    StreamAndCheck(*tok, ids);
  }
}

INSTANTIATE_TEST_SUITE_P(All, StreamDecoderTest, ::testing::Values("gpt2", "llama3", "qwen3", "gemma3", "fg-target"));

TEST(StreamDecoderTest, HoldsBackSplitCharacters) {
  // Gemma's byte-fallback tokens: "🤖" is not a vocabulary token in all contexts, so build
  // the byte tokens explicitly and check nothing is emitted until the character completes.
  const Tokenizer* tok = testing::ReferenceTokenizer("gemma3");
  ASSERT_NE(tok, nullptr);
  std::vector<int32_t> ids;
  for (const char* b : {"<0xE2>", "<0x82>", "<0xAC>"}) ids.push_back(tok->TokenToId(b).value());
  StreamDecoder stream(*tok);
  EXPECT_EQ(stream.Push(ids[0]), "");
  EXPECT_EQ(stream.Push(ids[1]), "");
  EXPECT_EQ(stream.Push(ids[2]), "\xE2\x82\xAC");
  EXPECT_EQ(stream.Flush(), "");
  // An incomplete character left at the end comes out as U+FFFD on Flush, as Decode does.
  EXPECT_EQ(stream.Push(ids[0]), "");
  EXPECT_EQ(stream.Flush(), "\xEF\xBF\xBD");

  // Byte-level: "€" is three byte stand-ins; split it across tokens by hand.
  const Tokenizer* gpt2 = testing::ReferenceTokenizer("gpt2");
  ASSERT_NE(gpt2, nullptr);
  std::vector<int32_t> bytes;
  for (unsigned char c : std::string("a\xE2\x82\xAC")) bytes.push_back(gpt2->TokenToId(tok::ByteToUnicode()[c]).value());
  StreamDecoder s2(*gpt2);
  EXPECT_EQ(s2.Push(bytes[0]), "a");
  EXPECT_EQ(s2.Push(bytes[1]), "");
  EXPECT_EQ(s2.Push(bytes[2]), "");
  EXPECT_EQ(s2.Push(bytes[3]), "\xE2\x82\xAC");
}

}  // namespace
}  // namespace fastgen
