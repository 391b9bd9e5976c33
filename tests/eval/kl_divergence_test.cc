// KL-divergence from saved top-k distributions: the bucketed sum against the exact one, and
// the base file written, read back, checked against the run and refused when corrupt.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include "eval/kl_divergence.h"
#include "models/model.h"
#include "test_util.h"

namespace fastgen::eval {
namespace {

using fastgen::testing::ScratchDir;
using fastgen::testing::SharedPath;

ThreadPool& Pool() {
  static ThreadPool pool(2);
  return pool;
}

double ExactKl(const std::vector<float>& p_logits, const std::vector<float>& q_logits) {
  const double lp = LogSumExp(p_logits), lq = LogSumExp(q_logits);
  double kl = 0;
  for (size_t i = 0; i < p_logits.size(); ++i) {
    const double a = p_logits[i] - lp, b = q_logits[i] - lq;
    kl += std::exp(a) * (a - b);
  }
  return kl;
}

// The base's top-k logits as a record (what the file holds for one position).
struct Record {
  std::vector<int32_t> ids;
  std::vector<float> logits;
  KlBaseRecord view(double lse) const {
    KlBaseRecord r;
    r.log_sum_exp = lse;
    r.ids = ids;
    r.logits = this->logits;
    return r;
  }
};
Record TopK(const std::vector<float>& logits, size_t k) {
  std::vector<int32_t> order(logits.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int32_t>(i);
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
  Record r;
  for (size_t i = 0; i < k; ++i) {
    r.ids.push_back(order[i]);
    r.logits.push_back(logits[static_cast<size_t>(order[i])]);
  }
  return r;
}

TEST(KlDivergence, TopKWithARestBucketBoundsTheExactSumAndMeetsItAtFullK) {
  std::mt19937 rng(3);
  std::normal_distribution<float> n(0, 3);
  const size_t vocab = 500;
  for (int trial = 0; trial < 20; ++trial) {
    std::vector<float> p(vocab), q(vocab);
    for (size_t i = 0; i < vocab; ++i) {
      p[i] = n(rng);
      q[i] = p[i] + 0.3f * n(rng);  // a perturbed copy, like a quantized model
    }
    const double exact = ExactKl(p, q);
    const double lse_p = LogSumExp(p), lse_q = LogSumExp(q);
    const double full = KlComparer::Divergence(TopK(p, vocab).view(lse_p), q, lse_q);
    EXPECT_NEAR(full, exact, 1e-5 * std::max(1.0, exact));
    double prev = 0;
    for (size_t k : {1u, 8u, 64u, 256u}) {
      const double approx = KlComparer::Divergence(TopK(p, k).view(lse_p), q, lse_q);
      EXPECT_LE(approx, exact + 1e-9) << "k=" << k;  // the log-sum inequality
      EXPECT_GE(approx, prev - 1e-9) << "k=" << k;   // refining the buckets only adds
      prev = approx;
    }
    // Identical distributions diverge by nothing.
    EXPECT_NEAR(KlComparer::Divergence(TopK(p, 16).view(lse_p), p, lse_p), 0, 1e-9);
  }
}

// A base written from one model and compared with itself and with a perturbed copy, through
// the perplexity method (as `fastgen perplexity` does).
TEST(KlDivergence, BaseFileRoundTripsAndChecksTheRun) {
  auto base_model = LoadModel(SharedPath("gguf/llama.f32.gguf"), &Pool());
  ASSERT_TRUE(base_model.ok());
  ModelOptions q8;
  q8.weight_type = DType::kQ8_0;
  auto other = LoadModel(SharedPath("gguf/llama.f32.gguf"), &Pool(), q8);
  ASSERT_TRUE(other.ok());
  std::mt19937 rng(11);
  std::vector<int32_t> tokens(200);
  for (auto& t : tokens) t = static_cast<int32_t>(rng() % 256);
  PerplexityOptions o;
  o.ctx = 32;
  KlFileHeader h;
  h.vocab = 256;
  h.ctx = 32;
  h.chunks = static_cast<uint32_t>(PerplexityChunks(200, o));
  h.top_k = 16;
  h.positions = uint64_t{h.chunks} * (32 - 16 - 1);
  h.token_hash = HashTokens(std::span<const int32_t>(tokens).first(h.chunks * 32));
  const std::string path = ScratchDir("kl_test") + "/base.kld";

  auto w = KlBaseWriter::Create(path, h);
  ASSERT_TRUE(w.ok()) << w.status().message();
  auto base = ComputePerplexity(**base_model, tokens, o, [&](const ScoredPosition& p) { return (*w)->Add(p); });
  ASSERT_TRUE(base.ok());
  ASSERT_TRUE((*w)->Finish().ok());

  for (bool same : {true, false}) {
    auto c = KlComparer::Open(path);
    ASSERT_TRUE(c.ok()) << c.status().message();
    ASSERT_TRUE((*c)->CheckMatches(h).ok());
    Model& m = same ? **base_model : **other;
    auto r = ComputePerplexity(m, tokens, o, [&](const ScoredPosition& p) { return (*c)->Add(p); });
    ASSERT_TRUE(r.ok());
    const KlStats s = (*c)->Finish();
    EXPECT_EQ(s.positions, static_cast<int64_t>(h.positions));
    EXPECT_NEAR(s.ppl_base, base->ppl, base->ppl * 1e-6);
    EXPECT_NEAR(s.ppl, r->ppl, r->ppl * 1e-6);
    if (same) {
      EXPECT_NEAR(s.kld_mean, 0, 1e-7);
      EXPECT_EQ(s.same_top, 1.0);
      EXPECT_NEAR(s.ppl_ratio, 1, 1e-6);
    } else {
      EXPECT_GT(s.kld_mean, 0);
      EXPECT_LE(s.kld_median, s.kld_p90);
      EXPECT_LE(s.kld_p90, s.kld_p99);
      EXPECT_LE(s.kld_p99, s.kld_max);
      EXPECT_GT(s.same_top, 0.5);
      EXPECT_NEAR(s.ppl_ratio, r->ppl / base->ppl, 1e-4);
    }
  }

  // Another context, other tokens: refused with what differs.
  auto c = KlComparer::Open(path);
  ASSERT_TRUE(c.ok());
  KlFileHeader run = h;
  run.ctx = 64;
  auto s = (*c)->CheckMatches(run);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("-c 32"), std::string::npos) << s.message();
  run = h;
  run.token_hash ^= 1;
  EXPECT_FALSE((*c)->CheckMatches(run).ok());

  // A truncated file, a file of something else: corrupt, named.
  const std::string cut = ScratchDir("kl_test") + "/cut.kld";
  std::filesystem::copy_file(path, cut);
  std::filesystem::resize_file(cut, std::filesystem::file_size(path) - 3);
  auto bad = KlComparer::Open(cut);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), ErrorCode::kCorruptFile);
  EXPECT_NE(bad.status().message().find("cut.kld"), std::string::npos);
  const std::string junk = ScratchDir("kl_test") + "/junk.kld";
  std::ofstream(junk) << "not a base file at all, but long enough to have a header of the right size";
  bad = KlComparer::Open(junk);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), ErrorCode::kCorruptFile);
  EXPECT_FALSE(KlComparer::Open(ScratchDir("kl_test") + "/missing.kld").ok());
  // A header of zero chunks promising a top-k of 1.7 billion (found by fuzz_kl_base): refused
  // before anything that size is allocated.
  const std::string empty = ScratchDir("kl_test") + "/empty.kld";
  {
    const unsigned char header[] = {'F', 'G', 'K', 'L', 'B', 'A', 'S', 'E', 1, 0, 0, 0, 0x10, 0x88, 0xb2, 0x63,
                                    0x17, 0x56, 0, 0, 0, 0, 0, 0, 0, 0, 0x39, 0x33, 0, 0, 0, 0, 0, 0, 0, 0,
                                    0x3f, 0, 0, 0x80, 0xbf, 0, 0, 0xbf};
    std::ofstream(empty, std::ios::binary).write(reinterpret_cast<const char*>(header), sizeof(header));
  }
  bad = KlComparer::Open(empty);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), ErrorCode::kCorruptFile);
  EXPECT_NE(bad.status().message().find("no scored positions"), std::string::npos) << bad.status().message();
}

}  // namespace
}  // namespace fastgen::eval
