// The serving runtime: one model, one paged KV pool, many requests at once.
//
// Submit() queues a request and returns its handle at once; one engine thread runs the loop:
// admit and schedule (Scheduler), run one ragged-batch forward pass over every scheduled token
// of every sequence (Model::ForwardBatch: each matmul reads the weights once for all of them),
// sample each sequence's next tokens, and push text deltas to the handles. Speculative decoding
// (prompt lookup) runs while few sequences decode, where a verification pass costs about what a
// plain step does; it gives the same tokens as plain decoding, sampled or greedy.
//
// A request's tokens do not depend on what else runs: the roles fix every token's kernels and
// attention splits each sequence at fixed slots (Model::ForwardBatch), prefix-cached blocks hold
// prompt-role keys and values only, and a preempted sequence is recomputed in the roles it was
// first computed in. So a greedy request gives the same tokens alone, batched with 15 others in
// any order, after a preemption, or from `fastgen run`.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <list>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "decoding/speculative/draft_model.h"
#include "kv/block_pool.h"
#include "models/model.h"
#include "runtime/metrics.h"
#include "runtime/request.h"
#include "runtime/scheduler.h"
#include "runtime/sequence.h"
#include "tokenizer/tokenizer.h"

namespace fastgen::runtime {

struct EngineOptions {
  int64_t kv_tokens = 0;         // KV slots in all (-c); 0: max_running full contexts, at most 64 Ki
  int64_t block_tokens = 16;
  int max_running = 16;          // sequences decoding at once (--parallel)
  int64_t step_tokens = 512;     // tokens per forward pass
  int max_queue = 256;           // requests waiting beyond which Submit says Unavailable
  bool prefix_cache = true;
  int spec_max_running = 2;      // prompt lookup while at most this many sequences decode (0: never)
  int spec_draft = 8;            // drafted tokens per sequence and step (prompt lookup)
  int max_n = 16;                // choices per request
  // A draft model sharing the target's tokenizer drafts (chains of draft_length) where prompt
  // lookup finds nothing, for the sequences speculation runs on; each keeps its own dense cache
  // of the draft model while it speculates. Null: prompt lookup only. It must outlive the engine.
  Model* draft = nullptr;
  int draft_length = 4;
};

class Engine {
 public:
  // The model must outlive the engine; `tokenizer` may be null (ids only: no text, no stop
  // strings). Starts the engine thread.
  static Expected<std::unique_ptr<Engine>> Create(Model& model, const Tokenizer* tokenizer, EngineOptions options);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Validates and queues a request. InvalidArgument (naming the parameter) for a request that can
  // never run here; Unavailable when the queue is full or the engine is draining.
  Expected<std::shared_ptr<RequestHandle>> Submit(Request request);
  // Stops taking requests and returns when every submitted one has finished.
  void Drain();

  EngineStats Stats() const;
  const EngineOptions& options() const { return opts_; }
  int64_t context() const { return context_; }  // tokens one sequence may hold (prompt + generated)
  const Model& model() const { return model_; }

 private:
  Engine(Model& model, const Tokenizer* tokenizer, EngineOptions options, KvBlockPool pool);
  void Loop();
  // One step: schedule, forward, sample. False when there was nothing to do.
  bool Step();
  void TakeSubmissions();
  void HandleCancellations();
  void StartRequest(Request& r, std::shared_ptr<RequestHandle> handle);
  std::unique_ptr<Sequence> NewSequence(const std::shared_ptr<RequestState>& req, const std::vector<int32_t>& prompt,
                                        int index);
  // Samples and emits tokens of `s` from logits rows (one, or one per drafted token).
  void Emit(Sequence* s, std::span<const float> rows, std::span<const int32_t> draft);
  void Finish(Sequence* s, FinishReason reason, std::string tail);
  void FailAll(const Status& status);
  // A lazy grammar (GenerationParams::grammar_trigger) after token `id`: switched on when the
  // text ends with the trigger, off again when the grammar is complete.
  void FollowTrigger(Sequence* s, int32_t id);
  // Cuts a draft at its first token the sequence's grammar does not allow.
  void TrimDraftToGrammar(Sequence* s, speculative::Draft* draft);  // a chain
  // A chain of up to `length` tokens from the draft model for `s` (empty when it has none).
  void ProposeWithDraftModel(Sequence* s, int64_t length, speculative::Draft* d);
  void UpdateGauges();  // running, waiting, KV blocks, prefix cache into the metrics
  TokenDelta MakeDelta(int32_t id, std::span<const float> logits, int top) const;

  Model& model_;
  const Tokenizer* tokenizer_;
  EngineOptions opts_;
  KvBlockPool pool_;
  Scheduler scheduler_;
  int64_t context_ = 0;
  uint64_t next_id_ = 0;

  // Submissions cross from client threads to the engine thread here.
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<Request, std::shared_ptr<RequestHandle>>> inbox_;
  int waiting_ = 0;         // sequences waiting for admission (the engine thread's count, for --max-queue)
  int live_ = 0;            // requests submitted and not finished
  bool draining_ = false;
  bool stop_ = false;
  std::condition_variable drained_cv_;

  // Engine-thread state.
  std::vector<std::unique_ptr<Sequence>> seqs_;  // every live sequence
  std::vector<float> logits_;
  std::vector<int32_t> scratch_tokens_;
  // The vocabulary as grammars see it, built at the first request with a grammar (it reads
  // every token's bytes once), and the mask scratch.
  std::shared_ptr<const constrained::TokenVocabulary> grammar_vocab_;
  std::vector<uint64_t> allowed_;
  // Mask caches of the grammars used lately, most recent first: requests with the same Grammar
  // (the server compiles each distinct schema once) find their masks computed.
  std::list<std::pair<std::shared_ptr<const constrained::Grammar>, std::shared_ptr<constrained::GrammarMaskCache>>>
      mask_caches_;
  std::shared_ptr<constrained::GrammarMaskCache> MaskCacheFor(const std::shared_ptr<const constrained::Grammar>& g);
  MetricsRecorder metrics_;

  std::thread thread_;
};

}  // namespace fastgen::runtime
