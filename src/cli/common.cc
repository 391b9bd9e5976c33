#include "cli/common.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

namespace fastgen::cli {

void AddModelFlags(CLI::App* cmd, ModelFlags* flags) {
  cmd->add_option("-m,--model", flags->path,
                  "Model: a Hugging Face directory (config.json + safetensors) or a GGUF file "
                  "(default: the bundled fg-target model)");
  cmd->add_option("-t,--threads", flags->threads, "Threads (default: physical cores)")
      ->check(CLI::Range(0, 1024));
  cmd->add_option("--override-kv", flags->override_kv,
                  "Override GGUF metadata, KEY=VALUE (repeatable), e.g. "
                  "llama.rope.freq_base=500000");
  cmd->add_option("--kv-type", flags->kv_type,
                  "KV cache element type: f32 (default, exact), f16 (half the memory) or q8_0 "
                  "(~0.27x; head size a multiple of 32). Compact types round keys and values.");
  cmd->add_option("--stream-weights", flags->stream_weights,
                  "Fetch weights past the CPU caches while decoding: auto (when they exceed half "
                  "the last-level cache), on, off. Changes speed only.");
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
  if (!kv_type || (*kv_type != DType::kF32 && *kv_type != DType::kF16 && *kv_type != DType::kQ8_0))
    return InvalidArgument("--kv-type '" + flags.kv_type + "' is not one of f32, f16, q8_0");
  opts.kv_type = *kv_type;
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
  std::fprintf(stderr, "fastgen: error: %s\n", status.message().c_str());
  switch (status.code()) {
    case ErrorCode::kInvalidArgument: return 2;
    default: return 1;
  }
}

}  // namespace fastgen::cli
