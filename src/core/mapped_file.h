// A read-only memory mapping of a whole file. Weights are used in place from the mapping, so a
// model costs no more resident memory than the pages the forward pass touches.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "core/status.h"

namespace fastgen {

class MappedFile {
 public:
  static Expected<std::shared_ptr<MappedFile>> Open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  MappedFile() = default;
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// How much of a file ReadTextFile accepts, and what to call the file in the error. Every read
// of a user-named file is bounded: `-f /dev/zero` must be refused, not read until memory runs
// out.
struct ReadLimit {
  size_t max_bytes;
  const char* what;  // "prompt file", "chat template", ...
};
// The limits fastgen reads its inputs with (README.md lists them for users).
inline constexpr ReadLimit kPromptFileLimit{64u << 20, "prompt file"};
inline constexpr ReadLimit kConfigFileLimit{64u << 20, "JSON configuration file"};
inline constexpr ReadLimit kTokenizerFileLimit{512u << 20, "tokenizer file"};
inline constexpr ReadLimit kTemplateFileLimit{4u << 20, "chat template"};
inline constexpr ReadLimit kCalibrationFileLimit{256u << 20, "calibration text"};
inline constexpr ReadLimit kEvalTextLimit{256u << 20, "text to evaluate"};
inline constexpr ReadLimit kGrammarFileLimit{16u << 20, "grammar or JSON schema file"};

// Reads a whole file into a string. Refuses a directory and anything longer than
// limit.max_bytes (naming the file and the limit); reads pipes and character devices as
// streams, up to the limit.
Expected<std::string> ReadTextFile(const std::string& path, const ReadLimit& limit);

// The first `max_bytes` of a text file, gzip-compressed (.gz) or not: calibration text is taken
// from the start of a corpus of any size. `what` names it in errors.
Expected<std::string> ReadTextPrefix(const std::string& path, size_t max_bytes, const char* what);

}  // namespace fastgen
