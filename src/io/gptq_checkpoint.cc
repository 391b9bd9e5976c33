#include "io/gptq_checkpoint.h"

#include <algorithm>
#include <cstring>
#include <numeric>

#include "core/dtype.h"

namespace fastgen {
namespace {

using nlohmann::json;

// AutoAWQ packs output column 8c + kAwqOrder[i] into nibble i of word c.
constexpr int kAwqOrder[8] = {0, 2, 4, 6, 1, 3, 5, 7};

const TensorView* Need(const WeightMap& w, const std::string& name, DType dtype, size_t dims) {
  const TensorView* t = w.Find(name);
  if (t == nullptr || t->dtype != dtype || t->shape.size() != dims) return nullptr;
  return t;
}

int32_t ReadI32(const TensorView& t, int64_t index) {
  int32_t v;
  std::memcpy(&v, t.data + 4 * index, 4);
  return v;
}
float ReadF16(const TensorView& t, int64_t index) {
  uint16_t h;
  std::memcpy(&h, t.data + 2 * index, 2);
  return F16ToF32(h);
}
uint16_t ReadF16Bits(const TensorView& t, int64_t index) {
  uint16_t h;
  std::memcpy(&h, t.data + 2 * index, 2);
  return h;
}

// One quantized layer's codes, zeros and groups, decoded from either packing.
struct Layer {
  int64_t in = 0, out = 0, groups = 0;
  std::vector<uint8_t> q;       // [out, in] codes
  std::vector<int32_t> zero;    // [groups, out]
  std::vector<int32_t> group;   // [in] group of each input column
  const TensorView* scales = nullptr;  // fp16 [groups, out]
};

Expected<Layer> Decode(const QuantizedCheckpointInfo& info, const WeightMap& w, const std::string& p) {
  const std::string where = p + " (" + info.method + ")";
  const TensorView* qw = Need(w, p + ".qweight", DType::kI32, 2);
  const TensorView* qz = Need(w, p + ".qzeros", DType::kI32, 2);
  const TensorView* sc = Need(w, p + ".scales", DType::kF16, 2);
  if (qw == nullptr || qz == nullptr || sc == nullptr)
    return CorruptFile(where + ": needs int32 qweight and qzeros and fp16 scales, all 2-D");
  const int per_word = 32 / info.bits;
  const uint32_t mask = (1u << info.bits) - 1;
  Layer L;
  L.scales = sc;
  L.groups = sc->shape[0];
  L.out = sc->shape[1];
  if (info.method == "gptq") {
    L.in = qw->shape[0] * per_word;
    if (qw->shape[1] != L.out) return CorruptFile(where + ": qweight " + ShapeString(qw->shape) + " disagrees with scales " + ShapeString(sc->shape));
  } else {
    if (info.bits != 4) return Unsupported(where + ": AWQ with " + std::to_string(info.bits) + " bits");
    L.in = qw->shape[0];
    if (qw->shape[1] * per_word != L.out) return CorruptFile(where + ": qweight " + ShapeString(qw->shape) + " disagrees with scales " + ShapeString(sc->shape));
  }
  if (qz->shape[0] != L.groups || qz->shape[1] * per_word != L.out)
    return CorruptFile(where + ": qzeros " + ShapeString(qz->shape) + " disagrees with scales " + ShapeString(sc->shape));
  if (L.in <= 0 || L.out <= 0 || L.groups <= 0) return CorruptFile(where + ": empty layer");
  // Groups of the input columns: g_idx when given (GPTQ), else consecutive runs.
  L.group.resize(static_cast<size_t>(L.in));
  const TensorView* gi = info.method == "gptq" ? w.Find(p + ".g_idx") : nullptr;
  if (gi != nullptr) {
    if (gi->dtype != DType::kI32 || gi->numel() != L.in) return CorruptFile(where + ": g_idx is not int32 [" + std::to_string(L.in) + "]");
    for (int64_t i = 0; i < L.in; ++i) L.group[i] = ReadI32(*gi, i);
  } else {
    const int64_t gs = info.group_size > 0 ? info.group_size : L.in;
    for (int64_t i = 0; i < L.in; ++i) L.group[i] = static_cast<int32_t>(i / gs);
  }
  for (int64_t i = 0; i < L.in; ++i)
    if (L.group[i] < 0 || L.group[i] >= L.groups)
      return CorruptFile(where + ": input " + std::to_string(i) + " is in group " + std::to_string(L.group[i]) + " of " + std::to_string(L.groups));
  L.q.resize(static_cast<size_t>(L.out * L.in));
  L.zero.resize(static_cast<size_t>(L.groups * L.out));
  const int zero_bias = info.zero_minus_one ? 1 : 0;
  for (int64_t g = 0; g < L.groups; ++g)
    for (int64_t o = 0; o < L.out; ++o) {
      const int64_t word = g * qz->shape[1] + o / per_word;
      const int shift = info.method == "gptq" ? info.bits * static_cast<int>(o % per_word)
                                              : 4 * static_cast<int>(std::find(kAwqOrder, kAwqOrder + 8, o % 8) - kAwqOrder);
      L.zero[g * L.out + o] = static_cast<int32_t>((static_cast<uint32_t>(ReadI32(*qz, word)) >> shift) & mask) + zero_bias;
    }
  if (info.method == "gptq") {
    for (int64_t r = 0; r < qw->shape[0]; ++r)
      for (int64_t o = 0; o < L.out; ++o) {
        const uint32_t v = static_cast<uint32_t>(ReadI32(*qw, r * L.out + o));
        for (int k = 0; k < per_word; ++k) L.q[o * L.in + r * per_word + k] = static_cast<uint8_t>((v >> (info.bits * k)) & mask);
      }
  } else {
    for (int64_t i = 0; i < L.in; ++i)
      for (int64_t c = 0; c < qw->shape[1]; ++c) {
        const uint32_t v = static_cast<uint32_t>(ReadI32(*qw, i * qw->shape[1] + c));
        for (int k = 0; k < 8; ++k) L.q[(8 * c + kAwqOrder[k]) * L.in + i] = static_cast<uint8_t>((v >> (4 * k)) & 15);
      }
  }
  return L;
}

}  // namespace

Expected<QuantizedCheckpointInfo> ParseQuantizationConfig(const json& config, const std::string& where) {
  QuantizedCheckpointInfo info;
  const auto qc = config.find("quantization_config");
  if (qc == config.end() || qc->is_null()) return info;
  if (!qc->is_object()) return CorruptFile(where + ": quantization_config is not an object");
  const std::string method = qc->value("quant_method", std::string());
  if (method != "gptq" && method != "awq")
    return Unsupported(where + ": quantization_config.quant_method '" + method +
                       "' (fastgen loads GPTQ and AWQ checkpoints, or GGUF files)");
  info.method = method;
  const auto bits = qc->find(method == "awq" ? "w_bit" : "bits");
  const auto bits_any = bits != qc->end() ? bits : qc->find("bits");
  if (bits_any == qc->end() || !bits_any->is_number_integer())
    return CorruptFile(where + ": quantization_config has no integer bits");
  info.bits = bits_any->get<int>();
  if (info.bits != 4 && info.bits != 8)
    return Unsupported(where + ": quantization_config bits " + std::to_string(info.bits) + " (4 and 8 are supported)");
  const auto gs = qc->find(method == "awq" ? "q_group_size" : "group_size");
  const auto gs_any = gs != qc->end() ? gs : qc->find("group_size");
  if (gs_any == qc->end() || !gs_any->is_number_integer()) return CorruptFile(where + ": quantization_config has no integer group_size");
  info.group_size = gs_any->get<int>();
  if (info.group_size == 0 || info.group_size < -1)
    return CorruptFile(where + ": quantization_config group_size " + std::to_string(info.group_size));
  info.desc_act = qc->value("desc_act", false);
  if (method == "gptq") {
    const std::string format = qc->value("checkpoint_format", std::string("gptq"));
    if (format != "gptq" && format != "gptq_v2")
      return Unsupported(where + ": quantization_config.checkpoint_format '" + format + "'");
    info.zero_minus_one = format == "gptq";
  } else {
    const std::string version = qc->value("version", std::string("gemm"));
    std::string lower = version;
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (lower != "gemm")
      return Unsupported(where + ": AWQ version '" + version + "' (the GEMM layout is supported)");
  }
  return info;
}

Expected<std::vector<std::string>> ConvertQuantizedLayers(const QuantizedCheckpointInfo& info, WeightMap* weights) {
  std::vector<std::string> notes;
  std::vector<std::string> prefixes;
  for (const auto& [name, t] : weights->tensors())
    if (name.size() > 8 && name.compare(name.size() - 8, 8, ".qweight") == 0) prefixes.push_back(name.substr(0, name.size() - 8));
  size_t float_layers = 0;
  for (const std::string& p : prefixes) {
    FG_ASSIGN_OR_RETURN(Layer L, Decode(info, *weights, p));
    // Stored column order: by group, then by input (the identity unless act-order scrambled it).
    std::vector<int32_t> order(static_cast<size_t>(L.in));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return L.group[a] < L.group[b]; });
    bool identity = true;
    for (int64_t j = 0; j < L.in; ++j) identity &= order[j] == j;
    // Q4_0 needs every 32-column block inside one group.
    bool blocks_fit = info.bits == 4 && L.in % 32 == 0;
    int64_t group_cols = 0;
    if (blocks_fit) {
      std::vector<int64_t> count(static_cast<size_t>(L.groups), 0);
      for (int32_t g : L.group) ++count[g];
      group_cols = count[0];
      for (int64_t c : count) blocks_fit &= c == group_cols;
      blocks_fit &= group_cols % 32 == 0;
    }
    TensorView v;
    v.name = p + ".weight";
    v.shape = {L.out, L.in};
    if (blocks_fit) {
      const int64_t blocks = L.in / 32, groups = L.in / group_cols;
      const size_t row_bytes = static_cast<size_t>(blocks) * 18;
      uint8_t* data = weights->AllocateOwned(row_bytes * static_cast<size_t>(L.out));
      auto* offsets = reinterpret_cast<float*>(weights->AllocateOwned(sizeof(float) * static_cast<size_t>(L.out * groups)));
      for (int64_t o = 0; o < L.out; ++o) {
        for (int64_t b = 0; b < blocks; ++b) {
          const int32_t g = L.group[order[32 * b]];
          uint8_t* blk = data + o * row_bytes + b * 18;
          const uint16_t d = ReadF16Bits(*L.scales, g * L.out + o);
          std::memcpy(blk, &d, 2);
          for (int j = 0; j < 16; ++j)
            blk[2 + j] = static_cast<uint8_t>(L.q[o * L.in + order[32 * b + j]] | (L.q[o * L.in + order[32 * b + j + 16]] << 4));
        }
        for (int64_t gg = 0; gg < groups; ++gg) {
          const int32_t g = L.group[order[gg * group_cols]];
          offsets[o * groups + gg] = ReadF16(*L.scales, g * L.out + o) * static_cast<float>(8 - L.zero[g * L.out + o]);
        }
      }
      v.dtype = DType::kQ4_0;
      v.data = data;
      v.nbytes = row_bytes * static_cast<size_t>(L.out);
      v.group_offsets = offsets;
      v.group_cols = group_cols;
      if (!identity) {
        auto* ord = reinterpret_cast<int32_t*>(weights->AllocateOwned(sizeof(int32_t) * static_cast<size_t>(L.in)));
        std::copy(order.begin(), order.end(), ord);
        v.input_order = ord;
      }
    } else {
      auto* w = reinterpret_cast<float*>(weights->AllocateOwned(sizeof(float) * static_cast<size_t>(L.out * L.in)));
      for (int64_t o = 0; o < L.out; ++o)
        for (int64_t i = 0; i < L.in; ++i) {
          const int32_t g = L.group[i];
          w[o * L.in + i] = ReadF16(*L.scales, g * L.out + o) * static_cast<float>(static_cast<int32_t>(L.q[o * L.in + i]) - L.zero[g * L.out + o]);
        }
      v.dtype = DType::kF32;
      v.data = reinterpret_cast<const uint8_t*>(w);
      v.nbytes = sizeof(float) * static_cast<size_t>(L.out * L.in);
      ++float_layers;
    }
    if (weights->Find(v.name) != nullptr) return CorruptFile(p + ": both a quantized and a float weight");
    for (const char* suffix : {".qweight", ".qzeros", ".scales", ".g_idx"}) weights->Erase(p + suffix);
    weights->Put(std::move(v));
  }
  if (prefixes.empty()) notes.push_back("quantization_config names " + info.method + ", but no layer has a qweight");
  if (float_layers > 0)
    notes.push_back(std::to_string(float_layers) + " " + info.method + " layer(s) held in float32 (" +
                    (info.bits == 8 ? std::string("8-bit codes") : std::string("groups that are not whole 32-column blocks")) +
                    "): exact, but four times the bytes");
  return notes;
}

}  // namespace fastgen
