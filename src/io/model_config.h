// The hyperparameters of a decoder-only transformer, read from a Hugging Face config.json
// (transformers 4.x keys `rope_theta`/`rope_scaling` and 5.x `rope_parameters`) or from GGUF
// metadata (`{arch}.block_count`, ...). Everything downstream reads this struct, never a file.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"

namespace fastgen {

class GgufFile;

enum class Arch { kLlama, kMistral, kQwen2, kQwen3, kGemma, kPhi3, kGpt2 };
const char* ArchName(Arch a);  // "llama", "mistral", ...
// Maps GGUF's general.architecture ("llama", "qwen2", ...); `source` names the file in errors.
Expected<Arch> ArchFromGgufName(const std::string& name, const std::string& source);

// How a rotary embedding pairs the dimensions of a head.
enum class RopeStyle {
  kHalf,      // transformers' rotate_half: dimension i pairs with i + head_dim/2
  kAdjacent,  // GPT-J / llama.cpp "normal": dimension 2i pairs with 2i + 1 (llama.cpp permutes
              // Llama's Q/K rows at conversion so its GGUFs need this style)
};

struct RopeScaling {
  enum class Type { kNone, kLinear, kLlama3 } type = Type::kNone;
  double factor = 1.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int64_t original_max_position = 8192;
};

enum class Activation { kSilu, kGeluTanh };

struct ModelConfig {
  Arch arch = Arch::kLlama;
  Activation activation = Activation::kSilu;  // of the gated (or plain, GPT-2) feed-forward
  int64_t vocab_size = 0;
  int64_t d_model = 0;     // hidden size
  int64_t n_layer = 0;
  int64_t n_head = 0;
  int64_t n_kv_head = 0;
  int64_t head_dim = 0;
  int64_t d_ff = 0;        // feed-forward inner size
  int64_t max_context = 0; // positions the model was trained for
  double norm_eps = 1e-5;

  double rope_theta = 10000.0;
  int64_t rope_dims = 0;   // rotated dimensions per head (partial rotary when < head_dim)
  RopeScaling rope_scaling;
  RopeStyle rope_style = RopeStyle::kHalf;

  int64_t sliding_window = 0;  // 0 = full attention
  // The q/k/v projections carry biases (Qwen2 always; Llama-family config.json's
  // attention_bias). When true the bias tensors must exist; when false any present are used.
  bool attention_bias = false;
  bool tie_embeddings = false;
  // Gemma stores RMSNorm weights as w - 1 in Hugging Face checkpoints; llama.cpp's converter
  // adds the 1 back, so this is true for safetensors and false for GGUF.
  bool norm_weight_plus_one = false;

  std::optional<int32_t> bos_id;
  std::vector<int32_t> eos_ids;  // generation stops on any of these
};

// Parses config.json text (and, if given, generation_config.json text, whose eos_token_id
// list takes precedence). `source` names the file in errors.
Expected<ModelConfig> ParseHfConfig(const std::string& config_json, const std::string& source,
                                    const std::string* generation_config_json = nullptr);

// Reads the hyperparameters from GGUF metadata. `overrides` replace metadata values by key
// before parsing (llama.cpp's --override-kv), for files whose converter dropped keys.
Expected<ModelConfig> ConfigFromGguf(const GgufFile& gguf,
                                     const std::map<std::string, std::string>& overrides = {});

// Checks internal consistency (heads divide d_model, sizes positive and bounded); names the field.
Status ValidateConfig(const ModelConfig& c, const std::string& source);

}  // namespace fastgen
