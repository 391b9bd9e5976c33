// Generation under KV eviction: the window rule without sinks decodes what a sliding-window
// model of the same file decodes (each token sees the budget before it, at its text position),
// long prompts go through in pieces, the context limit counts positions not cache slots, and
// H2O / Keyformer generate past their budget deterministically.
#include <gtest/gtest.h>

#include <vector>

#include "decoding/generate.h"
#include "test_util.h"

namespace fastgen {
namespace {

using testing::SharedPath;

ThreadPool& Pool() {
  static ThreadPool pool(2);
  return pool;
}

EvictionPolicy Policy(EvictionKind kind, int64_t budget, int64_t sinks = -1) {
  EvictionPolicy p;
  p.kind = kind;
  p.budget = budget;
  p.sinks = sinks;
  p.horizon = 64;
  auto r = ResolvePolicy(p);
  EXPECT_TRUE(r.ok()) << r.status().message();
  return *r;
}

GenerateOptions Greedy(int64_t n) {
  GenerateOptions o;
  o.max_new_tokens = n;
  o.ignore_eos = true;
  o.sampler.temperature = 0;
  return o;
}

TEST(GenerateEviction, WindowWithoutSinksDecodesLikeASlidingWindowModel) {
  const int64_t budget = 12;
  auto model = LoadModel(SharedPath("gguf/llama.f32.gguf"), &Pool());
  ModelOptions wo;
  wo.checkpoint.gguf_overrides["llama.attention.sliding_window"] = std::to_string(budget + 1);
  auto windowed = LoadModel(SharedPath("gguf/llama.f32.gguf"), &Pool(), wo);
  ASSERT_TRUE(model.ok() && windowed.ok());
  const std::vector<int32_t> prompt = {1, 17, 99, 5, 42, 7, 8, 200, 31};  // within the budget
  auto kv_ref = (*windowed)->NewKvCache(64);
  auto ref = Generate(**windowed, *kv_ref, prompt, Greedy(40), nullptr);
  ASSERT_TRUE(ref.ok()) << ref.status().message();

  KvEvictor evictor(Policy(EvictionKind::kWindow, budget, 0), (*model)->config().n_layer,
                    (*model)->config().n_kv_head);
  GenerateOptions o = Greedy(40);
  o.evictor = &evictor;
  o.max_positions = 64;
  auto kv = (*model)->NewKvCache(budget + 1);  // the budget and the token decoded past it
  auto got = Generate(**model, *kv, prompt, o, nullptr);
  ASSERT_TRUE(got.ok()) << got.status().message();
  EXPECT_EQ(got->tokens, ref->tokens);
  EXPECT_EQ(kv->length(), budget);
  EXPECT_EQ(kv->length() + kv->evicted(), static_cast<int64_t>(prompt.size()) + 39);

  // Without eviction the same file decodes otherwise: the window matters.
  auto kv_full = (*model)->NewKvCache(64);
  auto full = Generate(**model, *kv_full, prompt, Greedy(40), nullptr);
  ASSERT_TRUE(full.ok());
  EXPECT_NE(full->tokens, got->tokens);
}

TEST(GenerateEviction, LongPromptsInPiecesAndPositionsBoundTheRun) {
  auto model = LoadModel(SharedPath("gguf/llama.f32.gguf"), &Pool());
  ASSERT_TRUE(model.ok());
  std::vector<int32_t> prompt;
  for (int i = 0; i < 50; ++i) prompt.push_back(1 + (i * 37) % 250);
  for (EvictionKind kind : {EvictionKind::kWindow, EvictionKind::kH2O, EvictionKind::kKeyformer}) {
    std::vector<int32_t> first;
    for (int run = 0; run < 2; ++run) {
      KvEvictor evictor(Policy(kind, 16), (*model)->config().n_layer, (*model)->config().n_kv_head, &Pool());
      GenerateOptions o = Greedy(100);
      o.evictor = &evictor;
      o.max_positions = 80;  // 50 prompt + 30 generated
      std::vector<float> prompt_logits;
      o.prompt_logits = &prompt_logits;
      auto kv = (*model)->NewKvCache(16 + 8);  // the prompt goes through 8 tokens at a time
      auto r = Generate(**model, *kv, prompt, o, nullptr);
      ASSERT_TRUE(r.ok()) << Name(kind) << ": " << r.status().message();
      EXPECT_EQ(r->stop_reason, StopReason::kContextFull) << Name(kind);
      EXPECT_EQ(r->tokens.size(), 31u) << Name(kind);  // the last sampled after position 79
      EXPECT_EQ(prompt_logits.size(), prompt.size() * static_cast<size_t>((*model)->config().vocab_size));
      EXPECT_LE(kv->length(), 16);
      if (run == 0) first = r->tokens;
      else EXPECT_EQ(r->tokens, first) << Name(kind);
    }
  }
  KvEvictor evictor(Policy(EvictionKind::kH2O, 16), (*model)->config().n_layer, (*model)->config().n_kv_head);
  GenerateOptions o = Greedy(4);
  o.evictor = &evictor;
  auto small = (*model)->NewKvCache(16);  // no room past the budget
  EXPECT_FALSE(Generate(**model, *small, prompt, o, nullptr).ok());
  auto roomy = (*model)->NewKvCache(24);
  EXPECT_FALSE(Generate(**model, *roomy, prompt, o, nullptr).ok());  // no context size given
  o.max_positions = 100;
  EXPECT_FALSE(Generate(**model, *small, prompt, o, nullptr).ok());
  EXPECT_TRUE(Generate(**model, *roomy, prompt, o, nullptr).ok());
}

}  // namespace
}  // namespace fastgen
