// GPT-2: learned absolute positions, LayerNorm with bias, fused c_attn projection with bias,
// a plain GELU (tanh) MLP, and tied input/output embeddings.
#pragma once

#include <memory>

#include "models/model.h"

namespace fastgen {

Expected<std::unique_ptr<Model>> CreateGpt2Model(std::unique_ptr<Checkpoint> ckpt, ThreadPool* pool);

}  // namespace fastgen
