#include "decoding/generate.h"

#include <algorithm>
#include <chrono>
#include <limits>

namespace fastgen {
namespace {

double Seconds(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

}  // namespace

Expected<int32_t> SampleConstrained(Sampler& sampler, constrained::TokenConstraint& constraint,
                                    std::span<const float> logits, std::span<const int32_t> history,
                                    std::vector<uint64_t>* allowed) {
  int32_t next = -1;
  // Greedy: the unconstrained argmax is the constrained one whenever the grammar allows it
  // (ties go to the lowest id either way), and checking one token is far cheaper than a mask.
  if (sampler.greedy()) {
    next = sampler.Sample(logits, history);
    if (!constraint.Allows(next)) next = -1;
  }
  if (next < 0) {
    constraint.FillMask(allowed);
    if (std::all_of(allowed->begin(), allowed->end(), [](uint64_t w) { return w == 0; })) {
      if (constraint.overflowed())
        return InvalidArgument("the grammar is too ambiguous to follow (more than " +
                               std::to_string(constrained::GrammarMatcher::kMaxStacks) + " parses at once)");
      return InvalidArgument("the grammar cannot go on: no token of the vocabulary continues the text and it may not end here");
    }
    next = sampler.Sample(logits, history, *allowed);
  }
  if (!constraint.Accept(next)) return Internal("a sampled token is outside the grammar's mask");
  return next;
}

Expected<GenerateResult> Generate(Model& model, KvCache& kv, std::span<const int32_t> prompt,
                                  const GenerateOptions& options, const TokenCallback& on_token) {
  const ModelConfig& c = model.config();
  const auto vocab = static_cast<int32_t>(c.vocab_size);
  FG_RETURN_IF_ERROR(ValidateSamplerOptions(options.sampler, vocab));
  if (prompt.empty()) return InvalidArgument("the prompt is empty: give at least one token");
  if (options.max_new_tokens < 0) return InvalidArgument("the number of tokens to generate must be >= 0");
  KvEvictor* evictor = options.evictor != nullptr && options.evictor->policy().kind != EvictionKind::kNone
                          ? options.evictor
                          : nullptr;
  if (evictor != nullptr && kv.capacity() <= evictor->policy().budget)
    return InvalidArgument("a KV cache of " + std::to_string(kv.capacity()) + " slots has no room past the eviction budget of " +
                           std::to_string(evictor->policy().budget));
  if (evictor != nullptr && (options.max_positions <= 0 || options.max_positions > INT32_MAX))
    return InvalidArgument("generation under KV eviction needs a context size (max_positions) in [1, 2^31)");
  const int64_t max_positions = evictor == nullptr ? kv.capacity() : options.max_positions;
  if (evictor == nullptr && kv.length() + static_cast<int64_t>(prompt.size()) > kv.capacity())
    return InvalidArgument("the prompt (" + std::to_string(prompt.size()) +
                           " tokens) does not fit the context size of " +
                           std::to_string(kv.capacity()) + " tokens");
  if (evictor != nullptr && kv.length() + kv.evicted() + static_cast<int64_t>(prompt.size()) > max_positions)
    return InvalidArgument("the prompt (" + std::to_string(prompt.size()) + " tokens) does not fit the context size of " +
                           std::to_string(max_positions) + " tokens");
  const ScopedAttentionHooks hooks(model, evictor != nullptr && evictor->wants_attention() ? evictor : nullptr);

  GenerateResult result;
  result.prompt_tokens = static_cast<int64_t>(prompt.size());
  std::vector<int32_t> stop = options.stop_ids;
  if (!options.ignore_eos) stop.insert(stop.end(), c.eos_ids.begin(), c.eos_ids.end());

  Sampler sampler(options.sampler, vocab);
  // History for the penalties: the prompt and everything generated so far.
  std::vector<int32_t> history(prompt.begin(), prompt.end());
  history.reserve(history.size() + static_cast<size_t>(options.max_new_tokens));
  std::vector<float> logits;

  const auto t0 = std::chrono::steady_clock::now();
  const LogitsMode mode = options.prompt_logits ? LogitsMode::kAll : LogitsMode::kLast;
  // Roles fix the kernels each token takes (BatchLayout::Rows), so the same prompt and seed give
  // the same tokens here as in the serving runtime, however it batches them.
  BatchLayout prompt_rows, decode_rows;
  prompt_rows.rows = BatchLayout::Rows::kPrompt;
  decode_rows.rows = BatchLayout::Rows::kDecode;
  if (evictor == nullptr) {
    FG_RETURN_IF_ERROR(model.Forward(prompt, prompt_rows, kv, mode, &logits));
    if (options.prompt_logits) *options.prompt_logits = logits;
  } else {
    // Pieces that fit the room past the budget, each followed by an eviction.
    if (options.prompt_logits) options.prompt_logits->clear();
    for (size_t done = 0; done < prompt.size();) {
      const size_t room = static_cast<size_t>(kv.capacity() - kv.length());
      const auto piece = prompt.subspan(done, std::min(room, prompt.size() - done));
      FG_RETURN_IF_ERROR(model.Forward(piece, prompt_rows, kv, mode, &logits));
      FG_RETURN_IF_ERROR(evictor->Enforce(kv).status());
      if (options.prompt_logits) options.prompt_logits->insert(options.prompt_logits->end(), logits.begin(), logits.end());
      done += piece.size();
    }
  }
  // Keep only the last row for sampling.
  if (options.prompt_logits) logits.erase(logits.begin(), logits.end() - vocab);
  const auto t1 = std::chrono::steady_clock::now();
  result.prefill_seconds = Seconds(t0, t1);

  constrained::TokenConstraint* constraint = options.constraint;
  std::vector<uint64_t> allowed;
  for (int64_t i = 0; i < options.max_new_tokens; ++i) {
    int32_t next;
    if (constraint == nullptr) {
      next = sampler.Sample(logits, history);
    } else {
      if (constraint->Finished()) {
        result.stop_reason = StopReason::kGrammarComplete;
        break;
      }
      FG_ASSIGN_OR_RETURN(next, SampleConstrained(sampler, *constraint, logits, history, &allowed));
    }
    result.tokens.push_back(next);
    history.push_back(next);
    const bool is_stop = std::find(stop.begin(), stop.end(), next) != stop.end();
    if (on_token && !on_token(next)) {
      result.stop_reason = StopReason::kCallback;
      break;
    }
    if (is_stop) {
      result.stop_reason = StopReason::kStopToken;
      break;
    }
    if (i + 1 == options.max_new_tokens) break;
    if (kv.length() >= kv.capacity() || kv.length() + kv.evicted() >= max_positions) {
      result.stop_reason = StopReason::kContextFull;
      break;
    }
    FG_RETURN_IF_ERROR(model.Forward(std::span<const int32_t>(&next, 1), decode_rows, kv, LogitsMode::kLast, &logits));
    if (evictor != nullptr) FG_RETURN_IF_ERROR(evictor->Enforce(kv).status());
  }
  result.decode_seconds = Seconds(t1, std::chrono::steady_clock::now());
  return result;
}

}  // namespace fastgen
