// Converts a checkpoint (Hugging Face directory or GGUF) to a GGUF file of a chosen weight type,
// in the block layouts of the GGUF specification, with the metadata and tensor names llama.cpp
// uses — so llama.cpp can load fastgen's files and fastgen can load llama.cpp's.
#pragma once

#include <functional>
#include <map>
#include <string>

#include "core/dtype.h"
#include "core/status.h"
#include "core/thread_pool.h"
#include "models/calibration.h"

namespace fastgen {

struct QuantizeOptions {
  std::string input;         // model directory or GGUF file
  std::string output;        // GGUF file to write
  DType type = DType::kQ8_0; // F32, F16, BF16, Q8_0, Q4_0, Q2_K, Q3_K, Q4_K, Q5_K or Q6_K
  // Called after each tensor with (tensors done, tensors total, tensor name).
  std::function<void(size_t, size_t, const std::string&)> progress;
  // llama.cpp's mix of a K-quant file type (Q2_K, Q3_K_M, Q4_K_M, Q5_K_M): some attn_v,
  // ffn_down and attn_output matrices in more bits (quantize.cc, MixType). Off: every matrix
  // in `type` where its rows allow.
  bool mix_m = false;
  // How each matrix's values are chosen: rounding to nearest (default), rounding with
  // importance-weighted block scales, or GPTQ (both need `calibration`).
  QuantMethod method = QuantMethod::kRtn;
  CalibrationOptions calibration;
  ThreadPool* pool = nullptr;  // for calibration (required unless method is kRtn)
  // GGUF metadata overrides (--override-kv KEY=VALUE): the model is read with them, and the
  // output file carries the overridden values, so a file whose converter dropped a setting
  // (e.g. llama.rope.freq_base) comes out repaired.
  std::map<std::string, std::string> gguf_overrides;
};

struct QuantizeReport {
  size_t tensors = 0;
  size_t calibrated = 0;        // matrices quantized by GPTQ or importance-weighted rounding
  size_t fallback_tensors = 0;  // matrices whose rows do not split into the type's blocks
  size_t input_bytes = 0;
  size_t output_bytes = 0;
  std::vector<std::string> notes;  // what could not be carried over (e.g. an unknown tokenizer type)
};

Expected<QuantizeReport> QuantizeCheckpoint(const QuantizeOptions& options);

// llama.cpp's general.file_type number for a whole-file type (and its _M mix).
uint32_t GgufFileType(DType t, bool mix_m = false);

}  // namespace fastgen
