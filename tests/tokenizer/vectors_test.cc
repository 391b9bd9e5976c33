// Golden vectors computed by Hugging Face tokenizers 0.23: every line must match exactly.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "tokenizer_test_util.h"

namespace fastgen {
namespace {

std::string Show(const std::vector<int32_t>& ids) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < ids.size(); ++i) os << (i ? ", " : "") << ids[i];
  os << "]";
  return os.str();
}

class VectorsTest : public ::testing::TestWithParam<std::string> {};

TEST_P(VectorsTest, EveryLineMatches) {
  const std::string name = GetParam();
  const Tokenizer* tok = testing::ReferenceTokenizer(name);
  ASSERT_NE(tok, nullptr);
  std::string lines;
  ASSERT_TRUE(testing::ReadAsset(testing::SharedPath("tokenizers/" + name + ".vectors.jsonl"), &lines));
  std::istringstream in(lines);
  std::string line;
  int n = 0, ids_ok = 0, special_ok = 0, decode_ok = 0;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    ++n;
    const auto v = nlohmann::json::parse(line);
    const std::string text = v["text"].get<std::string>();
    const auto want = v["ids"].get<std::vector<int32_t>>();
    const auto want_special = v["ids_with_special"].get<std::vector<int32_t>>();
    const std::string want_decoded = v["decoded"].get<std::string>();
    auto got = tok->Encode(text);
    ASSERT_TRUE(got.ok()) << got.status().message();
    EncodeOptions opts;
    opts.add_special_tokens = true;
    auto got_special = tok->Encode(text, opts);
    ASSERT_TRUE(got_special.ok());
    const std::string decoded = tok->Decode(want);
    ids_ok += *got == want;
    special_ok += *got_special == want_special;
    decode_ok += decoded == want_decoded;
    EXPECT_EQ(Show(*got), Show(want)) << name << " line " << n << " text: " << text;
    EXPECT_EQ(Show(*got_special), Show(want_special)) << name << " line " << n;
    EXPECT_EQ(decoded, want_decoded) << name << " line " << n;
  }
  EXPECT_GT(n, 0);
  std::printf("%s: %d lines, ids %d, ids_with_special %d, decode %d\n", name.c_str(), n, ids_ok, special_ok,
              decode_ok);
}

INSTANTIATE_TEST_SUITE_P(AllTokenizers, VectorsTest, ::testing::Values("gpt2", "llama3", "qwen3", "gemma3"));

}  // namespace
}  // namespace fastgen
