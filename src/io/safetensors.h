// Hugging Face safetensors: an 8-byte little-endian header length, a JSON header mapping tensor
// names to {dtype, shape, data_offsets}, then the raw tensor bytes. Memory-mapped; every
// offset and size is checked against the file and against the shape before a view is made.
#pragma once

#include <string>

#include "core/status.h"
#include "io/weight_map.h"

namespace fastgen {

// Adds every tensor of one .safetensors file to `out` (F32, F16, BF16, and I32 for GPTQ / AWQ
// codes; other dtypes fail with an error naming the tensor and dtype).
Status ReadSafetensors(const std::string& path, WeightMap* out);

// A Hugging Face model directory: model.safetensors, or the shards listed by
// model.safetensors.index.json (every shard is read; the index's weight_map must agree with
// where each tensor was found).
Status ReadSafetensorsDir(const std::string& dir, WeightMap* out);

}  // namespace fastgen
