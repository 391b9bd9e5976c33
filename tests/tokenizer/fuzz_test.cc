// Fuzzing with fixed seeds: random and invalid UTF-8 text never crashes or hangs the encoder,
// and broken tokenizer.json files are rejected with an error naming the field.
#include <gtest/gtest.h>

#include <random>

#include "tokenizer/unicode.h"
#include "tokenizer_test_util.h"

namespace fastgen {
namespace {

// Random text mixing raw bytes, ASCII words and whitespace, multi-byte characters (some cut
// short) and special-token spellings, so every stage of the pipeline is reached.
std::string RandomText(std::mt19937& rng, size_t max_len) {
  static const char* kPieces[] = {"<|endoftext|>", "<|im_start|>", "<bos>", "<|begin_of_text|>", " ", "  ", "\n",
                                  "\r\n", "\t", "'s", "'LL", "123", "hello", " World", "\xE2\x96\x81", "\xC3\xA9",
                                  "e\xCC\x81", "\xF0\x9F\xA4\x96", "\xE6\x97\xA5", "\xEF\xBC\xA1", "\xC2\xA0",
                                  "\xE2\x80\x8B", "\xC2\x85", "<0xE2>", "\xE2\x82", "\xF0\x9F", "\xFF", "\xC0\x80",
                                  "\xED\xA0\x80", "\x00"};
  std::string s;
  const size_t len = rng() % (max_len + 1);
  while (s.size() < len) {
    switch (rng() % 4) {
      case 0:
        s.push_back(static_cast<char>(rng() & 0xFF));
        break;
      case 1:
        s.push_back(static_cast<char>(0x20 + rng() % 95));
        break;
      default: {
        const char* p = kPieces[rng() % (sizeof(kPieces) / sizeof(kPieces[0]))];
        s += p[0] == 0 ? std::string(1, '\0') : std::string(p);
      }
    }
  }
  return s;
}

class EncoderFuzzTest : public ::testing::TestWithParam<std::string> {};

TEST_P(EncoderFuzzTest, RandomBytesEncodeAndRoundTrip) {
  const std::string name = GetParam();
  const Tokenizer* tok = testing::ReferenceTokenizer(name);
  ASSERT_NE(tok, nullptr);
  // Byte-level tokenizers without a normalizer decode back to exactly the (sanitized) text;
  // Qwen's NFC and Gemma's ▁ mapping make round trips lossy by design.
  const bool exact_round_trip = name == "gpt2" || name == "llama3" || name == "fg-target";
  std::mt19937 rng(42);
  const int iterations = 400;
  for (int i = 0; i < iterations; ++i) {
    const std::string text = RandomText(rng, 300);
    for (bool parse_special : {true, false}) {
      EncodeOptions opts;
      opts.parse_special = parse_special;
      opts.add_special_tokens = (i & 1) != 0;
      auto ids = tok->Encode(text, opts);
      ASSERT_TRUE(ids.ok()) << ids.status().message();
      for (int32_t id : *ids) ASSERT_TRUE(id >= 0 && id < tok->vocab_size());
      // Invalid UTF-8 is replaced before encoding, so the sanitized text encodes the same.
      const std::string clean = tok::SanitizeUtf8(text);
      ASSERT_EQ(*ids, *tok->Encode(clean, opts)) << "iteration " << i;
      const std::string decoded = tok->Decode(*ids);
      ASSERT_TRUE(tok::IsValidUtf8(decoded));
      if (exact_round_trip && !opts.add_special_tokens) {
        ASSERT_EQ(decoded, clean) << "iteration " << i;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(All, EncoderFuzzTest, ::testing::Values("gpt2", "llama3", "qwen3", "gemma3", "fg-target"));

TEST(EncoderFuzzTest, LongPathologicalInputsFinish) {
  // Long runs that stress the regex (no word boundary for megabytes) and the merge loop.
  const Tokenizer* tok = testing::ReferenceTokenizer("llama3");
  const Tokenizer* gemma = testing::ReferenceTokenizer("gemma3");
  ASSERT_NE(tok, nullptr);
  ASSERT_NE(gemma, nullptr);
  for (const std::string& text :
       {std::string(200000, ' '), std::string(200000, 'a'), std::string(100000, '\n') + "x",
        std::string(50000, '!') + std::string(50000, '9'), std::string(60000, '\xFF')}) {
    ASSERT_TRUE(tok->Encode(text).ok());
    ASSERT_TRUE(gemma->Encode(text.substr(0, 20000)).ok());
  }
}

TEST(EncoderFuzzTest, InvalidUtf8BecomesReplacementCharacter) {
  const Tokenizer* tok = testing::ReferenceTokenizer("gpt2");
  ASSERT_NE(tok, nullptr);
  // Python: b"a\xffb\xe2\x82c".decode("utf-8", "replace") == "a\ufffdb\ufffdc".
  EXPECT_EQ(tok::SanitizeUtf8("a\xFF" "b\xE2\x82" "c"), "a\xEF\xBF\xBD" "b\xEF\xBF\xBD" "c");
  EXPECT_EQ(*tok->Encode("a\xFF" "b"), *tok->Encode("a\xEF\xBF\xBD" "b"));
  // Surrogates and overlong forms are invalid too: one U+FFFD per maximal subpart.
  EXPECT_EQ(tok::SanitizeUtf8("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(tok::SanitizeUtf8("\xC0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(tok::SanitizeUtf8("\xF0\x9F\xA4"), "\xEF\xBF\xBD");
}

TEST(TokenizerJsonFuzzTest, MutatedFilesNeverCrash) {
  std::string json;
  ASSERT_TRUE(testing::ReadAsset(testing::SharedPath("models/fg-target/tokenizer.json"), &json));
  std::mt19937 rng(7);
  int rejected = 0;
  for (int i = 0; i < 60; ++i) {
    std::string m = json;
    switch (i % 3) {
      case 0:
        m.resize(rng() % m.size());
        break;
      case 1:
        for (int k = 0; k < 8; ++k) m[rng() % m.size()] = static_cast<char>(rng() & 0xFF);
        break;
      default: {
        // Structural edits to the small header objects, where types and names matter.
        const size_t head = std::min<size_t>(m.size(), 1200);
        for (int k = 0; k < 3; ++k) m[rng() % head] = "{}[]\":,0tfn"[rng() % 11];
      }
    }
    auto r = Tokenizer::FromJson(m, "mutated.json");
    if (!r.ok()) {
      ++rejected;
      EXPECT_EQ(r.status().message().rfind("mutated.json", 0), 0u) << r.status().message();
    } else {
      ASSERT_TRUE((*r)->Encode("def f(x):\n    return x  # \xE2\x82\xAC").ok());
    }
  }
  EXPECT_GT(rejected, 20);
}

struct BadJsonCase {
  const char* json;
  const char* field;  // must appear in the error message
};

TEST(TokenizerJsonFuzzTest, MalformedFieldsAreNamed) {
  const BadJsonCase cases[] = {
      {R"({})", "model"},
      {R"({"model": {"type": "Unigram", "vocab": []}})", "model.type"},
      {R"({"model": {"type": "BPE", "vocab": [], "merges": []}})", "model.vocab"},
      {R"({"model": {"type": "BPE", "vocab": {"a": "x"}, "merges": []}})", "model.vocab.a"},
      {R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": ["a c"]}})", "model.merges[0]"},
      {R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": ["a b"]}})", "model.merges[0]"},
      {R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [7]}})", "model.merges[0]"},
      {R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [], "unk_token": "<unk>"}})", "model.unk_token"},
      {R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [], "dropout": 0.1}})", "model.dropout"},
      {R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "pre_tokenizer": {"type": "Nope"}})",
       "pre_tokenizer.type"},
      {R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []},
           "pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex": "("},
           "behavior": "Isolated"}]}})",
       "pre_tokenizer.pretokenizers[0].pattern.Regex"},
      {R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []},
           "pre_tokenizer": {"type": "Split", "pattern": {"String": " "}, "behavior": "Sideways"}})",
       "pre_tokenizer.behavior"},
      {R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "normalizer": {"type": "Precompiled"}})",
       "normalizer.type"},
      {R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "normalizer": {"type": "Prepend"}})",
       "normalizer.prepend"},
      {R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "decoder": {"type": "CTC"}})", "decoder.type"},
      {R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []},
           "decoder": {"type": "Sequence", "decoders": [{"type": "Strip", "content": " ", "start": "x"}]}})",
       "decoder.decoders[0].start"},
      {R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []},
           "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>"}}],
           "special_tokens": {}}})",
       "post_processor.single[0].SpecialToken.id"},
      {R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "added_tokens": [{"id": 1}]})",
       "added_tokens[0].content"},
      {R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "added_tokens": [{"id": -3, "content": "x"}]})",
       "added_tokens[0].id"},
      {R"({"model": )", "not valid JSON"},
  };
  for (const BadJsonCase& c : cases) {
    auto r = Tokenizer::FromJson(c.json, "bad.json");
    ASSERT_FALSE(r.ok()) << c.json;
    EXPECT_NE(r.status().message().find(c.field), std::string::npos)
        << "expected '" << c.field << "' in: " << r.status().message();
  }
}

}  // namespace
}  // namespace fastgen
