#include "models/stream_choice.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <vector>

#include "core/cache_info.h"
#include "kernels/cpu/isa.h"

namespace fastgen {
namespace {

double MedianOf(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n == 0 ? 0 : n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

std::string CpuName() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) return line.substr(line.find_first_not_of(' ', colon + 1));
    }
  }
  return "unknown-cpu";
}

// The running program, by size and modification time: a rebuilt fastgen (other kernels) measures
// again rather than trusting what an older build measured.
std::string ProgramStamp() {
  struct stat st {};
  if (::stat("/proc/self/exe", &st) != 0) return "exe?";
  return "exe=" + std::to_string(st.st_size) + "@" + std::to_string(st.st_mtime);
}

// One line per decision: what it depends on (the CPU, the program, the ISA the kernels run, the
// thread count, the bytes a decode step reads of the matrices and their types), then the choice.
std::string CacheKey(Model& model) {
  std::map<std::string, int> types;
  for (const auto& [name, t] : model.checkpoint().weights.tensors())
    if (t.shape.size() == 2) ++types[std::string(Name(t.dtype))];
  std::string mix;
  for (const auto& [type, count] : types) mix += (mix.empty() ? "" : "+") + type;
  std::string key = CpuName() + "|" + ProgramStamp() + "|" + std::string(kernels::cpu::IsaName(kernels::cpu::ActiveIsa())) + "|threads=" +
                    std::to_string(model.pool().size()) + "|bytes=" + std::to_string(model.weight_matrix_bytes()) +
                    "|" + mix;
  for (char& c : key)
    if (c == '\t' || c == '\n') c = ' ';
  return key;
}

std::string CacheDir() {
  if (const char* d = std::getenv("FASTGEN_CACHE_DIR"); d && *d) return d;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return std::string(x) + "/fastgen";
  if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.cache/fastgen";
  return "";
}

bool CacheEnabled() {
  const char* d = std::getenv("FASTGEN_CACHE_DIR");
  return !(d && std::string(d) == "off") && !CacheDir().empty();
}

std::string CachePath() { return CacheDir() + "/stream_weights.tsv"; }

// key \t stream(0|1) \t stream_ms \t cached_ms
std::map<std::string, StreamChoice> ReadCache() {
  std::map<std::string, StreamChoice> out;
  std::ifstream in(CachePath());
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string key, stream, a, b;
    if (!std::getline(fields, key, '\t') || !std::getline(fields, stream, '\t') || !std::getline(fields, a, '\t') ||
        !std::getline(fields, b, '\t'))
      continue;  // a damaged line is skipped: the model is measured again
    StreamChoice c;
    c.stream = stream == "1";
    c.stream_ms = std::atof(a.c_str());
    c.cached_ms = std::atof(b.c_str());
    c.how = "cached";
    out[key] = c;
  }
  return out;
}

void WriteCache(const std::string& key, const StreamChoice& c) {
  auto entries = ReadCache();
  // Decisions of other builds of fastgen are dropped: they will never be read again.
  std::erase_if(entries, [](const auto& e) { return e.first.find("|" + ProgramStamp() + "|") == std::string::npos; });
  entries[key] = c;
  const std::string dir = CacheDir();
  // mkdir -p of the last two levels (~/.cache may not exist yet); failures only lose the cache.
  ::mkdir(dir.substr(0, dir.rfind('/')).c_str(), 0755);
  ::mkdir(dir.c_str(), 0755);
  const std::string tmp = CachePath() + ".tmp" + std::to_string(::getpid());
  {
    std::ofstream out(tmp);
    if (!out) return;
    for (const auto& [k, v] : entries)
      out << k << '\t' << (v.stream ? 1 : 0) << '\t' << v.stream_ms << '\t' << v.cached_ms << '\n';
  }
  std::rename(tmp.c_str(), CachePath().c_str());  // readers see the old file or the new one
}

}  // namespace

Expected<StreamChoice> MeasureStreamWeights(Model& model) {
  const bool original = model.stream_weights();
  const ModelConfig& c = model.config();
  constexpr int64_t kSlots = 8;
  FG_ASSIGN_OR_RETURN(KvCache kv, model.NewKvCache(kSlots));
  std::vector<float> logits;
  int32_t token = c.bos_id.value_or(0);
  using Clock = std::chrono::steady_clock;
  auto step_ms = [&]() -> Expected<double> {
    if (kv.length() >= kSlots) kv.Clear();
    const auto t0 = Clock::now();
    FG_RETURN_IF_ERROR(model.Forward(std::span<const int32_t>(&token, 1), kv, LogitsMode::kLast, &logits));
    token = static_cast<int32_t>((token + 7919) % c.vocab_size);
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  };
  // Warm-up: pages the weights in and sizes every buffer, for both settings.
  for (bool s : {false, true}) {
    model.set_stream_weights(s);
    FG_RETURN_IF_ERROR(step_ms().status());
  }
  // Alternated rounds of one step per mode (on,off then off,on: neither always goes first).
  // A clear difference stops it after 2 rounds (a 2 GB model then costs 4 timed steps); a close
  // one takes up to 8 rounds or about a second, whichever comes first, so that the medians
  // settle.
  std::vector<double> on, off;
  double spent = 0;
  for (int r = 0; r < 8; ++r) {
    for (int i = 0; i < 2; ++i) {
      const bool s = (r + i) % 2 == 0;
      model.set_stream_weights(s);
      FG_ASSIGN_OR_RETURN(const double ms, step_ms());
      (s ? on : off).push_back(ms);
      spent += ms;
    }
    if (r + 1 < 2) continue;
    const double ratio = MedianOf(on) / std::max(MedianOf(off), 1e-9);
    if (ratio < 0.85 || ratio > 1.15 || spent > 1000.0) break;
  }
  model.set_stream_weights(original);
  StreamChoice choice;
  choice.stream_ms = MedianOf(on);
  choice.cached_ms = MedianOf(off);
  choice.stream = choice.stream_ms < 0.97 * choice.cached_ms;
  choice.how = "measured";
  return choice;
}

std::optional<StreamChoice> PlannedStreamWeights(Model& model) {
  const int64_t llc = LastLevelCacheBytes();
  if (llc <= 0 || model.weight_matrix_bytes() <= llc / 2) {
    StreamChoice small;
    small.how = "small";
    return small;
  }
  if (!CacheEnabled()) return std::nullopt;
  const auto entries = ReadCache();
  if (auto it = entries.find(CacheKey(model)); it != entries.end()) return it->second;
  return std::nullopt;
}

Expected<StreamChoice> ChooseStreamWeights(Model& model) {
  if (auto planned = PlannedStreamWeights(model)) return *planned;
  FG_ASSIGN_OR_RETURN(StreamChoice choice, MeasureStreamWeights(model));
  if (CacheEnabled()) WriteCache(CacheKey(model), choice);
  return choice;
}

}  // namespace fastgen
