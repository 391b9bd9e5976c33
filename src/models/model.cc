#include "models/model.h"

#include "models/gpt2.h"
#include "models/llama.h"

namespace fastgen {

Status Model::Forward(std::span<const int32_t> tokens, KvCache& kv, LogitsMode mode,
                      std::vector<float>* logits) {
  const ModelConfig& c = config();
  if (tokens.empty()) return InvalidArgument("forward pass over an empty batch");
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] < 0 || tokens[i] >= c.vocab_size)
      return InvalidArgument("token id " + std::to_string(tokens[i]) + " at index " +
                             std::to_string(i) + " is outside the vocabulary [0, " +
                             std::to_string(c.vocab_size) + ")");
  }
  const int64_t n = static_cast<int64_t>(tokens.size());
  if (kv.length() + n > kv.capacity())
    return InvalidArgument(std::to_string(kv.length() + n) + " tokens exceed the context size of " +
                           std::to_string(kv.capacity()));
  if (c.arch == Arch::kGpt2 && kv.length() + n > c.max_context)
    return InvalidArgument(std::to_string(kv.length() + n) +
                           " tokens exceed GPT-2's learned positions (" +
                           std::to_string(c.max_context) + ")");
  const KvCacheShape& s = kv.shape();
  if (s.n_layer != c.n_layer || s.n_kv_head != c.n_kv_head || s.head_dim != c.head_dim)
    return InvalidArgument("KV cache was made for a different model");
  ForwardImpl(tokens, kv, mode, logits);
  return Status::Ok();
}

Expected<KvCache> Model::NewKvCache(int64_t capacity) const {
  const ModelConfig& c = config();
  return KvCache::Create({c.n_layer, c.n_kv_head, c.head_dim, capacity});
}

Expected<std::unique_ptr<Model>> LoadModel(const std::string& path, ThreadPool* pool,
                                           const ModelOptions& options) {
  FG_ASSIGN_OR_RETURN(auto ckpt, OpenCheckpoint(path, options.checkpoint));
  if (ckpt->config.arch == Arch::kGpt2) return CreateGpt2Model(std::move(ckpt), pool);
  return CreateLlamaFamilyModel(std::move(ckpt), pool);
}

}  // namespace fastgen
