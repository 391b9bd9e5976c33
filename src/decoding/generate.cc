#include "decoding/generate.h"

#include <algorithm>
#include <chrono>
#include <limits>
#include <optional>

#include "decoding/banned_strings.h"

namespace fastgen {
namespace {

// Rewinds one generation may take before banned strings are declared unavoidable.
constexpr int64_t kMaxBanRewinds = 4096;

double Seconds(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

}  // namespace

Expected<int32_t> SampleConstrained(Sampler& sampler, constrained::TokenConstraint& constraint,
                                    std::span<const float> logits, std::span<const int32_t> history,
                                    std::vector<uint64_t>* allowed) {
  return SampleRestricted(sampler, &constraint, {}, logits, history, allowed);
}

Expected<int32_t> SampleRestricted(Sampler& sampler, constrained::TokenConstraint* constraint,
                                   std::span<const int32_t> banned, std::span<const float> logits,
                                   std::span<const int32_t> history, std::vector<uint64_t>* allowed) {
  if (constraint == nullptr && banned.empty()) return sampler.Sample(logits, history);
  auto ok = [&](int32_t t) {
    return std::find(banned.begin(), banned.end(), t) == banned.end() && (!constraint || constraint->Allows(t));
  };
  int32_t next = -1;
  // Greedy: the unrestricted argmax is the restricted one whenever it is allowed (ties go to the
  // lowest id either way), and checking one token is far cheaper than a mask.
  if (sampler.greedy()) {
    next = sampler.Sample(logits, history);
    if (!ok(next)) next = -1;
  }
  if (next < 0) {
    const auto vocab = static_cast<int32_t>(logits.size());
    if (constraint) {
      constraint->FillMask(allowed);
    } else {
      allowed->assign((static_cast<size_t>(vocab) + 63) / 64, ~uint64_t{0});
    }
    for (int32_t t : banned)
      if (t >= 0 && t < vocab) (*allowed)[static_cast<size_t>(t) >> 6] &= ~(uint64_t{1} << (t & 63));
    if (vocab % 64) allowed->back() &= (uint64_t{1} << (vocab % 64)) - 1;
    if (std::all_of(allowed->begin(), allowed->end(), [](uint64_t w) { return w == 0; })) {
      if (!constraint) return InvalidArgument("every token of the vocabulary is banned here");
      if (constraint->overflowed())
        return InvalidArgument("the grammar is too ambiguous to follow (more than " +
                               std::to_string(constrained::GrammarMatcher::kMaxStacks) + " parses at once)");
      return InvalidArgument("the grammar cannot go on: no token of the vocabulary continues the text and it may not end here");
    }
    next = sampler.Sample(logits, history, *allowed);
  }
  if (constraint && !constraint->Accept(next)) return Internal("a sampled token is outside the grammar's mask");
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
  if (!options.banned_strings.empty() && options.token_bytes == nullptr)
    return InvalidArgument("banned strings need the tokens' bytes (the model's tokenizer)");
  if (!options.banned_strings.empty() && evictor != nullptr)
    return InvalidArgument("banned strings do not combine with KV eviction (a rewind would have to undo evictions)");
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
  // Banned strings: tokens reach the callback once no banned string can still begin in them;
  // a banned string rewinds generation to its first token, which is sampled again without the
  // token chosen there before (banned_at), the KV cache and the grammar rolled back with it.
  std::optional<BannedStrings> bans;
  if (!options.banned_strings.empty()) bans.emplace(options.banned_strings, options.token_bytes);
  std::vector<std::vector<int32_t>> banned_at;            // [generated index] tokens refused there
  std::vector<constrained::MatchState> grammar_before;    // [generated index] the grammar's state before it
  const int64_t cached_prompt = kv.length();              // the cache after the prompt
  int64_t rewinds = 0, shown = 0;
  bool callback_stop = false;
  auto show = [&](int64_t upto) {  // passes tokens [shown, upto) to the callback
    for (; shown < upto && !callback_stop; ++shown) {
      if (on_token && !on_token(result.tokens[static_cast<size_t>(shown)])) callback_stop = true;
    }
    return !callback_stop;
  };
  while (static_cast<int64_t>(result.tokens.size()) < options.max_new_tokens) {
    const auto k = static_cast<size_t>(result.tokens.size());
    if (constraint != nullptr && constraint->Finished()) {
      result.stop_reason = StopReason::kGrammarComplete;
      break;
    }
    if (banned_at.size() <= k) banned_at.resize(k + 1);
    if (bans && constraint != nullptr) {
      grammar_before.resize(k);
      grammar_before.push_back(constraint->state());
    }
    FG_ASSIGN_OR_RETURN(const int32_t next,
                        SampleRestricted(sampler, constraint, banned_at[k], logits, history, &allowed));
    result.tokens.push_back(next);
    history.push_back(next);
    if (bans) {
      const int64_t hit = bans->Push(next);
      if (hit >= 0) {
        if (hit < shown) return Internal("a banned string began in text already shown");
        if (++rewinds > kMaxBanRewinds)
          return InvalidArgument("banned strings: gave up after " + std::to_string(kMaxBanRewinds) +
                                 " rewinds (the model keeps writing them)");
        const auto h = static_cast<size_t>(hit);
        banned_at[h].push_back(result.tokens[h]);
        banned_at.resize(h + 1);
        result.tokens.resize(h);
        history.resize(prompt.size() + h);
        bans->Rewind(hit);
        if (constraint != nullptr) constraint->Restore(grammar_before[h]);
        // The logits of position h: the cache back to before the token preceding it, which is
        // computed again in its own role.
        kv.Truncate(cached_prompt + hit - 1);
        const int32_t before = h == 0 ? prompt.back() : result.tokens[h - 1];
        FG_RETURN_IF_ERROR(model.Forward(std::span<const int32_t>(&before, 1), h == 0 ? prompt_rows : decode_rows, kv,
                                         LogitsMode::kLast, &logits));
        if (h == 0 && options.prompt_logits) logits.erase(logits.begin(), logits.end() - vocab);
        continue;
      }
    }
    const bool is_stop = std::find(stop.begin(), stop.end(), next) != stop.end();
    const bool last = is_stop || static_cast<int64_t>(result.tokens.size()) == options.max_new_tokens;
    if (!show(last || !bans ? static_cast<int64_t>(result.tokens.size()) : bans->Safe())) {
      result.stop_reason = StopReason::kCallback;
      break;
    }
    if (is_stop) {
      result.stop_reason = StopReason::kStopToken;
      break;
    }
    if (last) break;
    if (kv.length() >= kv.capacity() || kv.length() + kv.evicted() >= max_positions) {
      result.stop_reason = StopReason::kContextFull;
      break;
    }
    FG_RETURN_IF_ERROR(model.Forward(std::span<const int32_t>(&next, 1), decode_rows, kv, LogitsMode::kLast, &logits));
    if (evictor != nullptr) FG_RETURN_IF_ERROR(evictor->Enforce(kv).status());
  }
  // Held-back text goes out when generation ends (no banned string was completed in it).
  if (!callback_stop && !show(static_cast<int64_t>(result.tokens.size())) &&
      result.stop_reason != StopReason::kStopToken) {
    result.stop_reason = StopReason::kCallback;
  }
  result.decode_seconds = Seconds(t1, std::chrono::steady_clock::now());
  return result;
}

}  // namespace fastgen
