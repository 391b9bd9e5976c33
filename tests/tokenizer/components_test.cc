// Unit tests of the pipeline stages against the behaviour documented and tested in Hugging
// Face tokenizers (the expected values are the ones its own tests and docs give).
#include <gtest/gtest.h>

#include "tokenizer/decoder.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/tokenizer.h"

namespace fastgen::tok {
namespace {

std::vector<std::string> Words(const PreTokenizer& p, const std::string& text) {
  PreTokenized words;
  words.Reset(text, true);
  p.PreTokenize(&words);
  std::vector<std::string> out;
  for (const auto& [b, e] : words.spans) out.push_back(words.text.substr(b, e - b));
  return out;
}

using V = std::vector<std::string>;

TEST(PreTokenizerTest, SplitBehaviors) {
  auto split = [](SplitBehavior b, bool invert = false) {
    return Words(*MakeSplitPreTokenizer(Regex::Literal("-").value(), b, invert), "the-final--countdown");
  };
  EXPECT_EQ(split(SplitBehavior::kRemoved), (V{"the", "final", "countdown"}));
  EXPECT_EQ(split(SplitBehavior::kIsolated), (V{"the", "-", "final", "-", "-", "countdown"}));
  EXPECT_EQ(split(SplitBehavior::kMergedWithPrevious), (V{"the-", "final-", "-", "countdown"}));
  EXPECT_EQ(split(SplitBehavior::kMergedWithNext), (V{"the", "-final", "-", "-countdown"}));
  EXPECT_EQ(split(SplitBehavior::kContiguous), (V{"the", "-", "final", "--", "countdown"}));
  EXPECT_EQ(split(SplitBehavior::kRemoved, /*invert=*/true), (V{"-", "-", "-"}));
  auto regex = MakeSplitPreTokenizer(Regex::Compile("\\s+").value(), SplitBehavior::kRemoved, false);
  EXPECT_EQ(Words(*regex, "  Hey \t friend \n"), (V{"Hey", "friend"}));
}

TEST(PreTokenizerTest, OnigurumaSemanticsOfCommonPatterns) {
  auto llama3 = MakeSplitPreTokenizer(
      Regex::Compile("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
                     "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+")
          .value(),
      SplitBehavior::kIsolated, false);
  EXPECT_EQ(Words(*llama3, "I'LL pay 12345 now  ok\n\n x"),
            (V{"I", "'LL", " pay", " ", "123", "45", " now", " ", " ok", "\n\n", " x"}));
  // U+0085 (NEL) is White_Space in Oniguruma and Rust; U+00A0 too.
  EXPECT_EQ(Words(*llama3, "a\xC2\x85\xC2\x85" "b"), (V{"a", "\xC2\x85", "\xC2\x85" "b"}));
  // \w follows Oniguruma (marks and ZWJ are word characters).
  auto word = MakeSplitPreTokenizer(Regex::Compile("\\w+").value(), SplitBehavior::kRemoved, true);
  EXPECT_EQ(Words(*word, "cafe\xCC\x81 x_1"), (V{"cafe\xCC\x81", "x_1"}));
}

TEST(PreTokenizerTest, ByteLevel) {
  auto p = MakeByteLevelPreTokenizer({.add_prefix_space = true, .use_regex = true});
  EXPECT_EQ(Words(*p, "Hello my friend, how is your day going?"),
            (V{"\xC4\xA0Hello", "\xC4\xA0my", "\xC4\xA0" "friend", ",", "\xC4\xA0how", "\xC4\xA0is", "\xC4\xA0your",
               "\xC4\xA0" "day", "\xC4\xA0going", "?"}));
  auto no_regex = MakeByteLevelPreTokenizer({.add_prefix_space = false, .use_regex = false});
  EXPECT_EQ(Words(*no_regex, "a b\n"), (V{"a\xC4\xA0" "b\xC4\x8A"}));
}

TEST(PreTokenizerTest, Metaspace) {
  MetaspaceOptions options;
  auto p = MakeMetaspacePreTokenizer(options);
  const std::string s = "\xE2\x96\x81";
  EXPECT_EQ(Words(*p, "Hey friend!"), (V{s + "Hey", s + "friend!"}));
  EXPECT_EQ(Words(*p, "Hey   friend!"), (V{s + "Hey", s, s, s + "friend!"}));
  options.split = false;
  options.prepend_scheme = PrependScheme::kNever;
  EXPECT_EQ(Words(*MakeMetaspacePreTokenizer(options), "Hey friend"), (V{"Hey" + s + "friend"}));
  options.prepend_scheme = PrependScheme::kFirst;
  PreTokenized later;
  later.Reset("Hey", /*at_start=*/false);
  MakeMetaspacePreTokenizer(options)->PreTokenize(&later);
  EXPECT_EQ(later.text, "Hey");
  EXPECT_EQ(Words(*MakeMetaspacePreTokenizer(options), "Hey"), (V{s + "Hey"}));
}

TEST(PreTokenizerTest, DigitsPunctuationWhitespace) {
  EXPECT_EQ(Words(*MakeDigitsPreTokenizer(true), "Hey 123 friend!"), (V{"Hey ", "1", "2", "3", " friend!"}));
  EXPECT_EQ(Words(*MakeDigitsPreTokenizer(false), "Hey 123 friend!"), (V{"Hey ", "123", " friend!"}));
  EXPECT_EQ(Words(*MakePunctuationPreTokenizer(SplitBehavior::kIsolated), "Hey friend!     How are you?!?"),
            (V{"Hey friend", "!", "     How are you", "?", "!", "?"}));
  EXPECT_EQ(Words(*MakeWhitespacePreTokenizer(), "How are you doing?"), (V{"How", "are", "you", "doing", "?"}));
  EXPECT_EQ(Words(*MakeWhitespacePreTokenizer(), "\n"), V{});
  EXPECT_EQ(Words(*MakeWhitespaceSplitPreTokenizer(), "Hey man!\u00A0ok"), (V{"Hey", "man!", "ok"}));
  EXPECT_EQ(Words(*MakeBertPreTokenizer(), "Hey friend!     How are you?!?"),
            (V{"Hey", "friend", "!", "How", "are", "you", "?", "!", "?"}));
}

std::string Normalized(const Normalizer& n, std::string s) {
  n.Normalize(&s);
  return s;
}

TEST(NormalizerTest, UnicodeFormsAndRewrites) {
  EXPECT_EQ(Normalized(*MakeUnicodeNormalizer(UnicodeForm::kNfc), "e\xCC\x81"), "\xC3\xA9");
  EXPECT_EQ(Normalized(*MakeUnicodeNormalizer(UnicodeForm::kNfd), "\xC3\xA9"), "e\xCC\x81");
  EXPECT_EQ(Normalized(*MakeUnicodeNormalizer(UnicodeForm::kNfkc), "\xEF\xAC\x81 \xEF\xBC\xA1"), "fi A");
  EXPECT_EQ(Normalized(*MakeUnicodeNormalizer(UnicodeForm::kNfkd), "\xC3\xA9\xEF\xAC\x81"), "e\xCC\x81" "fi");
  // Rust's to_lowercase: 'İ' -> "i̇" (two code points), 'Σ' -> 'σ' (no final-sigma rule per char).
  EXPECT_EQ(Normalized(*MakeLowercaseNormalizer(), "HeLLo \xC4\xB0 \xCE\xA3"), "hello i\xCC\x87 \xCF\x83");
  EXPECT_EQ(Normalized(*MakePrependNormalizer("\xE2\x96\x81"), "hey"), "\xE2\x96\x81hey");
  EXPECT_EQ(Normalized(*MakePrependNormalizer("\xE2\x96\x81"), ""), "");
  EXPECT_EQ(Normalized(*MakeReplaceNormalizer(Regex::Literal(" ").value(), "\xE2\x96\x81"), "a b  c"),
            "a\xE2\x96\x81" "b\xE2\x96\x81\xE2\x96\x81" "c");
  EXPECT_EQ(Normalized(*MakeReplaceNormalizer(Regex::Compile(" +").value(), "_"), "a b  c"), "a_b_c");
  EXPECT_EQ(Normalized(*MakeStripNormalizer(true, true), " \t hi there \n\xE3\x80\x80"), "hi there");
  EXPECT_EQ(Normalized(*MakeStripNormalizer(false, true), "  hi  "), "  hi");
  EXPECT_EQ(Normalized(*MakeStripNormalizer(true, false), "   "), "");
  EXPECT_EQ(Normalized(*MakeStripAccentsNormalizer(), "e\xCC\x81t\xCC\x81"), "et");
}

std::vector<std::string> Decoded(const Decoder& d, std::vector<std::string> tokens) {
  d.DecodeChain(&tokens);
  return tokens;
}

TEST(DecoderTest, Stages) {
  auto bf = MakeByteFallbackDecoder();
  const std::string fffd = "\xEF\xBF\xBD";
  EXPECT_EQ(Decoded(*bf, {"Hey", "friend!"}), (V{"Hey", "friend!"}));
  EXPECT_EQ(Decoded(*bf, {"<0x61>"}), (V{"a"}));
  EXPECT_EQ(Decoded(*bf, {"<0xE5>"}), (V{fffd}));
  EXPECT_EQ(Decoded(*bf, {"<0xE5>", "<0x8f>"}), (V{fffd, fffd}));
  EXPECT_EQ(Decoded(*bf, {"<0xE5>", "<0x8f>", "<0xab>", "a"}), (V{"\xE5\x8F\xAB", "a"}));
  EXPECT_EQ(Decoded(*MakeStripDecoder(" ", 1, 0), {"Hey", " friend!", "   "}), (V{"Hey", "friend!", "  "}));
  EXPECT_EQ(Decoded(*MakeStripDecoder("x", 0, 2), {"axxx", "x"}), (V{"ax", ""}));
  EXPECT_EQ(Decoded(*MakeFuseDecoder(), {"Hey", " friend", "!"}), (V{"Hey friend!"}));
  const std::string s = "\xE2\x96\x81";
  EXPECT_EQ(Decoded(*MakeMetaspaceDecoder(s, PrependScheme::kAlways), {s + "Hey", s + "friend!"}),
            (V{"Hey", " friend!"}));
  EXPECT_EQ(Decoded(*MakeMetaspaceDecoder(s, PrependScheme::kNever), {s + "Hey", s + "friend!"}),
            (V{" Hey", " friend!"}));
  EXPECT_EQ(Decoded(*MakeReplaceDecoder(Regex::Literal(s).value(), " "), {s + "a" + s}), (V{" a "}));
  EXPECT_EQ(Decoded(*MakeByteLevelDecoder(), {"\xC4\xA0Hello", "\xC4\xA0\xC3\xA2\xC4\xA4\xC2\xAC"}),
            (V{" Hello \xE2\x82\xAC"}));
  EXPECT_EQ(Decoded(*MakeWordPieceDecoder("##", true), {"Hey", "fri", "##end", "!"}), (V{"Hey", " fri", "end", "!"}));
  EXPECT_EQ(Decoded(*MakeBpeSuffixDecoder("</w>"), {"Hey</w>", "friend</w>"}), (V{"Hey ", "friend"}));
}

// A tiny tokenizer.json exercising added-token options, a template post-processor and
// continuing-subword prefixes.
constexpr const char* kTinyJson = R"({
  "added_tokens": [
    {"id": 10, "content": "<s>", "special": true, "normalized": false},
    {"id": 11, "content": "[L]", "special": false, "lstrip": true, "normalized": false},
    {"id": 12, "content": "[R]", "special": false, "rstrip": true, "normalized": false},
    {"id": 13, "content": "tok", "special": false, "single_word": true, "normalized": false},
    {"id": 14, "content": "UP", "special": false, "normalized": true}
  ],
  "normalizer": {"type": "Lowercase"},
  "pre_tokenizer": {"type": "WhitespaceSplit"},
  "post_processor": {"type": "TemplateProcessing",
    "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
    "pair": [], "special_tokens": {"<s>": {"id": "<s>", "ids": [10], "tokens": ["<s>"]}}},
  "decoder": null,
  "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "##b": 2, "ab": 3, "<unk>": 4, "t": 5, "##o": 6, "##k": 7,
                                     "to": 8, "tok": 9},
            "merges": ["a ##b", ["t", "##o"], "to ##k"], "unk_token": "<unk>", "fuse_unk": true,
            "continuing_subword_prefix": "##"}
})";

TEST(TokenizerJsonTest, AddedTokenOptionsAndTemplate) {
  auto loaded = Tokenizer::FromJson(kTinyJson, "tiny.json");
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  const Tokenizer& tok = **loaded;
  using I = std::vector<int32_t>;
  EXPECT_EQ(*tok.Encode("ab"), (I{3}));
  EXPECT_EQ(*tok.Encode("abb"), (I{3, 2}));
  // Unknown characters fuse into one <unk>.
  EXPECT_EQ(*tok.Encode("a%%b"), (I{0, 4, 2}));
  // lstrip swallows the spaces before [L]; rstrip those after [R].
  EXPECT_EQ(*tok.Encode("a  [L]b"), (I{0, 11, 1}));
  EXPECT_EQ(*tok.Encode("a[R]  b"), (I{0, 12, 1}));
  // single_word: "tok" only when not inside a word; inside, BPE spells it out.
  EXPECT_EQ(*tok.Encode("tok a"), (I{13, 0}));
  EXPECT_EQ(*tok.Encode("tokx"), (I{9, 4}));
  // Only the first character of a word lacks the "##" prefix: "t" inside a word is "##t".
  EXPECT_EQ(*tok.Encode("atok"), (I{0, 4, 6, 7}));
  // normalized tokens match the normalized (lowercased) text: "UP" matches "up" and "Up".
  EXPECT_EQ(*tok.Encode("Up"), (I{14}));
  EXPECT_EQ(*tok.Encode("<s>a"), (I{10, 0}));
  EncodeOptions opts;
  opts.add_special_tokens = true;
  EXPECT_EQ(*tok.Encode("ab", opts), (I{10, 3}));
  EXPECT_EQ(tok.bos_id(), std::optional<int32_t>(10));
  opts.parse_special = false;
  EXPECT_EQ(*tok.Encode("<s>", opts), (I{10, 4}));  // "<s>" read as text: unknown characters
  EXPECT_TRUE(tok.IsSpecial(10));
  EXPECT_FALSE(tok.IsSpecial(11));
  EXPECT_EQ(tok.vocab_size(), 15);
  EXPECT_EQ(tok.IdToToken(2), "##b");
  EXPECT_EQ(tok.IdToToken(99), "");
  EXPECT_EQ(tok.TokenToId("tok"), std::optional<int32_t>(13));
  // Without a decoder, tokens are joined with spaces; skip_special drops <s>.
  const std::vector<int32_t> ids = {10, 3, 2};
  EXPECT_EQ(tok.Decode(ids), "<s> ab ##b");
  EXPECT_EQ(tok.Decode(ids, true), "ab ##b");
  EXPECT_EQ(tok.Decode(std::vector<int32_t>{-1, 1000, 0}), "a");
}

TEST(TokenizerJsonTest, ConfigSetsBosAndEos) {
  auto loaded = Tokenizer::FromJson(kTinyJson, "tiny.json");
  ASSERT_TRUE(loaded.ok());
  EXPECT_TRUE((*loaded)->ApplyTokenizerConfig(R"({"bos_token": {"content": "a"}, "eos_token": "ab"})").ok());
  EXPECT_EQ((*loaded)->bos_id(), std::optional<int32_t>(0));
  EXPECT_EQ((*loaded)->eos_id(), std::optional<int32_t>(3));
  EXPECT_FALSE((*loaded)->ApplyTokenizerConfig(R"({"eos_token": "nope"})").ok());
  EXPECT_FALSE((*loaded)->ApplyTokenizerConfig("{").ok());
}

TEST(TokenizerLoadTest, PathsAndErrors) {
  EXPECT_FALSE(Tokenizer::Load("/nonexistent/dir").ok());
  auto r = Tokenizer::Load(FASTGEN_SOURCE_DIR "/src");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("tokenizer.json"), std::string::npos);
  auto file = Tokenizer::Load(FASTGEN_SHARED_DIR "/models/fg-target/tokenizer.json");
  ASSERT_TRUE(file.ok()) << file.status().message();
  EXPECT_EQ((*file)->eos_id(), std::optional<int32_t>(0));
}

}  // namespace
}  // namespace fastgen::tok
