#include "runtime/engine.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>

#include "core/diagnostics.h"
#include "decoding/constrained/output_format.h"
#include "decoding/generate.h"
#include "decoding/speculative/prompt_lookup.h"

namespace fastgen::runtime {
namespace {

using Clock = std::chrono::steady_clock;

// Models in use by an engine: a model's forward pass keeps its workspaces in the model, so two
// engine threads on one model would corrupt each other's activations.
std::mutex& ServedMutex() {
  static std::mutex m;
  return m;
}
std::vector<const Model*>& Served() {  // guarded by ServedMutex
  static std::vector<const Model*> v;
  return v;
}


}  // namespace

Expected<std::unique_ptr<Engine>> Engine::Create(Model& model, const Tokenizer* tokenizer, EngineOptions o) {
  const ModelConfig& c = model.config();
  if (o.max_running < 1 || o.max_running > 4096)
    return InvalidArgument("--parallel " + std::to_string(o.max_running) + " is outside [1, 4096]");
  if (o.step_tokens < 1 || o.step_tokens > (1 << 16))
    return InvalidArgument("the step token budget " + std::to_string(o.step_tokens) + " is outside [1, 65536]");
  if (o.max_queue < 0) return InvalidArgument("--max-queue must be >= 0");
  if (o.block_tokens < 16 || o.block_tokens % 16 != 0)
    return InvalidArgument("KV blocks must hold a multiple of 16 tokens");
  if (o.spec_draft < 1) o.spec_max_running = 0;
  int64_t kv_tokens = o.kv_tokens;
  if (kv_tokens <= 0) kv_tokens = std::min<int64_t>(static_cast<int64_t>(o.max_running) * c.max_context, 65536);
  const int64_t blocks = (kv_tokens + o.block_tokens - 1) / o.block_tokens;
  if (blocks < 2) return InvalidArgument("-c " + std::to_string(kv_tokens) + ": the KV budget must hold at least two blocks");
  FG_ASSIGN_OR_RETURN(KvBlockPool pool,
                      KvBlockPool::Create({c.n_layer, c.n_kv_head, c.head_dim, o.block_tokens, blocks, model.kv_type()}));
  if (o.draft) {
    if (o.draft == &model) return InvalidArgument("the draft model must be another model than the target");
    if (o.draft->config().vocab_size != c.vocab_size)
      return InvalidArgument("the draft model's vocabulary (" + std::to_string(o.draft->config().vocab_size) +
                             ") differs from the target's (" + std::to_string(c.vocab_size) + ")");
    if (o.draft_length < 1) return InvalidArgument("the draft length must be >= 1");
  }
  {
    std::lock_guard<std::mutex> lock(ServedMutex());
    for (const Model* m : {static_cast<const Model*>(&model), static_cast<const Model*>(o.draft)})
      if (m && std::find(Served().begin(), Served().end(), m) != Served().end())
        return InvalidArgument("the model is already served by another engine");
    Served().push_back(&model);
    if (o.draft) Served().push_back(o.draft);
  }
  std::unique_ptr<Engine> e(new Engine(model, tokenizer, o, std::move(pool)));
  e->thread_ = std::thread([p = e.get()] { p->Loop(); });
  return e;
}

Engine::Engine(Model& model, const Tokenizer* tokenizer, EngineOptions options, KvBlockPool pool)
    : model_(model),
      tokenizer_(tokenizer),
      opts_(options),
      pool_(std::move(pool)),
      scheduler_(pool_, {options.max_running, options.step_tokens, options.prefix_cache}) {
  // A sequence holds at most what the model was trained for and what the pool can give it.
  context_ = std::min<int64_t>(model.config().max_context, pool_.n_blocks() * pool_.block_tokens());
  metrics_.Update([&](EngineStats& s) {
    s.kv_blocks_total = pool_.n_blocks();
    s.kv_block_tokens = pool_.block_tokens();
  });
}

Engine::~Engine() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  std::lock_guard<std::mutex> lock(ServedMutex());
  std::erase(Served(), &model_);
  if (opts_.draft) std::erase(Served(), static_cast<const Model*>(opts_.draft));
}

Expected<std::shared_ptr<RequestHandle>> Engine::Submit(Request r) {
  const ModelConfig& c = model_.config();
  const int64_t n_prompt = static_cast<int64_t>(r.prompt.size());
  GenerationParams& p = r.params;
  if (n_prompt == 0) return InvalidArgument("prompt: empty (give at least one token)");
  for (size_t i = 0; i < r.prompt.size(); ++i)
    if (r.prompt[i] < 0 || r.prompt[i] >= c.vocab_size)
      return InvalidArgument("prompt: token id " + std::to_string(r.prompt[i]) + " at index " + std::to_string(i) +
                             " is outside the vocabulary [0, " + std::to_string(c.vocab_size) + ")");
  if (n_prompt >= context_)
    return InvalidArgument("prompt: " + std::to_string(n_prompt) + " tokens leave no room to generate in the context of " +
                           std::to_string(context_) + " tokens");
  if (p.max_tokens == 0 || p.max_tokens < -1) return InvalidArgument("max_tokens: must be at least 1");
  if (p.max_tokens > 0 && n_prompt + p.max_tokens > context_)
    return InvalidArgument("max_tokens: the prompt's " + std::to_string(n_prompt) + " tokens and " +
                           std::to_string(p.max_tokens) + " more exceed the context of " + std::to_string(context_) +
                           " tokens");
  if (p.n < 1 || p.n > opts_.max_n)
    return InvalidArgument("n: " + std::to_string(p.n) + " is outside [1, " + std::to_string(opts_.max_n) + "]");
  if (p.top_logprobs < -1 || p.top_logprobs > 20)
    return InvalidArgument("top_logprobs: " + std::to_string(p.top_logprobs) + " is outside [0, 20]");
  if (!p.stop.empty() && tokenizer_ == nullptr)
    return InvalidArgument("stop: stop strings need the model's tokenizer, and this model has none");
  if (p.grammar && tokenizer_ == nullptr)
    return InvalidArgument("response_format: structured output needs the model's tokenizer, and this model has none");
  for (int32_t id : p.stop_ids)
    if (id < 0 || id >= c.vocab_size) return InvalidArgument("stop token id " + std::to_string(id) + " is outside the vocabulary");
  FG_RETURN_IF_ERROR(ValidateSamplerOptions(p.sampler, static_cast<int32_t>(c.vocab_size)));
  auto handle = std::make_shared<RequestHandle>();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (draining_ || stop_) return Unavailable("the server is shutting down");
    const int waiting = waiting_ + static_cast<int>(inbox_.size());
    if (waiting >= opts_.max_queue)
      return Unavailable("the queue is full (" + std::to_string(waiting) + " requests waiting; --max-queue " +
                         std::to_string(opts_.max_queue) + ")");
    ++live_;
    inbox_.emplace_back(std::move(r), handle);
  }
  cv_.notify_all();
  return handle;
}

void Engine::Drain() {
  std::unique_lock<std::mutex> lock(mu_);
  draining_ = true;
  cv_.notify_all();
  drained_cv_.wait(lock, [this] { return live_ == 0; });
}

EngineStats Engine::Stats() const { return metrics_.Snapshot(); }

void Engine::Loop() {
  while (true) {
    TakeSubmissions();
    HandleCancellations();
    if (Step()) continue;
    std::unique_lock<std::mutex> lock(mu_);
    if (stop_) break;
    if (live_ == 0) drained_cv_.notify_all();
    // Idle: wait for a submission (cancellations of running work are seen at the next step).
    cv_.wait_for(lock, std::chrono::milliseconds(50), [this] { return !inbox_.empty() || stop_; });
    if (stop_) break;
  }
  // Stopped: whatever is still live ends with an error rather than silence.
  FailAll(Unavailable("the engine stopped"));
}

void Engine::TakeSubmissions() {
  std::deque<std::pair<Request, std::shared_ptr<RequestHandle>>> taken;
  {
    std::lock_guard<std::mutex> lock(mu_);
    taken.swap(inbox_);
  }
  for (auto& [request, handle] : taken) StartRequest(request, std::move(handle));
}

std::unique_ptr<Sequence> Engine::NewSequence(const std::shared_ptr<RequestState>& req,
                                              const std::vector<int32_t>& prompt, int index) {
  auto s = std::make_unique<Sequence>();
  s->id = next_id_++;
  s->request = req;
  s->index = index;
  s->tokens = prompt;
  s->prompt_len = static_cast<int64_t>(prompt.size());
  const int64_t room = context_ - s->prompt_len;
  s->max_new = req->params.max_tokens > 0 ? std::min(req->params.max_tokens, room) : room;
  SamplerOptions so = req->params.sampler;
  so.seed += static_cast<uint64_t>(index) * 0x9e3779b97f4a7c15ull;  // choices draw different streams
  s->sampler = std::make_unique<Sampler>(so, static_cast<int32_t>(model_.config().vocab_size));
  s->text = std::make_unique<TextOutput>(tokenizer_, req->params.skip_special_tokens, req->params.stop);
  if (req->params.grammar) {
    if (!grammar_vocab_) grammar_vocab_ = constrained::MakeTokenVocabulary(tokenizer_->TokenBytes(), model_.config().vocab_size);
    std::vector<int32_t> end_ids = req->params.stop_ids;
    if (!req->params.ignore_eos) end_ids.insert(end_ids.end(), model_.config().eos_ids.begin(), model_.config().eos_ids.end());
    s->constraint = std::make_unique<constrained::TokenConstraint>(MaskCacheFor(req->params.grammar), std::move(end_ids));
    s->constraint_active = req->params.grammar_trigger.empty();
  }
  return s;
}

void Engine::StartRequest(Request& r, std::shared_ptr<RequestHandle> handle) {
  auto req = std::make_shared<RequestState>();
  req->handle = std::move(handle);
  req->params = r.params;
  req->prompt_tokens = static_cast<int64_t>(r.prompt.size());
  req->open_choices = r.params.n;
  req->arrived = Clock::now();
  if (req->handle->cancelled()) {  // the client left before the engine saw it
    std::lock_guard<std::mutex> lock(mu_);
    --live_;
    return;
  }
  // Choice 0 runs the prompt; the others fork from it when its prompt is done.
  seqs_.push_back(NewSequence(req, r.prompt, 0));
  scheduler_.Enqueue(seqs_.back().get());
  metrics_.Update([&](EngineStats& s) {
    ++s.requests_started;
    s.prompt_tokens += req->prompt_tokens;
  });
}

void Engine::HandleCancellations() {
  std::vector<Sequence*> cancelled;
  for (const auto& s : seqs_)
    if (s->request->handle->cancelled()) cancelled.push_back(s.get());
  for (Sequence* s : cancelled) Finish(s, FinishReason::kCancelled, {});
}

}  // namespace fastgen::runtime

namespace fastgen::runtime {

TokenDelta Engine::MakeDelta(int32_t id, std::span<const float> logits, int top) const {
  TokenDelta d;
  d.id = id;
  if (top < 0) return d;
  // Log-probabilities of the model's own distribution (log-softmax of the raw logits), as the
  // OpenAI API reports them: before penalties, bias, temperature and truncation.
  const float max = *std::max_element(logits.begin(), logits.end());
  double sum = 0;
  for (float v : logits) sum += std::exp(static_cast<double>(v) - max);
  const double log_z = max + std::log(sum);
  d.logprob = TokenLogprob{id, static_cast<float>(logits[static_cast<size_t>(id)] - log_z)};
  if (top > 0) {
    std::vector<int32_t> idx(logits.size());
    std::iota(idx.begin(), idx.end(), 0);
    const size_t k = std::min(static_cast<size_t>(top), idx.size());
    std::partial_sort(idx.begin(), idx.begin() + static_cast<long>(k), idx.end(), [&](int32_t a, int32_t b) {
      return logits[static_cast<size_t>(a)] > logits[static_cast<size_t>(b)] ||
             (logits[static_cast<size_t>(a)] == logits[static_cast<size_t>(b)] && a < b);
    });
    for (size_t i = 0; i < k; ++i)
      d.top.push_back({idx[i], static_cast<float>(logits[static_cast<size_t>(idx[i])] - log_z)});
  }
  return d;
}

void Engine::Finish(Sequence* s, FinishReason reason, std::string tail) {
  RequestState& req = *s->request;
  if (reason != FinishReason::kCancelled) {
    Event e;
    e.kind = Event::Kind::kFinish;
    e.index = s->index;
    e.text = std::move(tail) + s->text->Flush();
    e.finish = reason;
    req.handle->Push(std::move(e));
  }
  scheduler_.Drop(s);
  // A request cancelled before its prompt finished has no other choices yet: it is over.
  req.open_choices = req.forked ? req.open_choices - 1 : 0;
  UpdateGauges();
  if (req.open_choices == 0) {
    Event done;
    done.kind = Event::Kind::kDone;
    done.usage = {req.prompt_tokens, req.cached_prompt_tokens, req.completion_tokens};
    done.first_token_seconds = std::max(0.0, req.first_token_seconds);
    req.handle->Push(std::move(done));
    metrics_.Update([&](EngineStats& st) {
      ++st.requests_finished;
      st.cached_prompt_tokens += req.cached_prompt_tokens;
    });
    std::lock_guard<std::mutex> lock(mu_);
    --live_;
  }
  std::erase_if(seqs_, [s](const std::unique_ptr<Sequence>& p) { return p.get() == s; });
}

void Engine::FailAll(const Status& status) {
  std::vector<std::shared_ptr<RequestState>> reqs;
  for (const auto& s : seqs_) {
    if (std::find(reqs.begin(), reqs.end(), s->request) == reqs.end()) reqs.push_back(s->request);
    scheduler_.Drop(s.get());
  }
  seqs_.clear();
  for (const auto& r : reqs) {
    Event e;
    e.kind = Event::Kind::kError;
    e.error = status;
    r->handle->Push(std::move(e));
  }
  std::deque<std::pair<Request, std::shared_ptr<RequestHandle>>> left;
  {
    std::lock_guard<std::mutex> lock(mu_);
    left.swap(inbox_);
    live_ -= static_cast<int>(reqs.size() + left.size());
  }
  for (auto& [request, handle] : left) {
    Event e;
    e.kind = Event::Kind::kError;
    e.error = status;
    handle->Push(std::move(e));
  }
  drained_cv_.notify_all();
}

void Engine::Emit(Sequence* s, std::span<const float> rows, std::span<const int32_t> draft) {
  RequestState& req = *s->request;
  const auto vocab = static_cast<size_t>(model_.config().vocab_size);
  const int top = req.params.top_logprobs;
  Event e;
  e.kind = Event::Kind::kDelta;
  e.index = s->index;
  FinishReason finish = FinishReason::kNone;
  const auto now = Clock::now();
  int emitted = 0;
  // Row i holds the distribution after draft[i - 1] (row 0: after the last committed token). A
  // drafted token is kept when the token sampled at its position equals it: each token is drawn
  // exactly as plain decoding draws it, so the output is plain decoding's, greedy or sampled.
  for (size_t i = 0; i <= draft.size(); ++i) {
    const std::span<const float> logits = rows.subspan(i * vocab, vocab);
    int32_t id;
    if (s->constraint && s->constraint_active) {
      auto next = SampleConstrained(*s->sampler, *s->constraint, logits, s->tokens, &allowed_);
      if (!next.ok()) {
        // Nothing in the vocabulary continues the grammar here: end the choice where it stands.
        Warn("request choice " + std::to_string(s->index) + ": " + next.status().message());
        finish = FinishReason::kStop;
        break;
      }
      id = *next;
    } else {
      id = s->sampler->Sample(logits, s->tokens);
    }
    s->tokens.push_back(id);
    ++req.completion_tokens;
    ++emitted;
    TokenDelta d = MakeDelta(id, logits, top);
    bool stopped = false;
    d.text = s->text->Push(id, &stopped);
    e.text += d.text;
    e.tokens.push_back(std::move(d));
    const auto& p = req.params;
    const bool eos = !p.ignore_eos && std::find(model_.config().eos_ids.begin(), model_.config().eos_ids.end(), id) !=
                                          model_.config().eos_ids.end();
    if (s->constraint && !p.grammar_trigger.empty()) FollowTrigger(s, id);
    const bool grammar_done = s->constraint && p.grammar_trigger.empty() && s->constraint->Finished();
    if (stopped || eos || grammar_done || std::find(p.stop_ids.begin(), p.stop_ids.end(), id) != p.stop_ids.end()) {
      finish = FinishReason::kStop;
    } else if (s->generated() >= s->max_new || static_cast<int64_t>(s->tokens.size()) >= context_) {
      finish = FinishReason::kLength;
    }
    if (finish != FinishReason::kNone || i == draft.size() || id != draft[i]) break;
    ++s->computed;  // draft[i] matched: its keys and values, written by this pass, are valid
  }
  if (req.first_token_seconds < 0) {
    req.first_token_seconds = std::chrono::duration<double>(now - req.arrived).count();
    metrics_.Update([&](EngineStats& st) { st.time_to_first_token.Observe(req.first_token_seconds); });
  } else if (s->generated() > emitted) {
    const double gap = std::chrono::duration<double>(now - s->last_token_time).count() / emitted;
    metrics_.Update([&](EngineStats& st) {
      for (int i = 0; i < emitted; ++i) st.inter_token_latency.Observe(gap);
    });
  }
  s->last_token_time = now;
  metrics_.Update([&](EngineStats& st) {
    st.generated_tokens += emitted;
    if (!draft.empty()) {
      st.spec_drafted += static_cast<int64_t>(draft.size());
      st.spec_accepted += emitted - 1;
    }
  });
  req.handle->Push(std::move(e));
  if (finish != FinishReason::kNone) Finish(s, finish, {});
}

std::shared_ptr<constrained::GrammarMaskCache> Engine::MaskCacheFor(const std::shared_ptr<const constrained::Grammar>& g) {
  constexpr size_t kKept = 8;  // a cache can grow to tens of MB on a large vocabulary
  for (auto it = mask_caches_.begin(); it != mask_caches_.end(); ++it) {
    if (it->first == g) {
      mask_caches_.splice(mask_caches_.begin(), mask_caches_, it);
      return it->second;
    }
  }
  mask_caches_.emplace_front(g, std::make_shared<constrained::GrammarMaskCache>(g, grammar_vocab_));
  if (mask_caches_.size() > kKept) mask_caches_.pop_back();
  return mask_caches_.front().second;
}

void Engine::FollowTrigger(Sequence* s, int32_t id) {
  if (s->constraint_active) {
    // A complete use of the grammar (a whole call): free text again, watching for the next.
    if (s->constraint->Finished()) {
      s->constraint_active = false;
      s->trigger_tail.clear();
    }
    return;
  }
  const std::string& trigger = s->request->params.grammar_trigger;
  s->trigger_tail += grammar_vocab_->bytes(id);
  if (s->trigger_tail.size() > trigger.size()) s->trigger_tail.erase(0, s->trigger_tail.size() - trigger.size());
  if (s->trigger_tail == trigger) {
    s->constraint->Reset();
    s->constraint_active = true;
  }
}

void Engine::TrimDraftToGrammar(Sequence* s, speculative::Draft* draft) {
  // Verification would reject a token the grammar forbids anyway (the sampled token never equals
  // it); cutting the draft there saves computing its rows.
  const constrained::MatchState start = s->constraint->state();
  size_t keep = 0;
  while (keep < draft->size() && s->constraint->Accept(draft->tokens[keep])) ++keep;
  s->constraint->Restore(start);
  draft->tokens.resize(keep);
  draft->parents.resize(keep);
  if (draft->q.size() > keep) draft->q.resize(keep);
}

void Engine::ProposeWithDraftModel(Sequence* s, int64_t length, speculative::Draft* d) {
  if (!s->drafter) {
    speculative::DraftModelOptions o;
    o.initial_length = o.max_length = static_cast<int32_t>(length);
    o.adaptive_length = false;
    s->drafter = std::make_unique<speculative::DraftModelProposer>(*opts_.draft, o);
    const speculative::GenerationSetup setup{s->tokens, s->request->params.sampler, context_,
                                             static_cast<int32_t>(model_.config().vocab_size), nullptr, nullptr};
    if (!s->drafter->Start(setup).ok() || !s->drafter->Prefill(s->tokens).ok()) {
      s->drafter.reset();
      return;
    }
  }
  // The proposer catches its cache up with the context (what was kept) and drafts a chain.
  const speculative::ProposeRequest pr{s->tokens, static_cast<int32_t>(length)};
  if (!s->drafter->Propose(pr, d).ok()) {
    d->Clear();
    s->drafter.reset();
  }
}

bool Engine::Step() {
  std::vector<Sequence*> preempted;
  const std::vector<ScheduledWork> work = scheduler_.Schedule(&preempted);
  {
    std::lock_guard<std::mutex> lock(mu_);
    waiting_ = scheduler_.waiting();
  }
  if (work.empty()) return false;
  int decoding = 0;
  for (const ScheduledWork& w : work) decoding += w.decode ? 1 : 0;
  const bool speculate = opts_.spec_max_running > 0 && decoding <= opts_.spec_max_running;

  // The batch: each item's tokens (and a draft, while few sequences decode) in a buffer of
  // the step, so the spans stay put.
  std::vector<std::vector<int32_t>> tokens(work.size());
  std::vector<std::vector<int32_t>> drafts(work.size());
  std::vector<BatchSequence> batch(work.size());
  std::vector<uint8_t> eligible(work.size(), 0);  // sequences speculation was considered for
  speculative::PromptLookupProposer lookup({3, 1, opts_.spec_draft, 1});
  const auto step_start = Clock::now();
  for (size_t i = 0; i < work.size(); ++i) {
    Sequence* s = work[i].seq;
    const auto from = s->tokens.begin() + s->computed;
    tokens[i].assign(from, from + work[i].count);
    const bool reaches_end = s->computed + work[i].count == static_cast<int64_t>(s->tokens.size());
    if (speculate && work[i].decode && reaches_end && work[i].count == 1) {
      // Room: the choice's token budget and the context, less the token this step samples anyway.
      const int64_t room = std::min(s->max_new - s->generated(), context_ - static_cast<int64_t>(s->tokens.size())) - 1;
      eligible[i] = room > 0;
      if (room > 0 && s->spec_control.Speculate()) {
        speculative::Draft d;
        const speculative::ProposeRequest pr{s->tokens, static_cast<int32_t>(std::min<int64_t>(room, opts_.spec_draft))};
        if (!lookup.Propose(pr, &d).ok() || !d.IsChain()) d.Clear();
        // Prompt lookup first (free), the draft model where the context has nothing to copy.
        if (d.empty() && opts_.draft) ProposeWithDraftModel(s, std::min<int64_t>(room, opts_.draft_length), &d);
        if (s->constraint && s->constraint_active && !d.empty() && d.IsChain()) TrimDraftToGrammar(s, &d);
        if (!d.empty() && d.IsChain() && scheduler_.ReserveSlots(s, s->computed + 1 + static_cast<int64_t>(d.size()))) {
          drafts[i] = d.tokens;
          tokens[i].insert(tokens[i].end(), d.tokens.begin(), d.tokens.end());
        }
      }
    } else if (s->drafter && !speculate) {
      s->drafter.reset();  // the batch grew past speculation: give the draft cache back
    }
    BatchSequence& b = batch[i];
    b.tokens = tokens[i];
    b.start = s->computed;
    b.blocks = s->blocks;
    b.decode = work[i].decode;
    // Logits only where the known tokens end: the prompt's last token, the next decoding step,
    // or the end of a preempted sequence's recomputation (its prompt's end is not: the tokens
    // it generated from there are already known).
    b.outputs = reaches_end ? static_cast<int64_t>(1 + drafts[i].size()) : 0;
  }
  const Status st = model_.ForwardBatch(batch, pool_, &logits_);
  if (!st.ok()) {
    Warn("forward pass failed: " + st.message());
    FailAll(Internal("the forward pass failed: " + st.message()));
    return true;
  }
  const auto vocab = static_cast<size_t>(model_.config().vocab_size);
  const double step_seconds = std::chrono::duration<double>(Clock::now() - step_start).count();
  size_t row = 0;
  for (size_t i = 0; i < work.size(); ++i) {
    Sequence* s = work[i].seq;
    s->computed += work[i].count;
    const size_t outputs = static_cast<size_t>(batch[i].outputs);
    const std::span<const float> rows(logits_.data() + row * vocab, outputs * vocab);
    row += outputs;
    if (!work[i].decode) scheduler_.PublishPromptBlocks(s);
    if (outputs == 0) continue;
    if (s->generated() == 0) {
      // The prompt is done: the request's other choices start from the same blocks and logits.
      std::vector<Sequence*> choices = {s};
      RequestState& req = *s->request;
      if (!req.forked) {
        req.forked = true;
        for (int c = 1; c < req.params.n; ++c) {
          seqs_.push_back(NewSequence(s->request, s->tokens, c));
          seqs_.back()->forked = true;
          scheduler_.Fork(s, seqs_.back().get());
          choices.push_back(seqs_.back().get());
        }
      }
      for (Sequence* c : choices) Emit(c, rows, {});
    } else {
      const int64_t before = static_cast<int64_t>(s->tokens.size());
      const bool drafted = !drafts[i].empty();
      Sequence* alive = s;
      Emit(s, rows, drafts[i]);  // may finish s and free it
      if (eligible[i] && std::any_of(seqs_.begin(), seqs_.end(), [alive](const auto& p) { return p.get() == alive; }))
        alive->spec_control.Record(drafted, static_cast<int64_t>(alive->tokens.size()) - before, step_seconds);
    }
  }
  metrics_.Update([&](EngineStats& m) { ++m.steps; });
  UpdateGauges();
  return true;
}

void Engine::UpdateGauges() {
  metrics_.Update([&](EngineStats& m) {
    m.running = scheduler_.running();
    m.waiting = scheduler_.waiting();
    m.kv_blocks_used = pool_.in_use();
    m.kv_blocks_cached = pool_.cached();
    m.prefix_block_hits = pool_.hits();
    m.prefix_block_misses = pool_.misses();
    m.preemptions = scheduler_.preemptions();
  });
}

}  // namespace fastgen::runtime
