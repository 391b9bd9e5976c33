// Flags and helpers shared by the fastgen subcommands. The CLI stays thin: it parses flags,
// calls the library, prints results, and turns a Status into a message and an exit code.
#pragma once

#include <CLI/CLI.hpp>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/thread_pool.h"
#include "models/model.h"

namespace fastgen::cli {

struct ModelFlags {
  std::string path;                          // -m: model directory or GGUF file
  int threads = 0;                           // -t: 0 = physical cores
  std::vector<std::string> override_kv;      // --override-kv KEY=VALUE
  std::string kv_type = "f32";               // --kv-type: KV cache element type
  std::string stream_weights = "auto";       // --stream-weights: auto | on | off
};

void AddModelFlags(CLI::App* cmd, ModelFlags* flags);

// The bundled model when -m is not given: $FASTGEN_MODEL, else models/fg-target next to the
// source tree this binary was built from, else models/fg-target beside the executable.
std::string DefaultModelPath();

struct LoadedModel {
  std::unique_ptr<ThreadPool> pool;
  std::unique_ptr<Model> model;
};
Expected<LoadedModel> LoadFromFlags(const ModelFlags& flags);
Expected<std::map<std::string, std::string>> ParseOverrides(const std::vector<std::string>& kv);

// "1,2,3" or "1 2 3" or "[1, 2, 3]" -> ids; names the bad entry on error.
Expected<std::vector<int32_t>> ParseIdList(const std::string& text);
std::string FormatIdList(const std::vector<int32_t>& ids);  // "1,2,3"

// Prints "fastgen: error: <message>" to stderr and returns the exit code for it.
int ReportError(const Status& status);

}  // namespace fastgen::cli
