#include "decoding/speculative/speculative.h"

#include "decoding/generate.h"
#include "decoding/speculative/step_control.h"

#include <algorithm>
#include <chrono>
#include <optional>
#include <string>

namespace fastgen::speculative {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// Checks a proposer's draft against the budget and the verifier's needs, trimming what it may
// (nodes past the budget, branches of a draft that carries q).
Status SanitizeDraft(const ProposeRequest& req, int32_t vocab, Draft* d) {
  if (d->parents.size() != d->tokens.size())
    return Internal("proposer returned " + std::to_string(d->tokens.size()) + " tokens but " +
                    std::to_string(d->parents.size()) + " parents");
  if (!d->q.empty() && d->q.size() != d->tokens.size())
    return Internal("proposer returned draft distributions for some nodes only");
  size_t keep = std::min(d->tokens.size(), static_cast<size_t>(std::max(0, req.max_nodes)));
  for (size_t i = 0; i < keep; ++i) {
    const int32_t p = d->parents[i];
    if (p < -1 || p >= static_cast<int32_t>(i)) return Internal("proposer returned a malformed tree");
    if (d->tokens[i] < 0 || d->tokens[i] >= vocab) return Internal("proposer drafted an id outside the vocabulary");
    if (!d->q.empty() && d->q[i].size() != static_cast<size_t>(vocab))
      return Internal("proposer's draft distribution has the wrong size");
    if (!d->q.empty() && p != static_cast<int32_t>(i) - 1) {  // q only on a chain: keep its prefix
      keep = i;
      break;
    }
  }
  d->tokens.resize(keep);
  d->parents.resize(keep);
  if (!d->q.empty()) d->q.resize(keep);
  return Status::Ok();
}

int32_t Depth(const Draft& d) {
  std::vector<int32_t> depth(d.size());
  int32_t deepest = 0;
  for (size_t i = 0; i < d.size(); ++i) {
    depth[i] = d.parents[i] < 0 ? 1 : depth[static_cast<size_t>(d.parents[i])] + 1;
    deepest = std::max(deepest, depth[i]);
  }
  return deepest;
}

}  // namespace

namespace {

// Keeps the drafted nodes whose path from the root the grammar allows (a chain keeps a prefix;
// a tree loses the subtrees below a refused token), renumbering parents; the constraint's state
// is left as it was.
void PruneDraftToGrammar(constrained::TokenConstraint& constraint, Draft* draft) {
  const constrained::MatchState root = constraint.state();
  std::vector<constrained::MatchState> states(draft->size());
  std::vector<int32_t> renumbered(draft->size(), -1);
  Draft kept;
  for (size_t j = 0; j < draft->size(); ++j) {
    const int32_t parent = draft->parents[j];
    if (parent >= 0 && renumbered[static_cast<size_t>(parent)] < 0) continue;  // below a refused token
    constraint.Restore(parent < 0 ? root : states[static_cast<size_t>(parent)]);
    if (!constraint.Accept(draft->tokens[j])) continue;
    states[j] = constraint.state();
    renumbered[j] = static_cast<int32_t>(kept.size());
    kept.Push(draft->tokens[j], parent < 0 ? -1 : renumbered[static_cast<size_t>(parent)]);
    if (!draft->q.empty()) kept.q.push_back(std::move(draft->q[j]));
  }
  constraint.Restore(root);
  *draft = std::move(kept);
}

}  // namespace

Expected<SpeculativeResult> GenerateSpeculative(Model& target, KvCache& kv,
                                                std::span<const int32_t> prompt,
                                                const GenerateOptions& options,
                                                const SpeculativeOptions& spec, Proposer& proposer,
                                                const TokenCallback& on_token) {
  const ModelConfig& c = target.config();
  const auto vocab = static_cast<int32_t>(c.vocab_size);
  FG_RETURN_IF_ERROR(ValidateSamplerOptions(options.sampler, vocab));
  if (prompt.empty()) return InvalidArgument("the prompt is empty: give at least one token");
  if (options.max_new_tokens < 0) return InvalidArgument("the number of tokens to generate must be >= 0");
  if (spec.max_draft < 0) return InvalidArgument("the draft budget must be >= 0");
  if (!options.banned_strings.empty())
    return Unsupported("banned strings do not combine with speculative decoding yet");
  if (kv.length() + static_cast<int64_t>(prompt.size()) > kv.capacity())
    return InvalidArgument("the prompt (" + std::to_string(prompt.size()) +
                           " tokens) does not fit the context size of " +
                           std::to_string(kv.capacity()) + " tokens");
  const bool greedy = options.sampler.temperature <= 0.0f;
  if (spec.bild && !greedy) return InvalidArgument("the BiLD policy needs greedy decoding (temperature 0)");
  const AcceptRule rule = !greedy ? AcceptRule::kSampling : spec.bild ? AcceptRule::kBild : AcceptRule::kGreedy;

  SpeculativeResult out;
  GenerateResult& result = out.generation;
  SpeculativeStats& stats = out.stats;
  result.prompt_tokens = static_cast<int64_t>(prompt.size());
  std::vector<int32_t> stop = options.stop_ids;
  if (!options.ignore_eos) stop.insert(stop.end(), c.eos_ids.begin(), c.eos_ids.end());

  GenerationSetup setup{prompt, options.sampler, kv.capacity(), vocab, &target, &kv};
  FG_RETURN_IF_ERROR(proposer.Start(setup).WithContext(std::string(proposer.name()) + " proposer"));
  Sampler sampler(options.sampler, vocab);
  std::vector<int32_t> history(prompt.begin(), prompt.end());  // committed tokens, prompt first
  history.reserve(history.size() + static_cast<size_t>(options.max_new_tokens));
  std::vector<float> logits;  // [rows, vocab], or [rows, d_model] hidden states (kHidden)

  const auto t0 = Clock::now();
  const LogitsMode mode = options.prompt_logits ? LogitsMode::kAll : LogitsMode::kLast;
  BatchLayout prompt_rows;  // the kernels plain decoding uses for the prompt (generate.cc)
  prompt_rows.rows = BatchLayout::Rows::kPrompt;
  FG_RETURN_IF_ERROR(target.Forward(prompt, prompt_rows, kv, mode, &logits));
  // A proposer may write the target's cache past its length while it works (layer skipping),
  // never leave it changed: the verifier's next pass starts at kv.length().
  const auto handed_back = [&](int64_t length) {
    return kv.length() == length ? Status::Ok() : Internal(std::string(proposer.name()) + " proposer changed the target's cache");
  };
  const int64_t prompt_cached = kv.length();
  FG_RETURN_IF_ERROR(proposer.Prefill(prompt).WithContext(std::string(proposer.name()) + " proposer"));
  FG_RETURN_IF_ERROR(handed_back(prompt_cached));
  if (options.prompt_logits) {
    *options.prompt_logits = logits;
    logits.erase(logits.begin(), logits.end() - vocab);
  }
  const auto t1 = Clock::now();
  result.prefill_seconds = Seconds(t0, t1);
  // Plain decoding's cache length when it has committed `emitted` tokens: the stop rules below
  // are plain decoding's, evaluated per committed token, so both stop at the same token.
  const int64_t kv_base = kv.length() - 1;

  // Constrained decoding: every token, drafted or sampled, is one the grammar allows, and each
  // row is sampled under the mask of the state its committed prefix leaves, so the output is
  // constrained plain decoding's (greedy: token for token).
  constrained::TokenConstraint* constraint = options.constraint;
  std::vector<uint64_t> allowed;
  bool grammar_finished = false;  // after the token being emitted
  // Commits one token; false when generation ends with it.
  auto emit = [&](int32_t token) {
    result.tokens.push_back(token);
    const bool is_stop = std::find(stop.begin(), stop.end(), token) != stop.end();
    if (on_token && !on_token(token)) {
      result.stop_reason = StopReason::kCallback;
      return false;
    }
    if (is_stop) {
      result.stop_reason = StopReason::kStopToken;
      return false;
    }
    const auto emitted = static_cast<int64_t>(result.tokens.size());
    if (emitted == options.max_new_tokens) return false;
    if (kv_base + emitted >= kv.capacity()) {
      result.stop_reason = StopReason::kContextFull;
      return false;
    }
    if (grammar_finished) {  // plain decoding's next step would find nothing left to generate
      result.stop_reason = StopReason::kGrammarComplete;
      return false;
    }
    return true;
  };

  // Proposers that draft chains of any length on request: the planner picks the length and the
  // gate whether to draft (step_control.h). The others draft what they find, and the fallback
  // decides between that and a plain step. The planner probes neighbouring lengths half as
  // often as the fallback probes modes: a neighbour is a near-optimal step, but one all the same.
  const PlannableLength plannable = proposer.Plannable();
  const bool planned = plannable.max > 0 && spec.max_draft > 0;
  LengthPlanner planner(std::min(spec.max_draft, plannable.max), plannable.initial, 2 * spec.probe_every);
  DraftGate gate(spec.adaptive_fallback, spec.probe_every);
  FallbackController controller(spec.adaptive_fallback, spec.probe_every);
  // Prompt lookup ahead of the proposer (lookup_first), with its own fallback.
  std::optional<PromptLookupProposer> finder;
  FallbackController finder_control(spec.adaptive_fallback, spec.probe_every);
  if (spec.lookup_first) {
    if (spec.lookup_budget < 1) return InvalidArgument("the lookup budget must be >= 1");
    finder.emplace(spec.lookup);
    FG_RETURN_IF_ERROR(finder->Start(setup).WithContext("prompt lookup"));
  }
  Draft draft;
  std::vector<int32_t> batch, parents, path, commit, children, scratch_tokens;
  std::vector<float> p, scratch, row_logits;  // [vocab]
  const int64_t d_model = c.d_model;
  bool running = options.max_new_tokens > 0;
  if (running && constraint && constraint->Finished()) {
    result.stop_reason = StopReason::kGrammarComplete;
    running = false;
  }
  if (running) {
    int32_t first;
    if (constraint) {
      FG_ASSIGN_OR_RETURN(first, SampleConstrained(sampler, *constraint, logits, history, &allowed));
      grammar_finished = constraint->Finished();
    } else {
      first = sampler.Sample(logits, history);
    }
    history.push_back(first);
    running = emit(first);
  }
  std::vector<uint8_t> commit_finished;  // [commit] the grammar allows nothing after it
  while (running) {
    // Invariant: history.back() is committed but not yet in the cache (kv.length() slots are).
    const auto t_step = Clock::now();
    const int64_t remaining = options.max_new_tokens - static_cast<int64_t>(result.tokens.size());
    const int64_t room = std::min<int64_t>({spec.max_draft, kv.capacity() - kv.length() - 1, remaining - 1});
    draft.Clear();
    // A copy from the context first, when lookup is on and paying; the proposer only without one.
    bool found = false;
    // The proposer's budget does not bound a copy, which costs no model pass to draft.
    const int64_t copy_room =
        std::min<int64_t>({spec.lookup_budget, kv.capacity() - kv.length() - 1, remaining - 1});
    if (finder && copy_room > 0 && finder_control.Speculate()) {
      ProposeRequest req{history, static_cast<int32_t>(copy_room)};
      FG_RETURN_IF_ERROR(finder->Propose(req, &draft).WithContext("prompt lookup"));
      FG_RETURN_IF_ERROR(SanitizeDraft(req, vocab, &draft));
      found = !draft.empty();
    }
    Proposer& source = found ? static_cast<Proposer&>(*finder) : proposer;
    const LengthPlanner::Plan plan = planned && room > 0 && !found ? planner.Best() : LengthPlanner::Plan{};
    const bool speculate =
        found || (room > 0 && (planned ? gate.Speculate(plan.tokens_per_unit) : controller.Speculate()));
    const int64_t budget = speculate && planned && !found ? std::min<int64_t>(room, planner.Choose(plan)) : room;
    if (speculate && !found) {
      ProposeRequest req{history, static_cast<int32_t>(budget)};
      const int64_t cached = kv.length();
      FG_RETURN_IF_ERROR(proposer.Propose(req, &draft).WithContext(std::string(proposer.name()) + " proposer"));
      FG_RETURN_IF_ERROR(handed_back(cached));
      FG_RETURN_IF_ERROR(SanitizeDraft(req, vocab, &draft));
    }
    // Drafted tokens the grammar refuses would be rejected anyway: cut them (and what follows
    // them) before the target computes their rows.
    if (constraint && !draft.empty()) PruneDraftToGrammar(*constraint, &draft);
    const auto t_proposed = Clock::now();

    // One target pass over [pending, draft...]: batch index = draft index + 1.
    batch.assign(1, history.back());
    batch.insert(batch.end(), draft.tokens.begin(), draft.tokens.end());
    BatchLayout layout;
    layout.rows = BatchLayout::Rows::kDecode;  // each token exactly as a plain decoding step computes it
    if (!draft.IsChain()) {
      parents.assign(1, -1);
      for (int32_t par : draft.parents) parents.push_back(par + 1);
      layout.parents = parents;
    }
    const int64_t base = kv.length();
    // The vocabulary projection reads the whole output matrix per call, so a few rows cost about
    // what one row does: drafts up to 16 rows project every row in one call (fg-target's head:
    // 0.25 ms for 13 rows, 0.10 ms for one, matmul_bench --shapes fg-target); big trees, of
    // which the walk reads only one path, project the rows it visits (kHidden + ProjectLogits).
    constexpr size_t kProjectAllUpTo = 16;
    const LogitsMode verify_mode = draft.empty() ? LogitsMode::kLast
                                   : source.WantsVerification() || batch.size() <= kProjectAllUpTo
                                       ? LogitsMode::kAll
                                       : LogitsMode::kHidden;
    FG_RETURN_IF_ERROR(target.Forward(batch, layout, kv, verify_mode, &logits));
    const auto t_verified = Clock::now();

    // Walk from the root, keeping drafted children the rule accepts.
    path.assign(1, 0);
    commit.clear();
    commit_finished.clear();
    int32_t node = 0;
    while (true) {
      std::span<const float> row;  // [vocab] the target's logits after this node
      if (verify_mode == LogitsMode::kHidden) {
        target.ProjectLogits(logits.data() + static_cast<size_t>(node) * d_model, 1, &row_logits);
        row = row_logits;
      } else {
        row = std::span<const float>(logits.data() + static_cast<size_t>(node) * vocab, static_cast<size_t>(vocab));
      }
      children.clear();
      for (size_t j = 0; j < draft.size(); ++j)
        if (draft.parents[j] + 1 == node) children.push_back(static_cast<int32_t>(j) + 1);
      int32_t chosen = -1;  // batch index of the kept child
      int32_t token = -1;   // the target's own token when no child is kept
      // The grammar's state before this row's token, and its mask (sampling only; greedy checks
      // the argmax first, as plain constrained decoding does).
      constrained::MatchState before;
      std::span<const uint64_t> mask;
      if (constraint) {
        before = constraint->state();
        if (rule == AcceptRule::kSampling && !children.empty()) {
          constraint->FillMask(&allowed);
          if (std::all_of(allowed.begin(), allowed.end(), [](uint64_t w) { return w == 0; }))
            return InvalidArgument("the grammar cannot go on: no token of the vocabulary continues the text");
          mask = allowed;
        }
      }
      // The target's own token for this row (advancing the grammar past it when there is one).
      auto own_token = [&]() -> Expected<int32_t> {
        if (!constraint) return sampler.Sample(row, history);
        return SampleConstrained(sampler, *constraint, row, history, &allowed);
      };
      if (rule == AcceptRule::kSampling) {
        if (children.empty()) {
          FG_ASSIGN_OR_RETURN(token, own_token());
        } else if (!draft.q.empty()) {
          const int32_t child = children.front();  // a chain (SanitizeDraft)
          const size_t d = static_cast<size_t>(child - 1);
          sampler.Distribution(row, history, &p, mask);
          if (AcceptSampled(p, draft.q[d], draft.tokens[d], sampler, &scratch, &token)) chosen = child;
        } else {
          // Deterministic children, one or more: recursive rejection sampling over them.
          sampler.Distribution(row, history, &p, mask);
          scratch_tokens.clear();
          for (int32_t child : children) scratch_tokens.push_back(draft.tokens[static_cast<size_t>(child - 1)]);
          const int32_t k = AcceptSampledAmong(p, scratch_tokens, sampler, &token);
          if (k >= 0) chosen = children[static_cast<size_t>(k)];
        }
      } else {
        FG_ASSIGN_OR_RETURN(token, own_token());  // greedy: argmax after penalties and bias
        for (int32_t child : children)
          if (draft.tokens[static_cast<size_t>(child - 1)] == token) chosen = child;
        if (chosen < 0 && rule == AcceptRule::kBild) {
          for (int32_t child : children) {
            // (A drafted child is one the grammar allows: PruneDraftToGrammar.)
            if (AcceptBild(row, draft.tokens[static_cast<size_t>(child - 1)], spec.bild_rollback)) {
              chosen = child;
              break;
            }
          }
        }
      }
      const int32_t kept = chosen < 0 ? token : draft.tokens[static_cast<size_t>(chosen - 1)];
      if (constraint) {
        // own_token advanced the grammar past `token`; a kept child other than it (sampling's
        // acceptance, BiLD) takes its place.
        const bool advanced = rule != AcceptRule::kSampling || children.empty();
        if (!advanced || kept != token) {
          constraint->Restore(before);
          if (!constraint->Accept(kept)) return Internal("the verifier kept a token outside the grammar's mask");
        }
        commit_finished.push_back(constraint->Finished());
      }
      if (chosen < 0) {
        commit.push_back(token);
        history.push_back(token);
        break;
      }
      commit.push_back(kept);
      history.push_back(kept);
      path.push_back(chosen);
      node = chosen;
    }
    FG_RETURN_IF_ERROR(kv.CompactTail(base, path));
    const auto accepted = static_cast<int32_t>(path.size()) - 1;
    const int32_t depth = Depth(draft);
    if (!draft.empty()) {
      if (verify_mode == LogitsMode::kAll)
        source.ObserveVerification({draft, logits, vocab, static_cast<int32_t>(commit.size())});
      source.Observe(depth, accepted);
    }
    const auto t_end = Clock::now();

    ++stats.steps;
    stats.spec_steps += !draft.empty();
    stats.drafted += static_cast<int64_t>(draft.size());
    stats.drafted_path += depth;
    stats.accepted += accepted;
    stats.propose_seconds += Seconds(t_step, t_proposed);
    stats.verify_seconds += Seconds(t_proposed, t_verified);
    if (!speculate && room > 0) {
      ++stats.plain_steps;
      const double s = Seconds(t_step, t_end);
      stats.plain_step_seconds = stats.plain_step_seconds == 0 ? s : 0.8 * stats.plain_step_seconds + 0.2 * s;
    }
    const double step_seconds = Seconds(t_step, t_end);
    stats.lookup_steps += found;
    if (finder && copy_room > 0) finder_control.Record(found, static_cast<int64_t>(commit.size()), step_seconds);
    if (found) {
      // Not the proposer's step: its planner compares the next drafting step with none before.
      planner.Interrupt();
    } else if (planned && speculate && depth > 0) {
      planner.Record(depth, accepted, step_seconds);
      gate.RecordSpec(step_seconds / std::max(1e-9, planner.RelativeCost(depth)),
                      static_cast<int64_t>(commit.size()), step_seconds);
    } else if (planned) {
      planner.Interrupt();
      // A proposer that drafted nothing when asked (--draft-min-conf) still ran its model: the
      // step is neither mode's cost, so the gate learns from neither.
      if (room > 0 && !speculate) gate.RecordPlain(step_seconds);
    } else if (room > 0) {
      controller.Record(speculate, static_cast<int64_t>(commit.size()), step_seconds);
    }
    for (size_t i = 0; i < commit.size(); ++i) {
      ++stats.generated;
      grammar_finished = constraint && commit_finished[i];
      if (!(running = emit(commit[i]))) break;
    }
  }
  result.decode_seconds = Seconds(t1, Clock::now());
  return out;
}

}  // namespace fastgen::speculative
