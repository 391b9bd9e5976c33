#include "models/gpt2.h"

#include <cmath>

#include "models/weights.h"
#include "ops/ops.h"

namespace fastgen {
namespace {

struct Gpt2Layer {
  std::vector<float> ln1_w, ln1_b;  // [d]
  TensorView wq, wk, wv;            // [d, d] each: row slices of c_attn ([3d, d] after transpose)
  std::vector<float> b_qkv;         // [3d]
  TensorView w_proj;                // [d, d]
  std::vector<float> b_proj;        // [d]
  std::vector<float> ln2_w, ln2_b;  // [d]
  TensorView w_fc;                  // [d_ff, d]
  std::vector<float> b_fc;          // [d_ff]
  TensorView w_fc_proj;             // [d, d_ff]
  std::vector<float> b_fc_proj;     // [d]
};

class Gpt2Model final : public Model {
 public:
  Gpt2Model(std::unique_ptr<Checkpoint> ckpt, ThreadPool* pool) : Model(std::move(ckpt), pool) {}

  Status Bind() {
    const ModelConfig& c = config();
    WeightBinder b(*ckpt_);
    const int64_t d = c.d_model;
    FG_ASSIGN_OR_RETURN(wte_, b.Matrix(Role::kTokenEmbd, 0, {c.vocab_size, d}));
    FG_ASSIGN_OR_RETURN(wpe_, b.Matrix(Role::kPositionEmbd, 0, {c.max_context, d}));
    FG_ASSIGN_OR_RETURN(lnf_w_, b.Vector(Role::kOutputNorm, 0, d));
    FG_ASSIGN_OR_RETURN(lnf_b_, b.Vector(Role::kOutputNormBias, 0, d));
    FG_ASSIGN_OR_RETURN(auto output, b.OptionalMatrix(Role::kOutput, 0, {c.vocab_size, d}));
    output_ = output ? *output : wte_;
    layers_.resize(static_cast<size_t>(c.n_layer));
    for (int64_t l = 0; l < c.n_layer; ++l) {
      Gpt2Layer& L = layers_[static_cast<size_t>(l)];
      FG_ASSIGN_OR_RETURN(L.ln1_w, b.Vector(Role::kAttnNorm, l, d));
      FG_ASSIGN_OR_RETURN(L.ln1_b, b.Vector(Role::kAttnNormBias, l, d));
      FG_ASSIGN_OR_RETURN(TensorView qkv, b.TransposedMatrix(Role::kAttnQkv, l, 3 * d, d));
      L.wq = qkv.RowSlice(0, d, qkv.name + "[q]");
      L.wk = qkv.RowSlice(d, d, qkv.name + "[k]");
      L.wv = qkv.RowSlice(2 * d, d, qkv.name + "[v]");
      FG_ASSIGN_OR_RETURN(L.b_qkv, b.Vector(Role::kAttnQkvBias, l, 3 * d));
      FG_ASSIGN_OR_RETURN(L.w_proj, b.TransposedMatrix(Role::kAttnOut, l, d, d));
      FG_ASSIGN_OR_RETURN(L.b_proj, b.Vector(Role::kAttnOutBias, l, d));
      FG_ASSIGN_OR_RETURN(L.ln2_w, b.Vector(Role::kFfnNorm, l, d));
      FG_ASSIGN_OR_RETURN(L.ln2_b, b.Vector(Role::kFfnNormBias, l, d));
      FG_ASSIGN_OR_RETURN(L.w_fc, b.TransposedMatrix(Role::kFfnUp, l, c.d_ff, d));
      FG_ASSIGN_OR_RETURN(L.b_fc, b.Vector(Role::kFfnUpBias, l, c.d_ff));
      FG_ASSIGN_OR_RETURN(L.w_fc_proj, b.TransposedMatrix(Role::kFfnDown, l, d, c.d_ff));
      FG_ASSIGN_OR_RETURN(L.b_fc_proj, b.Vector(Role::kFfnDownBias, l, d));
    }
    return b.CheckAllUsed();
  }

 protected:
  void ForwardImpl(const ForwardPlan& plan, KvStorage& kv, std::vector<float>* out) override {
    const ModelConfig& c = config();
    ops::Context ctx{pool_};
    ctx.observe_inputs = input_observer_;
    ctx.decode_rows = plan.decode_rows;
    const std::span<const int32_t> tokens = plan.tokens;
    const int64_t n = plan.n();
    const int64_t d = c.d_model;
    const AttentionShape attn{c.n_head, c.n_head, c.head_dim, 0,
                              static_cast<float>(1.0 / std::sqrt(static_cast<double>(c.head_dim)))};
    const float eps = static_cast<float>(c.norm_eps);
    auto grow = [](auto& v, int64_t size) {
      if (static_cast<int64_t>(v.size()) < size) v.resize(static_cast<size_t>(size));
    };
    grow(x_, n * d);
    grow(h_, n * d);
    grow(q_, n * d);
    grow(att_, n * d);
    grow(ff_, n * c.d_ff);
    grow(tmp_, n * d);
    float* x = x_.data();  // [n, d] residual stream
    float* h = h_.data();  // [n, d]

    const int32_t* pos = plan.positions.data();  // [n]
    ops::Embed(ctx, wte_, tokens.data(), n, x);
    ops::Embed(ctx, wpe_, pos, n, tmp_.data());
    ops::Add(ctx, x, tmp_.data(), n * d);

    for (int64_t l = 0; l < c.n_layer; ++l) {
      if (plan.skip[static_cast<size_t>(l)]) continue;
      const Gpt2Layer& L = layers_[static_cast<size_t>(l)];
      const KvRows kv_rows = NewKvRows(plan, kv, l);
      float* k = kv_rows.k;  // [n, n_head, head_dim]
      float* v = kv_rows.v;  // [n, n_head, head_dim]
      ops::LayerNorm(ctx, x, L.ln1_w.data(), L.ln1_b.data(), n, d, eps, h);
      ops::MatMul(ctx, L.wq, h, n, q_.data());
      ops::MatMul(ctx, L.wk, h, n, k);
      ops::MatMul(ctx, L.wv, h, n, v);
      ops::AddBias(ctx, q_.data(), L.b_qkv.data(), n, d, d);
      ops::AddBias(ctx, k, L.b_qkv.data() + d, n, d, d);
      ops::AddBias(ctx, v, L.b_qkv.data() + 2 * d, n, d, d);
      CommitKvRows(plan, kv, l, kv_rows);
      Attend(ctx, plan, kv, l, attn, q_.data(), att_.data());
      ops::MatMul(ctx, L.w_proj, att_.data(), n, h);
      ops::AddBias(ctx, h, L.b_proj.data(), n, d, d);
      ops::Add(ctx, x, h, n * d);

      ops::LayerNorm(ctx, x, L.ln2_w.data(), L.ln2_b.data(), n, d, eps, h);
      ops::MatMul(ctx, L.w_fc, h, n, ff_.data());
      ops::AddBias(ctx, ff_.data(), L.b_fc.data(), n, c.d_ff, c.d_ff);
      ops::GeluTanh(ctx, ff_.data(), n * c.d_ff);
      ops::MatMul(ctx, L.w_fc_proj, ff_.data(), n, h);
      ops::AddBias(ctx, h, L.b_fc_proj.data(), n, d, d);
      ops::Add(ctx, x, h, n * d);
    }
    const int64_t rows = static_cast<int64_t>(plan.output_rows.size());
    if (rows == 0) return;
    ops::LayerNorm(ctx, OutputRows(plan, x, d), lnf_w_.data(), lnf_b_.data(), rows, d, eps, h);
    if (plan.output_hidden) {
      out->assign(h, h + rows * d);
      return;
    }
    out->resize(static_cast<size_t>(rows * c.vocab_size));
    ctx.decode_rows = plan.head_decode_rows;
    ProjectHead(ctx, output_, h, rows, plan.head_rows, out->data());
  }

  void ProjectImpl(const float* hidden, int64_t rows, float* logits) override {
    ops::Context ctx{pool_};
    ctx.observe_inputs = input_observer_;
    ctx.decode_rows = rows;  // logits always from the decode kernels (BatchLayout::Rows)
    ops::MatMul(ctx, output_, hidden, rows, logits);
  }

  std::vector<TensorView*> Matrices() override {
    std::vector<TensorView*> m;
    for (Gpt2Layer& L : layers_)
      for (TensorView* w : {&L.wq, &L.wk, &L.wv, &L.w_proj, &L.w_fc, &L.w_fc_proj}) m.push_back(w);
    m.push_back(&output_);
    return m;
  }

 private:
  TensorView wte_;   // [vocab, d]
  TensorView wpe_;   // [max_context, d]
  TensorView output_;  // [vocab, d]
  std::vector<float> lnf_w_, lnf_b_;  // [d]
  std::vector<Gpt2Layer> layers_;
  // Batch activations, grown once and reused.
  std::vector<float> x_, h_, q_, att_, ff_, tmp_;
};

}  // namespace

Expected<std::unique_ptr<Model>> CreateGpt2Model(std::unique_ptr<Checkpoint> ckpt, ThreadPool* pool) {
  auto model = std::make_unique<Gpt2Model>(std::move(ckpt), pool);
  FG_RETURN_IF_ERROR(model->Bind());
  return std::unique_ptr<Model>(std::move(model));
}

}  // namespace fastgen
