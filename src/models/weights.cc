#include "models/weights.h"

#include <cstring>

#include "kernels/reference/dequant.h"

namespace fastgen {

const TensorView* WeightBinder::Lookup(Role role, int64_t layer, std::string* name) const {
  *name = TensorName(ckpt_.config.arch, ckpt_.format, role, layer);
  if (name->empty()) return nullptr;
  if (const TensorView* t = ckpt_.weights.Find(*name)) return t;
  // Some GPT-2 checkpoints (the original OpenAI upload) omit the "transformer." prefix.
  constexpr std::string_view kPrefix = "transformer.";
  if (name->rfind(kPrefix, 0) == 0) return ckpt_.weights.Find(name->substr(kPrefix.size()));
  return nullptr;
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
