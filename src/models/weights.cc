#include "models/weights.h"

#include <cstring>
#include <optional>
#include <string_view>

#include "core/diagnostics.h"

#include "kernels/reference/dequant.h"

namespace fastgen {

const TensorView* WeightBinder::Lookup(Role role, int64_t layer, std::string* name) const {
  *name = TensorName(ckpt_.config.arch, ckpt_.format, role, layer);
  if (name->empty()) return nullptr;
  const TensorView* t = ckpt_.weights.Find(*name);
  // Some GPT-2 checkpoints (the original OpenAI upload) omit the "transformer." prefix.
  constexpr std::string_view kPrefix = "transformer.";
  if (t == nullptr && name->rfind(kPrefix, 0) == 0) t = ckpt_.weights.Find(name->substr(kPrefix.size()));
  if (t != nullptr) const_cast<WeightBinder*>(this)->used_.insert(t->name);
  return t;
}

namespace {

// The layer index in a tensor name ("blk.3.attn_q.weight", "model.layers.3.mlp...",
// "transformer.h.3.attn..."): the first dot-separated segment made only of digits.
std::optional<int64_t> LayerOf(std::string_view name) {
  size_t start = 0;
  while (start <= name.size()) {
    const size_t dot = name.find('.', start);
    const std::string_view seg = name.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (!seg.empty() && seg.size() < 10 && seg.find_first_not_of("0123456789") == std::string_view::npos)
      return std::stoll(std::string(seg));
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return std::nullopt;
}

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

}  // namespace

Status WeightBinder::CheckAllUsed() const {
  const ModelConfig& c = ckpt_.config;
  std::vector<std::string> unused;
  for (const auto& [name, tensor] : ckpt_.weights.tensors()) {
    if (used_.count(name)) continue;
    if (const auto layer = LayerOf(name); layer && *layer >= c.n_layer)
      return CorruptFile(ckpt_.path + ": tensor '" + name + "' belongs to layer " + std::to_string(*layer) +
                         ", but the config gives the model " + std::to_string(c.n_layer) +
                         " layers (num_hidden_layers / block_count): the config and the weights disagree");
    // Buffers some exporters save beside the weights; they hold nothing a forward pass needs.
    if (EndsWith(name, "rotary_emb.inv_freq") || EndsWith(name, ".attn.bias") ||
        EndsWith(name, ".attn.masked_bias"))
      continue;
    if (c.tie_embeddings && (name == "lm_head.weight" || name == "output.weight")) continue;
    unused.push_back(name);
  }
  if (!unused.empty()) {
    std::string list;
    for (size_t i = 0; i < unused.size() && i < 5; ++i) list += (i ? ", '" : "'") + unused[i] + "'";
    if (unused.size() > 5) list += " and " + std::to_string(unused.size() - 5) + " more";
    Warn(ckpt_.path + ": " + std::to_string(unused.size()) + " tensor" + (unused.size() == 1 ? "" : "s") +
         " not used by the " + std::string(ArchName(c.arch)) + " model: " + list);
  }
  return Status::Ok();
}

Expected<std::optional<TensorView>> WeightBinder::OptionalMatrix(Role role, int64_t layer,
                                                                 std::vector<int64_t> shape) {
  std::string name;
  const TensorView* t = Lookup(role, layer, &name);
  if (t == nullptr) return std::optional<TensorView>();
  if (t->shape != shape)
    return CorruptFile(ckpt_.path + ": tensor '" + name + "' has shape " + ShapeString(t->shape) +
                       ", expected " + ShapeString(shape) + " from the model config");
  if (t->dtype == DType::kI32)
    return Unsupported(ckpt_.path + ": tensor '" + name + "' is I32; weights must be floating point or quantized");
  return std::optional<TensorView>(*t);
}

Expected<TensorView> WeightBinder::Matrix(Role role, int64_t layer, std::vector<int64_t> shape) {
  FG_ASSIGN_OR_RETURN(auto t, OptionalMatrix(role, layer, shape));
  if (!t)
    return NotFound(ckpt_.path + ": missing tensor '" +
                    TensorName(ckpt_.config.arch, ckpt_.format, role, layer) + "'");
  return *t;
}

Expected<std::optional<std::vector<float>>> WeightBinder::OptionalVector(Role role, int64_t layer,
                                                                         int64_t size) {
  FG_ASSIGN_OR_RETURN(auto t, OptionalMatrix(role, layer, {size}));
  if (!t) return std::optional<std::vector<float>>();
  std::vector<float> v(static_cast<size_t>(size));
  kernels::reference::DequantizeRow(t->dtype, t->data, v.data(), size);
  return std::optional<std::vector<float>>(std::move(v));
}

Expected<std::vector<float>> WeightBinder::Vector(Role role, int64_t layer, int64_t size) {
  FG_ASSIGN_OR_RETURN(auto v, OptionalVector(role, layer, size));
  if (!v)
    return NotFound(ckpt_.path + ": missing tensor '" +
                    TensorName(ckpt_.config.arch, ckpt_.format, role, layer) + "'");
  return std::move(*v);
}

Expected<TensorView> WeightBinder::TransposedMatrix(Role role, int64_t layer, int64_t out,
                                                    int64_t in) {
  if (ckpt_.format == CheckpointFormat::kGguf) return Matrix(role, layer, {out, in});
  FG_ASSIGN_OR_RETURN(TensorView t, Matrix(role, layer, {in, out}));
  if (IsQuantized(t.dtype))
    return Unsupported(ckpt_.path + ": tensor '" + t.name + "' is quantized; cannot transpose");
  const size_t elem = static_cast<size_t>(Info(t.dtype).block_bytes);
  uint8_t* dst = ckpt_.weights.AllocateOwned(t.nbytes);
  for (int64_t i = 0; i < in; ++i)
    for (int64_t o = 0; o < out; ++o)
      std::memcpy(dst + (static_cast<size_t>(o * in + i)) * elem,
                  t.data + (static_cast<size_t>(i * out + o)) * elem, elem);
  TensorView tr = t;
  tr.shape = {out, in};
  tr.data = dst;
  ckpt_.weights.Put(tr);
  return tr;
}

}  // namespace fastgen
