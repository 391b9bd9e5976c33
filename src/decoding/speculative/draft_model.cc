#include "decoding/speculative/draft_model.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "kernels/elementwise.h"

namespace fastgen::speculative {
namespace {

struct Ranked {
  float prob;
  int32_t id;
};

// The k most likely ids of softmax(row), best first (ties to the lower id). Ranked on the
// logits (softmax is monotonic); only the k kept get a probability, from one vectorized
// max / sum-of-exp pass (an exp in double per vocabulary entry cost about what the draft
// model's forward pass does, once per expanded tree node).
void TopK(std::span<const float> row, int32_t k, std::vector<Ranked>* out) {
  out->clear();
  const auto better = [](const Ranked& a, const Ranked& b) { return a.prob > b.prob || (a.prob == b.prob && a.id < b.id); };
  for (size_t i = 0; i < row.size(); ++i) {
    const Ranked r{row[i], static_cast<int32_t>(i)};  // .prob holds the logit until the end
    if (static_cast<int32_t>(out->size()) < k) {
      out->push_back(r);
      std::push_heap(out->begin(), out->end(), better);  // min-heap on "better": worst on top
    } else if (better(r, out->front())) {
      std::pop_heap(out->begin(), out->end(), better);
      out->back() = r;
      std::push_heap(out->begin(), out->end(), better);
    }
  }
  std::sort_heap(out->begin(), out->end(), better);
  float max = 0.0f;
  const float sum = kernels::MaxSumExp(row.data(), static_cast<int64_t>(row.size()), &max);
  for (Ranked& r : *out) r.prob = sum > 0.0f ? std::exp(r.prob - max) / sum : 0.0f;
}

// softmax(row)'s largest probability: 1 / Σ exp(row − max), one vectorized pass (the draft's
// confidence is read once per drafted token; TopK's exp in double over the vocabulary cost
// fg-draft about as much as its forward pass).
float TopProb(std::span<const float> row) {
  float max = 0.0f;
  const float sum = kernels::MaxSumExp(row.data(), static_cast<int64_t>(row.size()), &max);
  return sum > 0.0f ? 1.0f / sum : 0.0f;
}

}  // namespace

Status DraftModelProposer::Start(const GenerationSetup& setup) {
  const ModelConfig& c = model_.config();
  if (c.vocab_size != setup.vocab_size)
    return InvalidArgument("the draft model's vocabulary (" + std::to_string(c.vocab_size) +
                           ") differs from the target's (" + std::to_string(setup.vocab_size) +
                           "); draft and target must share the tokenizer");
  if (opts_.max_length < 1 || opts_.initial_length < 1 || opts_.tree_width < 1)
    return InvalidArgument("draft lengths and tree width must be >= 1");
  if (opts_.vocab_prefix < 0 || opts_.vocab_prefix > c.vocab_size)
    return InvalidArgument("draft vocabulary prefix " + std::to_string(opts_.vocab_prefix) +
                           " outside the vocabulary's " + std::to_string(c.vocab_size) + " ids");
  FG_RETURN_IF_ERROR(ValidateSamplerOptions(setup.sampler, setup.vocab_size));
  for (int32_t l : opts_.skip_layers)
    if (l < 0 || l >= c.n_layer)
      return InvalidArgument("skipped layer " + std::to_string(l) + " outside the model's layers [0, " +
                             std::to_string(c.n_layer) + ")");
  if (static_cast<int64_t>(opts_.skip_layers.size()) >= c.n_layer)
    return InvalidArgument("layer skipping must keep at least one layer");
  shared_ = !opts_.skip_layers.empty() && setup.target == &model_ ? setup.target_cache : nullptr;
  if (shared_) {
    kv_.reset();  // a cache left from a generation without the target's
  } else {
    if (!kv_ || kv_->capacity() < setup.context_capacity + 1) {
      FG_ASSIGN_OR_RETURN(KvCache kv, model_.NewKvCache(setup.context_capacity + 1));
      kv_.emplace(std::move(kv));
    }
    kv_->Clear();
  }
  cached_.clear();
  SamplerOptions so = setup.sampler;
  so.seed = setup.sampler.seed ^ 0x9e3779b97f4a7c15ull;  // its own stream, reproducible per seed
  sampler_ = std::make_unique<Sampler>(so, setup.vocab_size);
  greedy_ = sampler_->greedy();
  tree_ = opts_.tree_width > 1 && greedy_;
  length_ = std::min(opts_.initial_length, opts_.max_length);
  return Status::Ok();
}

Status DraftModelProposer::Sync(std::span<const int32_t> context) {
  BatchLayout layout = Layout();
  if (shared_) return model_.Forward(context.last(1), layout, *shared_, LogitsMode::kLast, &logits_);
  size_t common = 0;
  while (common < cached_.size() && common < context.size() && cached_[common] == context[common]) ++common;
  // The last context token always runs: its logits start the draft.
  common = std::min(common, context.size() - 1);
  kv_->Truncate(static_cast<int64_t>(common));
  cached_.resize(common);
  FG_RETURN_IF_ERROR(model_.Forward(context.subspan(common), layout, *kv_, LogitsMode::kLast, &logits_));
  cached_.insert(cached_.end(), context.begin() + static_cast<std::ptrdiff_t>(common), context.end());
  return Status::Ok();
}

Status DraftModelProposer::Propose(const ProposeRequest& request, Draft* draft) {
  if (request.context.empty() || request.max_nodes < 1) return Status::Ok();
  // The target's cache is handed back as it came: verification writes from this slot on.
  const int64_t base = shared_ ? shared_->length() : 0;
  Status status = Sync(request.context);
  if (status.ok()) {
    history_.assign(request.context.begin(), request.context.end());
    // Trees are top-k (deterministic) children: greedy only, since a sampled chain with its q
    // is accepted with min(1, p/q), more often than a one-hot child's p(x).
    status = tree_ ? ProposeTree(request, draft) : ProposeChain(request, draft);
  }
  if (shared_) shared_->Truncate(base);
  return status;
}

Status DraftModelProposer::ProposeChain(const ProposeRequest& request, Draft* draft) {
  const int32_t n = std::min(request.max_nodes, Plannable().max > 0 ? opts_.max_length : length_);
  const int64_t vocab = model_.config().vocab_size;
  BatchLayout layout = Layout();
  for (int32_t i = 0; i < n; ++i) {
    const std::span<const float> row(logits_.data(), static_cast<size_t>(vocab));
    if (opts_.min_confidence > 0 && TopProb(row) < opts_.min_confidence) break;
    int32_t token;
    if (greedy_) {
      token = sampler_->Sample(row, history_);
    } else {
      // q: the same transforms the target's sampler applies, so p/q compares like with like.
      sampler_->Distribution(row, history_, &probs_);
      token = sampler_->SampleFrom(probs_);
      if (token < 0) break;
      draft->q.push_back(probs_);
    }
    draft->Push(token, i - 1);
    history_.push_back(token);
    if (i + 1 == n) break;
    FG_RETURN_IF_ERROR(model_.Forward(std::span<const int32_t>(&token, 1), layout, cache(), LogitsMode::kLast, &logits_));
    if (!shared_) cached_.push_back(token);
  }
  return Status::Ok();
}

Status DraftModelProposer::ProposeTree(const ProposeRequest& request, Draft* draft) {
  const int64_t vocab = model_.config().vocab_size;
  KvCache& kv = cache();
  const int64_t tree_start = kv.length();
  struct Candidate {
    float path_prob;
    int32_t id;
    int32_t parent;  // draft index, -1 = root
  };
  std::vector<float> path_prob;          // [nodes] path probability of each draft node
  std::vector<int32_t> level = {-1};     // draft indices whose rows in logits_ are expanded next
  std::vector<Candidate> cands;
  std::vector<Ranked> top;
  std::vector<int32_t> batch;
  BatchLayout layout = Layout();
  layout.tree_start = tree_start;
  for (int32_t depth = 0; depth < length_; ++depth) {
    const int32_t room = request.max_nodes - static_cast<int32_t>(draft->size());
    if (room <= 0) break;
    cands.clear();
    for (size_t r = 0; r < level.size(); ++r) {
      const int32_t parent = level[r];
      const float base = parent < 0 ? 1.0f : path_prob[static_cast<size_t>(parent)];
      TopK(std::span<const float>(logits_.data() + r * static_cast<size_t>(vocab), static_cast<size_t>(vocab)),
           opts_.tree_width, &top);
      for (const Ranked& t : top) {
        const float pp = base * t.prob;
        // The most likely child always enters at the root, so a tree never drafts less than a chain.
        if (pp >= opts_.min_path_prob || (parent < 0 && &t == &top.front())) cands.push_back({pp, t.id, parent});
      }
    }
    if (cands.empty()) break;
    std::sort(cands.begin(), cands.end(), [](const Candidate& a, const Candidate& b) { return a.path_prob > b.path_prob; });
    cands.resize(std::min<size_t>(cands.size(), static_cast<size_t>(std::min(room, opts_.tree_width))));
    // Keep parents before children and siblings together: order by parent index.
    std::stable_sort(cands.begin(), cands.end(), [](const Candidate& a, const Candidate& b) { return a.parent < b.parent; });
    level.clear();
    batch.clear();
    for (const Candidate& cand : cands) {
      level.push_back(static_cast<int32_t>(draft->size()));
      batch.push_back(cand.id);
      draft->Push(cand.id, cand.parent);
      path_prob.push_back(cand.path_prob);
    }
    const bool last = depth + 1 == length_ || static_cast<int32_t>(draft->size()) >= request.max_nodes;
    if (last) break;
    // Every draft node except this level is already in the draft cache, in draft order.
    layout.parents = draft->parents;
    FG_RETURN_IF_ERROR(model_.Forward(batch, layout, kv, LogitsMode::kAll, &logits_));
  }
  // The tree's rows are not a chain; drop them. The next Sync re-runs the accepted path.
  kv.Truncate(tree_start);
  return Status::Ok();
}

BatchLayout DraftModelProposer::Layout() const {
  BatchLayout layout;
  layout.skip_layers = opts_.skip_layers;
  layout.head_rows = opts_.vocab_prefix;
  return layout;
}

PlannableLength DraftModelProposer::Plannable() const {
  if (!opts_.adaptive_length || tree_) return {};
  return {std::min(opts_.initial_length, opts_.max_length), opts_.max_length};
}

void DraftModelProposer::Observe(int32_t drafted, int32_t accepted) {
  if (!opts_.adaptive_length || !tree_) return;
  length_ = accepted >= drafted ? std::min(opts_.max_length, length_ + 2) : std::max(1, length_ - 1);
}

}  // namespace fastgen::speculative
