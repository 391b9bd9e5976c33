// libFuzzer entry point for structured output's parsers and matcher: the first byte picks GBNF,
// JSON Schema or regex; the rest is split at its first NUL into that text and a sample text. A
// grammar that compiles is run over the sample byte by byte, and a token constraint over a
// vocabulary cut from the sample (plus every single byte) takes up to 16 masked steps.
#include <cstdint>
#include <string>
#include <vector>

#include "decoding/constrained/output_format.h"
#include "decoding/constrained/token_mask.h"
#include "fuzz/fuzz_input.h"

using namespace fastgen::constrained;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  static constexpr OutputFormat::Kind kKinds[] = {OutputFormat::Kind::kGrammar, OutputFormat::Kind::kJsonSchema,
                                                  OutputFormat::Kind::kRegex};
  OutputFormat format;
  format.kind = kKinds[data[0] % 3];
  format.compact = (data[0] & 4) != 0;
  const auto [spec, sample] = fastgen::fuzz::SplitAtNul(data + 1, size - 1);
  format.text = std::string(spec);
  auto grammar = CompileOutputFormat(format);
  if (!grammar.ok()) return 0;

  GrammarMatcher m(*grammar);
  for (char c : sample) {
    if (!m.Accept(std::string_view(&c, 1))) break;
  }
  (void)m.CanEnd();

  std::vector<std::string> bytes;
  for (int b = 0; b < 256; ++b) bytes.push_back(std::string(1, static_cast<char>(b)));
  for (size_t i = 0; i + 1 < sample.size() && bytes.size() < 1024; i += 2) bytes.emplace_back(sample.substr(i, 1 + i % 3));
  bytes.push_back("");  // a control token
  auto vocab = std::make_shared<const TokenVocabulary>(bytes);
  TokenConstraint c(*grammar, vocab, {static_cast<int32_t>(bytes.size() - 1)});
  std::vector<uint64_t> mask;
  for (int step = 0; step < 16; ++step) {
    c.FillMask(&mask);
    int32_t pick = -1;
    for (int32_t id = 0; id < vocab->size(); ++id) {
      if ((mask[id >> 6] >> (id & 63)) & 1) {
        pick = id;
        if (id % 7 == step % 7) break;
      }
    }
    if (pick < 0 || c.IsEnd(pick)) break;
    if (!c.Accept(pick)) __builtin_trap();  // the mask allowed a token the constraint refuses
  }
  return 0;
}
