// Quantizers that look at what the weights are multiplied with: the model runs over
// calibration text and every weight matrix's inputs are summarized, then
//   - importance-weighted rounding (llama.cpp's "imatrix" idea): each column's mean squared
//     input weights the block scale searches (QuantizeRowWeighted);
//   - GPTQ, layer by layer in sequence: the inputs of layer l are collected with layers
//     0 .. l-1 already quantized, so each layer compensates the error of those below it, and
//     memory holds one layer's Hessians at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/status.h"
#include "core/thread_pool.h"
#include "io/model_config.h"
#include "quant/gptq.h"

namespace fastgen {

enum class QuantMethod { kRtn, kImatrix, kGptq };

struct CalibrationOptions {
  std::vector<int32_t> tokens;  // the calibration text, tokenized (never the evaluation text)
  int64_t ctx = 512;            // tokens per calibration sequence, each from an empty cache
  quant::GptqOptions gptq;
  std::map<std::string, std::string> gguf_overrides;  // --override-kv for the model that calibrates
  // (stage, done, total): "layer 3/8", ...
  std::function<void(const std::string&, size_t, size_t)> progress;
};

// Whether calibrated quantization can run on this architecture (not on fused projection
// matrices: GPT-2, Phi-3), with the error that says so.
Status CheckCalibratable(const ModelConfig& config);

// For the weight matrices named in `types` (checkpoint names -> target block type with a
// grid, kernels/reference/quant_grid.h): their packed rows, in the checkpoint's row order.
// The other tensors are the caller's to convert. Errors: too few tokens for one sequence, an
// architecture whose matrices are fused (GPT-2, Phi-3), a name the model does not have.
Expected<std::map<std::string, std::vector<uint8_t>>> QuantizeCalibrated(const std::string& input, QuantMethod method,
                                                                         const std::map<std::string, DType>& types,
                                                                         const CalibrationOptions& options,
                                                                         ThreadPool& pool);

}  // namespace fastgen
