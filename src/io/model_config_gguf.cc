// ModelConfig from GGUF metadata, following the key names llama.cpp's converter writes.
#include <algorithm>
#include <cstdlib>
#include <optional>
#include <set>

#include "io/gguf.h"
#include "io/model_config.h"

namespace fastgen {
namespace {

// Metadata lookups with user overrides (`--override-kv key=value`) taking precedence.
class GgufKeys {
 public:
  GgufKeys(const GgufFile& g, const std::map<std::string, std::string>& overrides)
      : g_(g), overrides_(overrides) {}

  Expected<std::optional<int64_t>> Int(const std::string& key) const {
    read_.insert(key);
    if (auto it = overrides_.find(key); it != overrides_.end()) {
      char* end = nullptr;
      const long long v = std::strtoll(it->second.c_str(), &end, 10);
      if (end == it->second.c_str() || *end != '\0')
        return InvalidArgument("--override-kv " + key + "=" + it->second + ": not an integer");
      return std::optional<int64_t>(v);
    }
    return g_.GetInt(key);
  }
  Expected<std::optional<double>> Float(const std::string& key) const {
    read_.insert(key);
    if (auto it = overrides_.find(key); it != overrides_.end()) {
      char* end = nullptr;
      const double v = std::strtod(it->second.c_str(), &end);
      if (end == it->second.c_str() || *end != '\0')
        return InvalidArgument("--override-kv " + key + "=" + it->second + ": not a number");
      return std::optional<double>(v);
    }
    return g_.GetFloat(key);
  }
  Expected<std::optional<std::string>> String(const std::string& key) const {
    read_.insert(key);
    if (auto it = overrides_.find(key); it != overrides_.end())
      return std::optional<std::string>(it->second);
    return g_.GetString(key);
  }
  bool Overridden(const std::string& key) const { return overrides_.count(key) != 0; }
  Expected<int64_t> RequiredInt(const std::string& key) const {
    FG_ASSIGN_OR_RETURN(auto v, Int(key));
    if (!v) return NotFound(g_.path() + ": missing metadata key '" + key + "'");
    return *v;
  }

  // An override of a key the configuration never read would change nothing: say so rather
  // than let the user believe the model was repaired.
  Status CheckOverridesRead() const {
    for (const auto& [key, value] : overrides_) {
      if (read_.count(key)) continue;
      std::string known;
      for (const std::string& k : read_) known += (known.empty() ? "" : ", ") + k;
      return InvalidArgument("--override-kv " + key + ": fastgen does not read this key from " + g_.path() +
                             ", so overriding it would change nothing (keys it reads here: " + known + ")");
    }
    return Status::Ok();
  }

 private:
  const GgufFile& g_;
  const std::map<std::string, std::string>& overrides_;
  mutable std::set<std::string> read_;  // every key looked up, overridden or not
};

const GgufTensorInfo* FindTensor(const GgufFile& g, const std::string& name) {
  for (const auto& t : g.tensor_infos())
    if (t.name == name) return &t;
  return nullptr;
}

}  // namespace

Expected<ModelConfig> ConfigFromGguf(const GgufFile& g,
                                     const std::map<std::string, std::string>& overrides) {
  GgufKeys keys(g, overrides);
  const std::string& src = g.path();
  FG_ASSIGN_OR_RETURN(auto arch_name, keys.String("general.architecture"));
  if (!arch_name) return NotFound(src + ": missing metadata key 'general.architecture'");
  ModelConfig c;
  FG_ASSIGN_OR_RETURN(c.arch, ArchFromGgufName(*arch_name, src));
  c.attention_bias = c.arch == Arch::kQwen2;  // llama.cpp's qwen2 graph requires the biases too
  const std::string p = *arch_name + ".";

  FG_ASSIGN_OR_RETURN(c.d_model, keys.RequiredInt(p + "embedding_length"));
  FG_ASSIGN_OR_RETURN(c.n_layer, keys.RequiredInt(p + "block_count"));
  FG_ASSIGN_OR_RETURN(c.n_head, keys.RequiredInt(p + "attention.head_count"));
  FG_ASSIGN_OR_RETURN(auto n_kv, keys.Int(p + "attention.head_count_kv"));
  c.n_kv_head = n_kv.value_or(c.n_head);
  FG_ASSIGN_OR_RETURN(c.d_ff, keys.RequiredInt(p + "feed_forward_length"));
  FG_ASSIGN_OR_RETURN(c.max_context, keys.RequiredInt(p + "context_length"));
  if (c.n_head <= 0) return CorruptFile(src + ": " + p + "attention.head_count must be positive");
  FG_ASSIGN_OR_RETURN(auto key_len, keys.Int(p + "attention.key_length"));
  c.head_dim = key_len.value_or(c.d_model / c.n_head);

  if (c.arch == Arch::kGpt2) {
    FG_ASSIGN_OR_RETURN(auto eps, keys.Float(p + "attention.layer_norm_epsilon"));
    c.norm_eps = eps.value_or(1e-5);
    c.activation = Activation::kGeluTanh;
  } else {
    FG_ASSIGN_OR_RETURN(auto eps, keys.Float(p + "attention.layer_norm_rms_epsilon"));
    c.norm_eps = eps.value_or(1e-5);
    c.activation = c.arch == Arch::kGemma ? Activation::kGeluTanh : Activation::kSilu;
    FG_ASSIGN_OR_RETURN(auto base, keys.Float(p + "rope.freq_base"));
    c.rope_theta = base.value_or(10000.0);
    FG_ASSIGN_OR_RETURN(auto rope_dims, keys.Int(p + "rope.dimension_count"));
    c.rope_dims = rope_dims.value_or(c.head_dim);
    // llama.cpp permutes Llama (and Mistral) Q/K rows so that rotary pairs are adjacent; the
    // other families are converted unpermuted and rotate halves (llama.cpp's NEOX mode).
    c.rope_style = (c.arch == Arch::kLlama || c.arch == Arch::kMistral) ? RopeStyle::kAdjacent
                                                                        : RopeStyle::kHalf;
    FG_ASSIGN_OR_RETURN(auto scaling, keys.String(p + "rope.scaling.type"));
    if (scaling && *scaling != "none") {
      FG_ASSIGN_OR_RETURN(auto factor, keys.Float(p + "rope.scaling.factor"));
      c.rope_scaling.factor = factor.value_or(1.0);
      if (*scaling == "linear") {
        c.rope_scaling.type = RopeScaling::Type::kLinear;
      } else if (*scaling == "llama3") {
        // Not written by llama.cpp (it stores the resulting per-dimension factors in the
        // rope_freqs.weight tensor instead) but accepted as overrides for files whose
        // converter dropped the scaling.
        c.rope_scaling.type = RopeScaling::Type::kLlama3;
        FG_ASSIGN_OR_RETURN(auto lo, keys.Float(p + "rope.scaling.low_freq_factor"));
        FG_ASSIGN_OR_RETURN(auto hi, keys.Float(p + "rope.scaling.high_freq_factor"));
        FG_ASSIGN_OR_RETURN(auto orig, keys.Int(p + "rope.scaling.original_context_length"));
        c.rope_scaling.low_freq_factor = lo.value_or(1.0);
        c.rope_scaling.high_freq_factor = hi.value_or(4.0);
        c.rope_scaling.original_max_position = orig.value_or(8192);
      } else {
        return Unsupported(src + ": " + p + "rope.scaling.type '" + *scaling +
                           "' is not supported (supported: none, linear, llama3)");
      }
    }
    FG_ASSIGN_OR_RETURN(auto window, keys.Int(p + "attention.sliding_window"));
    c.sliding_window = window.value_or(0);
  }

  // Vocabulary: the embedding's rows are authoritative; metadata only when there is none. The
  // metadata must agree with it, so that a damaged embedding is named as such instead of
  // surfacing as a shape error of the output matrix, or not at all.
  FG_ASSIGN_OR_RETURN(auto tokens, g.GetStringArray("tokenizer.ggml.tokens"));
  if (const GgufTensorInfo* emb = FindTensor(g, "token_embd.weight"); emb && emb->shape.size() == 2) {
    c.vocab_size = emb->shape[0];
    FG_ASSIGN_OR_RETURN(auto vocab_key, keys.Int(p + "vocab_size"));
    if (vocab_key && *vocab_key != c.vocab_size)
      return CorruptFile(src + ": tensor 'token_embd.weight' has " + std::to_string(c.vocab_size) + " rows but " + p +
                         "vocab_size is " + std::to_string(*vocab_key));
    // An embedding may have more rows than the tokenizer has pieces (padding), never fewer.
    if (tokens && static_cast<int64_t>(tokens->size()) > c.vocab_size)
      return CorruptFile(src + ": tensor 'token_embd.weight' has " + std::to_string(c.vocab_size) +
                         " rows but the vocabulary (tokenizer.ggml.tokens) has " + std::to_string(tokens->size()) +
                         " tokens");
  } else {
    FG_ASSIGN_OR_RETURN(auto vocab, keys.Int(p + "vocab_size"));
    if (!vocab && tokens) vocab = static_cast<int64_t>(tokens->size());
    if (!vocab) return NotFound(src + ": no token_embd.weight and no vocabulary size");
    c.vocab_size = *vocab;
  }
  c.tie_embeddings = FindTensor(g, "output.weight") == nullptr;

  // A special token id is absent when the key is, or holds llama.cpp's "none" (-1, or
  // 0xFFFFFFFF as uint32); any other id must name a row of the vocabulary: dropping it would
  // silently turn off BOS or the stop at EOS.
  auto special_id = [&](const char* key) -> Expected<std::optional<int32_t>> {
    FG_ASSIGN_OR_RETURN(auto id, keys.Int(key));
    if (!id || *id == -1 || *id == 0xFFFFFFFFll) return std::optional<int32_t>();
    if (*id < 0 || *id >= c.vocab_size) {
      const std::string what = key + std::string(" = ") + std::to_string(*id) + " is outside the vocabulary [0, " +
                               std::to_string(c.vocab_size) + ")";
      // The user's --override-kv is a usage error; the file's own value makes a corrupt file.
      if (keys.Overridden(key)) return InvalidArgument("--override-kv " + what);
      return CorruptFile(src + ": " + what);
    }
    return std::optional<int32_t>(static_cast<int32_t>(*id));
  };
  FG_ASSIGN_OR_RETURN(c.bos_id, special_id("tokenizer.ggml.bos_token_id"));
  for (const char* key : {"tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id",
                          "tokenizer.ggml.eom_token_id"}) {
    FG_ASSIGN_OR_RETURN(auto id, special_id(key));
    if (id && std::find(c.eos_ids.begin(), c.eos_ids.end(), *id) == c.eos_ids.end()) c.eos_ids.push_back(*id);
  }
  FG_RETURN_IF_ERROR(ValidateConfig(c, src));
  FG_RETURN_IF_ERROR(keys.CheckOverridesRead());
  return c;
}

}  // namespace fastgen
