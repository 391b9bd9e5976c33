// Rotary-embedding frequencies from a model config, with the context-extension scalings
// transformers implements (linear, llama3) and llama.cpp's per-dimension rope_freqs factors.
#pragma once

#include <vector>

#include "io/model_config.h"
#include "kernels/reference/rope.h"

namespace fastgen {

// freq_factors: [rope_dims / 2] divisors from a GGUF rope_freqs.weight tensor, or null.
kernels::RopeParams MakeRopeParams(const ModelConfig& c, const std::vector<float>* freq_factors);

}  // namespace fastgen
