#include "runtime/scheduler.h"

#include <algorithm>

namespace fastgen::runtime {
namespace {

void InsertById(std::deque<Sequence*>& q, Sequence* s) {
  q.insert(std::upper_bound(q.begin(), q.end(), s, [](const Sequence* a, const Sequence* b) { return a->id < b->id; }),
           s);
}

}  // namespace

void Scheduler::Enqueue(Sequence* s) { InsertById(waiting_, s); }

void Scheduler::ReleaseBlocks(Sequence* s) {
  for (int32_t b : s->blocks) pool_.Release(b);
  s->blocks.clear();
}

void Scheduler::Drop(Sequence* s) {
  ReleaseBlocks(s);
  std::erase(running_, s);
  std::erase(waiting_, s);
}

void Scheduler::Preempt(Sequence* s) {
  ReleaseBlocks(s);
  s->computed = 0;
  s->prompt_hashes.clear();
  ++s->preemptions;
  ++preemptions_;
  std::erase(running_, s);
  InsertById(waiting_, s);
}

bool Scheduler::Reserve(Sequence* s, int64_t from, int64_t slots) {
  const size_t had = s->blocks.size();
  while (static_cast<int64_t>(s->blocks.size()) < BlocksFor(slots)) {
    const auto b = pool_.Allocate();
    if (!b) {
      for (size_t i = had; i < s->blocks.size(); ++i) pool_.Release(s->blocks[i]);
      s->blocks.resize(had);
      return false;
    }
    s->blocks.push_back(*b);
  }
  // Copy-on-write: a block shared with another sequence (a sibling choice, a cached prefix) is
  // never written; the writer takes a copy first.
  const int64_t bt = pool_.block_tokens();
  for (int64_t blk = from / bt; blk < BlocksFor(slots); ++blk) {
    int32_t& b = s->blocks[static_cast<size_t>(blk)];
    if (pool_.refcount(b) <= 1) continue;
    const auto copy = pool_.Allocate();
    if (!copy) return false;
    pool_.CopyBlock(b, *copy);
    pool_.Release(b);
    b = *copy;
  }
  return true;
}

bool Scheduler::ReserveSlots(Sequence* s, int64_t slots) { return Reserve(s, s->computed, slots); }

void Scheduler::Admit(Sequence* s) {
  // The prefix cache: full blocks of prompt tokens someone computed before, in order until the
  // first miss. The last prompt token is always computed (its logits start the generation).
  const int64_t bt = pool_.block_tokens();
  uint64_t prev = 0;
  s->prompt_hashes.clear();
  if (opts_.prefix_cache) {
    for (int64_t blk = 0; (blk + 1) * bt <= s->prompt_len - 1; ++blk) {
      const uint64_t h = HashKvBlock(prev, std::span<const int32_t>(s->tokens.data() + blk * bt, static_cast<size_t>(bt)));
      const auto hit = pool_.Lookup(h);
      if (!hit) break;
      s->blocks.push_back(*hit);
      s->prompt_hashes.push_back(h);
      prev = h;
    }
  }
  s->computed = static_cast<int64_t>(s->blocks.size()) * bt;
  if (s->preemptions == 0 && !s->forked) s->request->cached_prompt_tokens += s->computed;
  running_.push_back(s);
  std::sort(running_.begin(), running_.end(), [](const Sequence* a, const Sequence* b) { return a->id < b->id; });
}

void Scheduler::PublishPromptBlocks(Sequence* s) {
  if (!opts_.prefix_cache) return;
  const int64_t bt = pool_.block_tokens();
  // Only blocks made entirely of prompt tokens: those computed in the prompt role, which any
  // later request with the same prefix computes the same bits for (generated tokens are
  // computed in the decode role, which a later prompt containing them would not match).
  const int64_t full = std::min(s->computed, s->prompt_len) / bt;
  while (static_cast<int64_t>(s->prompt_hashes.size()) < full) {
    const size_t blk = s->prompt_hashes.size();
    const uint64_t prev = blk == 0 ? 0 : s->prompt_hashes.back();
    const uint64_t h = HashKvBlock(prev, std::span<const int32_t>(s->tokens.data() + blk * bt, static_cast<size_t>(bt)));
    pool_.Publish(s->blocks[blk], h);
    s->prompt_hashes.push_back(h);
  }
}

void Scheduler::Fork(Sequence* parent, Sequence* child) {
  child->blocks = parent->blocks;
  for (int32_t b : child->blocks) pool_.Retain(b);
  child->computed = parent->computed;
  child->prompt_hashes = parent->prompt_hashes;
  running_.push_back(child);
  std::sort(running_.begin(), running_.end(), [](const Sequence* a, const Sequence* b) { return a->id < b->id; });
}

std::vector<ScheduledWork> Scheduler::Schedule(std::vector<Sequence*>* preempted) {
  std::vector<ScheduledWork> work;
  int64_t budget = opts_.step_tokens;
  // 1. Decoding sequences, oldest first: their pending tokens always run (a recompute after a
  //    preemption runs in budget-sized pieces).
  for (size_t i = 0; i < running_.size(); ++i) {
    Sequence* s = running_[i];
    if (!s->prompt_done()) continue;
    const int64_t pending = static_cast<int64_t>(s->tokens.size()) - s->computed;
    if (pending <= 0) continue;
    const int64_t count = std::min(pending, std::max<int64_t>(1, budget));
    bool ok = Reserve(s, s->computed, s->computed + count);
    // Out of blocks: preempt the newest running sequences until this one fits.
    while (!ok && running_.back() != s) {
      preempted->push_back(running_.back());
      Preempt(running_.back());
      ok = Reserve(s, s->computed, s->computed + count);
    }
    if (!ok) {  // it is the newest itself
      preempted->push_back(s);
      Preempt(s);
      break;
    }
    work.push_back({s, count, true});
    budget -= count;
  }
  // 2. Prompts being prefilled, oldest first, in chunks under the budget and the free blocks
  //    (no preemption for a prompt: it waits for the next step instead).
  for (Sequence* s : running_) {
    if (s->prompt_done() || budget <= 0) continue;
    int64_t count = std::min(s->prompt_len - s->computed, budget);
    // As many slots as the free blocks allow.
    const int64_t have = static_cast<int64_t>(s->blocks.size()) * pool_.block_tokens();
    count = std::min(count, have + pool_.available() * pool_.block_tokens() - s->computed);
    if (count <= 0 || !Reserve(s, s->computed, s->computed + count)) continue;
    work.push_back({s, count, false});
    budget -= count;
  }
  // 3. Admissions, strictly in arrival order.
  while (!waiting_.empty() && budget > 0 && running() < opts_.max_running) {
    Sequence* s = waiting_.front();
    // A preempted sequence also recomputes what it generated; a fresh one only its prompt.
    const int64_t need = BlocksFor(static_cast<int64_t>(s->tokens.size()) + 1);
    if (need > pool_.available()) break;
    waiting_.pop_front();
    Admit(s);
    if (s->prompt_done()) continue;  // cannot happen: the last prompt token is never cached
    const int64_t count = std::min(s->prompt_len - s->computed, budget);
    if (!Reserve(s, s->computed, s->computed + count)) continue;  // its blocks were counted as free
    work.push_back({s, count, false});
    budget -= count;
  }
  return work;
}

}  // namespace fastgen::runtime
