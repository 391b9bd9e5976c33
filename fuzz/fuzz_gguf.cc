// libFuzzer entry point for the GGUF reader: the input bytes become a file, which is opened,
// its typed getters exercised, its tensors loaded and every row dequantized. Any crash,
// sanitizer report or hang is a bug; error Statuses are the expected outcome for most inputs.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "io/gguf.h"
#include "kernels/reference/dequant.h"

namespace {

std::string ScratchPath() {
  return "/tmp/fastgen_fuzz_gguf_" + std::to_string(::getpid()) + ".gguf";
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = ScratchPath();
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return 0;
  if (size > 0) std::fwrite(data, 1, size, f);
  std::fclose(f);

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
