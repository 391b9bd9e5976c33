// Tokenizer::TokenBytes: the bytes a token adds mid-sequence, which grammar masks are built on.
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "tokenizer_test_util.h"

namespace fastgen {
namespace {

class TokenBytesTest : public ::testing::TestWithParam<const char*> {};

// The bytes of a text's tokens, joined, are the text: exactly, or with the space a SentencePiece
// tokenizer prepends to the first word (which Decode drops again).
TEST_P(TokenBytesTest, JoinedTokenBytesSpellTheText) {
  const Tokenizer* tok = testing::ReferenceTokenizer(GetParam());
  ASSERT_NE(tok, nullptr);
  const std::vector<std::string>& bytes = tok->TokenBytes();
  ASSERT_EQ(static_cast<int32_t>(bytes.size()), tok->vocab_size());
  const char* texts[] = {
      "Hello, world! {\"key\": [1, 2.5e-3, null]}",
      "  leading spaces and\ttabs\nnew lines\n\n",
      "naïve café — 日本語のテキスト 🙂🚀 ελληνικά",
      "def f(x):\n    return x ** 2  # comment",
      "\xF0\x9F\xA7\xAA rare emoji and \xE2\x80\x8B zero width",
  };
  for (const char* text : texts) {
    auto ids = tok->Encode(text);
    ASSERT_TRUE(ids.ok());
    std::string joined;
    for (int32_t id : *ids) joined += bytes[id];
    const std::string decoded = tok->Decode(*ids);
    EXPECT_TRUE(joined == decoded || joined == " " + decoded) << GetParam() << ": '" << joined << "' vs '" << decoded << "'";
  }
}

TEST_P(TokenBytesTest, SpecialTokensHaveNoBytes) {
  const Tokenizer* tok = testing::ReferenceTokenizer(GetParam());
  ASSERT_NE(tok, nullptr);
  const std::vector<std::string>& bytes = tok->TokenBytes();
  int specials = 0;
  for (int32_t id = 0; id < tok->vocab_size(); ++id) {
    if (tok->IsSpecial(id)) {
      EXPECT_TRUE(bytes[id].empty()) << id;
      ++specials;
    }
  }
  if (std::string(GetParam()) != "gpt2") {  // gpt2 marks none special
    EXPECT_GT(specials, 0);
  }
}

INSTANTIATE_TEST_SUITE_P(All, TokenBytesTest, ::testing::Values("gpt2", "llama3", "qwen3", "gemma3", "fg-target"));

}  // namespace
}  // namespace fastgen
