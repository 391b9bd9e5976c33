// The speculative-decoding flags `fastgen run` and `fastgen bench` share: --spec MODE and the
// proposer's and verifier's knobs, building the proposer they name, and printing its statistics.
#pragma once

#include <CLI/CLI.hpp>

#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "core/status.h"
#include "core/thread_pool.h"
#include "decoding/generate.h"
#include "decoding/speculative/setup.h"
#include "decoding/speculative/speculative.h"
#include "models/model.h"
#include "tokenizer/tokenizer.h"

namespace fastgen::cli {

// Speculative decoding (--spec): the proposer and the verifier's knobs.
struct SpecFlags {
  std::string mode;                 // empty = plain decoding
  std::string draft_model;
  std::string draft_weights = "q8_0";  // --draft-weights: the draft's matrices re-encoded, or "keep"
  std::string skip_layers;          // "2,5" or "auto"
  std::string calibration_file;     // text for --skip-layers auto (default: the prompt)
  speculative::DraftModelOptions draft;
  speculative::PromptLookupOptions lookup;
  speculative::JacobiOptions jacobi;
  speculative::SpeculativeOptions verifier;  // max_draft set by SetUpSpeculation
  int32_t budget = -1;              // --spec-budget; -1 = the proposer's default
  // --lookup-first / --no-lookup-first; -1 (neither): on for draft, jacobi and layerskip, which
  // it made faster on every task measured (bench/spec/README.md), off under --bild.
  int lookup_first = -1;
  bool no_fallback = false;
  bool compare = false;             // also decode plainly and report the measured speedup
};

// Registers --spec and its knobs on `cmd`; `run` adds run's --spec-compare.
void AddSpecFlags(CLI::App* cmd, SpecFlags* f, bool run);

// Builds the proposer --spec names (loading the draft model or searching the layers to skip).
struct SpecSetup {
  std::unique_ptr<Model> draft;
  std::unique_ptr<speculative::Proposer> proposer;  // null: layer skipping found nothing that pays
};

Expected<SpecSetup> SetUpSpeculation(SpecFlags& f, Model& target, ThreadPool* pool,
                                     std::span<const int32_t> prompt, const Tokenizer* tokenizer);

// Acceptance, tokens per forward, time split and (with `plain`) the measured speedup, on stderr.
void PrintSpecStats(const speculative::SpeculativeResult& r, std::string_view name,
                    const GenerateResult* plain);

}  // namespace fastgen::cli
