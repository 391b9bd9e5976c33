// libFuzzer entry point for a Hugging Face checkpoint's files: the input is split at its first
// NUL into config.json text (parsed into a ModelConfig, with itself as generation_config.json
// too) and safetensors bytes (read into a WeightMap; every tensor's first and last byte is
// touched so a view reaching past the mapping shows up under AddressSanitizer).
#include <cstdint>
#include <string>

#include "fuzz/fuzz_input.h"
#include "io/model_config.h"
#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto [config, blob] = fastgen::fuzz::SplitAtNul(data, size);
  const std::string config_text(config);
  (void)fastgen::ParseHfConfig(config_text, "config.json", nullptr);
  (void)fastgen::ParseHfConfig(config_text, "config.json", &config_text);

  const std::string path = fastgen::fuzz::WriteScratch(
      "model.safetensors", reinterpret_cast<const uint8_t*>(blob.data()), blob.size());
  fastgen::WeightMap weights;
  if (!fastgen::ReadSafetensors(path, &weights).ok()) return 0;
  volatile uint8_t sink = 0;
  for (const auto& [name, t] : weights.tensors()) {
    if (t.nbytes == 0) continue;
    sink = sink + t.data[0] + t.data[t.nbytes - 1];
  }
  return 0;
}
