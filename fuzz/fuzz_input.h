// Helpers shared by the libFuzzer entry points.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <utility>

namespace fastgen::fuzz {

// Writes the input to a file of this process's own (the readers under test take paths).
inline std::string WriteScratch(const char* name, const uint8_t* data, size_t size) {
  const std::string path = "/tmp/fastgen_fuzz_" + std::to_string(::getpid()) + "_" + name;
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return path;
  if (size > 0) std::fwrite(data, 1, size, f);
  std::fclose(f);
  return path;
}

// Splits an input at its first NUL byte: two inputs in one (a template and the JSON it renders,
// a tokenizer and the text it encodes). Without a NUL the second part is empty.
inline std::pair<std::string_view, std::string_view> SplitAtNul(const uint8_t* data, size_t size) {
  const std::string_view all(reinterpret_cast<const char*>(data), size);
  const size_t nul = all.find('\0');
  if (nul == std::string_view::npos) return {all, {}};
  return {all.substr(0, nul), all.substr(nul + 1)};
}

}  // namespace fastgen::fuzz
