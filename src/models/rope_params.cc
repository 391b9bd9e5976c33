#include "models/rope_params.h"

#include <cmath>
#include <numbers>

namespace fastgen {

kernels::RopeParams MakeRopeParams(const ModelConfig& c, const std::vector<float>* freq_factors) {
  kernels::RopeParams p;
  p.pairing = c.rope_style == RopeStyle::kAdjacent ? kernels::RopePairing::kAdjacent
                                                   : kernels::RopePairing::kHalf;
  p.rope_dims = c.rope_dims;
  const int64_t half = c.rope_dims / 2;
  p.inv_freq.resize(static_cast<size_t>(half));
  const RopeScaling& s = c.rope_scaling;
  for (int64_t i = 0; i < half; ++i) {
    // transformers: 1 / base^(2i / dim), dim = rotated dimensions.
    double f = 1.0 / std::pow(c.rope_theta, static_cast<double>(2 * i) / static_cast<double>(c.rope_dims));
    if (s.type == RopeScaling::Type::kLinear) {
      f /= s.factor;
    } else if (s.type == RopeScaling::Type::kLlama3) {
      // Llama 3.1: long wavelengths are slowed by `factor`, short ones kept, and the band
      // between the two wavelength thresholds interpolated smoothly.
      const double old_ctx = static_cast<double>(s.original_max_position);
      const double low_wavelen = old_ctx / s.low_freq_factor;
      const double high_wavelen = old_ctx / s.high_freq_factor;
      const double wavelen = 2.0 * std::numbers::pi / f;
      if (wavelen > low_wavelen) {
        f /= s.factor;
      } else if (wavelen >= high_wavelen) {
        const double smooth = (old_ctx / wavelen - s.low_freq_factor) /
                              (s.high_freq_factor - s.low_freq_factor);
        f = (1.0 - smooth) * f / s.factor + smooth * f;
      }
    }
    if (freq_factors != nullptr) f /= static_cast<double>((*freq_factors)[static_cast<size_t>(i)]);
    p.inv_freq[static_cast<size_t>(i)] = static_cast<float>(f);
  }
  return p;
}

}  // namespace fastgen
