// Opens what a user passes to -m: a Hugging Face model directory (config.json, safetensors,
// generation_config.json) or a GGUF file. Both end as one ModelConfig plus one WeightMap.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "core/status.h"
#include "io/gguf.h"
#include "io/model_config.h"
#include "io/weight_map.h"

namespace fastgen {

enum class CheckpointFormat { kSafetensors, kGguf };

struct CheckpointOptions {
  // GGUF metadata overrides, key -> value text (llama.cpp's --override-kv), applied before the
  // hyperparameters are read.
  std::map<std::string, std::string> gguf_overrides;
};

struct Checkpoint {
  std::string path;
  CheckpointFormat format = CheckpointFormat::kSafetensors;
  ModelConfig config;
  WeightMap weights;
  std::unique_ptr<GgufFile> gguf;  // metadata of a GGUF checkpoint (tokenizer, chat template)
};

Expected<std::unique_ptr<Checkpoint>> OpenCheckpoint(const std::string& path,
                                                     const CheckpointOptions& options = {});

bool IsGgufPath(const std::string& path);  // by magic bytes, so a renamed file still works

}  // namespace fastgen
