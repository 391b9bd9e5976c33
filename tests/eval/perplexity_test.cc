// The perplexity tool against perplexity computed by hand (one decode step at a time, log-softmax
// in double) on a tiny model, and against llama-perplexity's figure on the same GGUF and text.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "core/mapped_file.h"
#include "eval/perplexity.h"
#include "models/model.h"
#include "test_util.h"
#include "tokenizer/tokenizer.h"

namespace fastgen::eval {
namespace {

using fastgen::testing::SharedPath;

ThreadPool& Pool() {
  static ThreadPool pool(2);
  return pool;
}

std::vector<int32_t> RandomTokens(int64_t n, int32_t vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (auto& v : t) v = static_cast<int32_t>(rng() % static_cast<uint32_t>(vocab));
  return t;
}

// The definition, step by step: each chunk from an empty cache, BOS first, one token per
// forward pass; the logits after token j score token j+1 for j in [ctx/2, ctx-2].
TEST(Perplexity, MatchesAHandComputationOnATinyModel) {
  auto model = LoadModel(SharedPath("gguf/llama.f32.gguf"), &Pool());
  ASSERT_TRUE(model.ok()) << model.status().message();
  Model& m = **model;
  const int64_t ctx = 24, vocab = m.config().vocab_size;
  const auto tokens = RandomTokens(3 * ctx + 5, static_cast<int32_t>(vocab), 7);
  const int32_t bos = 1;

  double sum = 0, sum2 = 0;
  int64_t count = 0;
  std::vector<double> running;
  auto kv = m.NewKvCache(ctx);
  ASSERT_TRUE(kv.ok());
  std::vector<float> logits;
  for (int64_t c = 0; c < 3; ++c) {
    kv->Clear();
    for (int64_t j = 0; j < ctx - 1; ++j) {
      const int32_t t = j == 0 ? bos : tokens[static_cast<size_t>(c * ctx + j)];
      ASSERT_TRUE(m.Forward(std::span<const int32_t>(&t, 1), *kv, LogitsMode::kLast, &logits).ok());
      if (j < ctx / 2) continue;
      double mx = -1e300, z = 0;
      for (float v : logits) mx = std::max(mx, static_cast<double>(v));
      for (float v : logits) z += std::exp(static_cast<double>(v) - mx);
      const double nll = mx + std::log(z) - logits[static_cast<size_t>(tokens[static_cast<size_t>(c * ctx + j + 1)])];
      sum += nll;
      sum2 += nll * nll;
      ++count;
    }
    running.push_back(std::exp(sum / static_cast<double>(count)));
  }
  const double mean = sum / static_cast<double>(count);
  const double want_ppl = std::exp(mean);
  const double want_err = want_ppl * std::sqrt((sum2 / static_cast<double>(count) - mean * mean) /
                                               static_cast<double>(count - 1));

  PerplexityOptions o;
  o.ctx = ctx;
  o.bos = bos;
  o.batch = 5;  // several passes per half-chunk
  int64_t seen = 0;
  std::vector<double> progress;
  auto r = ComputePerplexity(m, tokens, o,
                             [&](const ScoredPosition& p) {
                               EXPECT_EQ(p.index, seen);
                               const int64_t c = seen / (ctx - ctx / 2 - 1), j = ctx / 2 + seen % (ctx - ctx / 2 - 1);
                               EXPECT_EQ(p.next, tokens[static_cast<size_t>(c * ctx + j + 1)]);
                               EXPECT_EQ(static_cast<int64_t>(p.logits.size()), vocab);
                               ++seen;
                               return Status::Ok();
                             },
                             [&](const PerplexityProgress& p) { progress.push_back(p.ppl); });
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->chunks, 3);
  EXPECT_EQ(r->scored, count);
  EXPECT_EQ(seen, count);
  EXPECT_NEAR(r->ppl, want_ppl, want_ppl * 1e-5);
  EXPECT_NEAR(r->ppl_stderr, want_err, want_err * 1e-3);
  ASSERT_EQ(progress.size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_NEAR(progress[i], running[i], running[i] * 1e-5);

  // Without BOS the first token of each chunk is the text's own, and the figure changes.
  o.bos.reset();
  auto plain = ComputePerplexity(m, tokens, o);
  ASSERT_TRUE(plain.ok());
  EXPECT_NE(plain->ppl, r->ppl);
  // --chunks caps the evaluation.
  o.chunks = 2;
  auto two = ComputePerplexity(m, tokens, o);
  ASSERT_TRUE(two.ok());
  EXPECT_EQ(two->chunks, 2);
  EXPECT_EQ(two->running_ppl[1], plain->running_ppl[1]);
}

TEST(Perplexity, RefusesTooShortTextsAndTinyContexts) {
  auto model = LoadModel(SharedPath("gguf/llama.f32.gguf"), &Pool());
  ASSERT_TRUE(model.ok());
  const auto tokens = RandomTokens(40, 256, 1);
  PerplexityOptions o;
  o.ctx = 32;  // needs 64 tokens
  auto r = ComputePerplexity(**model, tokens, o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("needs at least 64"), std::string::npos) << r.status().message();
  o.ctx = 2;
  EXPECT_FALSE(ComputePerplexity(**model, tokens, o).ok());
}

// KV eviction. The window rule without sinks is a sliding window: after token i-1 the cache
// holds tokens i-B .. i-1, so token i sees i-B .. i in every layer, at its position in the text.
// The same model with a (B+1)-token sliding window and no eviction computes exactly that from a
// full cache (through the GEMM rather than token by token, so to float rounding).
TEST(Perplexity, WindowEvictionEqualsASlidingWindowModel) {
  auto model = LoadModel(SharedPath("gguf/llama.f32.gguf"), &Pool());
  ModelOptions windowed_opts;
  const int64_t budget = 9;
  windowed_opts.checkpoint.gguf_overrides["llama.attention.sliding_window"] = std::to_string(budget + 1);
  auto windowed = LoadModel(SharedPath("gguf/llama.f32.gguf"), &Pool(), windowed_opts);
  ASSERT_TRUE(model.ok() && windowed.ok()) << windowed.status().message();
  ASSERT_EQ((*windowed)->config().sliding_window, budget + 1);
  const auto tokens = RandomTokens(2 * 40 + 3, static_cast<int32_t>((*model)->config().vocab_size), 3);
  PerplexityOptions o;
  o.ctx = 40;
  o.bos = 1;
  auto reference = ComputePerplexity(**windowed, tokens, o);
  auto full = ComputePerplexity(**model, tokens, o);
  EvictionPolicy p;
  p.kind = EvictionKind::kWindow;
  p.budget = budget;
  p.sinks = 0;
  auto policy = ResolvePolicy(p);
  ASSERT_TRUE(policy.ok());
  KvEvictor evictor(*policy, (*model)->config().n_layer, (*model)->config().n_kv_head);
  o.evictor = &evictor;
  auto evicted = ComputePerplexity(**model, tokens, o);
  ASSERT_TRUE(reference.ok() && full.ok() && evicted.ok()) << evicted.status().message();
  EXPECT_NEAR(evicted->mean_nll, reference->mean_nll, 1e-5 * reference->mean_nll);
  EXPECT_GT(std::abs(evicted->mean_nll - full->mean_nll), 1e-3);  // the window changes the answer
  // A sliding-window model itself cannot take eviction (its window counts slots).
  EXPECT_FALSE(ComputePerplexity(**windowed, tokens, o).ok());
}

// A budget the chunk never reaches evicts nothing: the same passes, the same bits. Below it,
// every policy changes the answer, runs to the end and is deterministic.
TEST(Perplexity, EvictionPoliciesRunAndABudgetAboveTheContextChangesNothing) {
  auto model = LoadModel(SharedPath("gguf/llama.f32.gguf"), &Pool());
  ASSERT_TRUE(model.ok());
  Model& m = **model;
  const auto tokens = RandomTokens(2 * 32, static_cast<int32_t>(m.config().vocab_size), 9);
  PerplexityOptions o;
  o.ctx = 32;
  o.batch = 8;
  auto plain = ComputePerplexity(m, tokens, o);
  ASSERT_TRUE(plain.ok());
  for (EvictionKind kind : {EvictionKind::kWindow, EvictionKind::kH2O, EvictionKind::kKeyformer}) {
    EvictionPolicy p;
    p.kind = kind;
    p.budget = 64;
    p.horizon = 32;
    auto policy = ResolvePolicy(p);
    ASSERT_TRUE(policy.ok());
    KvEvictor big(*policy, m.config().n_layer, m.config().n_kv_head, &Pool());
    o.evictor = &big;
    auto same = ComputePerplexity(m, tokens, o);
    ASSERT_TRUE(same.ok());
    EXPECT_EQ(same->mean_nll, plain->mean_nll) << Name(kind);
    p.budget = 10;
    policy = ResolvePolicy(p);
    ASSERT_TRUE(policy.ok());
    KvEvictor small(*policy, m.config().n_layer, m.config().n_kv_head, &Pool());
    o.evictor = &small;
    auto a = ComputePerplexity(m, tokens, o);
    auto b = ComputePerplexity(m, tokens, o);
    ASSERT_TRUE(a.ok() && b.ok()) << Name(kind);
    EXPECT_TRUE(std::isfinite(a->ppl));
    EXPECT_NE(a->mean_nll, plain->mean_nll) << Name(kind);
    EXPECT_EQ(a->mean_nll, b->mean_nll) << Name(kind);
    o.evictor = nullptr;
  }
}

// TidalDecode: with top-k covering every slot the sparse layers read the whole cache (the
// scored half decoded a token at a time: the dense answer to float rounding); with a small k
// they read less and the answer moves.
TEST(Perplexity, TidalDecodeTopKOverTheContextIsDense) {
  auto model = LoadModel(SharedPath("gguf/llama.f32.gguf"), &Pool());
  ASSERT_TRUE(model.ok());
  Model& m = **model;
  const auto tokens = RandomTokens(2 * 48, static_cast<int32_t>(m.config().vocab_size), 21);
  PerplexityOptions o;
  o.ctx = 48;
  auto dense = ComputePerplexity(m, tokens, o);
  ASSERT_TRUE(dense.ok());
  SparseAttentionConfig c;
  c.top_k = 48;
  auto all = TidalSelector::Create(c, m.config().n_layer);
  ASSERT_TRUE(all.ok());
  o.sparse = &*all;
  auto covered = ComputePerplexity(m, tokens, o);
  ASSERT_TRUE(covered.ok()) << covered.status().message();
  EXPECT_NEAR(covered->mean_nll, dense->mean_nll, 1e-5 * dense->mean_nll);
  c.top_k = 4;
  auto few = TidalSelector::Create(c, m.config().n_layer);
  ASSERT_TRUE(few.ok());
  o.sparse = &*few;
  auto sparse = ComputePerplexity(m, tokens, o);
  ASSERT_TRUE(sparse.ok());
  EXPECT_GT(std::abs(sparse->mean_nll - dense->mean_nll), 1e-3);
  EXPECT_TRUE(std::isfinite(sparse->ppl));
}

// llama-perplexity (llama.cpp de3ff81, built here with -DGGML_NATIVE=OFF, AVX-512 on, AMX off):
//   llama-perplexity -m gguf/fg-target.q8_0.gguf -f corpus/valid.txt -c 512 --chunks 8 -t 2
//   -> [8]125.1165 (Final estimate over 20 chunks: 130.3520 +/- 5.38705)
// The same file, text and method in fastgen must agree to 0.5% (different kernels round
// differently; the tolerance).
TEST(Perplexity, AgreesWithLlamaPerplexityOnTheSameGguf) {
  auto model = LoadModel(SharedPath("gguf/fg-target.q8_0.gguf"), &Pool());
  ASSERT_TRUE(model.ok()) << model.status().message();
  auto tok = Tokenizer::FromGguf(*(*model)->checkpoint().gguf);
  ASSERT_TRUE(tok.ok());
  auto text = ReadTextFile(SharedPath("corpus/valid.txt"), kEvalTextLimit);
  ASSERT_TRUE(text.ok());
  EncodeOptions eo;
  eo.add_special_tokens = true;
  eo.parse_special = false;
  // The first 8 chunks need 4096 tokens: a prefix of the text is enough (and fast).
  auto tokens = (*tok)->Encode(std::string_view(*text).substr(0, 40000), eo);
  ASSERT_TRUE(tokens.ok());
  ASSERT_GE(tokens->size(), 8u * 512);
  PerplexityOptions o;
  o.ctx = 512;
  o.chunks = 8;
  // This GGUF's tokenizer adds no BOS (tokenizer.ggml.add_bos_token unset for a gpt2 vocabulary),
  // in fastgen as in llama.cpp: chunks start with the text's own token.
  ASSERT_NE(tokens->front(), (*tok)->bos_id().value_or(-1));
  auto r = ComputePerplexity(**model, *tokens, o);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_NEAR(r->ppl, 125.1165, 125.1165 * 0.005);
}

}  // namespace
}  // namespace fastgen::eval
