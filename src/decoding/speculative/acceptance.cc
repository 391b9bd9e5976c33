#include "decoding/speculative/acceptance.h"

#include <algorithm>
#include <cmath>

namespace fastgen::speculative {

bool AcceptSampled(std::span<const float> p, std::span<const float> q, int32_t x, Sampler& sampler,
                   std::vector<float>* scratch, int32_t* token) {
  std::vector<float>& r = *scratch;  // [vocab] residual max(0, p - q), left unnormalized
  if (q.empty()) {  // one-hot q: the one-candidate case of recursive rejection sampling
    r.assign(p.begin(), p.end());
    return AcceptSampledAmong(r, std::span<const int32_t>(&x, 1), sampler, token) == 0;
  }
  const size_t xi = static_cast<size_t>(x);
  const double px = p[xi], qx = q[xi];
  // u < p/q, written without the division: accepts with probability min(1, p/q) and never
  // accepts a token the target cannot produce (px = 0).
  if (qx > 0 && sampler.NextUniform() * qx < px) return true;
  r.resize(p.size());
  for (size_t i = 0; i < r.size(); ++i) r[i] = std::max(0.0f, p[i] - q[i]);
  int32_t next = sampler.SampleFrom(r);
  // An empty residual means p <= q everywhere, i.e. p == q up to rounding, where rejection has
  // probability ~0; drawing from p keeps the output a valid target sample regardless.
  if (next < 0) next = sampler.SampleFrom(p);
  *token = next;
  return false;
}

int32_t AcceptSampledAmong(std::span<float> p, std::span<const int32_t> xs, Sampler& sampler, int32_t* token) {
  double mass = 0;
  for (float v : p) mass += std::max(0.0f, v);
  for (size_t k = 0; k < xs.size(); ++k) {
    const size_t x = static_cast<size_t>(xs[k]);
    const double px = std::max(0.0f, p[x]);
    // u < p(x) / mass without the division; a token the target cannot produce is never kept.
    if (px > 0 && sampler.NextUniform() * mass < px) return static_cast<int32_t>(k);
    mass -= px;
    p[x] = 0.0f;
  }
  int32_t next = sampler.SampleFrom(p);
  // Nothing left means the candidates held all of p's mass, where the last one is kept with
  // probability ~1; rounding aside, keeping it is the exact outcome.
  if (next < 0) return xs.empty() ? -1 : static_cast<int32_t>(xs.size()) - 1;
  *token = next;
  return -1;
}

bool AcceptBild(std::span<const float> logits, int32_t x, float rollback_threshold) {
  float max = -INFINITY;
  for (float v : logits) max = std::max(max, v);
  if (!std::isfinite(max)) return false;
  double sum = 0;
  for (float v : logits) sum += std::exp(static_cast<double>(v) - max);
  const double nll = std::log(sum) - (static_cast<double>(logits[static_cast<size_t>(x)]) - max);
  return nll <= rollback_threshold;
}

}  // namespace fastgen::speculative
