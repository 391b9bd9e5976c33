#include "models/tensor_names.h"

#include <span>

namespace fastgen {
namespace {

struct NameEntry {
  Role role;
  const char* hf;    // "{L}" stands for the layer index
  const char* gguf;
};

// Llama, Mistral, Qwen2, Qwen3 and Gemma share transformers' LlamaModel naming.
constexpr NameEntry kLlamaNames[] = {
    {Role::kTokenEmbd, "model.embed_tokens.weight", "token_embd.weight"},
    {Role::kOutputNorm, "model.norm.weight", "output_norm.weight"},
    {Role::kOutput, "lm_head.weight", "output.weight"},
    {Role::kRopeFreqs, "", "rope_freqs.weight"},
    {Role::kAttnNorm, "model.layers.{L}.input_layernorm.weight", "blk.{L}.attn_norm.weight"},
    {Role::kAttnQ, "model.layers.{L}.self_attn.q_proj.weight", "blk.{L}.attn_q.weight"},
    {Role::kAttnK, "model.layers.{L}.self_attn.k_proj.weight", "blk.{L}.attn_k.weight"},
    {Role::kAttnV, "model.layers.{L}.self_attn.v_proj.weight", "blk.{L}.attn_v.weight"},
    {Role::kAttnQBias, "model.layers.{L}.self_attn.q_proj.bias", "blk.{L}.attn_q.bias"},
    {Role::kAttnKBias, "model.layers.{L}.self_attn.k_proj.bias", "blk.{L}.attn_k.bias"},
    {Role::kAttnVBias, "model.layers.{L}.self_attn.v_proj.bias", "blk.{L}.attn_v.bias"},
    {Role::kAttnOut, "model.layers.{L}.self_attn.o_proj.weight", "blk.{L}.attn_output.weight"},
    {Role::kAttnQNorm, "model.layers.{L}.self_attn.q_norm.weight", "blk.{L}.attn_q_norm.weight"},
    {Role::kAttnKNorm, "model.layers.{L}.self_attn.k_norm.weight", "blk.{L}.attn_k_norm.weight"},
    {Role::kFfnNorm, "model.layers.{L}.post_attention_layernorm.weight", "blk.{L}.ffn_norm.weight"},
    {Role::kFfnGate, "model.layers.{L}.mlp.gate_proj.weight", "blk.{L}.ffn_gate.weight"},
    {Role::kFfnUp, "model.layers.{L}.mlp.up_proj.weight", "blk.{L}.ffn_up.weight"},
    {Role::kFfnDown, "model.layers.{L}.mlp.down_proj.weight", "blk.{L}.ffn_down.weight"},
};

// Phi-3 fuses q/k/v and gate/up; llama.cpp keeps them fused under attn_qkv and ffn_up.
constexpr NameEntry kPhi3Names[] = {
    {Role::kTokenEmbd, "model.embed_tokens.weight", "token_embd.weight"},
    {Role::kOutputNorm, "model.norm.weight", "output_norm.weight"},
    {Role::kOutput, "lm_head.weight", "output.weight"},
    {Role::kAttnNorm, "model.layers.{L}.input_layernorm.weight", "blk.{L}.attn_norm.weight"},
    {Role::kAttnQkv, "model.layers.{L}.self_attn.qkv_proj.weight", "blk.{L}.attn_qkv.weight"},
    {Role::kAttnOut, "model.layers.{L}.self_attn.o_proj.weight", "blk.{L}.attn_output.weight"},
    {Role::kFfnNorm, "model.layers.{L}.post_attention_layernorm.weight", "blk.{L}.ffn_norm.weight"},
    {Role::kFfnGateUp, "model.layers.{L}.mlp.gate_up_proj.weight", "blk.{L}.ffn_up.weight"},
    {Role::kFfnDown, "model.layers.{L}.mlp.down_proj.weight", "blk.{L}.ffn_down.weight"},
};

// GPT-2: LayerNorms with bias, learned positions, Conv1D projections with bias.
constexpr NameEntry kGpt2Names[] = {
    {Role::kTokenEmbd, "transformer.wte.weight", "token_embd.weight"},
    {Role::kPositionEmbd, "transformer.wpe.weight", "position_embd.weight"},
    {Role::kOutputNorm, "transformer.ln_f.weight", "output_norm.weight"},
    {Role::kOutputNormBias, "transformer.ln_f.bias", "output_norm.bias"},
    {Role::kOutput, "lm_head.weight", "output.weight"},
    {Role::kAttnNorm, "transformer.h.{L}.ln_1.weight", "blk.{L}.attn_norm.weight"},
    {Role::kAttnNormBias, "transformer.h.{L}.ln_1.bias", "blk.{L}.attn_norm.bias"},
    {Role::kAttnQkv, "transformer.h.{L}.attn.c_attn.weight", "blk.{L}.attn_qkv.weight"},
    {Role::kAttnQkvBias, "transformer.h.{L}.attn.c_attn.bias", "blk.{L}.attn_qkv.bias"},
    {Role::kAttnOut, "transformer.h.{L}.attn.c_proj.weight", "blk.{L}.attn_output.weight"},
    {Role::kAttnOutBias, "transformer.h.{L}.attn.c_proj.bias", "blk.{L}.attn_output.bias"},
    {Role::kFfnNorm, "transformer.h.{L}.ln_2.weight", "blk.{L}.ffn_norm.weight"},
    {Role::kFfnNormBias, "transformer.h.{L}.ln_2.bias", "blk.{L}.ffn_norm.bias"},
    {Role::kFfnUp, "transformer.h.{L}.mlp.c_fc.weight", "blk.{L}.ffn_up.weight"},
    {Role::kFfnUpBias, "transformer.h.{L}.mlp.c_fc.bias", "blk.{L}.ffn_up.bias"},
    {Role::kFfnDown, "transformer.h.{L}.mlp.c_proj.weight", "blk.{L}.ffn_down.weight"},
    {Role::kFfnDownBias, "transformer.h.{L}.mlp.c_proj.bias", "blk.{L}.ffn_down.bias"},
};

std::span<const NameEntry> TableFor(Arch arch) {
  switch (arch) {
    case Arch::kPhi3: return kPhi3Names;
    case Arch::kGpt2: return kGpt2Names;
    default: return kLlamaNames;
  }
}

}  // namespace

std::string TensorName(Arch arch, CheckpointFormat format, Role role, int64_t layer) {
  for (const NameEntry& e : TableFor(arch)) {
    if (e.role != role) continue;
    std::string name = format == CheckpointFormat::kGguf ? e.gguf : e.hf;
    if (const auto at = name.find("{L}"); at != std::string::npos)
      name.replace(at, 3, std::to_string(layer));
    return name;
  }
  return {};
}

}  // namespace fastgen
