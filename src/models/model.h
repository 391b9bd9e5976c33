// The public model interface: load a checkpoint, run a batch of tokens through the network
// against a KV cache, get logits. Speculative decoding and the generation loop are built on
// this interface only.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/thread_pool.h"
#include "io/checkpoint.h"
#include "kv/kv_cache.h"

namespace fastgen {

enum class LogitsMode {
  kLast,  // logits of the last token only: [1, vocab]
  kAll,   // logits of every token of the batch: [n, vocab]
};

class Model {
 public:
  virtual ~Model() = default;

  const ModelConfig& config() const { return ckpt_->config; }
  const Checkpoint& checkpoint() const { return *ckpt_; }
  ThreadPool& pool() const { return *pool_; }

  // Runs `tokens` at positions kv.length() .. kv.length() + n - 1 in one batched pass (prompt
  // prefill or a single decode step), appends their keys and values to `kv`, and writes logits
  // to `logits` (resized). Fails without touching the cache on an id outside the vocabulary
  // or a batch that would overflow the cache.
  Status Forward(std::span<const int32_t> tokens, KvCache& kv, LogitsMode mode,
                 std::vector<float>* logits);

  // A cache for one sequence of up to `capacity` positions (clamped to nothing; the caller
  // decides the context size, the model's own limit is config().max_context).
  Expected<KvCache> NewKvCache(int64_t capacity) const;

 protected:
  Model(std::unique_ptr<Checkpoint> ckpt, ThreadPool* pool) : ckpt_(std::move(ckpt)), pool_(pool) {}
  // Architecture-specific forward pass over validated input.
  virtual void ForwardImpl(std::span<const int32_t> tokens, KvCache& kv, LogitsMode mode,
                           std::vector<float>* logits) = 0;

  std::unique_ptr<Checkpoint> ckpt_;
  ThreadPool* pool_;
};

struct ModelOptions {
  CheckpointOptions checkpoint;
};

// Opens `path` (model directory or GGUF file) and builds the model its config names.
Expected<std::unique_ptr<Model>> LoadModel(const std::string& path, ThreadPool* pool,
                                           const ModelOptions& options = {});

}  // namespace fastgen
