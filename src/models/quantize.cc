#include "models/quantize.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>

#include <nlohmann/json.hpp>

#include "io/checkpoint.h"
#include "io/gguf_writer.h"
#include "kernels/reference/dequant.h"
#include "kernels/reference/quant_grid.h"
#include "models/rope_params.h"
#include "models/tensor_names.h"

namespace fastgen {
namespace {

using nlohmann::json;

constexpr Role kAllRoles[] = {
    Role::kTokenEmbd, Role::kPositionEmbd, Role::kOutputNorm, Role::kOutputNormBias, Role::kOutput,
    Role::kRopeFreqs, Role::kAttnNorm, Role::kAttnNormBias, Role::kAttnQ, Role::kAttnK, Role::kAttnV,
    Role::kAttnQkv, Role::kAttnQBias, Role::kAttnKBias, Role::kAttnVBias, Role::kAttnQkvBias,
    Role::kAttnOut, Role::kAttnOutBias, Role::kAttnQNorm, Role::kAttnKNorm, Role::kFfnNorm,
    Role::kFfnNormBias, Role::kFfnGate, Role::kFfnUp, Role::kFfnGateUp, Role::kFfnDown,
    Role::kFfnUpBias, Role::kFfnDownBias,
};

bool IsPerLayer(Role r) {
  switch (r) {
    case Role::kTokenEmbd: case Role::kPositionEmbd: case Role::kOutputNorm:
    case Role::kOutputNormBias: case Role::kOutput: case Role::kRopeFreqs:
      return false;
    default:
      return true;
  }
}

bool IsNormWeight(Role r) {
  return r == Role::kOutputNorm || r == Role::kAttnNorm || r == Role::kFfnNorm;
}

// GPT-2's Conv1D projections are stored [in, out] by transformers, [out, in] in GGUF.
bool IsConv1D(Arch a, Role r) {
  return a == Arch::kGpt2 &&
         (r == Role::kAttnQkv || r == Role::kAttnOut || r == Role::kFfnUp || r == Role::kFfnDown);
}

// llama.cpp's converter reorders each head's Q/K rows from rotate-half pairing (i, i + d/2) to
// adjacent pairing (2i, 2i + 1) for Llama and Mistral; fastgen's GGUF reader expects that.
std::vector<float> PermuteForAdjacentRope(const std::vector<float>& w, int64_t rows, int64_t cols,
                                          int64_t n_heads) {
  std::vector<float> out(w.size());
  const int64_t hd = rows / n_heads, half = hd / 2;
  for (int64_t h = 0; h < n_heads; ++h)
    for (int64_t i = 0; i < half; ++i)
      for (int64_t j = 0; j < 2; ++j) {
        const int64_t dst = h * hd + 2 * i + j, src = h * hd + j * half + i;
        std::copy_n(w.begin() + src * cols, cols, out.begin() + dst * cols);
      }
  return out;
}

Status AddModelMetadata(const ModelConfig& c, const std::string& name, GgufWriter& w) {
  const std::string p = std::string(ArchName(c.arch)) + ".";
  auto u32 = [&](const std::string& k, int64_t v) { return w.AddUint32(p + k, static_cast<uint32_t>(v)); };
  FG_RETURN_IF_ERROR(w.AddString("general.architecture", ArchName(c.arch)));
  FG_RETURN_IF_ERROR(w.AddString("general.name", name));
  FG_RETURN_IF_ERROR(u32("context_length", c.max_context));
  FG_RETURN_IF_ERROR(u32("embedding_length", c.d_model));
  FG_RETURN_IF_ERROR(u32("block_count", c.n_layer));
  FG_RETURN_IF_ERROR(u32("feed_forward_length", c.d_ff));
  FG_RETURN_IF_ERROR(u32("attention.head_count", c.n_head));
  FG_RETURN_IF_ERROR(u32("attention.head_count_kv", c.n_kv_head));
  FG_RETURN_IF_ERROR(u32("vocab_size", c.vocab_size));
  if (c.arch == Arch::kGpt2) {
    FG_RETURN_IF_ERROR(w.AddFloat32(p + "attention.layer_norm_epsilon", static_cast<float>(c.norm_eps)));
    return Status::Ok();
  }
  FG_RETURN_IF_ERROR(w.AddFloat32(p + "attention.layer_norm_rms_epsilon", static_cast<float>(c.norm_eps)));
  FG_RETURN_IF_ERROR(u32("attention.key_length", c.head_dim));
  FG_RETURN_IF_ERROR(u32("attention.value_length", c.head_dim));
  FG_RETURN_IF_ERROR(w.AddFloat32(p + "rope.freq_base", static_cast<float>(c.rope_theta)));
  FG_RETURN_IF_ERROR(u32("rope.dimension_count", c.rope_dims));
  if (c.sliding_window > 0) FG_RETURN_IF_ERROR(u32("attention.sliding_window", c.sliding_window));
  if (c.rope_scaling.type == RopeScaling::Type::kLinear) {
    FG_RETURN_IF_ERROR(w.AddString(p + "rope.scaling.type", "linear"));
    FG_RETURN_IF_ERROR(w.AddFloat32(p + "rope.scaling.factor", static_cast<float>(c.rope_scaling.factor)));
  }
  return Status::Ok();
}

// Byte-level BPE tokenizer.json → tokenizer.ggml.* ("gpt2" model), as llama.cpp's converter
// writes it. Other tokenizer types are reported in notes and left out.
Status AddTokenizerMetadata(const std::string& dir, const ModelConfig& c, GgufWriter& w,
                            std::vector<std::string>* notes) {
  const std::string path = dir + "/tokenizer.json";
  if (!std::filesystem::exists(path)) {
    notes->push_back("no tokenizer.json: the GGUF has no vocabulary");
    return Status::Ok();
  }
  FG_ASSIGN_OR_RETURN(std::string text, ReadTextFile(path, kTokenizerFileLimit));
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.contains("model") || !j["model"].is_object())
    return CorruptFile(path + ": not a tokenizer.json");
  const json& model = j["model"];
  const bool byte_level = j.contains("pre_tokenizer") && j["pre_tokenizer"].is_object() &&
                          j["pre_tokenizer"].value("type", "") == "ByteLevel";
  if (model.value("type", "") != "BPE" || !byte_level || !model.contains("vocab") ||
      !model["vocab"].is_object()) {
    notes->push_back(path + ": only byte-level BPE tokenizers are converted; the GGUF has no vocabulary");
    return Status::Ok();
  }
  std::vector<std::string> tokens(static_cast<size_t>(c.vocab_size));
  std::vector<int64_t> types(static_cast<size_t>(c.vocab_size), 1);  // 1 = normal
  for (auto it = model["vocab"].begin(); it != model["vocab"].end(); ++it) {
    if (!it.value().is_number_integer()) return CorruptFile(path + ": model.vocab holds a non-integer id");
    const int64_t id = it.value().get<int64_t>();
    if (id >= 0 && id < c.vocab_size) tokens[static_cast<size_t>(id)] = it.key();
  }
  if (j.contains("added_tokens") && j["added_tokens"].is_array()) {
    for (const json& t : j["added_tokens"]) {
      if (!t.is_object() || !t.contains("id") || !t["id"].is_number_integer() || !t.contains("content") ||
          !t["content"].is_string())
        return CorruptFile(path + ": malformed entry in added_tokens");
      const int64_t id = t["id"].get<int64_t>();
      if (id < 0 || id >= c.vocab_size) continue;
      tokens[static_cast<size_t>(id)] = t["content"].get<std::string>();
      types[static_cast<size_t>(id)] = t.value("special", false) ? 3 : 4;  // control : user-defined
    }
  }
  for (size_t i = 0; i < tokens.size(); ++i)
    if (tokens[i].empty()) {
      tokens[i] = "[PAD" + std::to_string(i) + "]";
      types[i] = 5;  // unused
    }
  std::vector<std::string> merges;
  if (model.contains("merges") && model["merges"].is_array()) {
    for (const json& m : model["merges"]) {
      if (m.is_string()) merges.push_back(m.get<std::string>());
      else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string())
        merges.push_back(m[0].get<std::string>() + " " + m[1].get<std::string>());
      else return CorruptFile(path + ": malformed entry in model.merges");
    }
  }
  FG_RETURN_IF_ERROR(w.AddString("tokenizer.ggml.model", "gpt2"));
  FG_RETURN_IF_ERROR(w.AddString("tokenizer.ggml.pre", "gpt-2"));
  FG_RETURN_IF_ERROR(w.AddStringArray("tokenizer.ggml.tokens", std::move(tokens)));
  FG_RETURN_IF_ERROR(w.AddIntArray("tokenizer.ggml.token_type", GgufType::kInt32, std::move(types)));
  FG_RETURN_IF_ERROR(w.AddStringArray("tokenizer.ggml.merges", std::move(merges)));
  if (c.bos_id) FG_RETURN_IF_ERROR(w.AddUint32("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(*c.bos_id)));
  if (!c.eos_ids.empty())
    FG_RETURN_IF_ERROR(w.AddUint32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(c.eos_ids[0])));
  const std::string cfg_path = dir + "/tokenizer_config.json";
  if (std::filesystem::exists(cfg_path)) {
    FG_ASSIGN_OR_RETURN(std::string cfg_text, ReadTextFile(cfg_path, kConfigFileLimit));
    json cfg = json::parse(cfg_text, nullptr, false);
    if (!cfg.is_discarded() && cfg.is_object() && cfg.contains("chat_template") && cfg["chat_template"].is_string())
      FG_RETURN_IF_ERROR(w.AddString("tokenizer.chat_template", cfg["chat_template"].get<std::string>()));
  }
  return Status::Ok();
}

// An --override-kv value as the GGUF value it replaces: the type of the file's own value, or
// for a key the file lacks, u32 for an integer, f32 for a number, a bool or a string.
Expected<GgufValue> OverrideValue(const std::string& key, const std::string& text, const GgufValue* old) {
  GgufValue v;
  auto bad = [&](const char* what) { return InvalidArgument("--override-kv " + key + "=" + text + ": not " + what); };
  char* end = nullptr;
  const bool is_int = !text.empty() && (std::strtoll(text.c_str(), &end, 10), *end == '\0');
  const bool is_num = !text.empty() && (std::strtod(text.c_str(), &end), *end == '\0');
  const GgufType t = old ? old->type : is_int ? GgufType::kUint32 : is_num ? GgufType::kFloat32
                                     : (text == "true" || text == "false") ? GgufType::kBool : GgufType::kString;
  v.type = t;
  switch (t) {
    case GgufType::kFloat32:
    case GgufType::kFloat64:
      if (!is_num) return bad("a number");
      v.value = std::strtod(text.c_str(), nullptr);
      return v;
    case GgufType::kBool:
      if (text != "true" && text != "false") return bad("true or false");
      v.value = text == "true";
      return v;
    case GgufType::kString:
      v.value = text;
      return v;
    case GgufType::kArray:
      return bad("overridable (the key holds an array)");
    default:  // the integer types
      if (!is_int) return bad("an integer");
      v.value = static_cast<int64_t>(std::strtoll(text.c_str(), nullptr, 10));
      return v;
  }
}

bool IsBlockQuant(DType t) {
  return t == DType::kQ4_0 || t == DType::kQ2_K || t == DType::kQ3_K || t == DType::kQ4_K || t == DType::kQ5_K ||
         t == DType::kQ6_K;
}

// llama.cpp's choice of the layers that get more bits in the _M mixes.
bool UseMoreBits(int64_t layer, int64_t n_layer) {
  return layer < n_layer / 8 || layer >= 7 * n_layer / 8 || (layer - n_layer / 8) % 3 == 2;
}

// The type llama.cpp's file-type mixes give a matrix (llama-quantize's rules for dense,
// non-Falcon models): Q2_K puts attn_v (Q4_K with 4+ query heads per KV head), ffn_down and
// attn_output in more bits; Q3_K_M attn_v (Q5_K in the first two layers, else Q4_K), ffn_down
// (Q5_K in the first sixteenth) and attn_output (Q4_K); Q4_K_M and Q5_K_M give Q6_K to attn_v
// and ffn_down of the layers UseMoreBits picks.
DType MixType(DType base, const ModelConfig& c, Role role, int64_t layer) {
  const bool v = role == Role::kAttnV, down = role == Role::kFfnDown, out = role == Role::kAttnOut;
  switch (base) {
    case DType::kQ2_K:
      if (v) return c.n_head >= 4 * c.n_kv_head ? DType::kQ4_K : DType::kQ3_K;
      if (down || out) return DType::kQ3_K;
      return base;
    case DType::kQ3_K:
      if (v) return layer < 2 ? DType::kQ5_K : DType::kQ4_K;
      if (down) return layer < c.n_layer / 16 ? DType::kQ5_K : DType::kQ4_K;
      if (out) return DType::kQ4_K;
      return base;
    case DType::kQ4_K:
    case DType::kQ5_K:
      return (v || down) && UseMoreBits(layer, c.n_layer) ? DType::kQ6_K : base;
    default:
      return base;
  }
}

// Where a type's blocks do not divide the rows: Q4_0 for the 2- and 3-bit K-quants (llama.cpp
// takes IQ4_NL, also 4.5 bits per weight, which fastgen does not read), else Q8_0.
DType FallbackType(DType want, int64_t cols) {
  if ((want == DType::kQ2_K || want == DType::kQ3_K) && cols % Info(DType::kQ4_0).block_elems == 0) return DType::kQ4_0;
  if (cols % Info(DType::kQ8_0).block_elems == 0) return DType::kQ8_0;
  return DType::kF16;
}

// The stored type of a converted tensor: 1-D tensors stay float32 (they are tiny and every
// kernel reads them as float32); matrices take the requested type (or its mix's) when their
// rows split into its blocks, else FallbackType. As in llama-quantize, the output matrix (the
// embedding when tied) of a 2- to 6-bit file is Q6_K (Q8_0 when its rows are not whole
// 256-blocks).
DType ChooseType(const QuantizeOptions& o, const ModelConfig& c, Role role, int64_t layer, bool tied, const TensorView& t,
                 bool* fallback) {
  *fallback = false;
  if (t.shape.size() < 2) return DType::kF32;
  DType want = o.type;
  const bool head = role == Role::kOutput || (tied && role == Role::kTokenEmbd);
  if (head && IsBlockQuant(o.type)) return t.cols() % 256 == 0 ? DType::kQ6_K : DType::kQ8_0;
  if (o.mix_m) want = MixType(o.type, c, role, layer);
  if (t.cols() % Info(want).block_elems == 0) return want;
  *fallback = true;
  return FallbackType(want, t.cols());
}

}  // namespace

uint32_t GgufFileType(DType t, bool mix_m) {
  switch (t) {
    case DType::kF32: return 0;
    case DType::kF16: return 1;
    case DType::kQ4_0: return 2;
    case DType::kQ8_0: return 7;
    case DType::kQ2_K: return 10;               // LLAMA_FTYPE_MOSTLY_Q2_K (the mix, or all Q2_K)
    case DType::kQ3_K: return mix_m ? 12 : 11;  // LLAMA_FTYPE_MOSTLY_Q3_K_M / _S
    case DType::kQ4_K: return mix_m ? 15 : 14;  // LLAMA_FTYPE_MOSTLY_Q4_K_M / _S
    case DType::kQ5_K: return mix_m ? 17 : 16;  // LLAMA_FTYPE_MOSTLY_Q5_K_M / _S
    case DType::kQ6_K: return 18;
    case DType::kBF16: return 32;
    default: return 0;
  }
}

Expected<QuantizeReport> QuantizeCheckpoint(const QuantizeOptions& o) {
  if (!kernels::reference::CanQuantize(o.type))
    return InvalidArgument(std::string("quantize: type ") + std::string(Name(o.type)) +
                           " is not a target type (F32, F16, BF16, Q8_0, Q4_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K)");
  CheckpointOptions co;
  co.gguf_overrides = o.gguf_overrides;
  FG_ASSIGN_OR_RETURN(auto ckpt, OpenCheckpoint(o.input, co));
  const ModelConfig& c = ckpt->config;
  const bool from_hf = ckpt->format == CheckpointFormat::kSafetensors;
  QuantizeReport report;
  GgufWriter w;

  if (from_hf) {
    FG_RETURN_IF_ERROR(AddModelMetadata(c, std::filesystem::path(o.input).filename().string(), w));
    FG_RETURN_IF_ERROR(AddTokenizerMetadata(o.input, c, w, &report.notes));
  } else {
    for (const auto& [key, value] : ckpt->gguf->metadata()) {
      if (key == "general.file_type" || key == "general.alignment" || key == "general.quantization_version")
        continue;
      if (auto ov = o.gguf_overrides.find(key); ov != o.gguf_overrides.end()) {
        FG_ASSIGN_OR_RETURN(GgufValue typed, OverrideValue(key, ov->second, &value));
        FG_RETURN_IF_ERROR(w.AddValue(key, typed));
        continue;
      }
      FG_RETURN_IF_ERROR(w.AddValue(key, value));
    }
    for (const auto& [key, text] : o.gguf_overrides) {
      if (ckpt->gguf->Find(key) != nullptr) continue;
      FG_ASSIGN_OR_RETURN(GgufValue typed, OverrideValue(key, text, nullptr));
      FG_RETURN_IF_ERROR(w.AddValue(key, typed));
    }
  }
  FG_RETURN_IF_ERROR(w.AddUint32("general.file_type", GgufFileType(o.type, o.mix_m)));
  FG_RETURN_IF_ERROR(w.AddUint32("general.quantization_version", 2));

  // Walk the architecture's tensor table so every tensor gets its GGUF name; anything in the
  // input the table does not know is reported rather than silently carried.
  struct Item { Role role; int64_t layer; const TensorView* t; };
  std::vector<Item> items;
  size_t matched = 0;
  for (Role role : kAllRoles) {
    const int64_t layers = IsPerLayer(role) ? c.n_layer : 1;
    for (int64_t l = 0; l < layers; ++l) {
      const std::string name = TensorName(c.arch, ckpt->format, role, l);
      if (name.empty()) continue;
      const TensorView* t = ckpt->weights.Find(name);
      if (t == nullptr && name.rfind("transformer.", 0) == 0) t = ckpt->weights.Find(name.substr(12));
      if (t == nullptr) continue;
      items.push_back({role, l, t});
      ++matched;
    }
  }
  if (matched < ckpt->weights.size())
    report.notes.push_back(std::to_string(ckpt->weights.size() - matched) +
                           " input tensor(s) are not part of the architecture and were left out");
  // transformers-style llama3 RoPE scaling becomes llama.cpp's per-pair rope_freqs tensor.
  std::vector<float> rope_freqs;
  if (from_hf && c.rope_scaling.type == RopeScaling::Type::kLlama3) {
    ModelConfig unscaled = c;
    unscaled.rope_scaling = {};
    const auto base = MakeRopeParams(unscaled, nullptr), scaled = MakeRopeParams(c, nullptr);
    for (size_t i = 0; i < base.inv_freq.size(); ++i) rope_freqs.push_back(base.inv_freq[i] / scaled.inv_freq[i]);
    FG_RETURN_IF_ERROR(w.AddTensor("rope_freqs.weight", DType::kF32, {static_cast<int64_t>(rope_freqs.size())},
                                   rope_freqs.data(), rope_freqs.size() * sizeof(float)));
  }

  // Each tensor's stored type, decided up front: calibration needs them before any is written.
  const bool tied = std::none_of(items.begin(), items.end(), [](const Item& it) { return it.role == Role::kOutput; });
  std::vector<DType> out_types(items.size());
  std::map<std::string, DType> calibrate;  // matrices whose inputs the calibration text reaches
  for (size_t i = 0; i < items.size(); ++i) {
    TensorView t = *items[i].t;
    if (from_hf && IsConv1D(c.arch, items[i].role)) t.shape = {t.shape[1], t.shape[0]};
    bool fallback = false;
    out_types[i] = ChooseType(o, c, items[i].role, items[i].layer, tied, t, &fallback);
    report.fallback_tensors += fallback;
    const bool reached = IsPerLayer(items[i].role) || items[i].role == Role::kOutput ||
                         (tied && items[i].role == Role::kTokenEmbd);
    if (reached && t.shape.size() == 2 && kernels::reference::HasBlockGrid(out_types[i]))
      calibrate[items[i].t->name] = out_types[i];
  }
  std::map<std::string, std::vector<uint8_t>> calibrated;
  if (o.method != QuantMethod::kRtn) {
    if (o.pool == nullptr) return Internal("quantize: calibration needs a thread pool");
    FG_ASSIGN_OR_RETURN(calibrated, QuantizeCalibrated(o.input, o.method, calibrate, o.calibration, *o.pool));
  }

  const bool permute_qk = from_hf && (c.arch == Arch::kLlama || c.arch == Arch::kMistral);
  std::vector<float> values;
  std::vector<uint8_t> packed;
  for (size_t i = 0; i < items.size(); ++i) {
    const Item& it = items[i];
    TensorView t = *it.t;
    const std::string out_name = TensorName(c.arch, CheckpointFormat::kGguf, it.role, it.layer);
    values.resize(static_cast<size_t>(t.numel()));
    for (int64_t r = 0; r < t.rows(); ++r)
      kernels::reference::DequantizeMatrixRow(t, r, values.data() + r * t.cols());
    if (from_hf && IsConv1D(c.arch, it.role)) {
      std::vector<float> tr(values.size());
      const int64_t in = t.shape[0], out = t.shape[1];
      for (int64_t a = 0; a < in; ++a)
        for (int64_t b = 0; b < out; ++b) tr[static_cast<size_t>(b * in + a)] = values[static_cast<size_t>(a * out + b)];
      values.swap(tr);
      t.shape = {out, in};
    }
    if (permute_qk && (it.role == Role::kAttnQ || it.role == Role::kAttnK || it.role == Role::kAttnQBias ||
                       it.role == Role::kAttnKBias)) {
      const int64_t heads = (it.role == Role::kAttnQ || it.role == Role::kAttnQBias) ? c.n_head : c.n_kv_head;
      const int64_t cols = t.shape.size() == 2 ? t.cols() : 1;
      values = PermuteForAdjacentRope(values, t.shape[0], cols, heads);
    }
    if (from_hf && c.norm_weight_plus_one && IsNormWeight(it.role))
      for (float& v : values) v += 1.0f;  // llama.cpp's GGUF stores Gemma's norms as 1 + w

    const DType out_type = out_types[i];
    const int64_t cols = t.shape.size() >= 2 ? t.shape.back() : t.numel();
    const int64_t rows = t.numel() / cols;
    const size_t row_bytes = *RowBytes(out_type, cols);
    packed.resize(row_bytes * static_cast<size_t>(rows));
    if (auto cal = calibrated.find(it.t->name); cal != calibrated.end()) {
      // Calibrated rows come in the checkpoint's order: apply the same row permutation as to
      // the values (llama's Q/K heads, from Hugging Face).
      std::vector<float> order(static_cast<size_t>(rows));
      for (int64_t r = 0; r < rows; ++r) order[r] = static_cast<float>(r);
      if (permute_qk && (it.role == Role::kAttnQ || it.role == Role::kAttnK))
        order = PermuteForAdjacentRope(order, rows, 1, it.role == Role::kAttnQ ? c.n_head : c.n_kv_head);
      for (int64_t r = 0; r < rows; ++r)
        std::memcpy(packed.data() + r * row_bytes, cal->second.data() + static_cast<int64_t>(order[r]) * row_bytes, row_bytes);
      ++report.calibrated;
    } else {
      for (int64_t r = 0; r < rows; ++r)
        if (!kernels::reference::QuantizeRow(out_type, values.data() + r * cols, packed.data() + r * row_bytes, cols))
          return Internal("quantize: no quantizer for " + std::string(Name(out_type)));
    }
    FG_RETURN_IF_ERROR(w.AddTensor(out_name, out_type, t.shape, packed.data(), packed.size()));
    report.input_bytes += it.t->nbytes;
    report.output_bytes += packed.size();
    ++report.tensors;
    if (o.progress) o.progress(i + 1, items.size(), out_name);
  }
  FG_RETURN_IF_ERROR(w.WriteFile(o.output));
  return report;
}

}  // namespace fastgen
