#include "io/checkpoint.h"

#include <sys/stat.h>

#include <cstdio>

#include "core/diagnostics.h"
#include "io/gptq_checkpoint.h"
#include "io/safetensors.h"

namespace fastgen {

bool IsGgufPath(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return false;
  char magic[4] = {};
  const size_t got = std::fread(magic, 1, 4, f);
  std::fclose(f);
  return got == 4 && magic[0] == 'G' && magic[1] == 'G' && magic[2] == 'U' && magic[3] == 'F';
}

Expected<std::unique_ptr<Checkpoint>> OpenCheckpoint(const std::string& path,
                                                     const CheckpointOptions& options) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return NotFound(path + ": no such file or directory");
  auto ckpt = std::make_unique<Checkpoint>();
  ckpt->path = path;
  if (S_ISDIR(st.st_mode)) {
    ckpt->format = CheckpointFormat::kSafetensors;
    if (!options.gguf_overrides.empty())
      return InvalidArgument("--override-kv " + options.gguf_overrides.begin()->first +
                             ": overrides apply to GGUF metadata, and " + path +
                             " is a Hugging Face directory (edit its config.json instead)");
    const std::string config_path = path + "/config.json";
    FG_ASSIGN_OR_RETURN(std::string config_text, ReadTextFile(config_path, kConfigFileLimit));
    std::string gen_text;
    const std::string gen_path = path + "/generation_config.json";
    const bool has_gen = ::stat(gen_path.c_str(), &st) == 0;
    if (has_gen) {
      FG_ASSIGN_OR_RETURN(gen_text, ReadTextFile(gen_path, kConfigFileLimit));
    }
    FG_ASSIGN_OR_RETURN(ckpt->config,
                        ParseHfConfig(config_text, config_path, has_gen ? &gen_text : nullptr));
    FG_RETURN_IF_ERROR(ReadSafetensorsDir(path, &ckpt->weights));
    // GPTQ / AWQ layers become compact weights the kernels read (io/gptq_checkpoint.h).
    const auto config_json = nlohmann::json::parse(config_text, nullptr, false);
    if (!config_json.is_discarded()) {
      FG_ASSIGN_OR_RETURN(QuantizedCheckpointInfo q, ParseQuantizationConfig(config_json, config_path));
      if (!q.method.empty()) {
        FG_ASSIGN_OR_RETURN(auto notes, ConvertQuantizedLayers(q, &ckpt->weights));
        for (const auto& note : notes) Warn(path + ": " + note);
      }
    }
    return ckpt;
  }
  if (!IsGgufPath(path))
    return Unsupported(path + ": not a model directory and not a GGUF file (no GGUF magic)");
  ckpt->format = CheckpointFormat::kGguf;
  FG_ASSIGN_OR_RETURN(GgufFile gguf, GgufFile::Open(path));
  ckpt->gguf = std::make_unique<GgufFile>(std::move(gguf));
  FG_ASSIGN_OR_RETURN(ckpt->config, ConfigFromGguf(*ckpt->gguf, options.gguf_overrides));
  FG_RETURN_IF_ERROR(ckpt->gguf->AddTensorsTo(&ckpt->weights));
  return ckpt;
}

}  // namespace fastgen
