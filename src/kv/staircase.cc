#include "kv/staircase.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>

namespace fastgen {

namespace {

bool StaircaseType(DType t) {
  return t == DType::kF32 || t == DType::kF16 || t == DType::kQ8_0 || t == DType::kQ4_0;
}

int64_t FloorDiv(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

}  // namespace

Expected<KvStaircase> KvStaircase::Parse(std::string_view spec, std::string_view flag) {
  const std::string f(flag);
  KvStaircase s;
  if (spec.empty()) return InvalidArgument(f + ": empty spec; e.g. f16:256,q8_0:2048,q4_0");
  size_t at = 0;
  while (at <= spec.size()) {
    const size_t comma = std::min(spec.find(',', at), spec.size());
    const std::string entry(spec.substr(at, comma - at));
    const bool last = comma == spec.size();
    const std::string where = f + " entry '" + entry + "'";
    const size_t colon = entry.find(':');
    std::string type_name = entry.substr(0, colon);
    KvStaircaseStep step;
    if (type_name == "q4_0c" || type_name == "Q4_0C") {
      if (!last) return InvalidArgument(where + ": q4_0c (per-channel key scales) is for the last step only");
      step.channel_keys = true;
      type_name = "q4_0";
    }
    const std::optional<DType> type = DTypeFromName(type_name);
    if (!type || !StaircaseType(*type))
      return InvalidArgument(where + ": the type must be one of f32, f16, q8_0, q4_0 (or q4_0c last)");
    step.type = *type;
    if (colon == std::string::npos) {
      if (!last)
        return InvalidArgument(where + ": every step but the last needs a token count (TYPE:TOKENS)");
    } else {
      if (last)
        return InvalidArgument(where + ": the last step holds every older token and takes no count");
      const std::string count = entry.substr(colon + 1);
      char* end = nullptr;
      const long long v = count.empty() ? 0 : std::strtoll(count.c_str(), &end, 10);
      if (count.empty() || *end != '\0' || v < kStaircaseBlock || v > (int64_t{1} << 30))
        return InvalidArgument(where + ": the token count must be an integer from " +
                               std::to_string(kStaircaseBlock) + " (one aging block) to 2^30");
      step.tokens = v;
    }
    s.steps.push_back(step);
    at = comma + 1;
  }
  if (s.steps.size() > 8) return InvalidArgument(f + ": at most 8 steps");
  if (s.steps.size() < 2)
    return InvalidArgument(f + " '" + std::string(spec) +
                           "' has one step; a single type is --kv-type, a staircase has two or more");
  return s;
}

std::string KvStaircase::ToString() const {
  std::string out;
  for (const KvStaircaseStep& st : steps) {
    if (!out.empty()) out += ',';
    for (char c : Name(st.type)) out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (st.channel_keys) out += 'c';
    if (st.tokens >= 0) out += ":" + std::to_string(st.tokens);
  }
  return out;
}

int64_t KvStaircase::Cumulative(size_t i) const {
  int64_t total = 0;
  for (size_t j = 0; j <= i && j < steps.size(); ++j) total += std::max<int64_t>(0, steps[j].tokens);
  return total;
}

int64_t KvStaircase::TierStart(size_t i, int64_t pos) const {
  return std::max<int64_t>(0, FloorDiv(pos + 1 - Cumulative(i), kStaircaseBlock) * kStaircaseBlock);
}

double KvStaircase::BytesPerToken(int64_t row_elems, int64_t n) const {
  if (n <= 0) return 0;
  double bytes = 0;
  int64_t newer = n;  // tokens not yet assigned to a step, counting back from the newest
  for (size_t i = 0; i < steps.size(); ++i) {
    const int64_t held = i + 1 == steps.size() ? newer : std::min(newer, steps[i].tokens);
    bytes += 2.0 * static_cast<double>(held) * static_cast<double>(*RowBytes(steps[i].type, row_elems));
    if (steps[i].channel_keys) bytes += static_cast<double>(held) * 4.0 * static_cast<double>(row_elems) / kStaircaseBlock;
    newer -= held;
  }
  return bytes / static_cast<double>(n);
}

}  // namespace fastgen
