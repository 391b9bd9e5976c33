#include "models/model.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <new>
#include <limits>

#include "core/cache_info.h"
#include "kernels/cpu/repack.h"
#include "kernels/reference/dequant.h"
#include "models/gpt2.h"
#include "models/llama.h"
#include "models/stream_choice.h"
#include "models/tensor_names.h"
#include "ops/ops.h"

namespace fastgen {

namespace {

Status CheckTokens(std::span<const int32_t> tokens, int64_t vocab, size_t offset = 0) {
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] < 0 || tokens[i] >= vocab)
      return InvalidArgument("token id " + std::to_string(tokens[i]) + " at index " + std::to_string(offset + i) +
                             " is outside the vocabulary [0, " + std::to_string(vocab) + ")");
  }
  return Status::Ok();
}

Status CheckStorage(const KvStorage& kv, const ModelConfig& c) {
  if (kv.n_layer() != c.n_layer || kv.n_kv_head() != c.n_kv_head || kv.head_dim() != c.head_dim)
    return InvalidArgument("KV cache was made for a different model");
  return Status::Ok();
}

}  // namespace

Status Model::Forward(std::span<const int32_t> tokens, const BatchLayout& layout, KvCache& kv,
                      LogitsMode mode, std::vector<float>* logits) {
  const ModelConfig& c = config();
  if (tokens.empty()) return InvalidArgument("forward pass over an empty batch");
  FG_RETURN_IF_ERROR(CheckTokens(tokens, c.vocab_size));
  const int64_t n = static_cast<int64_t>(tokens.size());
  if (kv.length() + n > kv.capacity())
    return InvalidArgument(std::to_string(kv.length() + n) + " tokens exceed the context size of " +
                           std::to_string(kv.capacity()));
  FG_RETURN_IF_ERROR(CheckStorage(kv, c));
  // A staircase cache's rings hold what one pass appends up to max_append slots.
  const int64_t micro_batch = std::min(max_batch_, kv.max_append());
  if (kv.has_staircase() && !layout.parents.empty() && n > micro_batch)
    return InvalidArgument("token tree of " + std::to_string(n) + " nodes exceeds the staircase KV cache's " +
                           std::to_string(micro_batch) + "-slot append");
  if (kv.has_staircase() && c.sliding_window > 0)
    return InvalidArgument("--kv-staircase: the model uses sliding-window attention, which the staircase does not support");
  FG_RETURN_IF_ERROR(Plan(tokens, layout, kv, mode));
  const int32_t last_pos = *std::max_element(plan_.positions.begin(), plan_.positions.end());
  if (c.arch == Arch::kGpt2 && last_pos >= c.max_context)
    return InvalidArgument(std::to_string(last_pos + 1) + " tokens exceed GPT-2's learned positions (" +
                           std::to_string(c.max_context) + ")");
  if (plan_.is_tree() || n <= micro_batch) {
    ForwardImpl(plan_, kv, logits);
    kv.Advance(n);
    return Status::Ok();
  }
  // A long chain (a prompt) runs in micro-batches of max_batch_ tokens: activation buffers stay
  // bounded by the micro-batch instead of growing with the prompt, and each micro-batch's
  // activations stay in cache. Rows of kAll / kHidden outputs are concatenated; kLast keeps the
  // last micro-batch's row.
  const int64_t row = mode == LogitsMode::kHidden ? c.d_model : c.vocab_size;
  if (mode != LogitsMode::kLast) logits->resize(static_cast<size_t>(n * row));
  for (int64_t b = 0; b < n; b += micro_batch) {
    const auto chunk = tokens.subspan(static_cast<size_t>(b), static_cast<size_t>(std::min(micro_batch, n - b)));
    const bool last_chunk = b + micro_batch >= n;
    FG_RETURN_IF_ERROR(Plan(chunk, layout, kv, mode));
    if (mode == LogitsMode::kLast) {
      if (!last_chunk) plan_.output_rows.clear();  // only the last micro-batch's row is wanted
      ForwardImpl(plan_, kv, logits);
    } else {
      ForwardImpl(plan_, kv, &chunk_out_);
      std::copy(chunk_out_.begin(), chunk_out_.end(), logits->begin() + b * row);
    }
    kv.Advance(static_cast<int64_t>(chunk.size()));
  }
  return Status::Ok();
}

Status Model::ForwardBatch(std::span<const BatchSequence> seqs, KvStorage& kv, std::vector<float>* logits) {
  const ModelConfig& c = config();
  FG_RETURN_IF_ERROR(CheckStorage(kv, c));
  if (seqs.empty()) return InvalidArgument("forward pass over an empty batch");
  if (const auto* cache = dynamic_cast<const KvCache*>(&kv); cache != nullptr && cache->has_staircase())
    return InvalidArgument("a staircase KV cache (--kv-staircase) holds one sequence; batched passes need the block pool");
  ForwardPlan& p = plan_;
  batch_tokens_.clear();
  p.seqs.clear();
  p.positions.clear();
  p.output_rows.clear();
  p.output_hidden = false;
  p.tree_mask.clear();
  p.tree_pos.clear();
  p.tree_start = 0;
  p.position_offset = 0;
  p.skip.assign(static_cast<size_t>(c.n_layer), 0);
  p.head_rows = c.vocab_size;
  // Rows: the decode-role sequences first (ops::Context::decode_rows is a prefix of the batch).
  std::vector<int64_t> first_row(seqs.size());
  int64_t decode_rows = 0;
  for (int pass = 0; pass < 2; ++pass) {
    for (size_t i = 0; i < seqs.size(); ++i) {
      const BatchSequence& s = seqs[i];
      if (s.decode != (pass == 0)) continue;
      const int64_t count = static_cast<int64_t>(s.tokens.size());
      if (count == 0) return InvalidArgument("sequence " + std::to_string(i) + " of the batch has no tokens");
      if (s.outputs < 0 || s.outputs > count)
        return InvalidArgument("sequence " + std::to_string(i) + " asks for " + std::to_string(s.outputs) +
                               " outputs of " + std::to_string(count) + " tokens");
      FG_RETURN_IF_ERROR(CheckTokens(s.tokens, c.vocab_size, batch_tokens_.size()));
      const int64_t slots = s.start + count;
      if (s.start < 0 || static_cast<int64_t>(s.blocks.size()) * kv.block_tokens() < slots)
        return InvalidArgument("sequence " + std::to_string(i) + ": its block table holds " +
                               std::to_string(s.blocks.size() * kv.block_tokens()) + " slots, not " +
                               std::to_string(slots));
      if (c.arch == Arch::kGpt2 && slots > c.max_context)
        return InvalidArgument(std::to_string(slots) + " tokens exceed GPT-2's learned positions (" +
                               std::to_string(c.max_context) + ")");
      first_row[i] = static_cast<int64_t>(batch_tokens_.size());
      p.seqs.push_back({first_row[i], count, s.start, s.blocks});
      for (int64_t t = 0; t < count; ++t) {
        batch_tokens_.push_back(s.tokens[static_cast<size_t>(t)]);
        p.positions.push_back(static_cast<int32_t>(s.start + t));
      }
      if (pass == 0) decode_rows += count;
    }
  }
  for (size_t i = 0; i < seqs.size(); ++i)
    for (int64_t t = static_cast<int64_t>(seqs[i].tokens.size()) - seqs[i].outputs;
         t < static_cast<int64_t>(seqs[i].tokens.size()); ++t)
      p.output_rows.push_back(static_cast<int32_t>(first_row[i] + t));
  p.tokens = batch_tokens_;
  p.decode_rows = decode_rows;
  p.head_decode_rows = static_cast<int64_t>(p.output_rows.size());
  ForwardImpl(p, kv, logits);
  return Status::Ok();
}

Status Model::Plan(std::span<const int32_t> tokens, const BatchLayout& layout, const KvCache& kv, LogitsMode mode) {
  const ModelConfig& c = config();
  const int64_t n = static_cast<int64_t>(tokens.size()), start = kv.length();
  ForwardPlan& p = plan_;
  p.tokens = tokens;
  if (layout.head_rows < 0 || layout.head_rows > c.vocab_size)
    return InvalidArgument("projecting " + std::to_string(layout.head_rows) + " vocabulary rows of " +
                           std::to_string(c.vocab_size));
  p.head_rows = layout.head_rows == 0 ? c.vocab_size : layout.head_rows;
  p.skip.assign(static_cast<size_t>(c.n_layer), 0);
  for (int32_t l : layout.skip_layers) {
    if (l < 0 || l >= c.n_layer)
      return InvalidArgument("skipped layer " + std::to_string(l) + " outside [0, " +
                             std::to_string(c.n_layer) + ")");
    p.skip[static_cast<size_t>(l)] = 1;
  }
  p.seqs.assign(1, PlanSequence{0, n, start, {}});
  p.output_rows.clear();
  p.output_hidden = mode == LogitsMode::kHidden;
  for (int64_t t = mode == LogitsMode::kLast ? n - 1 : 0; t < n; ++t) p.output_rows.push_back(static_cast<int32_t>(t));
  switch (layout.rows) {
    case BatchLayout::Rows::kAuto:
      p.decode_rows = p.head_decode_rows = -1;
      break;
    case BatchLayout::Rows::kDecode:
      p.decode_rows = n;
      p.head_decode_rows = static_cast<int64_t>(p.output_rows.size());
      break;
    case BatchLayout::Rows::kPrompt:
      p.decode_rows = 0;
      p.head_decode_rows = static_cast<int64_t>(p.output_rows.size());
      break;
  }
  p.positions.resize(static_cast<size_t>(n));
  p.tree_mask.clear();
  p.tree_pos.clear();
  p.position_offset = kv.evicted();
  if (p.position_offset + start + n > std::numeric_limits<int32_t>::max())
    return InvalidArgument("position " + std::to_string(p.position_offset + start + n) + " past 2^31");
  if (layout.parents.empty()) {
    for (int64_t t = 0; t < n; ++t)
      p.positions[static_cast<size_t>(t)] = static_cast<int32_t>(p.position_offset + start + t);
    return Status::Ok();
  }
  if (p.position_offset != 0)
    return InvalidArgument("token trees over a cache with evicted tokens are not supported");

  const int64_t tree_start = layout.tree_start < 0 ? start : layout.tree_start;
  if (tree_start > start)
    return InvalidArgument("token tree starts at slot " + std::to_string(tree_start) +
                           " past the cache length " + std::to_string(start));
  const int64_t tree_len = start + n - tree_start;
  if (static_cast<int64_t>(layout.parents.size()) != tree_len)
    return InvalidArgument("token tree has " + std::to_string(layout.parents.size()) +
                           " parent entries for " + std::to_string(tree_len) + " nodes");
  p.tree_start = tree_start;
  p.tree_pos.resize(static_cast<size_t>(tree_len));  // depth first, then position
  for (int64_t i = 0; i < tree_len; ++i) {
    const int32_t parent = layout.parents[static_cast<size_t>(i)];
    if (parent < -1 || parent >= i)
      return InvalidArgument("token tree node " + std::to_string(i) + " has parent " +
                             std::to_string(parent) + " (must be -1 or an earlier node)");
    p.tree_pos[static_cast<size_t>(i)] =
        parent < 0 ? static_cast<int32_t>(tree_start) : p.tree_pos[static_cast<size_t>(parent)] + 1;
  }
  // Row t of the mask: batch token t (tree node tree_len - n + t) sees its ancestors and itself.
  p.tree_mask.assign(static_cast<size_t>(n * tree_len), 0);
  for (int64_t t = 0; t < n; ++t) {
    const int64_t node = tree_len - n + t;
    p.positions[static_cast<size_t>(t)] = p.tree_pos[static_cast<size_t>(node)];
    uint8_t* row = p.tree_mask.data() + t * tree_len;
    for (int64_t a = node; a >= 0; a = layout.parents[static_cast<size_t>(a)]) row[a] = 1;
  }
  return Status::Ok();
}

void Model::ProjectHead(ops::Context& ctx, const TensorView& output, const float* h, int64_t rows, int64_t head_rows,
                        float* logits) const {
  const int64_t vocab = config().vocab_size;
  if (head_rows >= vocab) {
    ops::MatMul(ctx, output, h, rows, logits);
    return;
  }
  ops::MatMul(ctx, output.RowSlice(0, head_rows, output.name), h, rows, logits, vocab);
  for (int64_t r = 0; r < rows; ++r)
    std::fill(logits + r * vocab + head_rows, logits + (r + 1) * vocab, -std::numeric_limits<float>::infinity());
}

// A staircase cache's rings hold what one pass appends: prompts go through in passes of at most
// this many tokens, which keeps the rings short (they also hold the steps' tokens and a block).
constexpr int64_t kStaircaseAppend = 128;

Expected<KvCache> Model::NewKvCache(int64_t capacity) const {
  const ModelConfig& c = config();
  if (!kv_staircase_.empty())
    return KvCache::Create({c.n_layer, c.n_kv_head, c.head_dim, capacity, kv_type_}, kv_staircase_,
                           std::min<int64_t>(max_batch_, kStaircaseAppend));
  return KvCache::Create({c.n_layer, c.n_kv_head, c.head_dim, capacity, kv_type_});
}

double Model::PlannedKvCacheBytes(int64_t capacity) const {
  const ModelConfig& c = config();
  const KvCacheShape shape{c.n_layer, c.n_kv_head, c.head_dim, capacity, kv_type_};
  if (!kv_staircase_.empty())
    return KvCache::StaircaseBytes(shape, kv_staircase_, std::min<int64_t>(max_batch_, kStaircaseAppend));
  return 2.0 * static_cast<double>(*RowBytes(kv_type_, c.n_kv_head * c.head_dim)) * static_cast<double>(c.n_layer * capacity);
}

Status Model::set_kv_staircase(const KvStaircase& staircase) {
  for (const KvStaircaseStep& st : staircase.steps)
    if (!kernels::KvTypeSupported(st.type, config().head_dim))
      return InvalidArgument("--kv-staircase: type " + std::string(Name(st.type)) + " is not available for this model (head size " +
                             std::to_string(config().head_dim) + "; q8_0 and q4_0 need a multiple of 32)");
  if (!staircase.empty() && config().sliding_window > 0)
    return InvalidArgument("--kv-staircase: the model uses sliding-window attention, which the staircase does not support");
  kv_staircase_ = staircase;
  return Status::Ok();
}

Status Model::set_kv_type(DType type) {
  if (!kernels::KvTypeSupported(type, config().head_dim))
    return InvalidArgument("KV cache type " + std::string(Name(type)) + " is not available for this model (head size " +
                           std::to_string(config().head_dim) + "); use f32, f16, or q8_0 / q4_0 with a head size that is a "
                           "multiple of 32");
  kv_type_ = type;
  return Status::Ok();
}

Model::KvRows Model::NewKvRows(const ForwardPlan& plan, KvStorage& kv, int64_t layer) {
  const int64_t row = kv.row_elems(), n = plan.n();
  // One sequence in dense float32 rows: the projections write straight into its slots.
  const auto* cache = dynamic_cast<const KvCache*>(&kv);
  const bool staircase = cache != nullptr && cache->has_staircase();
  if (kv.type() == DType::kF32 && plan.seqs.size() == 1 && plan.seqs[0].blocks.empty() && !staircase) {
    const int64_t at = plan.seqs[0].start * row;
    return {reinterpret_cast<float*>(kv.key_data(layer)) + at, reinterpret_cast<float*>(kv.value_data(layer)) + at};
  }
  if (static_cast<int64_t>(kv_stage_.size()) < 2 * n * row) kv_stage_.resize(static_cast<size_t>(2 * n * row));
  return {kv_stage_.data(), kv_stage_.data() + n * row};
}

void Model::CommitKvRows(const ForwardPlan& plan, KvStorage& kv, int64_t layer, const KvRows& rows) {
  if (rows.k != kv_stage_.data()) return;  // written in place
  const int64_t row = kv.row_elems();
  for (const PlanSequence& s : plan.seqs)
    kv.WriteSlots(layer, s.blocks, s.start, s.count, rows.k + s.first * row, rows.v + s.first * row);
}

void Model::Attend(ops::Context& ctx, const ForwardPlan& plan, KvStorage& kv, int64_t layer,
                   const AttentionShape& shape, const float* q, float* out) {
  if (const auto* cache = dynamic_cast<const KvCache*>(&kv); cache != nullptr && cache->has_staircase()) {
    AttendStaircase(ctx, plan, *cache, layer, shape, q, out);
    return;
  }
  const int64_t q_row = shape.n_head * shape.head_dim;
  attention_args_.clear();
  for (const PlanSequence& s : plan.seqs) {
    kernels::AttentionArgs& a = attention_args_.emplace_back();
    a.q = q + s.first * q_row;
    a.k = kv.key_data(layer);
    a.v = kv.value_data(layer);
    a.kv_type = kv.type();
    a.kv_stride = kv.row_elems();
    if (!s.blocks.empty()) {
      a.block_table = s.blocks.data();
      a.block_tokens = kv.block_tokens();
    }
    a.out = out + s.first * q_row;
    a.n = s.count;
    a.n_head = shape.n_head;
    a.n_kv_head = shape.n_kv_head;
    a.head_dim = shape.head_dim;
    a.n_kv = s.start + s.count;
    // Chain: position = slot, less the tokens evicted before it; tree: the position, the mask decides.
    a.q_slot = plan.positions.data() + s.first;
    if (plan.position_offset != 0) {
      q_slots_.resize(static_cast<size_t>(s.count));
      for (int64_t t = 0; t < s.count; ++t) q_slots_[static_cast<size_t>(t)] = static_cast<int32_t>(s.start + t);
      a.q_slot = q_slots_.data();  // one sequence only: ForwardBatch never offsets
    }
    a.window = shape.window;
    if (plan.is_tree()) {
      a.tree_mask = plan.tree_mask.data();
      a.tree_pos = plan.tree_pos.data();
      a.tree_start = plan.tree_start;
    }
    a.scale = shape.scale;
  }
  // One parallel region for every sequence's attention: a region per sequence and layer cost
  // the server's 16-sequence steps their wake-ups and waits for the slowest thread.
  // TidalDecode: a decode step of one sequence reads only the selected slots in sparse layers.
  const bool single_chain = attention_args_.size() == 1 && !plan.is_tree();
  TidalSelector::Role role = TidalSelector::Role::kDense;
  if (sparse_ != nullptr && single_chain && plan.n() == 1) {
    role = sparse_->role(layer);
    kernels::AttentionArgs& a = attention_args_[0];
    if (role == TidalSelector::Role::kSparse && sparse_->Sparse(a.n_kv)) {
      a.tree_mask = sparse_->mask();  // every slot a "tree node" the query sees or not
      a.tree_pos = sparse_->pos();
      a.tree_start = 0;  // q_slot stays the query's slot, which a window compares with tree_pos (slots)
    }
  }
  ops::AttentionBatch(ctx, attention_args_);
  if (role == TidalSelector::Role::kSelect) sparse_->Select(attention_args_[0]);
  if (attention_observer_ != nullptr && single_chain) {
    attention_args_[0].tree_mask = nullptr;  // observers see the chain (their scores are per slot)
    attention_args_[0].tree_pos = nullptr;
    attention_args_[0].tree_start = 0;
    attention_observer_->OnAttention(layer, attention_args_[0]);
  }
}

const float* Model::OutputRows(const ForwardPlan& plan, const float* x, int64_t d) {
  const auto& rows = plan.output_rows;
  if (rows.empty()) return x;
  bool run = true;
  for (size_t i = 1; i < rows.size() && run; ++i) run = rows[i] == rows[i - 1] + 1;
  if (run) return x + static_cast<int64_t>(rows[0]) * d;
  gathered_.resize(rows.size() * static_cast<size_t>(d));
  for (size_t i = 0; i < rows.size(); ++i)
    std::copy(x + static_cast<int64_t>(rows[i]) * d, x + (static_cast<int64_t>(rows[i]) + 1) * d,
              gathered_.begin() + static_cast<int64_t>(i) * d);
  return gathered_.data();
}

// Streaming is all or nothing: keeping a share of fg-target's matrices resident (8 to 24 of its
// 30 MB, first fit in forward order, 32 MB L3) measured slower than streaming them all
// (forward_bench --stream, after 800 tokens: 0.97-1.10 ms against 0.91 ms per token); the
// cache does not hold a resident share against the rest of the traffic.
void Model::set_stream_weights(bool stream) {
  stream_weights_ = stream;
  for (TensorView* w : Matrices()) w->stream = stream;
}

int64_t Model::weight_matrix_bytes() {
  int64_t total = 0;
  for (const TensorView* w : Matrices()) total += static_cast<int64_t>(w->nbytes);
  return total;
}

Expected<int> Model::ConvertMatrices(DType type) {
  if (!kernels::reference::CanQuantize(type))
    return InvalidArgument("weights cannot be converted to " + std::string(Name(type)) +
                           "; use f32, f16, bf16, q8_0, q4_0, q2_k, q3_k, q4_k, q5_k or q6_k");
  std::vector<float> row;
  int converted = 0;
  for (TensorView* w : Matrices()) {
    const bool is_float = w->dtype == DType::kF32 || w->dtype == DType::kF16 || w->dtype == DType::kBF16;
    const int64_t cols = w->cols(), rows = w->rows();
    if (!is_float || w->dtype == type || cols % Info(type).block_elems != 0) continue;
    const size_t row_bytes = *RowBytes(type, cols);  // cols is a whole number of blocks
    std::vector<uint8_t> data(row_bytes * static_cast<size_t>(rows));
    row.resize(static_cast<size_t>(cols));
    for (int64_t r = 0; r < rows; ++r) {
      kernels::reference::DequantizeRow(w->dtype, w->row(r), row.data(), cols);
      kernels::reference::QuantizeRow(type, row.data(), data.data() + static_cast<size_t>(r) * row_bytes, cols);
    }
    w->dtype = type;
    w->data = data.data();
    w->nbytes = data.size();
    converted_.push_back(std::move(data));  // the vector's buffer does not move with it
    ++converted;
  }
  return converted;
}

Status Model::ReplaceMatrix(const std::string& name, DType type, std::vector<uint8_t> bytes) {
  for (TensorView* w : Matrices()) {
    if (w->name != name) continue;
    const auto row_bytes = RowBytes(type, w->cols());
    if (!row_bytes || *row_bytes * static_cast<size_t>(w->rows()) != bytes.size())
      return InvalidArgument("ReplaceMatrix: " + name + " would change size");
    w->dtype = type;
    w->data = bytes.data();
    w->nbytes = bytes.size();
    w->packed = nullptr;
    w->packed_group_bytes = 0;
    w->group_offsets = nullptr;  // the new bytes are the whole matrix
    w->group_cols = 0;
    w->input_order = nullptr;
    converted_.push_back(std::move(bytes));  // the vector's buffer does not move with it
    return Status::Ok();
  }
  return NotFound("ReplaceMatrix: no weight matrix named " + name);
}

int Model::RepackMatrices() {
  int repacked = 0;
  const long page = ::sysconf(_SC_PAGESIZE);
  // The embedding table is read row by row (a tied output matrix is the same bytes): its pages stay.
  const TensorView* embedding =
      ckpt_->weights.Find(TensorName(config().arch, ckpt_->format, Role::kTokenEmbd));
  for (TensorView* w : Matrices()) {
    if (w->packed != nullptr || !kernels::cpu::RepackSupported(w->dtype) || w->cols() % 32 != 0) continue;
    const int64_t m = w->rows(), k = w->cols();
    const size_t group = kernels::cpu::RepackedGroupBytes(w->dtype, k);
    const size_t bytes = group * static_cast<size_t>((m + 15) / 16);
    // 64-byte aligned: the kernels load whole cache lines of it.
    AlignedBytes buf = AllocateAligned(bytes);
    kernels::cpu::Repack(w->dtype, w->data, m, k, w->row_bytes(), buf.get());
    // The file's pages of this matrix are not read again by the kernels: drop them from memory
    // (whole pages inside the matrix only; never a buffer of ours, which would be zeroed).
    const bool owned = std::any_of(converted_.begin(), converted_.end(), [w](const std::vector<uint8_t>& c) {
      return w->data >= c.data() && w->data < c.data() + c.size();
    });
    if (!owned && w->data != nullptr) {
      const uintptr_t begin = (reinterpret_cast<uintptr_t>(w->data) + page - 1) / page * page;
      const uintptr_t end = (reinterpret_cast<uintptr_t>(w->data) + w->nbytes) / page * page;
      const bool embedding_too = embedding != nullptr && w->data == embedding->data;
      if (end > begin && !embedding_too) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
    }
    w->packed = buf.get();
    w->packed_group_bytes = group;
    repacked_.push_back(std::move(buf));
    ++repacked;
  }
  return repacked;
}

Expected<std::unique_ptr<Model>> LoadModel(const std::string& path, ThreadPool* pool,
                                           const ModelOptions& options) {
  FG_ASSIGN_OR_RETURN(auto ckpt, OpenCheckpoint(path, options.checkpoint));
  std::unique_ptr<Model> model;
  if (ckpt->config.arch == Arch::kGpt2) {
    FG_ASSIGN_OR_RETURN(model, CreateGpt2Model(std::move(ckpt), pool));
  } else {
    FG_ASSIGN_OR_RETURN(model, CreateLlamaFamilyModel(std::move(ckpt), pool));
  }
  FG_RETURN_IF_ERROR(model->set_kv_type(options.kv_type));
  FG_RETURN_IF_ERROR(model->set_kv_staircase(options.kv_staircase));
  if (options.weight_type) FG_RETURN_IF_ERROR(model->ConvertMatrices(*options.weight_type).status());
  if (options.repack) model->RepackMatrices();
  if (options.stream_weights) {
    model->set_stream_weights(*options.stream_weights);
    model->set_stream_decision(std::string("--stream-weights ") + (*options.stream_weights ? "on" : "off"));
    return model;
  }
  FG_ASSIGN_OR_RETURN(const StreamChoice choice, ChooseStreamWeights(*model));
  model->set_stream_weights(choice.stream);
  char why[160];
  if (choice.how == "small") {
    std::snprintf(why, sizeof(why), "off: the weight matrices fit half the last-level cache");
  } else {
    std::snprintf(why, sizeof(why), "%s (%s: %.2f ms per decode step streamed, %.2f ms through the caches)",
                  choice.stream ? "on" : "off", choice.how.c_str(), choice.stream_ms, choice.cached_ms);
  }
  model->set_stream_decision(why);
  return model;
}

}  // namespace fastgen
