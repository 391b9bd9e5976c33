#include "core/cache_info.h"

#include <cstdio>
#include <cstdlib>
#include <string>

namespace fastgen {
namespace {

// "32768K", "8M", "1024" as bytes; 0 when unreadable.
int64_t ParseSize(const std::string& s) {
  char* end = nullptr;
  const long long v = std::strtoll(s.c_str(), &end, 10);
  if (end == s.c_str() || v <= 0) return 0;
  const char unit = *end;
  if (unit == 'K' || unit == 'k') return v << 10;
  if (unit == 'M' || unit == 'm') return v << 20;
  if (unit == 'G' || unit == 'g') return v << 30;
  return v;
}

std::string ReadLine(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "r");
  if (!f) return {};
  char buf[64] = {};
  const bool ok = std::fgets(buf, sizeof buf, f) != nullptr;
  std::fclose(f);
  return ok ? std::string(buf) : std::string();
}

int64_t Detect() {
  int best_level = 0;
  int64_t bytes = 0;
  for (int i = 0; i < 16; ++i) {
    const std::string dir = "/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(i) + "/";
    const std::string level = ReadLine(dir + "level");
    if (level.empty()) break;
    const std::string type = ReadLine(dir + "type");
    if (type.rfind("Instruction", 0) == 0) continue;
    const int l = std::atoi(level.c_str());
    const int64_t size = ParseSize(ReadLine(dir + "size"));
    if (l > best_level && size > 0) {
      best_level = l;
      bytes = size;
    }
  }
  return best_level >= 2 ? bytes : 0;
}

}  // namespace

int64_t LastLevelCacheBytes() {
  // FASTGEN_LLC_BYTES overrides what sysfs says (virtual machines report what the host chooses:
  // 480 MiB "L3" on one Xeon VM of the pool), read at every call so tests can set it.
  if (const char* env = std::getenv("FASTGEN_LLC_BYTES"); env && *env) return ParseSize(env);
  static const int64_t bytes = Detect();
  return bytes;
}

}  // namespace fastgen
