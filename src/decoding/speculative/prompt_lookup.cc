#include "decoding/speculative/prompt_lookup.h"

#include <algorithm>

namespace fastgen::speculative {

Status PromptLookupProposer::Start(const GenerationSetup&) {
  if (opts_.min_ngram < 1 || opts_.max_ngram < opts_.min_ngram || opts_.max_length < 1 || opts_.branches < 1)
    return InvalidArgument("prompt lookup needs 1 <= min n-gram <= max n-gram, length >= 1, branches >= 1");
  return Status::Ok();
}

Status PromptLookupProposer::Propose(const ProposeRequest& request, Draft* draft) {
  const std::span<const int32_t> ctx = request.context;
  const auto len = static_cast<int64_t>(ctx.size());
  const int32_t branches = request.chain_only ? 1 : opts_.branches;
  const int64_t copy = std::min(opts_.max_length, request.max_nodes);
  for (int64_t n = opts_.max_ngram; n >= opts_.min_ngram; --n) {
    if (len <= n) continue;
    const std::span<const int32_t> pattern = ctx.subspan(static_cast<size_t>(len - n));
    int32_t found = 0;
    // Most recent match first: nearby text predicts the continuation best.
    for (int64_t s = len - n - 1; s >= 0 && found < branches; --s) {
      if (!std::equal(pattern.begin(), pattern.end(), ctx.begin() + s)) continue;
      const int64_t from = s + n, to = std::min(len, from + copy);
      draft->InsertPath(ctx.subspan(static_cast<size_t>(from), static_cast<size_t>(to - from)), request.max_nodes);
      ++found;
    }
    if (found > 0) return Status::Ok();
  }
  return Status::Ok();
}

}  // namespace fastgen::speculative
