// libFuzzer entry point for everything fastgen reads from a GGUF file: the reader (header,
// typed metadata, tensor infos; every tensor loaded and its rows dequantized), the model
// configuration built from the metadata, the tokenizer built from tokenizer.ggml.* (which then
// encodes and decodes a little text) and the chat template. Any crash, sanitizer report or hang
// is a bug; error Statuses are the expected outcome for most inputs.
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz/fuzz_input.h"
#include "io/gguf.h"
#include "io/model_config.h"
#include "kernels/reference/dequant.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = fastgen::fuzz::WriteScratch("model.gguf", data, size);
  auto file = fastgen::GgufFile::Open(path);
  if (!file.ok()) return 0;
  for (const auto& [key, value] : file->metadata()) {
    (void)file->GetString(key);
    (void)file->GetInt(key);
    (void)file->GetFloat(key);
    (void)file->GetBool(key);
    (void)file->GetStringArray(key);
    (void)file->GetIntArray(key);
    (void)file->GetFloatArray(key);
  }
  (void)fastgen::ConfigFromGguf(*file, {});
  if (auto tok = fastgen::Tokenizer::FromGguf(*file); tok.ok()) {
    auto ids = (*tok)->Encode("Hello world, <s> café 123\n\tdef f():", {});
    if (ids.ok()) (void)(*tok)->Decode(*ids);
    const std::vector<int32_t> some = {0, 1, 2, 3, 255, 256, 1000, -1};
    (void)(*tok)->Decode(some);
  }
  (void)fastgen::LoadChatTemplate(path);
  fastgen::WeightMap weights;
  if (!file->AddTensorsTo(&weights).ok()) return 0;
  for (const auto& [name, t] : weights.tensors()) {
    // Keep each input cheap: a header can describe a large tensor that really is in the file.
    if (t.cols() > (1 << 16)) continue;
    std::vector<float> row(static_cast<size_t>(t.cols()));
    for (int64_t r = 0; r < t.rows() && r < 64; ++r)
      fastgen::kernels::reference::DequantizeRow(t.dtype, t.row(r), row.data(), t.cols());
  }
  return 0;
}
