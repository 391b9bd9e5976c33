#include "decoding/speculative/prompt_lookup.h"

#include <algorithm>
#include <vector>

namespace fastgen::speculative {

Status PromptLookupProposer::Start(const GenerationSetup&) {
  if (opts_.min_ngram < 1 || opts_.max_ngram < opts_.min_ngram || opts_.max_length < 1 || opts_.branches < 1)
    return InvalidArgument("prompt lookup needs 1 <= min n-gram <= max n-gram, length >= 1, branches >= 1");
  return Status::Ok();
}

Status PromptLookupProposer::Propose(const ProposeRequest& request, Draft* draft) {
  const std::span<const int32_t> ctx = request.context;
  const auto len = static_cast<int64_t>(ctx.size());
  const int64_t copy = std::min(opts_.max_length, request.max_nodes);
  for (int64_t n = opts_.max_ngram; n >= opts_.min_ngram; --n) {
    if (len <= n) continue;
    const std::span<const int32_t> pattern = ctx.subspan(static_cast<size_t>(len - n));
    // The continuations of up to `branches` matches, most recent first: nearby text predicts
    // the continuation best.
    std::vector<std::span<const int32_t>> conts;
    for (int64_t s = len - n - 1; s >= 0 && static_cast<int32_t>(conts.size()) < opts_.branches; --s) {
      if (!std::equal(pattern.begin(), pattern.end(), ctx.begin() + s)) continue;
      const int64_t from = s + n, to = std::min(len, from + copy);
      conts.push_back(ctx.subspan(static_cast<size_t>(from), static_cast<size_t>(to - from)));
    }
    if (conts.empty()) continue;
    // The most recent match gets the budget less one node per other match that starts
    // differently (its sibling at the root); the others then fill what is left.
    std::vector<int32_t> firsts;  // distinct first tokens, the most recent match's first
    for (const auto& c : conts)
      if (std::find(firsts.begin(), firsts.end(), c.front()) == firsts.end()) firsts.push_back(c.front());
    const auto reserve = static_cast<int32_t>(firsts.size()) - 1;
    draft->InsertPath(conts[0], std::max(1, request.max_nodes - reserve));
    for (size_t i = 1; i < conts.size(); ++i) draft->InsertPath(conts[i], request.max_nodes);
    return Status::Ok();
  }
  return Status::Ok();
}

}  // namespace fastgen::speculative
