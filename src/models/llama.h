// The Llama family: Llama 2/3, Mistral, Qwen2, Qwen3, Gemma and Phi-3 are one pre-norm decoder
// (RMSNorm → rotary grouped-query attention → RMSNorm → gated MLP) that differ in small,
// declared ways: q/k/v bias (Qwen2), per-head q/k RMSNorm (Qwen3), embedding scaling and (1+w)
// norms with GELU (Gemma), fused projections (Phi-3), a sliding window (Mistral).
#pragma once

#include <memory>

#include "models/model.h"

namespace fastgen {

Expected<std::unique_ptr<Model>> CreateLlamaFamilyModel(std::unique_ptr<Checkpoint> ckpt,
                                                        ThreadPool* pool);

}  // namespace fastgen
