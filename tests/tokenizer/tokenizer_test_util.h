// Shared helpers for the tokenizer tests: reading (optionally gzipped) assets from the shared
// directory and loading each reference tokenizer once per test binary.
#pragma once

#include <gtest/gtest.h>

#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace fastgen::testing {

inline std::string SharedPath(const std::string& rel) { return std::string(FASTGEN_SHARED_DIR) + "/" + rel; }

// Reads a file; a ".gz" file is decompressed through gzip(1), which every test machine has
// (the tokenizer test target does not link zlib).
inline bool ReadAsset(const std::string& path, std::string* out) {
  out->clear();
  const bool gz = path.size() > 3 && path.compare(path.size() - 3, 3, ".gz") == 0;
  std::FILE* f = gz ? ::popen(("gzip -dc '" + path + "'").c_str(), "r") : std::fopen(path.c_str(), "rb");
  if (f == nullptr) return false;
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) out->append(buf, n);
  const int rc = gz ? ::pclose(f) : std::fclose(f);
  return rc == 0;
}

// The reference tokenizers by name ("gpt2", "llama3", "qwen3", "gemma3", "fg-target"),
// loaded once and shared by all tests.
inline const Tokenizer* ReferenceTokenizer(const std::string& name) {
  static std::map<std::string, std::unique_ptr<Tokenizer>> cache;
  auto it = cache.find(name);
  if (it != cache.end()) return it->second.get();
  std::string path;
  if (name == "fg-target") {
    path = SharedPath("models/fg-target/tokenizer.json");
  } else if (name == "gpt2") {
    path = SharedPath("tokenizers/gpt2.tokenizer.json");
  } else {
    path = SharedPath("tokenizers/" + name + ".tokenizer.json.gz");
  }
  std::string text;
  if (!ReadAsset(path, &text)) {
    ADD_FAILURE() << "cannot read " << path;
    return nullptr;
  }
  auto tok = Tokenizer::FromJson(text, path);
  if (!tok.ok()) {
    ADD_FAILURE() << tok.status().message();
    return nullptr;
  }
  return cache.emplace(name, std::move(tok).value()).first->second.get();
}

}  // namespace fastgen::testing
