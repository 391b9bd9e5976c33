// Proposer without a second model: Jacobi / lookahead decoding (Santilli et al. 2023; Fu et al.
// 2024). A window of guessed future tokens rides along in every verification pass; the target's
// predictions at the guessed positions become the next guess (a Jacobi fixed-point iteration,
// which converges to the greedy continuation), and the n-grams those iterations produce —
// together with the n-grams of the committed text — fill a pool from which candidate
// continuations of the last token are drafted as further tree branches.
//
// Sampling (Speculative Jacobi Decoding, Teng et al. 2024): the next iterate is *sampled* from
// the target's distributions at the guessed positions (every sampler transform applied, the
// proposer's own random stream), and each guessed token carries the distribution q it was drawn
// from, so the verifier's speculative-sampling rule keeps it with probability min(1, p/q) instead
// of p(x) for a one-hot guess — lossless, and far likelier to accept. Pool n-grams, and the
// first iterate (copied from the context), stay deterministic (q one-hot).
#pragma once

#include <memory>
#include <unordered_map>
#include <vector>

#include "decoding/sampler.h"
#include "decoding/speculative/proposer.h"

namespace fastgen::speculative {

struct JacobiOptions {
  int32_t window = 5;          // guessed tokens carried per step (the Jacobi branch)
  int32_t ngram = 4;           // pool n-gram length (key token + ngram - 1 continuation)
  int32_t pool_per_key = 8;    // most recent n-grams kept per key token
  int32_t candidates = 3;      // pool n-grams drafted per step (greedy; sampling drafts chains)
};

class JacobiProposer final : public Proposer {
 public:
  explicit JacobiProposer(JacobiOptions options) : opts_(options) {}

  std::string_view name() const override { return "jacobi"; }
  Status Start(const GenerationSetup& setup) override;
  Status Propose(const ProposeRequest& request, Draft* draft) override;
  bool WantsVerification() const override { return true; }
  void ObserveVerification(const Verification& v) override;

 private:
  void AddNgram(const std::vector<int32_t>& gram);
  void AddContextNgrams(std::span<const int32_t> context);

  JacobiOptions opts_;
  std::unique_ptr<Sampler> sampler_; // sampling mode only: draws the next iterate
  std::vector<int32_t> context_;     // the committed tokens of the last Propose (penalty history)
  std::vector<int32_t> guess_;       // [window] the Jacobi iterate
  // Sampling mode: guess_q_[i] is the distribution guess_[i] was drawn from; empty when the
  // iterate is deterministic (the first one).
  std::vector<std::vector<float>> guess_q_;
  std::vector<int32_t> guess_nodes_; // draft index of guess_[i] in this step's draft
  int64_t indexed_ = 0;              // context tokens whose n-grams are in the pool
  // key token -> continuations ([ngram - 1] each), most recent last.
  std::unordered_map<int32_t, std::vector<std::vector<int32_t>>> pool_;
};

}  // namespace fastgen::speculative
