// Binding checkpoint tensors to a model's fields with shape checks, shared by every family.
#pragma once

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/tensor.h"
#include "io/checkpoint.h"
#include "models/tensor_names.h"

namespace fastgen {

class WeightBinder {
 public:
  explicit WeightBinder(Checkpoint& ckpt) : ckpt_(ckpt) {}

  // The tensor for `role` with exactly `shape` (PyTorch order); names the tensor on error.
  Expected<TensorView> Matrix(Role role, int64_t layer, std::vector<int64_t> shape);
  // Like Matrix, but a missing tensor yields nullopt.
  Expected<std::optional<TensorView>> OptionalMatrix(Role role, int64_t layer, std::vector<int64_t> shape);
  // A 1-D tensor (norm weight, bias) of `size` elements converted to float32.
  Expected<std::vector<float>> Vector(Role role, int64_t layer, int64_t size);
  Expected<std::optional<std::vector<float>>> OptionalVector(Role role, int64_t layer, int64_t size);
  // Hugging Face GPT-2 stores Conv1D weights as [in, out]; returns the [out, in] transpose as a
  // tensor owned by the checkpoint (one copy at load; GGUF files are already transposed).
  Expected<TensorView> TransposedMatrix(Role role, int64_t layer, int64_t out, int64_t in);

  // After binding: every tensor of the checkpoint was used. A tensor of a layer at or past the
  // config's layer count is an error (the config and the weights disagree: running would drop
  // layers silently); any other unused tensor is a warning naming it, except the buffers
  // checkpoints are known to carry (rotary inv_freq, GPT-2's causal-mask buffers, an output
  // matrix duplicated by a model with tied embeddings).
  Status CheckAllUsed() const;

 private:
  const TensorView* Lookup(Role role, int64_t layer, std::string* name) const;
  Checkpoint& ckpt_;
  std::set<std::string, std::less<>> used_;  // names of the tensors bound so far
};

}  // namespace fastgen
