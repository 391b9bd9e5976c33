// The model interface speculative decoding builds on: token-tree forward passes (every branch
// computes what it would as a chain), KV-cache compaction back to one path, layer skipping.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "kernels/cpu/isa.h"
#include "models/model.h"
#include "test_util.h"

namespace fastgen {
namespace {

using testing::RelError;
using testing::SharedPath;

ThreadPool& Pool() {
  static ThreadPool pool(2);
  return pool;
}

std::unique_ptr<Model> Load(const std::string& fixture) {
  auto model = LoadModel(SharedPath("fixtures/" + fixture), &Pool());
  EXPECT_TRUE(model.ok()) << model.status().message();
  return model.ok() ? std::move(*model) : nullptr;
}

// A prefix longer than Mistral's 16-token window, so the window's position arithmetic matters.
std::vector<int32_t> Prefix() {
  std::vector<int32_t> p;
  for (int i = 0; i < 21; ++i) p.push_back(static_cast<int32_t>((i * 37 + 11) % 256));
  return p;
}

// The tree used below:   prefix ─ 7 ─┬─ 42 ─ 9
//                                    └─ 13
//                        prefix ─ 99 ─ 5 ─ 77
const std::vector<int32_t> kTreeTokens = {7, 42, 13, 99, 9, 5, 77};
const std::vector<int32_t> kTreeParents = {-1, 0, 0, -1, 1, 3, 5};
// Root-to-leaf paths as tree indices.
const std::vector<std::vector<int32_t>> kPaths = {{0, 1, 4}, {0, 2}, {3, 5, 6}};

// Logits of every token of `chain` run causally after the prefix: [chain.size(), vocab].
std::vector<float> ChainLogits(Model& m, const std::vector<int32_t>& chain) {
  auto kv = m.NewKvCache(64);
  EXPECT_TRUE(kv.ok());
  std::vector<float> logits;
  EXPECT_TRUE(m.Forward(Prefix(), *kv, LogitsMode::kLast, &logits).ok());
  EXPECT_TRUE(m.Forward(chain, *kv, LogitsMode::kAll, &logits).ok());
  return logits;
}

// Logits of decoding `chain` one token at a time into kv: [chain.size(), vocab].
std::vector<float> StepLogits(Model& m, KvCache& kv, const std::vector<int32_t>& chain) {
  std::vector<float> steps, logits;
  for (int32_t token : chain) {
    EXPECT_TRUE(m.Forward(std::span<const int32_t>(&token, 1), kv, LogitsMode::kLast, &logits).ok());
    steps.insert(steps.end(), logits.begin(), logits.end());
  }
  return steps;
}

class TreeForward : public ::testing::TestWithParam<std::string> {};

TEST_P(TreeForward, EveryBranchMatchesItsChain) {
  auto m = Load(GetParam());
  ASSERT_TRUE(m);
  const int64_t vocab = m->config().vocab_size;
  auto kv = m->NewKvCache(64);
  ASSERT_TRUE(kv.ok());
  std::vector<float> tree_logits, scratch;
  ASSERT_TRUE(m->Forward(Prefix(), *kv, LogitsMode::kLast, &scratch).ok());
  BatchLayout layout;
  layout.parents = kTreeParents;
  ASSERT_TRUE(m->Forward(kTreeTokens, layout, *kv, LogitsMode::kAll, &tree_logits).ok());
  for (const auto& path : kPaths) {
    std::vector<int32_t> chain;
    for (int32_t i : path) chain.push_back(kTreeTokens[static_cast<size_t>(i)]);
    const std::vector<float> want = ChainLogits(*m, chain);
    for (size_t d = 0; d < path.size(); ++d) {
      const float* got = tree_logits.data() + path[d] * vocab;
      EXPECT_LT(RelError(got, want.data() + static_cast<int64_t>(d) * vocab, vocab), 1e-5)
          << GetParam() << " node " << path[d];
    }
  }
}

// A tree grown over several passes (as a draft model expands it level by level) computes the
// same as the whole tree in one pass.
TEST_P(TreeForward, IncrementalTreeMatchesOnePass) {
  auto m = Load(GetParam());
  ASSERT_TRUE(m);
  const int64_t vocab = m->config().vocab_size;
  auto one = m->NewKvCache(64), inc = m->NewKvCache(64);
  ASSERT_TRUE(one.ok() && inc.ok());
  std::vector<float> want, got, scratch;
  ASSERT_TRUE(m->Forward(Prefix(), *one, LogitsMode::kLast, &scratch).ok());
  ASSERT_TRUE(m->Forward(Prefix(), *inc, LogitsMode::kLast, &scratch).ok());
  BatchLayout all;
  all.parents = kTreeParents;
  ASSERT_TRUE(m->Forward(kTreeTokens, all, *one, LogitsMode::kAll, &want).ok());

  const int64_t tree_start = inc->length();
  const size_t split = 4;  // nodes 0..3 first, then 4..6 whose parents were cached earlier
  BatchLayout first;
  first.parents = std::span<const int32_t>(kTreeParents).first(split);
  ASSERT_TRUE(m->Forward(std::span<const int32_t>(kTreeTokens).first(split), first, *inc,
                         LogitsMode::kAll, &got).ok());
  BatchLayout second;
  second.parents = kTreeParents;
  second.tree_start = tree_start;
  std::vector<float> rest;
  ASSERT_TRUE(m->Forward(std::span<const int32_t>(kTreeTokens).subspan(split), second, *inc,
                         LogitsMode::kAll, &rest).ok());
  got.insert(got.end(), rest.begin(), rest.end());
  for (size_t i = 0; i < kTreeTokens.size(); ++i)
    EXPECT_LT(RelError(got.data() + i * vocab, want.data() + i * vocab, vocab), 1e-5) << "node " << i;
}

// Rollback: after verifying a tree and keeping one path, the cache equals a cache that only
// ever saw that path, and continuing from it gives the chain's logits; for every KV cache type
// the fixture's head size allows.
TEST_P(TreeForward, CompactionEqualsCacheBuiltWithoutRejectedNodes) {
  auto m = Load(GetParam());
  ASSERT_TRUE(m);
  const int64_t vocab = m->config().vocab_size;
  for (DType type : {DType::kF32, DType::kF16, DType::kQ8_0, DType::kQ4_0}) {
    if (!m->set_kv_type(type).ok()) continue;
    SCOPED_TRACE(std::string(Name(type)));
    for (const auto& path : kPaths) {
      auto kv = m->NewKvCache(64), ref = m->NewKvCache(64);
      ASSERT_TRUE(kv.ok() && ref.ok());
      std::vector<float> scratch, got, want;
      ASSERT_TRUE(m->Forward(Prefix(), *kv, LogitsMode::kLast, &scratch).ok());
      ASSERT_TRUE(m->Forward(Prefix(), *ref, LogitsMode::kLast, &scratch).ok());
      const int64_t base = kv->length();
      BatchLayout layout;
      layout.parents = kTreeParents;
      ASSERT_TRUE(m->Forward(kTreeTokens, layout, *kv, LogitsMode::kAll, &scratch).ok());
      ASSERT_TRUE(kv->CompactTail(base, path).ok());
      std::vector<int32_t> chain;
      for (int32_t i : path) chain.push_back(kTreeTokens[static_cast<size_t>(i)]);
      ASSERT_TRUE(m->Forward(chain, *ref, LogitsMode::kAll, &scratch).ok());
      ASSERT_EQ(kv->length(), ref->length());
      const int64_t elems = ref->length() * ref->row_elems();
      std::vector<float> k(elems), v(elems), ref_k(elems), ref_v(elems);
      for (int64_t l = 0; l < m->config().n_layer; ++l) {
        kv->LoadRows(l, 0, kv->length(), k.data(), v.data());
        ref->LoadRows(l, 0, ref->length(), ref_k.data(), ref_v.data());
        float max_diff = 0, max_abs = 0;
        for (int64_t i = 0; i < elems; ++i) {
          max_diff = std::max({max_diff, std::abs(k[i] - ref_k[i]), std::abs(v[i] - ref_v[i])});
          max_abs = std::max({max_abs, std::abs(ref_k[i]), std::abs(ref_v[i])});
        }
        // Chains run the split-K attention kernel and tree batches the reference one; their
        // summation orders differ by float32 rounding (measured up to 1.2e-6 on these fixtures).
        // A compact cache may round such a pair of values to neighbouring steps: one f16 step
        // (2^-10 relative), or one q8_0 step (a block's max / 127).
        const float step = type == DType::kF32 ? 0.0f : type == DType::kF16 ? max_abs / 1024 : max_abs / 127;
        EXPECT_LE(max_diff, 1e-5f + step) << GetParam() << " layer " << l;
      }
      const std::vector<int32_t> next = {3, 250};
      ASSERT_TRUE(m->Forward(next, *kv, LogitsMode::kAll, &got).ok());
      ASSERT_TRUE(m->Forward(next, *ref, LogitsMode::kAll, &want).ok());
      for (int64_t t = 0; t < 2; ++t)
        EXPECT_LT(RelError(got.data() + t * vocab, want.data() + t * vocab, vocab), type == DType::kF32 ? 1e-6 : 1e-3);
    }
  }
}

// A chain verified in one pass computes what decoding it one token at a time computes, bit for
// bit (the decode matmuls are batch-invariant and attention treats each query alone), so greedy
// speculative decoding reproduces plain greedy decoding exactly, not up to rounding.
TEST_P(TreeForward, ChainPassEqualsStepsBitForBit) {
  auto m = Load(GetParam());
  ASSERT_TRUE(m);
  const std::vector<int32_t> chain = {7, 42, 9, 13, 99, 5};
  const std::vector<float> pass = ChainLogits(*m, chain);
  auto kv = m->NewKvCache(64);
  ASSERT_TRUE(kv.ok());
  std::vector<float> logits;
  ASSERT_TRUE(m->Forward(Prefix(), *kv, LogitsMode::kLast, &logits).ok());
  const std::vector<float> steps = StepLogits(*m, *kv, chain);
  ASSERT_EQ(pass.size(), steps.size());
  const int64_t vocab = m->config().vocab_size;
  for (size_t i = 0; i < chain.size(); ++i)
    EXPECT_EQ(0, std::memcmp(pass.data() + i * vocab, steps.data() + i * vocab, vocab * sizeof(float)))
        << GetParam() << ": chain position " << i;
}

// The same on the trained model over a long cache: the chain crosses the split-K attention's
// chunk boundaries (256, 512) and the prefix spans several chunks, for every KV cache type and
// every instruction set this CPU has.
TEST(ChainExactness, LongCacheEveryKvTypeAndIsa) {
  auto loaded = LoadModel(SharedPath("models/fg-target"), &Pool());
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  Model& m = **loaded;
  const int64_t vocab = m.config().vocab_size;
  std::vector<int32_t> prefix;
  for (int i = 0; i < 505; ++i) prefix.push_back(static_cast<int32_t>((i * 131 + 17) % vocab));
  const std::vector<int32_t> chain = {40, 41, 42, 300, 301, 302, 1000, 7, 8};  // slots 505..513
  const kernels::cpu::Isa saved = kernels::cpu::ActiveIsa();
  for (kernels::cpu::Isa isa : kernels::cpu::SupportedIsas()) {
    ASSERT_TRUE(kernels::cpu::ForceIsa(isa));
    for (DType kv_type : {DType::kF32, DType::kF16, DType::kQ8_0, DType::kQ4_0}) {
      ASSERT_TRUE(m.set_kv_type(kv_type).ok());
      std::vector<float> pass, logits;
      auto kv = m.NewKvCache(600);
      ASSERT_TRUE(kv.ok());
      ASSERT_TRUE(m.Forward(prefix, *kv, LogitsMode::kLast, &logits).ok());
      ASSERT_TRUE(m.Forward(chain, *kv, LogitsMode::kAll, &pass).ok());
      kv->Truncate(static_cast<int64_t>(prefix.size()));
      const std::vector<float> steps = StepLogits(m, *kv, chain);
      ASSERT_EQ(pass.size(), steps.size());
      for (size_t i = 0; i < chain.size(); ++i)
        EXPECT_EQ(0, std::memcmp(pass.data() + i * vocab, steps.data() + i * vocab, vocab * sizeof(float)))
            << kernels::cpu::IsaName(isa) << " " << Name(kv_type) << ": chain position " << i;
    }
  }
  kernels::cpu::ForceIsa(saved);
  ASSERT_TRUE(m.set_kv_type(DType::kF32).ok());
}

// A draft model re-encoded in memory (--draft-weights): every matrix converted, logits close to
// the file's, a type without a quantizer refused by name.
TEST(ConvertMatrices, DraftModelAsQ8_0) {
  auto bf16 = LoadModel(SharedPath("models/fg-draft"), &Pool());
  ModelOptions options;
  options.weight_type = DType::kQ8_0;
  auto q8 = LoadModel(SharedPath("models/fg-draft"), &Pool(), options);
  ASSERT_TRUE(bf16.ok() && q8.ok());
  EXPECT_EQ((*q8)->weight_matrix_bytes() * 64, (*bf16)->weight_matrix_bytes() * 34);  // 34 B per 32 weights
  const std::vector<int32_t> prompt = {1, 2, 3, 4, 5, 6, 7};
  std::vector<float> a, b;
  auto kv_a = (*bf16)->NewKvCache(16);
  auto kv_b = (*q8)->NewKvCache(16);
  ASSERT_TRUE((*bf16)->Forward(prompt, *kv_a, LogitsMode::kAll, &a).ok());
  ASSERT_TRUE((*q8)->Forward(prompt, *kv_b, LogitsMode::kAll, &b).ok());
  ASSERT_EQ(a.size(), b.size());
  const double rel = RelError(b.data(), a.data(), a.size());
  EXPECT_LT(rel, 2e-2);
  EXPECT_GT(rel, 0.0);
  auto again = (*q8)->ConvertMatrices(DType::kQ8_0);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, 0);  // already Q8_0
  auto bad = (*bf16)->ConvertMatrices(DType::kI32);  // an integer type is never a weight encoding
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("I32"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, TreeForward,
                         ::testing::Values("llama", "mistral", "qwen3", "gemma", "phi3", "gpt2"),
                         [](const auto& info) { return info.param; });

TEST(KvCompaction, RejectsBadOffsets) {
  auto kv = KvCache::Create({1, 1, 2, 8});
  ASSERT_TRUE(kv.ok());
  kv->Advance(5);
  const std::vector<int32_t> unordered = {2, 1}, outside = {0, 3}, empty = {};
  EXPECT_FALSE(kv->CompactTail(2, unordered).ok());
  EXPECT_FALSE(kv->CompactTail(2, outside).ok());
  EXPECT_FALSE(kv->CompactTail(6, empty).ok());
  EXPECT_EQ(kv->length(), 5);
  ASSERT_TRUE(kv->CompactTail(2, empty).ok());  // reject the whole tail
  EXPECT_EQ(kv->length(), 2);
}

TEST(KvCompaction, MovesRowsInEveryLayer) {
  auto kv = KvCache::Create({2, 1, 2, 8});
  ASSERT_TRUE(kv.ok());
  for (int64_t l = 0; l < 2; ++l)
    for (int64_t i = 0; i < 12; ++i) {
      kv->keys(l)[i] = static_cast<float>(100 * l + i);
      kv->values(l)[i] = static_cast<float>(-100 * l - i);
    }
  kv->Advance(6);
  const std::vector<int32_t> keep = {1, 3};  // slots 3 and 5 of base 2
  ASSERT_TRUE(kv->CompactTail(2, keep).ok());
  EXPECT_EQ(kv->length(), 4);
  for (int64_t l = 0; l < 2; ++l) {
    EXPECT_EQ(kv->keys(l)[4], 100 * l + 6);  // slot 2 <- slot 3
    EXPECT_EQ(kv->keys(l)[7], 100 * l + 11);  // slot 3 <- slot 5
    EXPECT_EQ(kv->values(l)[6], -100 * l - 10);
    EXPECT_EQ(kv->keys(l)[1], 100 * l + 1);  // prefix untouched
  }
}

// Compact caches store converted rows and move whole rows: what a slot reads back after
// compaction is exactly what its source slot held.
TEST(KvCompaction, MovesCompactRows) {
  for (DType type : {DType::kF16, DType::kQ8_0}) {
    SCOPED_TRACE(std::string(Name(type)));
    auto kv = KvCache::Create({2, 2, 32, 8, type});
    ASSERT_TRUE(kv.ok()) << kv.status().message();
    const int64_t row = kv->row_elems();
    std::vector<float> k(6 * row), v(6 * row);
    for (int64_t l = 0; l < 2; ++l) {
      for (int64_t i = 0; i < 6 * row; ++i) {
        k[i] = std::sin(0.37f * i + l);
        v[i] = 0.5f * std::cos(0.11f * i - l);
      }
      kv->StoreRows(l, 0, 6, k.data(), v.data());
    }
    std::vector<float> before_k(6 * row), before_v(6 * row), after_k(4 * row), after_v(4 * row);
    kv->LoadRows(1, 0, 6, before_k.data(), before_v.data());
    // Conversion error: half a step of the type (q8_0: plus its f16 scale's rounding).
    for (int64_t i = 0; i < 6 * row; ++i) EXPECT_NEAR(before_k[i], std::sin(0.37f * i + 1), type == DType::kF16 ? 5e-4 : 5e-3);
    kv->Advance(6);
    const std::vector<int32_t> keep = {1, 3};  // slots 3 and 5 of base 2
    ASSERT_TRUE(kv->CompactTail(2, keep).ok());
    kv->LoadRows(1, 0, 4, after_k.data(), after_v.data());
    for (int64_t i = 0; i < row; ++i) {
      EXPECT_EQ(after_k[1 * row + i], before_k[1 * row + i]);  // prefix untouched
      EXPECT_EQ(after_k[2 * row + i], before_k[3 * row + i]);  // slot 2 <- slot 3
      EXPECT_EQ(after_v[3 * row + i], before_v[5 * row + i]);  // slot 3 <- slot 5
    }
  }
}

TEST(KvCache, RejectsTypesItCannotHold) {
  EXPECT_FALSE(KvCache::Create({1, 1, 16, 8, DType::kQ8_0}).ok());  // head size not a multiple of 32
  EXPECT_FALSE(KvCache::Create({1, 1, 16, 8, DType::kQ4_0}).ok());  // same rule for q4_0
  EXPECT_FALSE(KvCache::Create({1, 1, 64, 8, DType::kQ4_K}).ok());  // no k-quant caches
  EXPECT_FALSE(KvCache::Create({1, 1, 64, 8, DType::kBF16}).ok());
  EXPECT_TRUE(KvCache::Create({1, 1, 64, 8, DType::kQ8_0}).ok());
  EXPECT_EQ(KvCache::Create({1, 2, 64, 8, DType::kQ8_0})->bytes(), 2u * 8 * 4 * 34);
  EXPECT_EQ(KvCache::Create({1, 2, 64, 8, DType::kQ4_0})->bytes(), 2u * 8 * 4 * 18);
  EXPECT_EQ(KvCache::Create({1, 2, 64, 8, DType::kF16})->bytes(), 2u * 8 * 128 * 2);
}

TEST(TreeForward, RejectsMalformedTrees) {
  auto m = Load("llama");
  ASSERT_TRUE(m);
  auto kv = m->NewKvCache(16);
  ASSERT_TRUE(kv.ok());
  std::vector<float> logits;
  const std::vector<int32_t> tokens = {1, 2, 3};
  const std::vector<int32_t> forward_ref = {-1, 2, 0}, too_short = {-1, 0};
  BatchLayout layout;
  layout.parents = forward_ref;
  EXPECT_FALSE(m->Forward(tokens, layout, *kv, LogitsMode::kAll, &logits).ok());
  layout.parents = too_short;
  EXPECT_FALSE(m->Forward(tokens, layout, *kv, LogitsMode::kAll, &logits).ok());
  layout.parents = {};
  layout.tree_start = 5;
  const std::vector<int32_t> chain = {-1, 0, 1};
  layout.parents = chain;
  EXPECT_FALSE(m->Forward(tokens, layout, *kv, LogitsMode::kAll, &logits).ok());
  const std::vector<int32_t> bad_layer = {7};
  BatchLayout skip;
  skip.skip_layers = bad_layer;
  EXPECT_FALSE(m->Forward(tokens, skip, *kv, LogitsMode::kAll, &logits).ok());
  EXPECT_EQ(kv->length(), 0);
}

// Skipping layers is the shallower model: skipping none is the full model, skipping every
// layer leaves the embedding alone (its logits depend on the last token only), and a skipped
// layer's cache rows stay untouched.
TEST(LayerSkip, SkipsExactlyTheNamedLayers) {
  auto m = Load("llama");
  ASSERT_TRUE(m);
  const int64_t vocab = m->config().vocab_size;
  const std::vector<int32_t> a = {5, 6, 7}, b = {200, 201, 7};
  auto run = [&](const std::vector<int32_t>& tokens, std::vector<int32_t> skip, KvCache* out_kv) {
    auto kv = m->NewKvCache(8);
    EXPECT_TRUE(kv.ok());
    BatchLayout layout;
    layout.skip_layers = skip;
    std::vector<float> logits;
    EXPECT_TRUE(m->Forward(tokens, layout, *kv, LogitsMode::kLast, &logits).ok());
    if (out_kv) *out_kv = std::move(*kv);
    return logits;
  };
  EXPECT_EQ(run(a, {}, nullptr), run(a, {}, nullptr));
  const auto none = run(a, {0, 1}, nullptr);
  EXPECT_EQ(none, run(b, {0, 1}, nullptr));  // no attention left: only the last token matters
  const auto skip1 = run(a, {1}, nullptr);
  EXPECT_GT(RelError(skip1.data(), run(a, {}, nullptr).data(), vocab), 1e-3);
  auto kv = m->NewKvCache(8);  // fresh caches are zero-filled
  ASSERT_TRUE(kv.ok());
  KvCache kv_skip = std::move(*kv);
  run(a, {1}, &kv_skip);
  const int64_t floats = 3 * kv_skip.row_elems();
  bool layer0_written = false, layer1_written = false;
  for (int64_t i = 0; i < floats; ++i) {
    layer0_written |= kv_skip.keys(0)[i] != 0.0f;
    layer1_written |= kv_skip.keys(1)[i] != 0.0f;
  }
  EXPECT_TRUE(layer0_written);
  EXPECT_FALSE(layer1_written);
}

// A head restricted to the first ids computes those logits exactly as the full head does
// (one token and several, float and Q8_0 output matrices, GPT-2 too) and leaves the rest -inf;
// a row count outside the vocabulary is an error.
TEST(HeadRows, FirstIdsExactlyAsTheFullHeadRestMinusInfinity) {
  for (const std::string name : {"llama", "gpt2", "qwen3"}) {
    for (const bool q8 : {false, true}) {
      auto m = Load(name);
      ASSERT_TRUE(m);
      if (q8) {
        ASSERT_TRUE(m->ConvertMatrices(DType::kQ8_0).ok());
      }
      const int64_t vocab = m->config().vocab_size;
      for (const size_t n : {size_t{1}, size_t{5}, size_t{13}}) {
        std::vector<int32_t> tokens = Prefix();
        tokens.resize(n);
        auto run = [&](int64_t head_rows, Status* status = nullptr) {
          auto kv = m->NewKvCache(32);
          EXPECT_TRUE(kv.ok());
          BatchLayout layout;
          layout.head_rows = head_rows;
          std::vector<float> logits;
          const Status st = m->Forward(tokens, layout, *kv, LogitsMode::kAll, &logits);
          if (status) {
            *status = st;
          } else {
            EXPECT_TRUE(st.ok()) << st.message();
          }
          return logits;
        };
        const std::vector<float> full = run(0);
        const int64_t k = vocab / 2 + 3;  // not a multiple of any tile
        const std::vector<float> head = run(k);
        ASSERT_EQ(head.size(), full.size());
        for (size_t r = 0; r < n; ++r) {
          for (int64_t i = 0; i < vocab; ++i) {
            const size_t at = r * static_cast<size_t>(vocab) + static_cast<size_t>(i);
            const float want = i < k ? full[at] : -std::numeric_limits<float>::infinity();
            ASSERT_EQ(head[at], want) << name << " q8 " << q8 << " n " << n << " row " << r << " id " << i;
          }
        }
        EXPECT_EQ(run(vocab), full);
        Status bad;
        run(vocab + 1, &bad);
        EXPECT_FALSE(bad.ok());
        run(-1, &bad);
        EXPECT_FALSE(bad.ok());
      }
    }
  }
}

}  // namespace
}  // namespace fastgen
