#include "cli/sampler_flags.h"

#include <cmath>
#include <cstdlib>

#include "cli/common.h"

namespace fastgen::cli {

void AddSamplerFlags(CLI::App* cmd, SamplerFlags* f) {
  SamplerOptions& s = f->options;
  cmd->add_option("--temp", s.temperature, "Sampling temperature; 0 = greedy (default 0.8)")
      ->default_val(0.8f)
      ->check(FloatRange({0, 1e6}));
  cmd->add_option("--top-k", s.top_k, "Keep the K most likely tokens; 0 = off (default 40)")
      ->default_val(40)
      ->check(IntRange(0, 1 << 24));
  cmd->add_option("--top-p", s.top_p, "Nucleus sampling mass; 1 = off (default 0.95)")
      ->default_val(0.95f)
      ->check(FloatRange({0, 1, /*lo_open=*/true}));
  cmd->add_option("--min-p", s.min_p, "Drop tokens below MIN_P x the top probability; 0 = off (default 0.05)")
      ->default_val(0.05f)
      ->check(FloatRange({0, 1}));
  cmd->add_option("--repeat-penalty", s.repetition_penalty, "Repetition penalty; 1 = off (default 1)")
      ->check(FloatRange({0, 1e6, /*lo_open=*/true}));
  cmd->add_option("--repeat-last-n", s.penalty_last_n, "Tokens the penalties look back over; -1 = all (default 64)")
      ->check(IntRange(-1, 1 << 30));
  cmd->add_option("--presence-penalty", s.presence_penalty, "Presence penalty (default 0)")
      ->check(FloatRange({-1e6, 1e6}));
  cmd->add_option("--frequency-penalty", s.frequency_penalty, "Frequency penalty (default 0)")
      ->check(FloatRange({-1e6, 1e6}));
  cmd->add_option("--logit-bias", f->logit_bias, "ID=BIAS added to a token's logit (repeatable; -inf bans)");
  cmd->add_option("-s,--seed", s.seed, "Random seed (default 0)")->check(Uint64());
}

Expected<SamplerOptions> ResolveSampler(const SamplerFlags& f, int64_t vocab_size) {
  SamplerOptions out = f.options;
  out.logit_bias.clear();
  for (const std::string& item : f.logit_bias) {
    const auto eq = item.find('=');
    if (eq == std::string::npos) return InvalidArgument("--logit-bias '" + item + "' is not ID=BIAS");
    FG_ASSIGN_OR_RETURN(auto ids, ParseIdList(item.substr(0, eq)));
    if (ids.size() != 1) return InvalidArgument("--logit-bias '" + item + "' needs one token id");
    if (ids[0] >= vocab_size)
      return InvalidArgument("--logit-bias '" + item + "': token id " + std::to_string(ids[0]) +
                             " is outside the vocabulary [0, " + std::to_string(vocab_size) + ")");
    const std::string v = item.substr(eq + 1);
    float bias;
    if (v == "-inf" || v == "-INF") {
      bias = -INFINITY;
    } else {
      char* end = nullptr;
      bias = std::strtof(v.c_str(), &end);
      if (v.empty() || end == v.c_str() || *end != '\0' || !std::isfinite(bias))
        return InvalidArgument("--logit-bias '" + item + "': the bias must be a finite number or -inf");
    }
    out.logit_bias.emplace_back(ids[0], bias);
  }
  FG_RETURN_IF_ERROR(ValidateSamplerOptions(out, static_cast<int32_t>(vocab_size)));
  return out;
}

}  // namespace fastgen::cli
