// libFuzzer entry point for tokenizer.json: the input is split at its first NUL into the JSON
// text (loaded into a Tokenizer: model, normalizer, pre-tokenizer, post-processor, decoder,
// added tokens) and a text that the tokenizer then encodes, with and without special tokens,
// decodes again and streams back id by id.
#include <cstdint>
#include <string>

#include "fuzz/fuzz_input.h"
#include "tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto [json, text] = fastgen::fuzz::SplitAtNul(data, size);
  auto tok = fastgen::Tokenizer::FromJson(json, "tokenizer.json");
  if (!tok.ok()) return 0;
  const std::string sample = text.empty() ? std::string("Hello world, <s> café 123\n\tdef f():") : std::string(text);
  for (bool special : {false, true}) {
    fastgen::EncodeOptions o;
    o.add_special_tokens = special;
    auto ids = (*tok)->Encode(sample, o);
    if (!ids.ok()) continue;
    (void)(*tok)->Decode(*ids, /*skip_special_tokens=*/special);
    fastgen::StreamDecoder stream(**tok);
    for (int32_t id : *ids) (void)stream.Push(id);
    (void)stream.Flush();
  }
  (void)(*tok)->ApplyTokenizerConfig(json);
  return 0;
}
