#include "models/calibration.h"

#include <algorithm>
#include <memory>
#include <set>

#include "kernels/reference/dequant.h"
#include "kernels/reference/quant_grid.h"
#include "models/model.h"
#include "models/tensor_names.h"
#include "ops/ops.h"

namespace fastgen {
namespace {

// Σ x xᵀ (or only its diagonal Σ x²) of one input shared by one or more weight matrices.
struct InputStats {
  int64_t cols = 0;
  bool full = false;
  std::vector<double> gram;  // [cols, cols] when full, else [cols]
  int64_t samples = 0;
};

// Collects InputStats for the matrices in `wanted` as forward passes run.
class StatsCollector {
 public:
  StatsCollector(std::set<std::string> wanted, bool full, ThreadPool& pool)
      : wanted_(std::move(wanted)), full_(full), pool_(pool) {
    observer_ = [this](std::span<const TensorView* const> ws, const float* x, int64_t n) { Observe(ws, x, n); };
  }
  const ops::InputObserver* observer() const { return &observer_; }
  InputStats* Find(const std::string& name) {
    auto it = stats_.find(name);
    return it == stats_.end() ? nullptr : it->second.get();
  }

 private:
  void Observe(std::span<const TensorView* const> ws, const float* x, int64_t n) {
    std::shared_ptr<InputStats> s;
    for (const TensorView* w : ws) {
      if (!wanted_.count(w->name)) continue;
      auto& slot = stats_[w->name];
      if (!s) s = slot;
      if (!s) {
        s = std::make_shared<InputStats>();
        s->cols = w->cols();
        s->full = full_;
        s->gram.assign(static_cast<size_t>(full_ ? s->cols * s->cols : s->cols), 0.0);
      }
      slot = s;  // matrices reading the same input share its statistics
    }
    if (!s) return;
    Accumulate(*s, x, n);
  }

  void Accumulate(InputStats& s, const float* x, int64_t n) {
    const int64_t k = s.cols;
    s.samples += n;
    if (!s.full) {
      for (int64_t t = 0; t < n; ++t)
        for (int64_t j = 0; j < k; ++j) s.gram[j] += static_cast<double>(x[t * k + j]) * x[t * k + j];
      return;
    }
    // XᵀX [k, k] through the float32 GEMM: Xᵀ [k, n] times itself, summed in double.
    xt_.resize(static_cast<size_t>(k * n));
    for (int64_t t = 0; t < n; ++t)
      for (int64_t j = 0; j < k; ++j) xt_[j * n + t] = x[t * k + j];
    TensorView v;
    v.name = "calibration inputs";
    v.dtype = DType::kF32;
    v.shape = {k, n};
    v.data = reinterpret_cast<const uint8_t*>(xt_.data());
    v.nbytes = xt_.size() * sizeof(float);
    prod_.resize(static_cast<size_t>(k * k));
    ops::Context ctx{&pool_};
    ops::MatMul(ctx, v, xt_.data(), k, prod_.data());
    for (size_t i = 0; i < prod_.size(); ++i) s.gram[i] += prod_[i];
  }

  std::set<std::string> wanted_;
  bool full_;
  ThreadPool& pool_;
  ops::InputObserver observer_;
  std::map<std::string, std::shared_ptr<InputStats>> stats_;
  std::vector<float> xt_, prod_;
};

// The weights as stored in the file, dequantized to float32 [rows, cols].
std::vector<float> OriginalWeights(const TensorView& t) {
  std::vector<float> w(static_cast<size_t>(t.numel()));
  for (int64_t r = 0; r < t.rows(); ++r) kernels::reference::DequantizeMatrixRow(t, r, w.data() + r * t.cols());
  return w;
}

// Runs every calibration sequence through the model: layers above `last_layer` skipped (their
// inputs are not wanted), logits of every row when the output head's inputs are.
Status RunCalibration(Model& m, const CalibrationOptions& o, int64_t last_layer, bool head) {
  FG_ASSIGN_OR_RETURN(KvCache kv, m.NewKvCache(o.ctx));
  std::vector<int32_t> skip;
  for (int64_t l = last_layer + 1; l < m.config().n_layer; ++l) skip.push_back(static_cast<int32_t>(l));
  BatchLayout layout;
  layout.skip_layers = skip;
  std::vector<float> out;
  const int64_t seqs = static_cast<int64_t>(o.tokens.size()) / o.ctx;
  for (int64_t s = 0; s < seqs; ++s) {
    kv.Clear();
    FG_RETURN_IF_ERROR(m.Forward(std::span<const int32_t>(o.tokens).subspan(s * o.ctx, o.ctx), layout, kv,
                                 head ? LogitsMode::kAll : LogitsMode::kLast, &out));
  }
  return Status::Ok();
}

}  // namespace

Status CheckCalibratable(const ModelConfig& c) {
  if (c.arch == Arch::kGpt2 || c.arch == Arch::kPhi3)
    return Unsupported(std::string("calibrated quantization: ") + ArchName(c.arch) +
                       " stores fused projection matrices; use --method rtn");
  return Status::Ok();
}

Expected<std::map<std::string, std::vector<uint8_t>>> QuantizeCalibrated(const std::string& input, QuantMethod method,
                                                                         const std::map<std::string, DType>& types,
                                                                         const CalibrationOptions& o, ThreadPool& pool) {
  if (method == QuantMethod::kRtn) return std::map<std::string, std::vector<uint8_t>>{};
  if (o.ctx < 2 || static_cast<int64_t>(o.tokens.size()) < o.ctx)
    return InvalidArgument("calibration: the calibration text has " + std::to_string(o.tokens.size()) +
                           " tokens; at least one sequence of " + std::to_string(o.ctx) + " is needed");
  for (const auto& [name, type] : types)
    if (!kernels::reference::HasBlockGrid(type))
      return InvalidArgument("calibration: " + name + " has no calibrated quantizer for " + std::string(Name(type)));
  ModelOptions mo;
  mo.repack = false;  // matrices are replaced as layers are quantized
  mo.stream_weights = false;
  mo.checkpoint.gguf_overrides = o.gguf_overrides;
  FG_ASSIGN_OR_RETURN(auto model, LoadModel(input, &pool, mo));
  const ModelConfig& c = model->config();
  FG_RETURN_IF_ERROR(CheckCalibratable(c));
  if (c.max_context > 0 && o.ctx > c.max_context)
    return InvalidArgument("calibration: sequences of " + std::to_string(o.ctx) + " tokens exceed the " +
                           std::to_string(c.max_context) + " positions the model was trained for (--calibration-ctx)");
  const Checkpoint& ck = model->checkpoint();
  auto view = [&](const std::string& name) { return ck.weights.Find(name); };
  for (const auto& [name, type] : types)
    if (view(name) == nullptr) return NotFound("calibration: the model has no tensor " + name);

  std::map<std::string, std::vector<uint8_t>> out;
  auto quantize = [&](const std::string& name, InputStats* s) -> Status {
    const TensorView& t = *view(name);
    const DType type = types.at(name);
    const std::vector<float> w = OriginalWeights(t);
    const size_t row_bytes = *RowBytes(type, t.cols());
    std::vector<uint8_t> packed;
    if (s == nullptr) {  // never reached by the calibration text (cannot happen for a used matrix)
      packed.resize(row_bytes * static_cast<size_t>(t.rows()));
      for (int64_t r = 0; r < t.rows(); ++r)
        kernels::reference::QuantizeRow(type, w.data() + r * t.cols(), packed.data() + r * row_bytes, t.cols());
    } else if (method == QuantMethod::kGptq) {
      FG_ASSIGN_OR_RETURN(quant::GptqResult g, quant::GptqQuantize(type, w.data(), t.rows(), t.cols(), s->gram, o.gptq, pool));
      packed = std::move(g.packed);
    } else {
      std::vector<float> imp(static_cast<size_t>(t.cols()));
      double mean = 0;
      for (double v : s->gram) mean += v;
      mean = mean > 0 ? mean / static_cast<double>(s->gram.size()) : 1;
      for (size_t j = 0; j < imp.size(); ++j) imp[j] = static_cast<float>(s->gram[j] / mean);
      packed.resize(row_bytes * static_cast<size_t>(t.rows()));
      pool.ParallelFor(t.rows(), [&](int64_t lo, int64_t hi) {
        for (int64_t r = lo; r < hi; ++r)
          kernels::reference::QuantizeRowWeighted(type, w.data() + r * t.cols(), imp.data(), packed.data() + r * row_bytes,
                                                  t.cols());
      });
    }
    out[name] = packed;
    return Status::Ok();
  };

  std::set<std::string> head_names;
  const std::string output = TensorName(c.arch, ck.format, Role::kOutput);
  const std::string embd = TensorName(c.arch, ck.format, Role::kTokenEmbd);
  const std::string head = view(output) ? output : embd;  // tied: the embedding is the head
  if (types.count(head)) head_names.insert(head);

  if (method == QuantMethod::kImatrix) {
    std::set<std::string> wanted;
    for (const auto& [name, type] : types) wanted.insert(name);
    StatsCollector stats(wanted, /*full=*/false, pool);
    model->set_input_observer(stats.observer());
    if (o.progress) o.progress("collecting input statistics", 0, 1);
    const Status s = RunCalibration(*model, o, c.n_layer - 1, !head_names.empty());
    model->set_input_observer(nullptr);
    FG_RETURN_IF_ERROR(s);
    size_t done = 0;
    for (const auto& [name, type] : types) {
      FG_RETURN_IF_ERROR(quantize(name, stats.Find(name)));
      if (o.progress) o.progress(name, ++done, types.size());
    }
    return out;
  }

  // GPTQ, layer by layer; the layer's matrices are swapped for their quantized selves before
  // the next layer's inputs are collected.
  const Role kLayerRoles[] = {Role::kAttnQ, Role::kAttnK, Role::kAttnV, Role::kAttnOut,
                              Role::kFfnGate, Role::kFfnUp, Role::kFfnDown};
  size_t done = 0;
  const size_t total = types.size();
  for (int64_t l = 0; l <= c.n_layer; ++l) {
    const bool is_head = l == c.n_layer;
    std::set<std::string> wanted;
    if (is_head) {
      wanted = head_names;
    } else {
      for (Role r : kLayerRoles) {
        const std::string name = TensorName(c.arch, ck.format, r, l);
        if (!name.empty() && types.count(name)) wanted.insert(name);
      }
    }
    if (wanted.empty()) continue;
    if (o.progress) o.progress(is_head ? "output head" : "layer " + std::to_string(l + 1) + "/" + std::to_string(c.n_layer), done, total);
    StatsCollector stats(wanted, /*full=*/true, pool);
    model->set_input_observer(stats.observer());
    const Status s = RunCalibration(*model, o, is_head ? c.n_layer - 1 : l, is_head);
    model->set_input_observer(nullptr);
    FG_RETURN_IF_ERROR(s);
    for (const std::string& name : wanted) {
      FG_RETURN_IF_ERROR(quantize(name, stats.Find(name)));
      FG_RETURN_IF_ERROR(model->ReplaceMatrix(name, types.at(name), out[name]));
      ++done;
    }
  }
  // Matrices outside the layer roles and the head (none in the supported architectures).
  for (const auto& [name, type] : types)
    if (!out.count(name)) FG_RETURN_IF_ERROR(quantize(name, nullptr));
  if (o.progress) o.progress("done", total, total);
  return out;
}

}  // namespace fastgen
