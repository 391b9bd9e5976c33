// Loading a tokenizer from GGUF metadata (tokenizer.ggml.*), assembling the same pipeline the
// equivalent tokenizer.json describes, so both give the same ids:
//  - "gpt2": byte-level BPE with merges; tokenizer.ggml.pre names the pre-tokenizer regex.
//  - "llama": SentencePiece-style BPE ranked by token scores, byte fallback, spaces as ▁ with a
//    ▁ prepended to each text segment (add_space_prefix), as Llama 2's legacy tokenizer.json.
// Control tokens become special added tokens and user-defined tokens normal added tokens.
#include <cstdint>

#include "io/gguf.h"
#include "tokenizer/gguf_pre_tokenizers.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_parts.h"

namespace fastgen {
namespace {

// llama.cpp's token types (llama_token_type).
enum GgufTokenType : int64_t {
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6,
};

template <typename T>
Expected<T> Required(Expected<std::optional<T>> v, const char* key) {
  if (!v.ok()) return v.status();
  if (!v->has_value()) return NotFound(std::string(key) + ": missing");
  return std::move(**v);
}

Expected<std::optional<int32_t>> OptionalId(const GgufFile& gguf, const char* key, size_t n_tokens) {
  FG_ASSIGN_OR_RETURN(std::optional<int64_t> v, gguf.GetInt(key));
  if (!v) return std::optional<int32_t>();
  // llama.cpp writes -1 (as uint32 0xFFFFFFFF) for "no such token".
  if (*v < 0 || *v == 0xFFFFFFFFll) return std::optional<int32_t>();
  if (static_cast<uint64_t>(*v) >= n_tokens) {
    return InvalidArgument(std::string(key) + ": id " + std::to_string(*v) + " is outside the " +
                           std::to_string(n_tokens) + "-token vocabulary");
  }
  return std::optional<int32_t>(static_cast<int32_t>(*v));
}

Expected<std::unique_ptr<Tokenizer>> Build(const GgufFile& gguf) {
  FG_ASSIGN_OR_RETURN(std::string model, Required(gguf.GetString("tokenizer.ggml.model"), "tokenizer.ggml.model"));
  FG_ASSIGN_OR_RETURN(std::vector<std::string> tokens,
                      Required(gguf.GetStringArray("tokenizer.ggml.tokens"), "tokenizer.ggml.tokens"));
  if (tokens.empty()) return InvalidArgument("tokenizer.ggml.tokens: empty");
  if (tokens.size() > static_cast<size_t>(INT32_MAX)) return InvalidArgument("tokenizer.ggml.tokens: too many");
  FG_ASSIGN_OR_RETURN(std::optional<std::vector<int64_t>> types_opt, gguf.GetIntArray("tokenizer.ggml.token_type"));
  std::vector<int64_t> types = types_opt.value_or(std::vector<int64_t>(tokens.size(), kNormal));
  if (types.size() != tokens.size()) {
    return InvalidArgument("tokenizer.ggml.token_type: " + std::to_string(types.size()) + " types for " +
                           std::to_string(tokens.size()) + " tokens");
  }

  TokenizerParts parts;
  parts.source = gguf.path();
  FG_ASSIGN_OR_RETURN(parts.bos_id, OptionalId(gguf, "tokenizer.ggml.bos_token_id", tokens.size()));
  FG_ASSIGN_OR_RETURN(parts.eos_id, OptionalId(gguf, "tokenizer.ggml.eos_token_id", tokens.size()));
  FG_ASSIGN_OR_RETURN(std::optional<int32_t> unk_id, OptionalId(gguf, "tokenizer.ggml.unknown_token_id", tokens.size()));

  tok::TokenMap vocab;
  vocab.reserve(tokens.size());
  for (size_t i = 0; i < tokens.size(); ++i) {
    // A duplicate keeps its first id, which is what llama.cpp's token_to_id map does.
    vocab.emplace(tokens[i], static_cast<int32_t>(i));
    if (types[i] == kControl || types[i] == kUserDefined) {
      if (tokens[i].empty()) continue;
      tok::AddedToken added;
      added.content = tokens[i];
      added.id = static_cast<int32_t>(i);
      added.special = types[i] == kControl;
      parts.added_tokens.push_back(std::move(added));
    }
    if (types[i] == kUnknown && !unk_id) unk_id = static_cast<int32_t>(i);
  }

  const bool is_llama = model == "llama";
  FG_ASSIGN_OR_RETURN(std::optional<bool> add_bos, gguf.GetBool("tokenizer.ggml.add_bos_token"));
  FG_ASSIGN_OR_RETURN(std::optional<bool> add_eos, gguf.GetBool("tokenizer.ggml.add_eos_token"));
  std::vector<int32_t> prefix, suffix;
  if (add_bos.value_or(is_llama) && parts.bos_id) prefix.push_back(*parts.bos_id);
  if (add_eos.value_or(false) && parts.eos_id) suffix.push_back(*parts.eos_id);
  parts.post_processor = tok::MakeWrapProcessor(std::move(prefix), std::move(suffix));

  if (model == "gpt2") {
    FG_ASSIGN_OR_RETURN(std::optional<std::vector<std::string>> merge_strings, gguf.GetStringArray("tokenizer.ggml.merges"));
    std::vector<std::pair<std::string, std::string>> merges;
    if (merge_strings) {
      merges.reserve(merge_strings->size());
      for (size_t i = 0; i < merge_strings->size(); ++i) {
        const std::string& s = (*merge_strings)[i];
        const size_t sp = s.find(' ');
        if (sp == std::string::npos) {
          return InvalidArgument("tokenizer.ggml.merges[" + std::to_string(i) + "]: expected \"left right\"");
        }
        merges.emplace_back(s.substr(0, sp), s.substr(sp + 1));
      }
    }
    FG_ASSIGN_OR_RETURN(std::optional<std::string> pre, gguf.GetString("tokenizer.ggml.pre"));
    tok::BpeOptions options;
    FG_RETURN_IF_ERROR(SetGgufBpePreTokenizer(pre.value_or("default"), &parts, &options));
    auto bpe = tok::BpeModel::Create(std::move(vocab), merges, std::move(options));
    if (!bpe.ok()) return bpe.status().WithContext("tokenizer.ggml.merges");
    parts.model = std::make_unique<tok::BpeModel>(std::move(bpe).value());
    parts.decoder = tok::MakeByteLevelDecoder();
    return Tokenizer::FromParts(std::move(parts));
  }

  if (is_llama) {
    FG_ASSIGN_OR_RETURN(std::vector<double> scores64,
                        Required(gguf.GetFloatArray("tokenizer.ggml.scores"), "tokenizer.ggml.scores"));
    std::vector<float> scores(scores64.begin(), scores64.end());
    FG_ASSIGN_OR_RETURN(std::optional<bool> space_prefix, gguf.GetBool("tokenizer.ggml.add_space_prefix"));
    const bool add_space_prefix = space_prefix.value_or(true);
    tok::BpeOptions options;
    options.byte_fallback = true;
    options.fuse_unk = true;
    if (unk_id) options.unk_token = tokens[*unk_id];
    auto bpe = tok::BpeModel::CreateFromScores(std::move(vocab), scores, std::move(options));
    if (!bpe.ok()) return bpe.status();
    parts.model = std::make_unique<tok::BpeModel>(std::move(bpe).value());
    const std::string kSpace = "\xE2\x96\x81";
    std::vector<std::unique_ptr<tok::Normalizer>> norm;
    if (add_space_prefix) norm.push_back(tok::MakePrependNormalizer(kSpace));
    FG_ASSIGN_OR_RETURN(tok::Regex space, tok::Regex::Literal(" "));
    norm.push_back(tok::MakeReplaceNormalizer(std::move(space), kSpace));
    parts.normalizer = tok::MakeSequenceNormalizer(std::move(norm));
    std::vector<std::unique_ptr<tok::Decoder>> dec;
    FG_ASSIGN_OR_RETURN(tok::Regex meta, tok::Regex::Literal(kSpace));
    dec.push_back(tok::MakeReplaceDecoder(std::move(meta), " "));
    dec.push_back(tok::MakeByteFallbackDecoder());
    dec.push_back(tok::MakeFuseDecoder());
    if (add_space_prefix) dec.push_back(tok::MakeStripDecoder(" ", 1, 0));
    parts.decoder = tok::MakeSequenceDecoder(std::move(dec));
    return Tokenizer::FromParts(std::move(parts));
  }
  return Unsupported("tokenizer.ggml.model: '" + model + "' is not supported (gpt2 and llama are)");
}

}  // namespace

Expected<std::unique_ptr<Tokenizer>> Tokenizer::FromGguf(const GgufFile& gguf) {
  auto result = Build(gguf);
  if (!result.ok()) return result.status().WithContext(gguf.path());
  return result;
}

}  // namespace fastgen
