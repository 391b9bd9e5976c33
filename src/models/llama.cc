#include "models/llama.h"

#include <cmath>
#include <optional>

#include "models/rope_params.h"
#include "models/weights.h"
#include "ops/ops.h"

namespace fastgen {
namespace {

struct LlamaLayer {
  std::vector<float> attn_norm;        // [d_model]
  TensorView wq, wk, wv;               // [n_head * head_dim, d_model], [n_kv_head * head_dim, d_model] x2
  std::optional<std::vector<float>> bq, bk, bv;  // [n_head * head_dim], [n_kv_head * head_dim] x2 (Qwen2)
  std::optional<std::vector<float>> q_norm, k_norm;  // [head_dim] (Qwen3)
  TensorView wo;                       // [d_model, n_head * head_dim]
  std::vector<float> ffn_norm;         // [d_model]
  TensorView w_gate, w_up;             // [d_ff, d_model]
  TensorView w_down;                   // [d_model, d_ff]
};

// Activations of one batch; grown to the largest batch seen and reused, so decoding allocates
// nothing after the first token.
struct Workspace {
  std::vector<float> x;       // [n, d_model] residual stream
  std::vector<float> h;       // [n, d_model] normed input of a block
  std::vector<float> q;       // [n, n_head * head_dim]
  std::vector<float> att;     // [n, n_head * head_dim] attention output
  std::vector<float> gate;    // [n, d_ff]
  std::vector<float> up;      // [n, d_ff]

  void Reserve(const ModelConfig& c, int64_t n) {
    auto grow = [](auto& v, int64_t size) {
      if (static_cast<int64_t>(v.size()) < size) v.resize(static_cast<size_t>(size));
    };
    grow(x, n * c.d_model);
    grow(h, n * c.d_model);
    grow(q, n * c.n_head * c.head_dim);
    grow(att, n * c.n_head * c.head_dim);
    grow(gate, n * c.d_ff);
    grow(up, n * c.d_ff);
  }
};

class LlamaModel final : public Model {
 public:
  LlamaModel(std::unique_ptr<Checkpoint> ckpt, ThreadPool* pool) : Model(std::move(ckpt), pool) {}

  Status Bind() {
    const ModelConfig& c = config();
    WeightBinder b(*ckpt_);
    const int64_t d = c.d_model, hd = c.head_dim, q_dim = c.n_head * hd, kv_dim = c.n_kv_head * hd;
    FG_ASSIGN_OR_RETURN(tok_embd_, b.Matrix(Role::kTokenEmbd, 0, {c.vocab_size, d}));
    FG_ASSIGN_OR_RETURN(output_norm_, b.Vector(Role::kOutputNorm, 0, d));
    FG_ASSIGN_OR_RETURN(auto output, b.OptionalMatrix(Role::kOutput, 0, {c.vocab_size, d}));
    // Tied embeddings: the output projection reads the embedding table.
    if (!output && !c.tie_embeddings)
      return NotFound(ckpt_->path + ": missing tensor '" +
                      TensorName(c.arch, ckpt_->format, Role::kOutput) +
                      "' (the config does not tie it to the embedding)");
    output_ = output ? *output : tok_embd_;
    FG_ASSIGN_OR_RETURN(auto freq_factors, b.OptionalVector(Role::kRopeFreqs, 0, c.rope_dims / 2));
    rope_ = MakeRopeParams(c, freq_factors ? &*freq_factors : nullptr);

    layers_.resize(static_cast<size_t>(c.n_layer));
    for (int64_t l = 0; l < c.n_layer; ++l) {
      LlamaLayer& L = layers_[static_cast<size_t>(l)];
      FG_ASSIGN_OR_RETURN(L.attn_norm, b.Vector(Role::kAttnNorm, l, d));
      if (c.arch == Arch::kPhi3) {
        // Phi-3's qkv_proj stacks q, k and v rows; views split it without copying.
        FG_ASSIGN_OR_RETURN(TensorView qkv, b.Matrix(Role::kAttnQkv, l, {q_dim + 2 * kv_dim, d}));
        L.wq = qkv.RowSlice(0, q_dim, qkv.name + "[q]");
        L.wk = qkv.RowSlice(q_dim, kv_dim, qkv.name + "[k]");
        L.wv = qkv.RowSlice(q_dim + kv_dim, kv_dim, qkv.name + "[v]");
        FG_ASSIGN_OR_RETURN(TensorView gate_up, b.Matrix(Role::kFfnGateUp, l, {2 * c.d_ff, d}));
        L.w_gate = gate_up.RowSlice(0, c.d_ff, gate_up.name + "[gate]");
        L.w_up = gate_up.RowSlice(c.d_ff, c.d_ff, gate_up.name + "[up]");
      } else {
        FG_ASSIGN_OR_RETURN(L.wq, b.Matrix(Role::kAttnQ, l, {q_dim, d}));
        FG_ASSIGN_OR_RETURN(L.wk, b.Matrix(Role::kAttnK, l, {kv_dim, d}));
        FG_ASSIGN_OR_RETURN(L.wv, b.Matrix(Role::kAttnV, l, {kv_dim, d}));
        FG_ASSIGN_OR_RETURN(L.w_gate, b.Matrix(Role::kFfnGate, l, {c.d_ff, d}));
        FG_ASSIGN_OR_RETURN(L.w_up, b.Matrix(Role::kFfnUp, l, {c.d_ff, d}));
      }
      // Tensors the configuration declares are required: a checkpoint without them would
      // otherwise run as a different model without a word.
      auto vec = [&](Role role, int64_t size, bool required) -> Expected<std::optional<std::vector<float>>> {
        if (!required) return b.OptionalVector(role, l, size);
        FG_ASSIGN_OR_RETURN(std::vector<float> v, b.Vector(role, l, size));
        return std::optional<std::vector<float>>(std::move(v));
      };
      FG_ASSIGN_OR_RETURN(L.bq, vec(Role::kAttnQBias, q_dim, c.attention_bias));
      FG_ASSIGN_OR_RETURN(L.bk, vec(Role::kAttnKBias, kv_dim, c.attention_bias));
      FG_ASSIGN_OR_RETURN(L.bv, vec(Role::kAttnVBias, kv_dim, c.attention_bias));
      FG_ASSIGN_OR_RETURN(L.q_norm, vec(Role::kAttnQNorm, hd, c.arch == Arch::kQwen3));
      FG_ASSIGN_OR_RETURN(L.k_norm, vec(Role::kAttnKNorm, hd, c.arch == Arch::kQwen3));
      FG_ASSIGN_OR_RETURN(L.wo, b.Matrix(Role::kAttnOut, l, {d, q_dim}));
      FG_ASSIGN_OR_RETURN(L.ffn_norm, b.Vector(Role::kFfnNorm, l, d));
      FG_ASSIGN_OR_RETURN(L.w_down, b.Matrix(Role::kFfnDown, l, {d, c.d_ff}));
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
    const int64_t d = c.d_model, hd = c.head_dim, q_dim = c.n_head * hd, kv_dim = c.n_kv_head * hd;
    const float eps = static_cast<float>(c.norm_eps);
    const bool plus_one = c.norm_weight_plus_one;
    ws_.Reserve(c, n);
    float* x = ws_.x.data();  // [n, d]
    float* h = ws_.h.data();  // [n, d]
    const int32_t* pos = plan.positions.data();  // [n]
    const AttentionShape attn{c.n_head, c.n_kv_head, hd, c.sliding_window,
                              static_cast<float>(1.0 / std::sqrt(static_cast<double>(hd)))};

    ops::Embed(ctx, tok_embd_, tokens.data(), n, x);
    if (c.arch == Arch::kGemma)  // Gemma scales embeddings by sqrt(d_model), rounded to float32
      ops::Scale(ctx, x, static_cast<float>(std::sqrt(static_cast<double>(d))), n * d);

    for (int64_t l = 0; l < c.n_layer; ++l) {
      if (plan.skip[static_cast<size_t>(l)]) continue;
      const LlamaLayer& L = layers_[static_cast<size_t>(l)];
      // Attention block. K and V are written straight into the sequence's cache rows (one
      // sequence, F32 cache) or staged and converted into each sequence's slots after RoPE.
      const KvRows kv_rows = NewKvRows(plan, kv, l);
      float* k = kv_rows.k;                      // [n, n_kv_head, head_dim]
      float* v = kv_rows.v;                      // [n, n_kv_head, head_dim]
      float* q = ws_.q.data();                   // [n, n_head, head_dim]
      ops::RmsNorm(ctx, x, L.attn_norm.data(), n, d, eps, plus_one, h);
      ops::MatMulGroup(ctx, {{&L.wq, q, q_dim}, {&L.wk, k, kv_dim}, {&L.wv, v, kv_dim}}, h, n);
      if (L.bq) ops::AddBias(ctx, q, L.bq->data(), n, q_dim, q_dim);
      if (L.bk) ops::AddBias(ctx, k, L.bk->data(), n, kv_dim, kv_dim);
      if (L.bv) ops::AddBias(ctx, v, L.bv->data(), n, kv_dim, kv_dim);
      if (L.q_norm) ops::RmsNorm(ctx, q, L.q_norm->data(), n * c.n_head, hd, eps, plus_one, q);
      if (L.k_norm) ops::RmsNorm(ctx, k, L.k_norm->data(), n * c.n_kv_head, hd, eps, plus_one, k);
      ops::Rope(ctx, q, n, c.n_head, hd, pos, rope_);
      ops::Rope(ctx, k, n, c.n_kv_head, hd, pos, rope_);
      CommitKvRows(plan, kv, l, kv_rows);
      Attend(ctx, plan, kv, l, attn, q, ws_.att.data());
      ops::MatMul(ctx, L.wo, ws_.att.data(), n, h);  // h = attention output projected to [n, d]
      ops::Add(ctx, x, h, n * d);

      // Gated feed-forward block: down(act(gate(h)) * up(h)).
      ops::RmsNorm(ctx, x, L.ffn_norm.data(), n, d, eps, plus_one, h);
      ops::MatMulGroup(ctx, {{&L.w_gate, ws_.gate.data(), c.d_ff}, {&L.w_up, ws_.up.data(), c.d_ff}}, h, n);
      if (c.activation == Activation::kSilu)
        ops::SiluMul(ctx, ws_.gate.data(), ws_.up.data(), n, c.d_ff, c.d_ff, c.d_ff);
      else
        ops::GeluTanhMul(ctx, ws_.gate.data(), ws_.up.data(), n, c.d_ff, c.d_ff, c.d_ff);
      ops::MatMul(ctx, L.w_down, ws_.gate.data(), n, h);
      ops::Add(ctx, x, h, n * d);
    }

    // Only the rows whose output is wanted go through the final norm and the vocabulary
    // projection, the largest matmul of a small model.
    const int64_t rows = static_cast<int64_t>(plan.output_rows.size());
    if (rows == 0) return;
    ops::RmsNorm(ctx, OutputRows(plan, x, d), output_norm_.data(), rows, d, eps, plus_one, h);
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
    for (LlamaLayer& L : layers_)
      for (TensorView* w : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down}) m.push_back(w);
    m.push_back(&output_);
    return m;
  }

 private:
  TensorView tok_embd_;              // [vocab, d_model]
  TensorView output_;                // [vocab, d_model] (the embedding when tied)
  std::vector<float> output_norm_;   // [d_model]
  kernels::RopeParams rope_;
  std::vector<LlamaLayer> layers_;
  Workspace ws_;
};

}  // namespace

Expected<std::unique_ptr<Model>> CreateLlamaFamilyModel(std::unique_ptr<Checkpoint> ckpt,
                                                        ThreadPool* pool) {
  auto model = std::make_unique<LlamaModel>(std::move(ckpt), pool);
  FG_RETURN_IF_ERROR(model->Bind());
  return std::unique_ptr<Model>(std::move(model));
}

}  // namespace fastgen
