#include "io/model_config.h"

#include <cmath>

#include <nlohmann/json.hpp>

namespace fastgen {
namespace {

using nlohmann::json;

// Bounds that no real checkpoint reaches; they keep a hostile config from requesting
// absurd allocations (a KV cache of 2^40 positions) before anything else can object.
constexpr int64_t kMaxDim = 1 << 20;
constexpr int64_t kMaxLayers = 4096;
constexpr int64_t kMaxVocab = 1 << 24;
constexpr int64_t kMaxContext = 1 << 24;

Expected<Arch> ArchFromHf(const std::string& name, const std::string& source) {
  if (name == "LlamaForCausalLM") return Arch::kLlama;
  if (name == "MistralForCausalLM") return Arch::kMistral;
  if (name == "Qwen2ForCausalLM") return Arch::kQwen2;
  if (name == "Qwen3ForCausalLM") return Arch::kQwen3;
  if (name == "GemmaForCausalLM") return Arch::kGemma;
  if (name == "Phi3ForCausalLM") return Arch::kPhi3;
  if (name == "GPT2LMHeadModel") return Arch::kGpt2;
  return Unsupported(source + ": architecture '" + name +
                     "' is not supported (supported: LlamaForCausalLM, MistralForCausalLM, "
                     "Qwen2ForCausalLM, Qwen3ForCausalLM, GemmaForCausalLM, Phi3ForCausalLM, "
                     "GPT2LMHeadModel)");
}

// Reads config.json fields with type checks; every error names the file and field.
class JsonFields {
 public:
  JsonFields(const json& j, std::string source) : j_(j), source_(std::move(source)) {}

  bool Has(const char* key) const { return j_.contains(key) && !j_[key].is_null(); }

  Expected<int64_t> Int(const char* key, std::optional<int64_t> fallback = std::nullopt) const {
    if (!Has(key)) {
      if (fallback) return *fallback;
      return NotFound(source_ + ": missing field '" + key + "'");
    }
    const json& v = j_[key];
    if (!v.is_number_integer()) return CorruptFile(source_ + ": field '" + key + "' is not an integer");
    return v.get<int64_t>();
  }

  Expected<double> Number(const char* key, std::optional<double> fallback = std::nullopt) const {
    if (!Has(key)) {
      if (fallback) return *fallback;
      return NotFound(source_ + ": missing field '" + key + "'");
    }
    const json& v = j_[key];
    if (!v.is_number()) return CorruptFile(source_ + ": field '" + key + "' is not a number");
    return v.get<double>();
  }

  Expected<std::string> String(const char* key, std::optional<std::string> fallback = std::nullopt) const {
    if (!Has(key)) {
      if (fallback) return *fallback;
      return NotFound(source_ + ": missing field '" + key + "'");
    }
    const json& v = j_[key];
    if (!v.is_string()) return CorruptFile(source_ + ": field '" + key + "' is not a string");
    return v.get<std::string>();
  }

  Expected<bool> Bool(const char* key, bool fallback) const {
    if (!Has(key)) return fallback;
    const json& v = j_[key];
    if (!v.is_boolean()) return CorruptFile(source_ + ": field '" + key + "' is not a boolean");
    return v.get<bool>();
  }

  // Token ids given as one integer or a list of integers.
  Expected<std::vector<int32_t>> Ids(const char* key) const {
    std::vector<int32_t> ids;
    if (!Has(key)) return ids;
    const json& v = j_[key];
    auto add = [&](const json& x) -> Status {
      if (!x.is_number_integer() || x.get<int64_t>() < 0 || x.get<int64_t>() > kMaxVocab)
        return CorruptFile(source_ + ": field '" + key + "' holds an invalid token id");
      ids.push_back(static_cast<int32_t>(x.get<int64_t>()));
      return Status::Ok();
    };
    if (v.is_array()) {
      for (const json& x : v) FG_RETURN_IF_ERROR(add(x));
    } else {
      FG_RETURN_IF_ERROR(add(v));
    }
    return ids;
  }

  const json& raw() const { return j_; }
  const std::string& source() const { return source_; }

 private:
  const json& j_;
  std::string source_;
};

// RoPE settings live in `rope_parameters` (transformers 5.x) or in `rope_theta` plus
// `rope_scaling` (4.x). Both spell the scaling fields the same way.
Status ParseHfRope(const JsonFields& f, ModelConfig* c) {
  const json& j = f.raw();
  const json* params = nullptr;
  if (f.Has("rope_parameters")) {
    if (!j["rope_parameters"].is_object())
      return CorruptFile(f.source() + ": field 'rope_parameters' is not an object");
    params = &j["rope_parameters"];
  }
  if (params != nullptr && params->contains("rope_theta")) {
    JsonFields p(*params, f.source() + " rope_parameters");
    FG_ASSIGN_OR_RETURN(c->rope_theta, p.Number("rope_theta"));
  } else {
    FG_ASSIGN_OR_RETURN(c->rope_theta, f.Number("rope_theta", 10000.0));
  }
  const json* scaling = params;
  if (f.Has("rope_scaling")) {
    if (!j["rope_scaling"].is_object())
      return CorruptFile(f.source() + ": field 'rope_scaling' is not an object");
    scaling = &j["rope_scaling"];
  }
  if (params != nullptr && params->contains("partial_rotary_factor")) {
    JsonFields p(*params, f.source() + " rope_parameters");
    FG_ASSIGN_OR_RETURN(double prf, p.Number("partial_rotary_factor"));
    c->rope_dims = static_cast<int64_t>(std::llround(prf * static_cast<double>(c->head_dim)));
  } else if (f.Has("partial_rotary_factor")) {
    FG_ASSIGN_OR_RETURN(double prf, f.Number("partial_rotary_factor"));
    c->rope_dims = static_cast<int64_t>(std::llround(prf * static_cast<double>(c->head_dim)));
  }
  if (scaling == nullptr) return Status::Ok();
  JsonFields s(*scaling, f.source() + " rope scaling");
  std::string type;
  if (s.Has("rope_type")) {
    FG_ASSIGN_OR_RETURN(type, s.String("rope_type"));
  } else {
    FG_ASSIGN_OR_RETURN(type, s.String("type", std::string("default")));
  }
  if (type == "default") return Status::Ok();
  if (type == "linear") {
    c->rope_scaling.type = RopeScaling::Type::kLinear;
    FG_ASSIGN_OR_RETURN(c->rope_scaling.factor, s.Number("factor"));
  } else if (type == "llama3") {
    c->rope_scaling.type = RopeScaling::Type::kLlama3;
    FG_ASSIGN_OR_RETURN(c->rope_scaling.factor, s.Number("factor"));
    FG_ASSIGN_OR_RETURN(c->rope_scaling.low_freq_factor, s.Number("low_freq_factor"));
    FG_ASSIGN_OR_RETURN(c->rope_scaling.high_freq_factor, s.Number("high_freq_factor"));
    FG_ASSIGN_OR_RETURN(c->rope_scaling.original_max_position,
                        s.Int("original_max_position_embeddings"));
  } else {
    return Unsupported(f.source() + ": rope scaling type '" + type +
                       "' is not supported (supported: default, linear, llama3)");
  }
  if (!(c->rope_scaling.factor > 0))
    return CorruptFile(f.source() + ": rope scaling 'factor' must be positive");
  return Status::Ok();
}

}  // namespace

Expected<Arch> ArchFromGgufName(const std::string& name, const std::string& source) {
  if (name == "llama") return Arch::kLlama;
  if (name == "mistral") return Arch::kMistral;
  if (name == "qwen2") return Arch::kQwen2;
  if (name == "qwen3") return Arch::kQwen3;
  if (name == "gemma") return Arch::kGemma;
  if (name == "phi3") return Arch::kPhi3;
  if (name == "gpt2") return Arch::kGpt2;
  return Unsupported(source + ": general.architecture '" + name +
                     "' is not supported (supported: llama, mistral, qwen2, qwen3, gemma, phi3, "
                     "gpt2)");
}

const char* ArchName(Arch a) {
  switch (a) {
    case Arch::kLlama: return "llama";
    case Arch::kMistral: return "mistral";
    case Arch::kQwen2: return "qwen2";
    case Arch::kQwen3: return "qwen3";
    case Arch::kGemma: return "gemma";
    case Arch::kPhi3: return "phi3";
    case Arch::kGpt2: return "gpt2";
  }
  return "unknown";
}

Expected<ModelConfig> ParseHfConfig(const std::string& config_json, const std::string& source,
                                    const std::string* generation_config_json) {
  json j = json::parse(config_json, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return CorruptFile(source + ": not a valid JSON object");
  JsonFields f(j, source);
  ModelConfig c;

  std::string arch_name;
  if (f.Has("architectures")) {
    if (!j["architectures"].is_array() || j["architectures"].empty() ||
        !j["architectures"][0].is_string())
      return CorruptFile(source + ": field 'architectures' is not a list of names");
    arch_name = j["architectures"][0].get<std::string>();
  } else {
    return NotFound(source + ": missing field 'architectures'");
  }
  FG_ASSIGN_OR_RETURN(c.arch, ArchFromHf(arch_name, source));

  if (c.arch == Arch::kGpt2) {
    FG_ASSIGN_OR_RETURN(c.d_model, f.Int("n_embd"));
    FG_ASSIGN_OR_RETURN(c.n_layer, f.Int("n_layer"));
    FG_ASSIGN_OR_RETURN(c.n_head, f.Int("n_head"));
    c.n_kv_head = c.n_head;
    FG_ASSIGN_OR_RETURN(c.d_ff, f.Int("n_inner", 4 * c.d_model));
    FG_ASSIGN_OR_RETURN(c.max_context, f.Int("n_positions"));
    FG_ASSIGN_OR_RETURN(c.norm_eps, f.Number("layer_norm_epsilon", 1e-5));
    FG_ASSIGN_OR_RETURN(std::string act, f.String("activation_function", std::string("gelu_new")));
    if (act != "gelu_new" && act != "gelu_pytorch_tanh")
      return Unsupported(source + ": activation_function '" + act + "' is not supported for GPT-2");
    c.activation = Activation::kGeluTanh;
    FG_ASSIGN_OR_RETURN(c.tie_embeddings, f.Bool("tie_word_embeddings", true));
    c.head_dim = c.n_head > 0 ? c.d_model / c.n_head : 0;
    c.rope_dims = 0;
  } else {
    FG_ASSIGN_OR_RETURN(c.d_model, f.Int("hidden_size"));
    FG_ASSIGN_OR_RETURN(c.n_layer, f.Int("num_hidden_layers"));
    FG_ASSIGN_OR_RETURN(c.n_head, f.Int("num_attention_heads"));
    FG_ASSIGN_OR_RETURN(c.n_kv_head, f.Int("num_key_value_heads", c.n_head));
    if (c.n_head <= 0) return CorruptFile(source + ": field 'num_attention_heads' must be positive");
    FG_ASSIGN_OR_RETURN(c.head_dim, f.Int("head_dim", c.d_model / c.n_head));
    FG_ASSIGN_OR_RETURN(c.d_ff, f.Int("intermediate_size"));
    FG_ASSIGN_OR_RETURN(c.max_context, f.Int("max_position_embeddings"));
    FG_ASSIGN_OR_RETURN(c.norm_eps, f.Number("rms_norm_eps", 1e-6));
    c.rope_dims = c.head_dim;
    FG_RETURN_IF_ERROR(ParseHfRope(f, &c));

    // Gemma names its activation `hidden_activation` (newer) or `hidden_act`.
    std::string act;
    if (f.Has("hidden_activation")) {
      FG_ASSIGN_OR_RETURN(act, f.String("hidden_activation"));
    } else {
      FG_ASSIGN_OR_RETURN(act, f.String("hidden_act", std::string(c.arch == Arch::kGemma
                                                                    ? "gelu_pytorch_tanh"
                                                                    : "silu")));
    }
    if (act == "silu" || act == "swish") {
      c.activation = Activation::kSilu;
    } else if (act == "gelu_pytorch_tanh" || act == "gelu_new" ||
               (c.arch == Arch::kGemma && act == "gelu")) {
      // transformers runs Gemma's "gelu" as the tanh approximation too (GemmaMLP warns and
      // switches), so fastgen follows.
      c.activation = Activation::kGeluTanh;
    } else {
      return Unsupported(source + ": hidden_act '" + act + "' is not supported");
    }

    const bool tie_default = c.arch == Arch::kGemma;
    FG_ASSIGN_OR_RETURN(c.tie_embeddings, f.Bool("tie_word_embeddings", tie_default));
    c.norm_weight_plus_one = c.arch == Arch::kGemma;

    // Qwen2 projects q/k/v with biases by design; Llama-family configs may say so.
    FG_ASSIGN_OR_RETURN(c.attention_bias, f.Bool("attention_bias", c.arch == Arch::kQwen2));
    FG_ASSIGN_OR_RETURN(bool mlp_bias, f.Bool("mlp_bias", false));
    if (mlp_bias) return Unsupported(source + ": mlp_bias=true (biases in the feed-forward) is not supported");
    if (c.arch == Arch::kMistral || c.arch == Arch::kPhi3) {
      FG_ASSIGN_OR_RETURN(c.sliding_window, f.Int("sliding_window", int64_t{0}));
    } else if (c.arch == Arch::kQwen2 || c.arch == Arch::kQwen3) {
      FG_ASSIGN_OR_RETURN(bool use_swa, f.Bool("use_sliding_window", false));
      if (use_swa)
        return Unsupported(source + ": use_sliding_window=true (Qwen per-layer sliding window) "
                                    "is not supported");
    }
  }

  FG_ASSIGN_OR_RETURN(c.vocab_size, f.Int("vocab_size"));
  FG_ASSIGN_OR_RETURN(auto bos, f.Ids("bos_token_id"));
  if (!bos.empty()) c.bos_id = bos[0];
  FG_ASSIGN_OR_RETURN(c.eos_ids, f.Ids("eos_token_id"));

  if (generation_config_json != nullptr) {
    json g = json::parse(*generation_config_json, nullptr, false);
    if (g.is_discarded() || !g.is_object())
      return CorruptFile("generation_config.json: not a valid JSON object");
    JsonFields gf(g, "generation_config.json");
    FG_ASSIGN_OR_RETURN(auto geos, gf.Ids("eos_token_id"));
    if (!geos.empty()) c.eos_ids = geos;
    FG_ASSIGN_OR_RETURN(auto gbos, gf.Ids("bos_token_id"));
    if (!gbos.empty()) c.bos_id = gbos[0];
  }
  FG_RETURN_IF_ERROR(ValidateConfig(c, source));
  // Tiny test checkpoints keep the parent model's special ids (GPT-2's 50256 with a 256-token
  // vocabulary); an id the model cannot produce can never stop generation, so drop it.
  std::erase_if(c.eos_ids, [&](int32_t id) { return id >= c.vocab_size; });
  if (c.bos_id && *c.bos_id >= c.vocab_size) c.bos_id.reset();
  return c;
}

Status ValidateConfig(const ModelConfig& c, const std::string& source) {
  auto in_range = [&](const char* field, int64_t v, int64_t lo, int64_t hi) -> Status {
    if (v < lo || v > hi)
      return CorruptFile(source + ": " + field + " = " + std::to_string(v) + " is outside [" +
                         std::to_string(lo) + ", " + std::to_string(hi) + "]");
    return Status::Ok();
  };
  FG_RETURN_IF_ERROR(in_range("vocab size", c.vocab_size, 1, kMaxVocab));
  FG_RETURN_IF_ERROR(in_range("hidden size", c.d_model, 1, kMaxDim));
  FG_RETURN_IF_ERROR(in_range("layer count", c.n_layer, 1, kMaxLayers));
  FG_RETURN_IF_ERROR(in_range("attention head count", c.n_head, 1, kMaxDim));
  FG_RETURN_IF_ERROR(in_range("key/value head count", c.n_kv_head, 1, c.n_head));
  FG_RETURN_IF_ERROR(in_range("head dim", c.head_dim, 1, kMaxDim));
  FG_RETURN_IF_ERROR(in_range("feed-forward size", c.d_ff, 1, kMaxDim));
  FG_RETURN_IF_ERROR(in_range("context length", c.max_context, 1, kMaxContext));
  FG_RETURN_IF_ERROR(in_range("sliding window", c.sliding_window, 0, kMaxContext));
  if (c.arch != Arch::kGpt2) {
    FG_RETURN_IF_ERROR(in_range("rotary dims", c.rope_dims, 2, c.head_dim));
    if (c.rope_dims % 2 != 0) return CorruptFile(source + ": rotary dims must be even");
    if (!(c.rope_theta > 0) || !std::isfinite(c.rope_theta))
      return CorruptFile(source + ": rope theta must be a positive number");
  }
  if (c.n_head % c.n_kv_head != 0)
    return CorruptFile(source + ": attention heads (" + std::to_string(c.n_head) +
                       ") are not a multiple of key/value heads (" + std::to_string(c.n_kv_head) + ")");
  if (c.arch == Arch::kGpt2 && c.head_dim * c.n_head != c.d_model)
    return CorruptFile(source + ": n_embd is not a multiple of n_head");
  if (!(c.norm_eps > 0) || !std::isfinite(c.norm_eps))
    return CorruptFile(source + ": norm epsilon must be a positive number");
  return Status::Ok();
}

}  // namespace fastgen
