// Every architecture's tensors, declared once with their Hugging Face and GGUF names. Models ask
// for a role ("this layer's query projection") and never spell a file format's name.
#pragma once

#include <string>

#include "io/checkpoint.h"

namespace fastgen {

enum class Role {
  kTokenEmbd, kPositionEmbd, kOutputNorm, kOutputNormBias, kOutput, kRopeFreqs,
  kAttnNorm, kAttnNormBias,
  kAttnQ, kAttnK, kAttnV, kAttnQkv,                  // separate or fused (Phi-3, GPT-2) projections
  kAttnQBias, kAttnKBias, kAttnVBias, kAttnQkvBias,
  kAttnOut, kAttnOutBias,
  kAttnQNorm, kAttnKNorm,                            // Qwen3 per-head RMSNorm
  kFfnNorm, kFfnNormBias,
  kFfnGate, kFfnUp, kFfnGateUp, kFfnDown,            // gate_up fused in Phi-3
  kFfnUpBias, kFfnDownBias,
};

// The name of `role` (of layer `layer`, for per-layer roles) in `format` for `arch`; empty if
// the architecture has no such tensor in that format.
std::string TensorName(Arch arch, CheckpointFormat format, Role role, int64_t layer = 0);

}  // namespace fastgen
