// libFuzzer entry point for the KL-divergence base files `fastgen perplexity --kl-divergence`
// reads: the header checks, then every record compared with a fixed logits row. Any crash,
// sanitizer report or hang is a bug; error Statuses are the expected outcome for most inputs.
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "eval/kl_divergence.h"
#include "fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = fastgen::fuzz::WriteScratch("base.kld", data, size);
  auto c = fastgen::eval::KlComparer::Open(path);
  if (!c.ok()) return 0;
  const auto& h = (*c)->header();
  if (h.vocab > (1u << 16)) return 0;  // a valid header; the row would only cost memory
  (void)(*c)->CheckMatches(h);
  std::vector<float> logits(h.vocab);
  for (size_t i = 0; i < logits.size(); ++i) logits[i] = static_cast<float>(i % 7) - 3.0f;
  fastgen::eval::ScoredPosition p;
  p.logits = logits;
  double z = 0;
  for (float v : logits) z += std::exp(static_cast<double>(v));
  p.log_sum_exp = std::log(z);
  for (uint64_t i = 0; i < h.positions && i < 64; ++i) {
    p.index = static_cast<int64_t>(i);
    p.next = static_cast<int32_t>(i % h.vocab);
    p.nll = p.log_sum_exp - logits[static_cast<size_t>(p.next)];
    if (!(*c)->Add(p).ok()) break;
  }
  (void)(*c)->Finish();
  return 0;
}
