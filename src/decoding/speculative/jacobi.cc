#include "decoding/speculative/jacobi.h"

#include <algorithm>
#include <iterator>

namespace fastgen::speculative {
namespace {

int32_t Argmax(const float* row, int32_t vocab) {
  return static_cast<int32_t>(std::max_element(row, row + vocab) - row);
}

}  // namespace

Status JacobiProposer::Start(const GenerationSetup& setup) {
  if (opts_.window < 1 || opts_.ngram < 2 || opts_.pool_per_key < 1 || opts_.candidates < 0)
    return InvalidArgument("Jacobi decoding needs window >= 1, n-gram >= 2, pool >= 1, candidates >= 0");
  sampler_.reset();
  if (setup.sampler.temperature > 0.0f) {
    FG_RETURN_IF_ERROR(ValidateSamplerOptions(setup.sampler, setup.vocab_size));
    SamplerOptions so = setup.sampler;
    so.seed = setup.sampler.seed ^ 0x7f4a7c159e3779b9ull;  // its own stream, reproducible per seed
    sampler_ = std::make_unique<Sampler>(so, setup.vocab_size);
  }
  context_.clear();
  guess_q_.clear();
  guess_.clear();
  guess_nodes_.clear();
  pool_.clear();
  indexed_ = 0;
  return Status::Ok();
}

void JacobiProposer::AddNgram(const std::vector<int32_t>& gram) {
  auto& list = pool_[gram.front()];
  const std::vector<int32_t> cont(gram.begin() + 1, gram.end());
  const auto same = std::find(list.begin(), list.end(), cont);
  if (same != list.end()) list.erase(same);  // re-add as most recent
  list.push_back(cont);
  if (static_cast<int32_t>(list.size()) > opts_.pool_per_key) list.erase(list.begin());
}

void JacobiProposer::AddContextNgrams(std::span<const int32_t> context) {
  const auto len = static_cast<int64_t>(context.size());
  const int64_t n = opts_.ngram;
  for (int64_t s = std::max<int64_t>(0, indexed_ - n + 1); s + n <= len; ++s)
    AddNgram(std::vector<int32_t>(context.begin() + s, context.begin() + s + n));
  indexed_ = len;
}

Status JacobiProposer::Propose(const ProposeRequest& request, Draft* draft) {
  const std::span<const int32_t> ctx = request.context;
  if (ctx.empty() || request.max_nodes < 1) return Status::Ok();
  AddContextNgrams(ctx);
  if (guess_.empty()) {
    // A first iterate: the context's last tokens. Any start converges; this one is free.
    const size_t w = std::min(ctx.size(), static_cast<size_t>(opts_.window));
    guess_.assign(ctx.end() - static_cast<std::ptrdiff_t>(w), ctx.end());
    guess_q_.clear();  // copied, not drawn: deterministic (q one-hot)
  }
  // Sampling keeps to chains: the sampled iterate carries q, which only a chain may (Draft::q).
  const bool chain = sampler_ != nullptr;
  int32_t branches = chain ? 1 : opts_.candidates;
  const auto it = pool_.find(ctx.back());
  // Pool branches first (most recent first): they hit far more often than the raw iterate. The
  // guess branch keeps a third of the budget so the iteration (and the pool it feeds) goes on.
  const int32_t guess_room = std::min(static_cast<int32_t>(guess_.size()), std::max(1, request.max_nodes / 3));
  const int32_t pool_budget = chain ? request.max_nodes : std::max(0, request.max_nodes - guess_room);
  if (it != pool_.end()) {
    for (auto g = it->second.rbegin(); g != it->second.rend() && branches > 0; ++g, --branches)
      draft->InsertPath(*g, pool_budget);
  }
  guess_nodes_.clear();
  if (!chain || draft->empty()) guess_nodes_ = draft->InsertPath(guess_, request.max_nodes);
  if (sampler_) {
    context_.assign(ctx.begin(), ctx.end());
    // A sampled iterate (chains only: the draft is exactly the guess prefix) carries its q.
    // Moved, not copied (vocab floats each): the verification of this draft always comes back
    // through ObserveVerification (WantsVerification), which replaces guess_q_.
    if (!guess_q_.empty() && !guess_nodes_.empty()) {
      draft->q.assign(std::make_move_iterator(guess_q_.begin()),
                      std::make_move_iterator(guess_q_.begin() + static_cast<std::ptrdiff_t>(draft->size())));
    }
  }
  return Status::Ok();
}

void JacobiProposer::ObserveVerification(const Verification& v) {
  // y[i]: the target's next token after guess_[0..i] (the row of its node); y_root after the
  // last committed token. Only the guess prefix placed in (and kept in) the draft counts.
  // Greedy: the argmax. Sampling: a draw from the sampler's distribution there (history = the
  // context and the guess up to i), kept in yq[i] as the token's q.
  std::vector<int32_t> y;
  std::vector<std::vector<float>> yq;
  std::vector<int32_t> history = context_;
  auto predict = [&](const float* row) {
    if (!sampler_) return Argmax(row, v.vocab);
    std::vector<float> probs;
    sampler_->Distribution(std::span<const float>(row, static_cast<size_t>(v.vocab)), history, &probs);
    const int32_t token = sampler_->SampleFrom(probs);
    if (token >= 0) yq.push_back(std::move(probs));
    return token;
  };
  for (size_t i = 0; i < guess_nodes_.size(); ++i) {
    const int32_t node = guess_nodes_[i];
    if (node >= static_cast<int32_t>(v.draft.size()) || v.draft.tokens[static_cast<size_t>(node)] != guess_[i]) break;
    history.push_back(guess_[i]);
    const int32_t token = predict(v.logits.data() + static_cast<size_t>(node + 1) * v.vocab);
    if (token < 0) break;
    y.push_back(token);
  }
  // Trajectory n-grams: guess_[i] followed by the target's predictions from there on.
  for (size_t i = 0; i + static_cast<size_t>(opts_.ngram) - 1 <= y.size(); ++i) {
    std::vector<int32_t> gram = {guess_[i]};
    gram.insert(gram.end(), y.begin() + static_cast<std::ptrdiff_t>(i),
                y.begin() + static_cast<std::ptrdiff_t>(i) + opts_.ngram - 1);
    AddNgram(gram);
  }
  // Next iterate: the predictions for the positions after the new last committed token, which
  // sits `committed` tokens deeper; y[i] predicts depth i + 2, so the next guess starts at
  // y[committed - 1]. Positions beyond what this pass predicted keep the last prediction.
  std::vector<int32_t> next;
  const size_t from = static_cast<size_t>(std::max(0, v.committed - 1));
  for (size_t i = from; i < y.size(); ++i) next.push_back(y[i]);
  if (!sampler_) {
    if (next.empty()) next.push_back(Argmax(v.logits.data(), v.vocab));
    while (static_cast<int32_t>(next.size()) < opts_.window) next.push_back(next.back());
    guess_ = std::move(next);
    return;
  }
  // Sampling: every guessed token must have been drawn from its q, so the iterate is not padded
  // with repeats; when this pass predicted nothing past the commit, one draw from row 0 (after
  // the old last token) restarts it.
  guess_q_.assign(std::make_move_iterator(yq.begin() + static_cast<std::ptrdiff_t>(std::min(from, yq.size()))),
                  std::make_move_iterator(yq.end()));
  if (next.empty()) {
    history = context_;
    yq.clear();
    const int32_t token = predict(v.logits.data());
    if (token < 0) {
      guess_.clear();  // nothing drawable: next Propose starts over from the context
      guess_q_.clear();
      return;
    }
    next.push_back(token);
    guess_q_.assign(1, std::move(yq.front()));
  }
  guess_ = std::move(next);
}

}  // namespace fastgen::speculative
