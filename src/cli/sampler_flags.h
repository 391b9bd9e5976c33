// The sampling flags every generating subcommand shares (run, chat, and later serve's
// defaults), checked at parse time so that a bad value is refused before a model loads.
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include "core/status.h"
#include "decoding/sampler.h"

namespace fastgen::cli {

struct SamplerFlags {
  SamplerOptions options;
  std::vector<std::string> logit_bias;  // ID=BIAS, parsed by Resolve
};

void AddSamplerFlags(CLI::App* cmd, SamplerFlags* flags);

// The sampler options with --logit-bias parsed and every id checked against the vocabulary.
Expected<SamplerOptions> ResolveSampler(const SamplerFlags& flags, int64_t vocab_size);

}  // namespace fastgen::cli
