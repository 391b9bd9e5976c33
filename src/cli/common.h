// Flags and helpers shared by the fastgen subcommands. The CLI stays thin: it parses flags,
// calls the library, prints results, and turns a Status into a message and an exit code.
#pragma once

#include <CLI/CLI.hpp>

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "core/thread_pool.h"
#include "kv/eviction.h"
#include "models/model.h"

namespace fastgen::cli {

struct ModelFlags {
  std::string path;                          // -m: model directory or GGUF file
  int threads = 0;                           // -t: 0 = physical cores
  std::vector<std::string> override_kv;      // --override-kv KEY=VALUE
  std::string kv_type = "f32";               // --kv-type: KV cache element type
  std::string kv_staircase;                  // --kv-staircase SPEC (kv/staircase.h); empty: none
  std::string stream_weights = "auto";       // --stream-weights: auto | on | off
};

void AddModelFlags(CLI::App* cmd, ModelFlags* flags);

// KV eviction (kv/eviction.h): --kv-evict, --kv-budget, --kv-sinks, --kv-recent.
struct KvPolicyFlags {
  std::string evict = "none";
  int64_t budget = 0;
  int64_t sinks = -1;
  int64_t recent = -1;
  std::string sparse = "none";       // --sparse-attn none|tidal
  int64_t sparse_top_k = 0;          // --sparse-topk
  std::vector<int32_t> sparse_layers;  // --sparse-layers (selection layers)
};
void AddKvPolicyFlags(CLI::App* cmd, KvPolicyFlags* flags);
// TidalDecode from --sparse-attn / --sparse-topk / --sparse-layers; nullptr when off.
Expected<std::unique_ptr<TidalSelector>> SparseFromFlags(const KvPolicyFlags& flags, const Model& model);
// The evictor of the resolved policy for `model` (errors name the flag), nullptr for
// --kv-evict none; `horizon`: the sequence length over which Keyformer's temperature rises. The
// model's pool scores heads in parallel.
Expected<std::unique_ptr<KvEvictor>> EvictorFromFlags(const KvPolicyFlags& flags, const Model& model,
                                                      int64_t horizon);

// The bundled model when -m is not given: $FASTGEN_MODEL, else models/fg-target next to the
// source tree this binary was built from, else models/fg-target beside the executable.
std::string DefaultModelPath();

struct LoadedModel {
  std::unique_ptr<ThreadPool> pool;
  std::unique_ptr<Model> model;
};
Expected<LoadedModel> LoadFromFlags(const ModelFlags& flags);
Expected<std::map<std::string, std::string>> ParseOverrides(const std::vector<std::string>& kv);

// "1,2,3" or "1 2 3" or "[1, 2, 3]" -> ids; names the bad entry on error.
Expected<std::vector<int32_t>> ParseIdList(const std::string& text);
std::string FormatIdList(const std::vector<int32_t>& ids);  // "1,2,3"

// Exit codes, the same for every subcommand (README.md, "Exit codes"):
enum ExitCode : int {
  kExitOk = 0,
  kExitUsage = 1,      // a flag, its value or the request is wrong (InvalidArgument, CLI parse errors)
  kExitBadInput = 2,   // an input file is missing, unreadable, corrupt or unsupported
  kExitInternal = 3,   // fastgen failed a check of its own (a bug: please report it)
};

// Prints "fastgen: error: <message>" to stderr, escaped for the terminal (messages quote file
// contents and user input), and returns the exit code for the status.
int ReportError(const Status& status);

// Flag validators for CLI11 that name the value as given and print integers as integers.
// IntRange: an integer in [lo, hi]. FloatRange: a finite number in [lo, hi] ((lo, hi] with
// lo_open), e.g. --top-p. NonEmpty: a path or name that must not be '' (`-m ''` would
// otherwise mean "the default model").
CLI::Validator IntRange(int64_t lo, int64_t hi);
// Uint64: an unsigned 64-bit integer, e.g. --seed (no sign, nothing clamped).
CLI::Validator Uint64();
struct FloatBounds {
  double lo;
  double hi;
  bool lo_open = false;
};
CLI::Validator FloatRange(FloatBounds bounds);
CLI::Validator NonEmpty();

// The context a command runs with: `requested` (-c) when positive, else the model's trained
// context. Past the trained context a warning says that positions are extrapolated (quality
// degrades); a model with learned positions (GPT-2) cannot go there at all.
Expected<int64_t> ContextSize(const Model& model, int64_t requested);

// Warns when generating `wanted` tokens (-n) after `used` positions cannot finish inside a
// `ctx`-token context: generation will stop early, and the user should hear it now.
void WarnIfGenerationTruncated(int64_t used, int64_t wanted, int64_t ctx);

// Warns (stderr) when `text` is not valid UTF-8: the tokenizer replaces each invalid sequence
// with U+FFFD, which changes what the model sees. `what` names the source ("the prompt").
void WarnIfInvalidUtf8(std::string_view text, const std::string& what);

}  // namespace fastgen::cli
