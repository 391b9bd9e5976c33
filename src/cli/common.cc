#include "cli/common.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <algorithm>

#include "core/diagnostics.h"

namespace fastgen::cli {

void AddModelFlags(CLI::App* cmd, ModelFlags* flags) {
  cmd->add_option("-m,--model", flags->path,
                  "Model: a Hugging Face directory (config.json + safetensors) or a GGUF file "
                  "(default: the bundled fg-target model)")
      ->check(NonEmpty());
  cmd->add_option("-t,--threads", flags->threads, "Threads (default: physical cores)")
      ->check(IntRange(0, 1024));
  cmd->add_option("--override-kv", flags->override_kv,
                  "Override GGUF metadata, KEY=VALUE (repeatable), e.g. "
                  "llama.rope.freq_base=500000");
  cmd->add_option("--kv-type", flags->kv_type,
                  "KV cache element type: f32 (default, exact), f16 (half the memory), q8_0 (~0.27x) or "
                  "q4_0 (~0.14x; both need a head size that is a multiple of 32). Compact types round keys and "
                  "values.");
  cmd->add_option("--kv-staircase", flags->kv_staircase,
                  "Staircase KV quantization: the newer a token, the more bits, e.g. f16:256,q8_0:2048,q4_0 = the "
                  "newest 256 tokens in f16, the next 2048 in q8_0, older ones in q4_0 (ages in blocks of 64 "
                  "tokens; replaces --kv-type)");
  cmd->add_option("--stream-weights", flags->stream_weights,
                  "Fetch weights past the CPU caches while decoding: auto (when they exceed half "
                  "the last-level cache), on, off. Changes speed only.");
}

void AddKvPolicyFlags(CLI::App* cmd, KvPolicyFlags* flags) {
  cmd->add_option("--kv-evict", flags->evict,
                  "KV eviction under --kv-budget: none (default), window (attention sinks + the most recent "
                  "tokens, StreamingLLM), h2o (recent + heavy hitters by accumulated attention), keyformer "
                  "(recent + key tokens by accumulated Gumbel-softmax scores)");
  cmd->add_option("--kv-budget", flags->budget, "Cached tokens kept per layer and KV head under --kv-evict")
      ->check(IntRange(1, int64_t{1} << 24));
  cmd->add_option("--kv-sinks", flags->sinks, "First tokens always kept (default: 4 for window, 0 otherwise)")
      ->check(IntRange(0, int64_t{1} << 24));
  cmd->add_option("--kv-recent", flags->recent,
                  "Newest tokens always kept (default: window: the rest of the budget; h2o: half; keyformer: 30%)")
      ->check(IntRange(0, int64_t{1} << 24));
  cmd->add_option("--sparse-attn", flags->sparse,
                  "Sparse decode attention: none (default) or tidal (TidalDecode: selection layers attend in full "
                  "and pick the top-k slots the other layers read; prefill stays dense)");
  cmd->add_option("--sparse-topk", flags->sparse_top_k, "Cache slots each sparse layer reads under --sparse-attn")
      ->check(IntRange(1, int64_t{1} << 24));
  cmd->add_option("--sparse-layers", flags->sparse_layers,
                  "Token selection layers, e.g. 2,13 (default: the paper's layout scaled to the model: two dense "
                  "layers, selection at the next one and at 13/32 of the depth)")
      ->delimiter(',');
}

Expected<std::unique_ptr<TidalSelector>> SparseFromFlags(const KvPolicyFlags& flags, const Model& model) {
  if (flags.sparse != "none" && !model.kv_staircase().empty())
    return InvalidArgument("--sparse-attn does not combine with --kv-staircase yet");
  // The model's pool scores the selection layers' heads in parallel.
  if (flags.sparse == "none") {
    if (flags.sparse_top_k > 0 || !flags.sparse_layers.empty())
      return InvalidArgument("--sparse-topk and --sparse-layers need --sparse-attn tidal");
    return std::unique_ptr<TidalSelector>();
  }
  if (flags.sparse != "tidal") return InvalidArgument("--sparse-attn '" + flags.sparse + "' is not one of none, tidal");
  // H2O and Keyformer keep other tokens in each layer head, so a slot number names a different
  // token in each: one selection of slots cannot carry across layers (the window keeps the
  // same slots everywhere).
  if (flags.evict == "h2o" || flags.evict == "keyformer")
    return InvalidArgument("--sparse-attn tidal does not combine with --kv-evict " + flags.evict +
                           " (each layer head keeps other tokens); use --kv-evict window");
  if (flags.sparse_top_k <= 0) return InvalidArgument("--sparse-attn tidal needs --sparse-topk K");
  SparseAttentionConfig config;
  config.top_k = flags.sparse_top_k;
  config.select_layers = flags.sparse_layers;
  FG_ASSIGN_OR_RETURN(TidalSelector s, TidalSelector::Create(config, model.config().n_layer, &model.pool()));
  return std::make_unique<TidalSelector>(std::move(s));
}

Expected<std::unique_ptr<KvEvictor>> EvictorFromFlags(const KvPolicyFlags& flags, const Model& model,
                                                      int64_t horizon) {
  if (flags.evict != "none" && !model.kv_staircase().empty())
    return InvalidArgument("--kv-evict does not combine with --kv-staircase yet (the staircase keeps every token)");
  EvictionPolicy p;
  const auto kind = EvictionKindFromName(flags.evict);
  if (!kind) return InvalidArgument("--kv-evict '" + flags.evict + "' is not one of none, window, h2o, keyformer");
  p.kind = *kind;
  if (p.kind == EvictionKind::kNone) {
    if (flags.budget > 0 || flags.sinks >= 0 || flags.recent >= 0)
      return InvalidArgument("--kv-budget, --kv-sinks and --kv-recent need --kv-evict window, h2o or keyformer");
    return std::unique_ptr<KvEvictor>();
  }
  if (flags.budget <= 0) return InvalidArgument("--kv-evict " + flags.evict + " needs --kv-budget N");
  if (model.config().sliding_window > 0)
    return InvalidArgument("--kv-evict: the model uses sliding-window attention, which eviction does not support");
  p.budget = flags.budget;
  p.sinks = flags.sinks;
  p.recent = flags.recent;
  p.horizon = horizon;
  FG_ASSIGN_OR_RETURN(EvictionPolicy resolved, ResolvePolicy(p));
  return std::make_unique<KvEvictor>(resolved, model.config().n_layer, model.config().n_kv_head, &model.pool());
}

namespace {
bool Exists(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0;
}
}  // namespace

std::string DefaultModelPath() {
  if (const char* env = std::getenv("FASTGEN_MODEL"); env && *env) return env;
#ifdef FASTGEN_DEFAULT_MODEL_DIR
  if (Exists(FASTGEN_DEFAULT_MODEL_DIR)) return FASTGEN_DEFAULT_MODEL_DIR;
#endif
  char exe[4096];
  const ssize_t len = ::readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (len > 0) {
    exe[len] = '\0';
    std::string dir(exe);
    dir = dir.substr(0, dir.rfind('/'));
    for (const char* rel : {"/models/fg-target", "/../models/fg-target", "/../share/fastgen/models/fg-target"})
      if (Exists(dir + rel)) return dir + rel;
  }
  return "models/fg-target";
}

Expected<std::map<std::string, std::string>> ParseOverrides(const std::vector<std::string>& kv) {
  std::map<std::string, std::string> out;
  for (const std::string& item : kv) {
    const auto eq = item.find('=');
    if (eq == std::string::npos || eq == 0)
      return InvalidArgument("--override-kv '" + item + "' is not KEY=VALUE");
    std::string value = item.substr(eq + 1);
    // Accept llama.cpp's typed spelling too: KEY=float:500000, KEY=int:16, KEY=str:llama3.
    for (const char* prefix : {"float:", "int:", "str:", "bool:"}) {
      const std::string p(prefix);
      if (value.rfind(p, 0) == 0) value = value.substr(p.size());
    }
    out[item.substr(0, eq)] = value;
  }
  return out;
}

Expected<LoadedModel> LoadFromFlags(const ModelFlags& flags) {
  LoadedModel lm;
  const int threads = flags.threads > 0 ? flags.threads : ThreadPool::DefaultThreads();
  lm.pool = std::make_unique<ThreadPool>(threads);
  ModelOptions opts;
  FG_ASSIGN_OR_RETURN(opts.checkpoint.gguf_overrides, ParseOverrides(flags.override_kv));
  const std::optional<DType> kv_type = DTypeFromName(flags.kv_type);
  if (!kv_type || (*kv_type != DType::kF32 && *kv_type != DType::kF16 && *kv_type != DType::kQ8_0 &&
                   *kv_type != DType::kQ4_0))
    return InvalidArgument("--kv-type '" + flags.kv_type + "' is not one of f32, f16, q8_0, q4_0");
  opts.kv_type = *kv_type;
  if (!flags.kv_staircase.empty()) {
    if (*kv_type != DType::kF32)
      return InvalidArgument("--kv-staircase sets the KV cache's types; it does not combine with --kv-type " + flags.kv_type);
    FG_ASSIGN_OR_RETURN(opts.kv_staircase, KvStaircase::Parse(flags.kv_staircase));
  }
  if (flags.stream_weights != "auto" && flags.stream_weights != "on" && flags.stream_weights != "off")
    return InvalidArgument("--stream-weights '" + flags.stream_weights + "' is not one of auto, on, off");
  if (flags.stream_weights != "auto") opts.stream_weights = flags.stream_weights == "on";
  const std::string path = flags.path.empty() ? DefaultModelPath() : flags.path;
  FG_ASSIGN_OR_RETURN(lm.model, LoadModel(path, lm.pool.get(), opts));
  return lm;
}

Expected<std::vector<int32_t>> ParseIdList(const std::string& text) {
  std::vector<int32_t> ids;
  std::string cur;
  auto flush = [&]() -> Status {
    if (cur.empty()) return Status::Ok();
    char* end = nullptr;
    errno = 0;
    const long long v = std::strtoll(cur.c_str(), &end, 10);
    if (*end != '\0' || errno != 0 || v < 0 || v > INT32_MAX)
      return InvalidArgument("token id list: '" + cur + "' is not a token id");
    ids.push_back(static_cast<int32_t>(v));
    cur.clear();
    return Status::Ok();
  };
  for (char ch : text) {
    if (ch == ',' || ch == ' ' || ch == '\t' || ch == '\n' || ch == '[' || ch == ']') {
      FG_RETURN_IF_ERROR(flush());
    } else {
      cur += ch;
    }
  }
  FG_RETURN_IF_ERROR(flush());
  return ids;
}

std::string FormatIdList(const std::vector<int32_t>& ids) {
  std::string s;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) s += ',';
    s += std::to_string(ids[i]);
  }
  return s;
}

int ReportError(const Status& status) {
  const std::string line = "fastgen: error: " + EscapeForTerminal(status.message()) + "\n";
  std::fwrite(line.data(), 1, line.size(), stderr);
  switch (status.code()) {
    case ErrorCode::kOk: return kExitOk;
    case ErrorCode::kInvalidArgument:
    case ErrorCode::kUnavailable: return kExitUsage;
    case ErrorCode::kNotFound:
    case ErrorCode::kCorruptFile:
    case ErrorCode::kUnsupported:
    case ErrorCode::kIo: return kExitBadInput;
    case ErrorCode::kInternal: return kExitInternal;
  }
  return kExitInternal;
}

CLI::Validator IntRange(int64_t lo, int64_t hi) {
  return CLI::Validator(
      [lo, hi](std::string& value) -> std::string {
        errno = 0;
        char* end = nullptr;
        const long long v = std::strtoll(value.c_str(), &end, 10);
        if (value.empty() || end == value.c_str() || *end != '\0')
          return "'" + EscapeForTerminal(value) + "' is not an integer";
        if (errno == ERANGE || v < lo || v > hi)
          return EscapeForTerminal(value) + " is outside [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
        return "";
      },
      "INT in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]", "IntRange");
}

CLI::Validator Uint64() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        // strtoull would take "-1" as 2^64 - 1 and clamp what overflows; from_chars takes digits
        // only and reports overflow.
        uint64_t v = 0;
        const char* end = value.data() + value.size();
        const auto [ptr, ec] = std::from_chars(value.data(), end, v);
        if (value.empty() || ec != std::errc() || ptr != end)
          return "'" + EscapeForTerminal(value) + "' is not an integer in [0, 18446744073709551615]";
        return "";
      },
      "UINT64", "Uint64");
}

namespace {
std::string ShortNumber(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%g", v);
  return buf;
}
}  // namespace

CLI::Validator FloatRange(FloatBounds b) {
  const std::string range = std::string(b.lo_open ? "(" : "[") + ShortNumber(b.lo) + ", " + ShortNumber(b.hi) + "]";
  return CLI::Validator(
      [b, range](std::string& value) -> std::string {
        char* end = nullptr;
        const double v = std::strtod(value.c_str(), &end);
        if (value.empty() || end == value.c_str() || *end != '\0' || std::isnan(v))
          return "'" + EscapeForTerminal(value) + "' is not a number";
        if (!std::isfinite(v) || v > b.hi || v < b.lo || (b.lo_open && v == b.lo))
          return EscapeForTerminal(value) + " is outside " + range;
        return "";
      },
      "NUMBER in " + range, "FloatRange");
}

CLI::Validator NonEmpty() {
  return CLI::Validator(
      [](std::string& value) -> std::string { return value.empty() ? "an empty value is not allowed" : ""; },
      "", "NonEmpty");
}

Expected<int64_t> ContextSize(const Model& model, int64_t requested) {
  const ModelConfig& c = model.config();
  if (requested <= 0) return c.max_context;
  if (requested > c.max_context) {
    if (c.arch == Arch::kGpt2)
      return InvalidArgument("-c " + std::to_string(requested) + ": GPT-2 has learned positions for only " +
                             std::to_string(c.max_context) + " tokens");
    Warn("-c " + std::to_string(requested) + " is past the model's trained context of " +
         std::to_string(c.max_context) + " tokens: positions beyond it are extrapolated and output quality degrades");
  }
  return requested;
}

void WarnIfGenerationTruncated(int64_t used, int64_t wanted, int64_t ctx) {
  // The last token sampled is never run through the model, so it needs no cache slot.
  if (used + wanted <= ctx + 1) return;
  Warn("-n " + std::to_string(wanted) + ": the context of " + std::to_string(ctx) + " tokens leaves room for " +
       std::to_string(std::max<int64_t>(ctx - used + 1, 0)) + " new tokens after " + std::to_string(used) +
       "; generation stops there (raise -c, up to the model's context, or lower -n)");
}

void WarnIfInvalidUtf8(std::string_view text, const std::string& what) {
  size_t bad = 0;
  if (!IsValidUtf8(text, &bad))
    Warn(what + " is not valid UTF-8 (first bad byte at offset " + std::to_string(bad) +
         "); each invalid sequence is tokenized as U+FFFD");
}

}  // namespace fastgen::cli
