// The public model interface: load a checkpoint, run a batch of tokens through the network
// against a KV cache, get logits. Speculative decoding and the generation loop are built on
// this interface only.
#pragma once

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/aligned.h"
#include "core/status.h"
#include "core/thread_pool.h"
#include "io/checkpoint.h"
#include "kernels/attention.h"
#include "kv/kv_cache.h"
#include "kv/kv_storage.h"
#include "kv/sparse_attention.h"
#include "ops/ops.h"

namespace fastgen {

enum class LogitsMode {
  kLast,  // logits of the last token only: [1, vocab]
  kAll,   // logits of every token of the batch: [n, vocab]
  // The final-normed hidden state of every token, [n, d_model], for ProjectLogits: a verifier
  // then pays the vocabulary projection (the largest matmul of a small model) only for the
  // rows it reads, not for every drafted token.
  kHidden,
};

// How a batch's tokens relate to each other and to the cache (speculative verification).
// The default is a causal chain at positions kv.length() .. kv.length() + n - 1.
struct BatchLayout {
  // Token tree: cache slots [tree_start, kv.length() + n) are tree nodes, the ones already cached
  // by earlier passes first, then this batch. parents[i] is the tree index (slot - tree_start)
  // of node i's parent, or -1 for a node attaching to the prefix [0, tree_start); parents[i] < i.
  // A node attends to the prefix, its ancestors and itself, at position tree_start + depth, so
  // every root-to-leaf path computes exactly what that path would as a chain. Positions are
  // derived from the tree rather than passed in: they cannot then disagree with it.
  // Empty: a chain (no tree).
  std::span<const int32_t> parents;  // [kv.length() + n - tree_start]
  int64_t tree_start = -1;           // -1: kv.length(), i.e. the batch alone is the tree
  // Layers bypassed (the residual stream passes through unchanged): a cheaper, shallower copy
  // of the model that drafts for itself (layer-skip self-speculation). Their cache rows are not
  // written, so a cache used with skipped layers must not serve full passes later.
  std::span<const int32_t> skip_layers;
  // Vocabulary rows projected to logits: ids [0, head_rows) (0: all). The other logits are -inf.
  // For a draft model (FR-Spec, Zhao et al. 2025): a byte-level BPE vocabulary is numbered in
  // merge order, most frequent pieces first, and the output projection is most of a small
  // model's work; a draft that cannot propose a rare id only loses that proposal.
  int64_t head_rows = 0;
  // Which kernels the batch's tokens take (kernels::MatMulPath). kAuto: by batch size, as
  // always. kDecode: decoding steps and speculative chains: the decode kernels at any size,
  // exactly what each token gets alone. kPrompt: prompt tokens: the GEMM at any size, each
  // token's result independent of how the prompt is split. Logits always come from the decode
  // kernels unless kAuto. Decoding that must give the same tokens however it is batched (the
  // server) names the roles; see ForwardBatch.
  enum class Rows { kAuto, kDecode, kPrompt };
  Rows rows = Rows::kAuto;
};

// One sequence's part of a ragged batch (ForwardBatch): its tokens this step, appended to its
// cache after `start` slots, through its block table in the KvStorage.
struct BatchSequence {
  std::span<const int32_t> tokens;   // [count]
  int64_t start = 0;                 // slots already cached: the tokens go to start .. start + count - 1
  std::span<const int32_t> blocks;   // block table covering start + count slots (empty: dense storage)
  bool decode = true;                // decode role (BatchLayout::Rows::kDecode) or prompt role (kPrompt)
  int64_t outputs = 1;               // logits of its last `outputs` tokens (0 .. count)
};

// One sequence's rows of a planned batch.
struct PlanSequence {
  int64_t first = 0;                 // its first row in the batch
  int64_t count = 0;
  int64_t start = 0;                 // its first slot
  std::span<const int32_t> blocks;   // block table (empty: dense storage, slot = row)
};

// A validated batch as the architectures consume it: the tokens of one or more sequences,
// concatenated (decode-role sequences first), with no padding anywhere.
struct ForwardPlan {
  std::span<const int32_t> tokens;   // [n]
  std::vector<int32_t> positions;    // [n] RoPE / learned position of each token
  // Positions minus cache slots of a chain whose cache had tokens evicted before it (KV
  // eviction: a token keeps the position it has in the text, while the slots stay dense).
  int64_t position_offset = 0;
  std::vector<PlanSequence> seqs;    // the sequences' row ranges, in row order
  // ops::Context::decode_rows for the layers (-1: by size) and for the output head.
  int64_t decode_rows = -1;
  int64_t head_decode_rows = -1;
  // Rows whose final hidden state (output_hidden) or logits the pass returns, in this order.
  std::vector<int32_t> output_rows;
  bool output_hidden = false;
  // Tree attention (empty mask = causal chain; one sequence only): see kernels::AttentionArgs.
  int64_t tree_start = 0;
  std::vector<uint8_t> tree_mask;    // [n, tree_len] ancestor-or-self visibility
  std::vector<int32_t> tree_pos;     // [tree_len] positions of the tree nodes
  std::vector<uint8_t> skip;         // [n_layer] 1 = layer skipped
  int64_t head_rows = 0;             // vocabulary rows projected, 1..vocab
  bool is_tree() const { return !tree_mask.empty(); }
  int64_t n() const { return static_cast<int64_t>(tokens.size()); }
};

// What attention needs of an architecture's heads.
struct AttentionShape {
  int64_t n_head = 0;
  int64_t n_kv_head = 0;
  int64_t head_dim = 0;
  int64_t window = 0;  // sliding window (0: none)
  float scale = 1.0f;
};

class Model {
 public:
  virtual ~Model() = default;

  const ModelConfig& config() const { return ckpt_->config; }
  const Checkpoint& checkpoint() const { return *ckpt_; }
  ThreadPool& pool() const { return *pool_; }

  // Runs `tokens` at positions kv.length() .. kv.length() + n - 1 in one batched pass (prompt
  // prefill or a single decode step), appends their keys and values to `kv`, and writes logits
  // to `logits` (resized). Fails without touching the cache on an id outside the vocabulary
  // or a batch that would overflow the cache.
  Status Forward(std::span<const int32_t> tokens, KvCache& kv, LogitsMode mode,
                 std::vector<float>* logits) {
    return Forward(tokens, BatchLayout{}, kv, mode, logits);
  }
  // The same with a tree layout and/or skipped layers. Keys and values of token i always go
  // to cache slot kv.length() + i; rolling a tree back to one path is KvCache::CompactTail.
  Status Forward(std::span<const int32_t> tokens, const BatchLayout& layout, KvCache& kv,
                 LogitsMode mode, std::vector<float>* logits);

  // Long chains are computed in micro-batches of this many tokens (default 512); results are
  // the same up to float32 rounding of the attention order. Tests lower it.
  void set_max_batch(int64_t tokens) { max_batch_ = tokens < 1 ? 1 : tokens; }

  // The serving runtime's pass: the tokens of several sequences in one padding-free batch, each
  // appended to its own blocks of `kv` and attending over its own cache; every matmul sees all
  // the tokens at once. `logits` receives [Σ outputs, vocab], sequence by sequence in the given
  // order. A token's logits are the same bits whatever else is in the batch (the roles fix its
  // kernels, attention splits each sequence at fixed slots), and the same as the
  // single-sequence Forward with the same roles. Fails without writing on an id outside the
  // vocabulary, a block table too short for its slots, or an empty batch.
  Status ForwardBatch(std::span<const BatchSequence> seqs, KvStorage& kv, std::vector<float>* logits);

  // Logits of `rows` hidden states from a kHidden pass: [rows, d_model] -> [rows, vocab].
  void ProjectLogits(const float* hidden, int64_t rows, std::vector<float>* logits) {
    logits->resize(static_cast<size_t>(rows * config().vocab_size));
    ProjectImpl(hidden, rows, logits->data());
  }

  // A cache for one sequence of up to `capacity` positions (clamped to nothing; the caller
  // decides the context size, the model's own limit is config().max_context), of kv_type().
  Expected<KvCache> NewKvCache(int64_t capacity) const;
  // The element type of the caches NewKvCache makes: F32 (default, exact), F16 or Q8_0.
  DType kv_type() const { return kv_type_; }
  Status set_kv_type(DType type);
  // Staircase KV quantization (kv/staircase.h) for the caches NewKvCache makes: when set, each
  // cache keeps its newest tokens in the first step's type and older ones in fewer bits. Fails
  // on a type the head size does not allow or a sliding-window model.
  Status set_kv_staircase(const KvStaircase& staircase);
  const KvStaircase& kv_staircase() const { return kv_staircase_; }
  // The bytes a cache of `capacity` positions from NewKvCache allocates.
  double PlannedKvCacheBytes(int64_t capacity) const;

  // Decoding reads every weight once per token. Weights that cannot stay in the last-level
  // cache from one token to the next gain nothing from passing through it and push out what
  // could stay (the KV cache, activations, a draft model): with `stream` set, the decode
  // kernels fetch every weight matrix past the caches (TensorView::stream). LoadModel sets it
  // when the matrices exceed half the last-level cache (ModelOptions::stream_weights).
  void set_stream_weights(bool stream);
  bool stream_weights() const { return stream_weights_; }
  // How LoadModel chose the setting, for `fastgen bench` and `info`: "flag", "small (...)",
  // "measured: 3.1 ms streamed, 1.6 ms cached", "cached: ..." (see stream_choice.h).
  const std::string& stream_decision() const { return stream_decision_; }
  void set_stream_decision(std::string why) { stream_decision_ = std::move(why); }
  int64_t weight_matrix_bytes();  // what one decode step reads of the weight matrices

  // Re-encodes the float (F32 / F16 / BF16) weight matrices as `type` (Q8_0, Q4_0, ...) in
  // memory: the loaded file is untouched, norms and the embedding lookup keep their types, and
  // matrices whose rows do not split into the type's blocks stay as they are. For a draft
  // model, whose precision moves only the acceptance rate, never the output: fg-draft as Q8_0
  // reads half the bytes and agrees with fg-target exactly as often as in bf16. Returns the
  // number of matrices converted.
  Expected<int> ConvertMatrices(DType type);

  // Calls `observer` (until reset with nullptr) with the input of every weight matrix product
  // of later forward passes: calibration statistics for GPTQ and importance-weighted
  // quantization. The observer must outlive its use.
  void set_input_observer(const ops::InputObserver* observer) { input_observer_ = observer; }
  // Called (until reset with nullptr) after every layer's attention of a single-sequence chain
  // pass, with that layer's attention arguments: KV eviction policies that score cached tokens
  // by the attention they receive (H2O, Keyformer) read the queries and keys from them.
  void set_attention_observer(kernels::AttentionObserver* observer) { attention_observer_ = observer; }
  // TidalDecode sparse attention for single-token decode steps of one sequence (until reset
  // with nullptr): selection layers attend in full and pick the slots the sparse layers read.
  void set_sparse_attention(TidalSelector* selector) { sparse_ = selector; }
  // Points the weight matrix named `name` (as the checkpoint names it) at `bytes` of `type`,
  // same shape, replacing any repacked copy: e.g. a layer already quantized by GPTQ while the
  // layers above it are calibrated on its outputs. The model keeps the bytes.
  Status ReplaceMatrix(const std::string& name, DType type, std::vector<uint8_t> bytes);

  // Gives the matrices the SIMD kernels read interleaved 16 rows at a time (kernels/cpu/
  // repack.h: Q8_0 and Q4_0 on AVX-512) that copy, and lets the row-major pages of the file go
  // (they reload from the file if a reference kernel or the embedding lookup reads them).
  // Returns the number of matrices repacked. LoadModel does it unless ModelOptions::repack is off.
  int RepackMatrices();

 protected:
  Model(std::unique_ptr<Checkpoint> ckpt, ThreadPool* pool) : ckpt_(std::move(ckpt)), pool_(pool) {}
  // Architecture-specific forward pass over validated input: writes every token's keys and
  // values into `kv` and the plan's output rows (logits or final hidden states) into `out`.
  virtual void ForwardImpl(const ForwardPlan& plan, KvStorage& kv, std::vector<float>* out) = 0;
  virtual void ProjectImpl(const float* hidden, int64_t rows, float* logits) = 0;
  // The weight matrices in the order a forward pass reads them (for set_stream_weights).
  virtual std::vector<TensorView*> Matrices() = 0;

  // Where a forward pass writes layer l's keys and values of the batch's tokens, as float32
  // [n, n_kv_head, head_dim]: the cache rows themselves for one sequence in a dense F32 cache,
  // else staging rows that CommitKvRows converts into each sequence's slots once bias, norm
  // and RoPE are applied.
  struct KvRows {
    float* k;
    float* v;
  };
  KvRows NewKvRows(const ForwardPlan& plan, KvStorage& kv, int64_t layer);
  void CommitKvRows(const ForwardPlan& plan, KvStorage& kv, int64_t layer, const KvRows& rows);
  // Attention of the batch's queries q [n, n_head, head_dim] over layer l of each sequence's
  // cache into out [n, n_head, head_dim]: one call per sequence, over its own blocks.
  void Attend(ops::Context& ctx, const ForwardPlan& plan, KvStorage& kv, int64_t layer, const AttentionShape& shape,
              const float* q, float* out);
  // Attend over a staircase cache: per run of queries that read the same steps, one call per
  // step over the slots it holds for them, merged by their log-sum-exps.
  void AttendStaircase(ops::Context& ctx, const ForwardPlan& plan, const KvCache& kv, int64_t layer,
                       const AttentionShape& shape, const float* q, float* out);
  // The plan's output rows of x [n, d], contiguous: x itself when they are one run, else a copy.
  const float* OutputRows(const ForwardPlan& plan, const float* x, int64_t d);
  // logits[rows, vocab] = h[rows, d] · output[vocab, d]ᵀ for the first head_rows ids, -inf for
  // the rest (ForwardPlan::head_rows).
  void ProjectHead(ops::Context& ctx, const TensorView& output, const float* h, int64_t rows, int64_t head_rows,
                   float* logits) const;

  std::unique_ptr<Checkpoint> ckpt_;
  ThreadPool* pool_;
  const ops::InputObserver* input_observer_ = nullptr;
  kernels::AttentionObserver* attention_observer_ = nullptr;
  TidalSelector* sparse_ = nullptr;
  std::vector<int32_t> q_slots_;  // Attend's query slots when positions are offset from them

 private:
  Status Plan(std::span<const int32_t> tokens, const BatchLayout& layout, const KvCache& kv, LogitsMode mode);
  ForwardPlan plan_;  // reused across calls so decoding does not allocate
  std::vector<kernels::AttentionArgs> attention_args_;  // Attend's calls, one per sequence
  std::vector<int32_t> batch_tokens_;  // ForwardBatch's concatenated tokens
  std::vector<float> gathered_;        // OutputRows' copies
  int64_t max_batch_ = 512;        // tokens per micro-batch of a long chain
  std::vector<float> chunk_out_;   // [max_batch, vocab or d_model] one micro-batch's output
  DType kv_type_ = DType::kF32;
  KvStaircase kv_staircase_;
  std::vector<float> tier_out_, tier_lse_;  // AttendStaircase's per-step results
  bool stream_weights_ = false;
  std::string stream_decision_;
  std::vector<float> kv_stage_;    // [2, n, n_kv_head * head_dim] K and V rows of a compact cache
  std::vector<std::vector<uint8_t>> converted_;  // matrices re-encoded by ConvertMatrices
  std::vector<AlignedBytes> repacked_;  // interleaved copies (RepackMatrices)
};

struct ModelOptions {
  CheckpointOptions checkpoint;
  DType kv_type = DType::kF32;  // element type of the model's KV caches (see Model::kv_type)
  KvStaircase kv_staircase;     // Model::set_kv_staircase (empty: none)
  // Model::set_stream_weights; unset: decided by measurement when the weight matrices exceed
  // half the last-level cache, off otherwise (ChooseStreamWeights, stream_choice.h).
  std::optional<bool> stream_weights;
  // Model::ConvertMatrices to this type after loading (before the streaming choice); unset:
  // the file's types.
  std::optional<DType> weight_type;
  // Model::RepackMatrices after loading (speed only: the results are the kernels' own either
  // way, each batch-invariant).
  bool repack = true;
};

// Opens `path` (model directory or GGUF file) and builds the model its config names.
// Installs an attention observer and/or a sparse-attention selector on a model for a scope and
// removes what it installed when the scope ends (a nullptr hook is left as it was).
class ScopedAttentionHooks {
 public:
  ScopedAttentionHooks(Model& model, kernels::AttentionObserver* observer, TidalSelector* sparse = nullptr)
      : model_(model), observer_(observer != nullptr), sparse_(sparse != nullptr) {
    if (observer_) model_.set_attention_observer(observer);
    if (sparse_) model_.set_sparse_attention(sparse);
  }
  ~ScopedAttentionHooks() {
    if (observer_) model_.set_attention_observer(nullptr);
    if (sparse_) model_.set_sparse_attention(nullptr);
  }
  ScopedAttentionHooks(const ScopedAttentionHooks&) = delete;
  ScopedAttentionHooks& operator=(const ScopedAttentionHooks&) = delete;

 private:
  Model& model_;
  bool observer_, sparse_;
};

Expected<std::unique_ptr<Model>> LoadModel(const std::string& path, ThreadPool* pool,
                                           const ModelOptions& options = {});

}  // namespace fastgen
