// Rotary position embedding (RoPE), scalar reference.
#pragma once

#include <cstdint>
#include <vector>

namespace fastgen::kernels {

// Which dimensions of a head rotate together.
enum class RopePairing {
  kHalf,      // i with i + rope_dims/2 (transformers' rotate_half, llama.cpp NEOX)
  kAdjacent,  // 2i with 2i + 1 (llama.cpp "normal", for Q/K rows permuted by its converter)
};

struct RopeParams {
  RopePairing pairing = RopePairing::kHalf;
  int64_t rope_dims = 0;        // rotated leading dimensions of each head (even)
  std::vector<float> inv_freq;  // [rope_dims / 2] angle per position of each pair, scaling applied
};

namespace reference {
// Rotates x: [n, n_heads, head_dim] in place; token t sits at positions[t].
void Rope(float* x, int64_t n, int64_t n_heads, int64_t head_dim, const int32_t* positions,
          const RopeParams& p);
}  // namespace reference

}  // namespace fastgen::kernels
