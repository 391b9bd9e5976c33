// Staircase KV quantization in the model: each step's logits against a direct implementation
// of the rule (an f32 cache whose rows are re-rounded to the type their age gives them before
// every query), prefill chunking and speculative decoding giving the same bits as decoding one
// token at a time, and the equal-type staircase equal to the plain cache.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <iostream>
#include <vector>

#include "decoding/generate.h"
#include "decoding/speculative/prompt_lookup.h"
#include "decoding/speculative/speculative.h"
#include "kernels/reference/dequant.h"
#include "kv/staircase.h"
#include "test_util.h"

namespace fastgen {
namespace {

using testing::SharedPath;

// Tokens decoded per check: the rings (a few hundred slots here) wrap either way. Fewer under
// the sanitizers, whose run looks for memory errors (the optimized run checks the rest).
#ifdef FASTGEN_SANITIZED
constexpr int kLong = 260;
#else
constexpr int kLong = 420;
#endif

ThreadPool& Pool() {
  static ThreadPool pool(2);
  return pool;
}

std::unique_ptr<Model> Target() {
  auto m = LoadModel(SharedPath("models/fg-target"), &Pool());
  EXPECT_TRUE(m.ok()) << m.status().message();
  return m.ok() ? std::move(*m) : nullptr;
}

KvStaircase Spec(const std::string& text) {
  auto s = KvStaircase::Parse(text);
  EXPECT_TRUE(s.ok()) << s.status().message();
  return *s;
}

std::vector<int32_t> Tokens(int n, int mul = 131, int add = 17) {
  std::vector<int32_t> t;
  for (int i = 0; i < n; ++i) t.push_back(static_cast<int32_t>((i * mul + add) % 8000 + 1));
  return t;
}

// Logits of each token of `tokens`, decoded one at a time.
std::vector<float> StepByStep(Model& m, KvCache& kv, const std::vector<int32_t>& tokens) {
  std::vector<float> all, logits;
  for (int32_t t : tokens) {
    EXPECT_TRUE(m.Forward(std::vector<int32_t>{t}, kv, LogitsMode::kLast, &logits).ok());
    all.insert(all.end(), logits.begin(), logits.end());
  }
  return all;
}

// The rule, directly: before the query at position p, every earlier slot j of an f32 cache
// holds its key and value rounded to the type of the step its age puts it in (the query's own
// slot is step 0, f32 here, as in the staircase), from the float32 rows kept aside.
// With q4_0c as the last step, keys there are Q4_0 of key / σ times σ, σ the largest |key| of
// each channel in the slot's 64-token group.
void CheckDirectRule(Model* m, const std::string& text) {
  const KvStaircase spec = Spec(text);
  const std::vector<int32_t> tokens = Tokens(kLong);
  const int64_t layers = m->config().n_layer;
  const int64_t elems = m->config().n_kv_head * m->config().head_dim;

  m->set_max_batch(32);  // rings much smaller than the context
  ASSERT_TRUE(m->set_kv_staircase(spec).ok());
  auto stair = m->NewKvCache(512);
  ASSERT_TRUE(stair.ok());
  ASSERT_TRUE(stair->has_staircase());
  const std::vector<float> got = StepByStep(*m, *stair, tokens);
  ASSERT_TRUE(m->set_kv_staircase({}).ok());

  auto ref = m->NewKvCache(512);
  ASSERT_TRUE(ref.ok());
  std::vector<std::vector<float>> k32(static_cast<size_t>(layers)), v32(static_cast<size_t>(layers));
  std::vector<float> logits, want, scaled(static_cast<size_t>(elems)), sigma(static_cast<size_t>(elems));
  std::vector<uint8_t> q(static_cast<size_t>(elems) * 4);
  for (size_t p = 0; p < tokens.size(); ++p) {
    for (int64_t l = 0; l < layers; ++l) {
      for (int64_t j = 0; j < static_cast<int64_t>(p); ++j) {
        size_t step = 0;
        while (step + 1 < spec.steps.size() && j < spec.TierStart(step, static_cast<int64_t>(p))) ++step;
        for (int kv = 0; kv < 2; ++kv) {
          const float* src = (kv == 0 ? k32 : v32)[static_cast<size_t>(l)].data() + j * elems;
          float* dst = (kv == 0 ? ref->keys(l) : ref->values(l)) + j * elems;
          const DType type = spec.steps[step].type;
          if (kv == 0 && spec.steps[step].channel_keys) {
            const float* group = k32[static_cast<size_t>(l)].data() + (j / 64) * 64 * elems;
            for (int64_t c = 0; c < elems; ++c) {
              float big = 0;
              for (int64_t r = 0; r < 64; ++r) big = std::max(big, std::abs(group[r * elems + c]));
              sigma[static_cast<size_t>(c)] = big > 0 ? big : 1.0f;
              scaled[static_cast<size_t>(c)] = src[c] / sigma[static_cast<size_t>(c)];
            }
            kernels::reference::QuantizeRow(type, scaled.data(), q.data(), elems);
            kernels::reference::DequantizeRow(type, q.data(), dst, elems);
            for (int64_t c = 0; c < elems; ++c) dst[c] *= sigma[static_cast<size_t>(c)];
            continue;
          }
          kernels::reference::QuantizeRow(type, src, q.data(), elems);
          kernels::reference::DequantizeRow(type, q.data(), dst, elems);
        }
      }
    }
    ASSERT_TRUE(m->Forward(std::vector<int32_t>{tokens[p]}, *ref, LogitsMode::kLast, &logits).ok());
    want.insert(want.end(), logits.begin(), logits.end());
    for (int64_t l = 0; l < layers; ++l) {  // keep the new slot's float32 rows aside
      k32[static_cast<size_t>(l)].insert(k32[static_cast<size_t>(l)].end(), ref->keys(l) + p * elems,
                                         ref->keys(l) + (p + 1) * elems);
      v32[static_cast<size_t>(l)].insert(v32[static_cast<size_t>(l)].end(), ref->values(l) + p * elems,
                                         ref->values(l) + (p + 1) * elems);
    }
  }
  m->set_max_batch(512);
  ASSERT_EQ(got.size(), want.size());
  double max_err = 0, max_abs = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    max_err = std::max(max_err, static_cast<double>(std::abs(got[i] - want[i])));
    max_abs = std::max(max_abs, static_cast<double>(std::abs(want[i])));
  }
  // Merging the steps' softmaxes rounds differently from one softmax: float32 noise only.
  EXPECT_LT(max_err, 2e-4 * std::max(1.0, max_abs)) << text << ": largest logit " << max_abs;
}

TEST(KvStaircase, DecodeStepsMatchADirectImplementationOfTheRule) {
  auto m = Target();
  ASSERT_TRUE(m);
  CheckDirectRule(m.get(), "f32:64,q8_0:128,q4_0");
  CheckDirectRule(m.get(), "f32:64,q8_0:128,q4_0c");
}

// A staircase whose steps all have one type is that type's cache, up to the merge's rounding;
// and a mixed one is neither the first type's nor the last's.
TEST(KvStaircase, EqualStepsAreThePlainCacheAndMixedStepsAreBetween) {
  auto m = Target();
  ASSERT_TRUE(m);
  m->set_max_batch(32);
  const std::vector<int32_t> tokens = Tokens(300);
  auto run = [&](const std::string& spec, DType type) {
    EXPECT_TRUE(m->set_kv_type(type).ok());
    EXPECT_TRUE(m->set_kv_staircase(spec.empty() ? KvStaircase{} : Spec(spec)).ok());
    auto kv = m->NewKvCache(400);
    EXPECT_TRUE(kv.ok());
    return StepByStep(*m, *kv, tokens);
  };
  const std::vector<float> q8 = run("", DType::kQ8_0), q4 = run("", DType::kQ4_0);
  const std::vector<float> q8q8 = run("q8_0:64,q8_0:64,q8_0", DType::kF32);
  const std::vector<float> mixed = run("q8_0:64,q4_0", DType::kF32);
  ASSERT_TRUE(m->set_kv_type(DType::kF32).ok());
  ASSERT_TRUE(m->set_kv_staircase({}).ok());
  m->set_max_batch(512);
  auto diff = [](const std::vector<float>& a, const std::vector<float>& b) {
    double d = 0;
    for (size_t i = 0; i < a.size(); ++i) d = std::max(d, static_cast<double>(std::abs(a[i] - b[i])));
    return d;
  };
  const double same = diff(q8q8, q8), from_q8 = diff(mixed, q8), from_q4 = diff(mixed, q4);
  std::cout << "[ info ] largest logit difference: q8_0 staircase vs q8_0 " << same << ", q8_0:64,q4_0 vs q8_0 "
            << from_q8 << ", vs q4_0 " << from_q4 << "\n";
  EXPECT_LT(same, 5e-3);
  EXPECT_GT(from_q8, 10 * same);
  EXPECT_GT(from_q4, 10 * same);
  // The first 64 positions read only step 0: exactly the q8_0 cache there, up to rounding.
  const size_t vocab = static_cast<size_t>(m->config().vocab_size);
  EXPECT_LT(diff(std::vector<float>(mixed.begin(), mixed.begin() + 63 * vocab),
                 std::vector<float>(q8.begin(), q8.begin() + 63 * vocab)), 1e-3);
}

// Which step a slot is read from depends on the query's position only: a prompt in one pass, in
// chunks of any size, or one token at a time gives the same bits (and so does speculation).
TEST(KvStaircase, ChunkedPrefillGivesTheBitsOfOneTokenAtATime) {
  auto m = Target();
  ASSERT_TRUE(m);
  const std::vector<int32_t> tokens = Tokens(kLong - 20, 37, 5);
  const int64_t vocab = m->config().vocab_size;
  for (const char* text : {"f16:64,q8_0:128,q4_0", "q8_0:64,q4_0c"})
  for (int64_t chunk : {int64_t{48}, int64_t{kLong - 20}}) {
    ASSERT_TRUE(m->set_kv_staircase(Spec(text)).ok());
    m->set_max_batch(chunk);
    auto a = m->NewKvCache(450);
    ASSERT_TRUE(a.ok());
    std::vector<float> whole;
    BatchLayout decode_role;  // the decode kernels, as each token alone gets them
    decode_role.rows = BatchLayout::Rows::kDecode;
    ASSERT_TRUE(m->Forward(tokens, decode_role, *a, LogitsMode::kAll, &whole).ok());
    auto b = m->NewKvCache(450);
    ASSERT_TRUE(b.ok());
    const std::vector<float> steps = StepByStep(*m, *b, tokens);
    ASSERT_EQ(whole.size(), steps.size());
    int64_t differ = 0;
    for (size_t i = 0; i < tokens.size(); ++i)
      differ += std::memcmp(whole.data() + i * vocab, steps.data() + i * vocab, vocab * sizeof(float)) != 0;
    EXPECT_EQ(differ, 0) << text << ": prefill in chunks of " << chunk;
  }
  m->set_max_batch(512);
  ASSERT_TRUE(m->set_kv_staircase({}).ok());
}

// Speculative decoding (prompt lookup, chains and trees) under a staircase returns what plain
// decoding under it returns, token for token; a rollback never leaves a stale row behind.
TEST(KvStaircase, SpeculativeGreedyEqualsPlainGreedy) {
  auto m = Target();
  ASSERT_TRUE(m);
  m->set_max_batch(64);  // rings of a few hundred slots: speculation wraps them many times
  ASSERT_TRUE(m->set_kv_staircase(Spec("f16:64,q8_0:64,q4_0c")).ok());
  std::vector<int32_t> prompt = Tokens(120, 13, 3);
  const std::vector<int32_t> again(prompt.begin() + 20, prompt.begin() + 90);
  prompt.insert(prompt.end(), again.begin(), again.end());  // something to copy
  GenerateOptions go;
  go.max_new_tokens = 300;
  go.ignore_eos = true;
  go.sampler.temperature = 0;
  auto kv = m->NewKvCache(600);
  ASSERT_TRUE(kv.ok());
  auto plain = Generate(*m, *kv, prompt, go, nullptr);
  ASSERT_TRUE(plain.ok()) << plain.status().message();
  for (int branches : {1, 3}) {
    speculative::PromptLookupOptions po;
    po.branches = branches;
    speculative::PromptLookupProposer lookup(po);
    kv->Clear();
    auto spec = speculative::GenerateSpeculative(*m, *kv, prompt, go, {}, lookup, nullptr);
    ASSERT_TRUE(spec.ok()) << spec.status().message();
    EXPECT_EQ(spec->generation.tokens, plain->tokens) << branches << " branches";
    EXPECT_GT(spec->stats.accepted, 20) << "lookup drafted too little to test anything";
  }
  m->set_max_batch(512);
  ASSERT_TRUE(m->set_kv_staircase({}).ok());
}

TEST(KvStaircase, RefusedWhereItDoesNotApply) {
  auto m = Target();
  ASSERT_TRUE(m);
  ASSERT_TRUE(m->set_kv_staircase(Spec("f16:64,q4_0")).ok());
  auto kv = m->NewKvCache(128);
  ASSERT_TRUE(kv.ok());
  EXPECT_FALSE(kv->EvictPerHead(0, {}).ok());
  std::vector<float> logits;
  const std::vector<int32_t> t = {1, 2, 3};
  BatchSequence seq;
  seq.tokens = t;
  const Status batched = m->ForwardBatch(std::span<const BatchSequence>(&seq, 1), *kv, &logits);
  EXPECT_FALSE(batched.ok());
  EXPECT_NE(batched.message().find("staircase"), std::string::npos);
  ASSERT_TRUE(m->set_kv_staircase({}).ok());
}

}  // namespace
}  // namespace fastgen
