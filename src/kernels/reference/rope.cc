#include "kernels/reference/rope.h"

#include <cmath>

namespace fastgen::kernels::reference {

void Rope(float* x, int64_t n, int64_t n_heads, int64_t head_dim, const int32_t* positions,
          const RopeParams& p) {
  const int64_t half = p.rope_dims / 2;
  for (int64_t t = 0; t < n; ++t) {
    const float pos = static_cast<float>(positions[t]);
    for (int64_t i = 0; i < half; ++i) {
      // The angle is formed in float32 as transformers forms it (position * inv_freq), then
      // cos/sin are taken in double and rounded, which reproduces torch's float32 results.
      const float angle = pos * p.inv_freq[static_cast<size_t>(i)];
      const float c = static_cast<float>(std::cos(static_cast<double>(angle)));
      const float s = static_cast<float>(std::sin(static_cast<double>(angle)));
      for (int64_t h = 0; h < n_heads; ++h) {
        float* head = x + (t * n_heads + h) * head_dim;
        const int64_t a = p.pairing == RopePairing::kHalf ? i : 2 * i;
        const int64_t b = p.pairing == RopePairing::kHalf ? i + half : 2 * i + 1;
        const float xa = head[a], xb = head[b];
        head[a] = xa * c - xb * s;
        head[b] = xb * c + xa * s;
      }
    }
  }
}

}  // namespace fastgen::kernels::reference
