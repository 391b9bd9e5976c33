// libFuzzer entry point for the safetensors reader: the input bytes become a file that is
// read into a WeightMap; every tensor's bytes are then touched so a view reaching past the
// mapping shows up under AddressSanitizer.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>

#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path =
      "/tmp/fastgen_fuzz_safetensors_" + std::to_string(::getpid()) + ".safetensors";
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return 0;
  if (size > 0) std::fwrite(data, 1, size, f);
  std::fclose(f);

  fastgen::WeightMap weights;
  if (!fastgen::ReadSafetensors(path, &weights).ok()) return 0;
  volatile uint8_t sink = 0;
  for (const auto& [name, t] : weights.tensors()) {
    if (t.nbytes == 0) continue;
    sink = sink + t.data[0] + t.data[t.nbytes - 1];
  }
  return 0;
}
