// GPTQ and AWQ checkpoints as published on the Hugging Face hub: each quantized linear layer
// `P` stores `P.qweight` (int32-packed codes), `P.qzeros` (packed zero points), `P.scales`
// (fp16, per group and output) and, for GPTQ, `P.g_idx` (the group of each input column; with
// desc_act the groups are not contiguous). config.json's quantization_config says which:
//   GPTQ (AutoGPTQ / transformers "gptq"): qweight [in·bits/32, out], codes packed along the
//     input dimension, low bits first; qzeros [groups, out·bits/32] packed along the output,
//     holding zero − 1 (checkpoint_format "gptq"; "gptq_v2" stores the zero itself);
//   AWQ (AutoAWQ "awq", GEMM layout): qweight [in, out/8] and qzeros [groups, out/8] packed along
//     the output in the order 0 2 4 6 1 3 5 7; zeros stored as they are; groups contiguous.
// In both, w[o, i] = scale[g, o] · (q[i, o] − zero[g, o]) with g the group of input i.
//
// Each such layer becomes `P.weight` for the model, converted exactly and kept compact:
// 4-bit codes become Q4_0 blocks (the code as Q4_0's nibble, the group's fp16 scale as the
// block scale) and the zero point an offset per row and group, scale · (8 − zero), that
// ops::MatMul adds as offset · Σx over the group (TensorView::group_offsets); act-order
// columns are stored group by group with the input each reads (TensorView::input_order). The
// fast Q4_0 kernels then do the work, reading 4.5 bits per weight plus one float per group.
// 8-bit layers, and groups that are not whole 32-column blocks, become float32 (exact, larger).
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "io/weight_map.h"

namespace fastgen {

struct QuantizedCheckpointInfo {
  std::string method;        // "gptq" or "awq"
  int bits = 0;
  int group_size = 0;        // -1: one group per output row (per-channel)
  bool desc_act = false;
  bool zero_minus_one = false;  // GPTQ v1 checkpoint format: stored zeros are zero − 1
};

// Reads config.json's quantization_config (`where` names it in errors). Returns nullopt-like
// empty method when the checkpoint is not GPTQ/AWQ. Refuses what fastgen cannot load (other
// methods, bits other than 4 and 8, AWQ's GEMV layout), naming the key and value.
Expected<QuantizedCheckpointInfo> ParseQuantizationConfig(const nlohmann::json& config, const std::string& where);

// Replaces every `P.qweight` / `P.qzeros` / `P.scales` / `P.g_idx` group in `weights` by the
// converted `P.weight`. Returns the notes a user should see (layers held in float32).
Expected<std::vector<std::string>> ConvertQuantizedLayers(const QuantizedCheckpointInfo& info, WeightMap* weights);

}  // namespace fastgen
