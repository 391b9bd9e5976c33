// The serving runtime's forward pass: several sequences in one padding-free batch over a paged
// KV pool. A sequence's logits must be the same bits as the single-sequence forward with the same
// roles, whatever blocks it is given, how its prompt is chunked, and which other sequences share
// its steps.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <random>

#include "kv/block_pool.h"
#include "models/model.h"
#include "test_util.h"

namespace fastgen {
namespace {

using testing::SharedPath;

ThreadPool& Pool() {
  static ThreadPool pool(2);
  return pool;
}

// A sequence as the runtime keeps it: its tokens and its blocks in the pool.
struct Seq {
  std::vector<int32_t> tokens;
  std::vector<int32_t> blocks;
  int64_t cached = 0;  // tokens whose K/V are in the pool
};

// Gives `s` blocks for `slots` slots, taking them from the pool in a shuffled order so that
// block tables are far from contiguous.
void Grow(KvBlockPool& pool, Seq& s, int64_t slots, std::mt19937& rng) {
  while (static_cast<int64_t>(s.blocks.size()) * pool.block_tokens() < slots) {
    // Take a few and give back all but one at random: the pool's order gets shuffled.
    std::vector<int32_t> got;
    for (int i = 0; i < 3; ++i)
      if (auto b = pool.Allocate()) got.push_back(*b);
    ASSERT_FALSE(got.empty());
    std::shuffle(got.begin(), got.end(), rng);
    s.blocks.push_back(got.back());
    got.pop_back();
    for (int32_t b : got) pool.Release(b);
  }
}

// Reference: one sequence alone through the dense cache, its prompt in one kPrompt pass, then
// steps of kDecode. Returns the logits of the prompt's last token and of every step.
std::vector<std::vector<float>> DenseLogits(Model& m, const std::vector<int32_t>& prompt,
                                            const std::vector<int32_t>& steps) {
  auto kv = m.NewKvCache(static_cast<int64_t>(prompt.size() + steps.size()) + 1);
  EXPECT_TRUE(kv.ok());
  BatchLayout prompt_rows, decode_rows;
  prompt_rows.rows = BatchLayout::Rows::kPrompt;
  decode_rows.rows = BatchLayout::Rows::kDecode;
  std::vector<std::vector<float>> out(1);
  EXPECT_TRUE(m.Forward(prompt, prompt_rows, *kv, LogitsMode::kLast, &out[0]).ok());
  for (int32_t t : steps) {
    out.emplace_back();
    EXPECT_TRUE(m.Forward(std::span<const int32_t>(&t, 1), decode_rows, *kv, LogitsMode::kLast, &out.back()).ok());
  }
  return out;
}

bool SameBits(const std::vector<float>& a, const float* b, int64_t n) {
  return static_cast<int64_t>(a.size()) == n && std::memcmp(a.data(), b, static_cast<size_t>(n) * 4) == 0;
}

class RaggedBatchTest : public ::testing::TestWithParam<std::string> {};

// Every KV element type the model's head size allows: the pool converts rows exactly as the dense
// cache does.
std::vector<DType> KvTypes(const ModelConfig& c) {
  std::vector<DType> out;
  for (DType t : {DType::kF32, DType::kF16, DType::kQ8_0, DType::kQ4_0})
    if (kernels::KvTypeSupported(t, c.head_dim)) out.push_back(t);
  return out;
}

void CheckBatchedAgainstAlone(Model& m, DType kv_type);

TEST_P(RaggedBatchTest, SequencesBatchedTogetherMatchEachAloneBitForBit) {
  auto loaded = LoadModel(SharedPath(GetParam()), &Pool());
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  for (DType t : KvTypes((*loaded)->config())) {
    SCOPED_TRACE(std::string("KV type ") + std::string(Name(t)));
    ASSERT_TRUE((*loaded)->set_kv_type(t).ok());
    CheckBatchedAgainstAlone(**loaded, t);
  }
}

void CheckBatchedAgainstAlone(Model& m, DType kv_type) {
  const ModelConfig& c = m.config();
  std::mt19937 rng(42);
  const int kSeqs = 5;
  const std::vector<int64_t> prompt_lens = {1, 7, 33, 70, 19};
  const int64_t kSteps = 9;
  std::vector<std::vector<int32_t>> prompts(kSeqs), steps(kSeqs);
  for (int i = 0; i < kSeqs; ++i) {
    for (int64_t t = 0; t < prompt_lens[static_cast<size_t>(i)]; ++t)
      prompts[static_cast<size_t>(i)].push_back(static_cast<int32_t>(rng() % static_cast<uint32_t>(c.vocab_size)));
    for (int64_t t = 0; t < kSteps; ++t)
      steps[static_cast<size_t>(i)].push_back(static_cast<int32_t>(rng() % static_cast<uint32_t>(c.vocab_size)));
  }
  std::vector<std::vector<std::vector<float>>> want(kSeqs);
  for (int i = 0; i < kSeqs; ++i) want[static_cast<size_t>(i)] = DenseLogits(m, prompts[static_cast<size_t>(i)], steps[static_cast<size_t>(i)]);

  auto pool = KvBlockPool::Create({c.n_layer, c.n_kv_head, c.head_dim, 16, 64, kv_type});
  ASSERT_TRUE(pool.ok());
  std::vector<Seq> seqs(kSeqs);
  std::vector<size_t> next_step(kSeqs, 0);
  std::vector<int64_t> prompt_done(kSeqs, 0);
  std::vector<float> logits;
  // Steps mix decode tokens of running sequences with prompt chunks of random sizes (chunked
  // prefill), and the sequences start at different steps.
  for (int step = 0; step < 40; ++step) {
    std::vector<BatchSequence> batch;
    std::vector<int> who;
    std::vector<std::vector<int32_t>> step_tokens(kSeqs);
    for (int i = 0; i < kSeqs; ++i) {
      if (step < i) continue;  // arrives later
      Seq& s = seqs[static_cast<size_t>(i)];
      const auto& prompt = prompts[static_cast<size_t>(i)];
      std::vector<int32_t>& toks = step_tokens[static_cast<size_t>(i)];
      BatchSequence b;
      if (prompt_done[static_cast<size_t>(i)] < static_cast<int64_t>(prompt.size())) {
        const int64_t left = static_cast<int64_t>(prompt.size()) - prompt_done[static_cast<size_t>(i)];
        const int64_t chunk = std::min<int64_t>(left, 1 + static_cast<int64_t>(rng() % 24));
        toks.assign(prompt.begin() + prompt_done[static_cast<size_t>(i)],
                    prompt.begin() + prompt_done[static_cast<size_t>(i)] + chunk);
        b.decode = false;
        b.outputs = chunk == left ? 1 : 0;
      } else if (next_step[static_cast<size_t>(i)] < steps[static_cast<size_t>(i)].size()) {
        toks.assign(1, steps[static_cast<size_t>(i)][next_step[static_cast<size_t>(i)]]);
        b.decode = true;
        b.outputs = 1;
      } else {
        continue;
      }
      Grow(*pool, s, s.cached + static_cast<int64_t>(toks.size()), rng);
      b.tokens = toks;
      b.start = s.cached;
      b.blocks = s.blocks;
      batch.push_back(b);
      who.push_back(i);
    }
    if (batch.empty()) break;
    std::shuffle(batch.begin(), batch.end(), rng);  // order within a batch must not matter either
    // Recover who is where after the shuffle through the tokens span's data pointer.
    std::vector<int> order;
    for (const BatchSequence& b : batch)
      for (int i = 0; i < kSeqs; ++i)
        if (b.tokens.data() == step_tokens[static_cast<size_t>(i)].data()) order.push_back(i);
    ASSERT_TRUE(m.ForwardBatch(batch, *pool, &logits).ok());
    int64_t row = 0;
    for (size_t j = 0; j < batch.size(); ++j) {
      const int i = order[j];
      Seq& s = seqs[static_cast<size_t>(i)];
      s.cached += static_cast<int64_t>(batch[j].tokens.size());
      if (!batch[j].decode) {
        prompt_done[static_cast<size_t>(i)] += static_cast<int64_t>(batch[j].tokens.size());
        if (batch[j].outputs == 1) {
          ASSERT_TRUE(SameBits(want[static_cast<size_t>(i)][0], logits.data() + row * c.vocab_size, c.vocab_size))
              << "sequence " << i << ": the prompt's last logits differ (step " << step << ")";
          ++row;
        }
      } else {
        const size_t k = ++next_step[static_cast<size_t>(i)];
        ASSERT_TRUE(SameBits(want[static_cast<size_t>(i)][k], logits.data() + row * c.vocab_size, c.vocab_size))
            << "sequence " << i << ": decode step " << k << " differs (step " << step << ")";
        ++row;
      }
    }
  }
  for (int i = 0; i < kSeqs; ++i) EXPECT_EQ(next_step[static_cast<size_t>(i)], static_cast<size_t>(kSteps)) << i;
}

INSTANTIATE_TEST_SUITE_P(Models, RaggedBatchTest,
                         ::testing::Values("fixtures/llama", "fixtures/gpt2", "fixtures/qwen3", "fixtures/mistral",
                                           "models/fg-target", "gguf/fg-target.q8_0.gguf"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string name = info.param;
                           for (char& ch : name)
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return name;
                         });

TEST(RaggedBatch, BadBatchesAreRefusedWithoutWriting) {
  auto loaded = LoadModel(SharedPath("fixtures/llama"), &Pool());
  ASSERT_TRUE(loaded.ok());
  Model& m = **loaded;
  const ModelConfig& c = m.config();
  auto pool = KvBlockPool::Create({c.n_layer, c.n_kv_head, c.head_dim, 16, 4, DType::kF32});
  ASSERT_TRUE(pool.ok());
  std::vector<float> logits;
  const std::vector<int32_t> toks = {1, 2, 3}, bad = {1, 999};
  const std::vector<int32_t> one_block = {0};
  EXPECT_FALSE(m.ForwardBatch({}, *pool, &logits).ok());
  BatchSequence b{toks, 0, one_block, false, 1};
  EXPECT_TRUE(m.ForwardBatch({&b, 1}, *pool, &logits).ok());
  BatchSequence short_table{toks, 15, one_block, false, 1};  // 18 slots, 16 in the table
  EXPECT_FALSE(m.ForwardBatch({&short_table, 1}, *pool, &logits).ok());
  BatchSequence out_of_vocab{bad, 0, one_block, false, 1};
  EXPECT_FALSE(m.ForwardBatch({&out_of_vocab, 1}, *pool, &logits).ok());
  BatchSequence too_many_outputs{toks, 0, one_block, false, 4};
  EXPECT_FALSE(m.ForwardBatch({&too_many_outputs, 1}, *pool, &logits).ok());
}

}  // namespace
}  // namespace fastgen
