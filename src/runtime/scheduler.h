// Iteration-level continuous batching: which tokens of which sequences go into the next forward
// pass, and the KV blocks they need.
//
// Every step takes, oldest sequence first (FCFS):
//   1. each running sequence whose prompt is done: its pending tokens (one, or the tokens a
//      preemption left to recompute), in the decode role;
//   2. chunks of prompts still being prefilled, under what is left of the per-step token budget;
//   3. waiting sequences, admitted in arrival order while the budget, the running limit and the
//      free KV blocks allow (a prompt is admitted when blocks for all of it are free), each
//      starting with the blocks the prefix cache already holds for it.
// When a running sequence needs a block and none is left, the newest running sequence is
// preempted: its blocks are freed and it waits again, to be recomputed from its tokens when
// blocks free up (the prompt in the prompt role, its generated tokens in the decode role, so the
// recomputed keys and values are the same bits). Not thread-safe: the engine thread owns it.
#pragma once

#include <cstdint>
#include <deque>
#include <vector>

#include "kv/block_pool.h"
#include "runtime/sequence.h"

namespace fastgen::runtime {

struct SchedulerOptions {
  int max_running = 16;        // sequences decoding at once (--parallel)
  int64_t step_tokens = 512;   // tokens per forward pass (decode tokens always fit; prompts chunk to the rest)
  bool prefix_cache = true;    // share full prompt blocks between requests
};

struct ScheduledWork {
  Sequence* seq = nullptr;
  int64_t count = 0;   // tokens of seq->tokens from seq->computed
  bool decode = true;  // role: decode (generated tokens) or prompt
};

class Scheduler {
 public:
  Scheduler(KvBlockPool& pool, SchedulerOptions options) : pool_(pool), opts_(options) {}

  // A new sequence, or one coming back: it waits for admission in arrival (id) order.
  void Enqueue(Sequence* s);
  // A finished or cancelled sequence: its blocks are released now, wherever it is.
  void Drop(Sequence* s);
  // This step's work (see the file comment), with blocks reserved and shared blocks about to be
  // written copied; sequences preempted to make room are appended to *preempted.
  std::vector<ScheduledWork> Schedule(std::vector<Sequence*>* preempted);
  // Blocks for `slots` slots of a running sequence (a speculative draft past its scheduled
  // tokens), only if they are free without preempting anyone.
  bool ReserveSlots(Sequence* s, int64_t slots);
  // Publishes the full prompt blocks `s` computed (after the forward pass advanced computed).
  void PublishPromptBlocks(Sequence* s);
  // `child` (a new choice of the same request, its tokens the parent's prompt) shares every
  // block of `parent` and starts running beside it.
  void Fork(Sequence* parent, Sequence* child);

  int running() const { return static_cast<int>(running_.size()); }
  int waiting() const { return static_cast<int>(waiting_.size()); }
  int64_t preemptions() const { return preemptions_; }

 private:
  int64_t BlocksFor(int64_t slots) const { return (slots + pool_.block_tokens() - 1) / pool_.block_tokens(); }
  // Grows s's table to cover `slots` and makes the blocks slots [from, slots) fall in private;
  // false when the pool ran out (s keeps what it had).
  bool Reserve(Sequence* s, int64_t from, int64_t slots);
  void Preempt(Sequence* s);
  void Admit(Sequence* s);  // takes cached prefix blocks, joins running_
  void ReleaseBlocks(Sequence* s);

  KvBlockPool& pool_;
  SchedulerOptions opts_;
  std::vector<Sequence*> running_;  // by id
  std::deque<Sequence*> waiting_;   // by id
  int64_t preemptions_ = 0;
};

}  // namespace fastgen::runtime
