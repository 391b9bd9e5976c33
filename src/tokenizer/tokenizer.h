// fastgen's tokenizer: Hugging Face `tokenizers`-compatible BPE (byte-level like GPT-2 /
// Llama 3 / Qwen, and SentencePiece-style with byte fallback like Llama 2 / Gemma), loaded
// from tokenizer.json or from GGUF metadata, with id-for-id parity with `tokenizers`.
//
// Encoding runs the same pipeline as `tokenizers`: added tokens are cut out of the raw text
// first, the rest is normalized, pre-tokenized into words, and each word is BPE-encoded; the
// post-processor (BOS and friends) runs only with EncodeOptions::add_special_tokens.
//
// Invalid UTF-8 input: Encode never fails on it. Every maximal invalid byte subsequence is
// replaced by U+FFFD before encoding, which is exactly what Hugging Face sees when Python
// builds the string with bytes.decode("utf-8", errors="replace"). Decode always returns valid
// UTF-8 (byte sequences that do not form characters decode to U+FFFD, as in `tokenizers`).
//
// Thread safety: a loaded Tokenizer is immutable apart from an internal word cache guarded by
// a lock, so Encode and Decode may be called from many threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace fastgen {

class GgufFile;
struct TokenizerParts;  // the assembled pipeline stages (tokenizer/tokenizer_parts.h)

struct EncodeOptions {
  bool add_special_tokens = false;  // apply the post-processor (BOS etc.)
  bool parse_special = true;        // match special added tokens in the text
};

class Tokenizer {
 public:
  // `path`: a model directory (reads tokenizer.json, and tokenizer_config.json for the BOS/EOS
  // names when present), a tokenizer.json file, or a GGUF file (tokenizer.ggml.* metadata;
  // vocabulary-only GGUFs without tensors included).
  static Expected<std::unique_ptr<Tokenizer>> Load(const std::string& path);
  // `source_name` prefixes error messages ("tokenizer.json: pre_tokenizer.type: ...").
  static Expected<std::unique_ptr<Tokenizer>> FromJson(std::string_view json_text, const std::string& source_name);
  static Expected<std::unique_ptr<Tokenizer>> FromGguf(const GgufFile& gguf);
  // Assembles a tokenizer from loader output (used by the loaders above).
  static Expected<std::unique_ptr<Tokenizer>> FromParts(TokenizerParts parts);

  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // Reads "bos_token" / "eos_token" (strings or {"content": ...} objects) from the text of a
  // tokenizer_config.json and makes them bos_id() / eos_id(). Unknown names are an error.
  Status ApplyTokenizerConfig(std::string_view config_json);

  Expected<std::vector<int32_t>> Encode(std::string_view text, const EncodeOptions& opts = {}) const;
  // Ids without a token (out of range) are skipped, as `tokenizers` does.
  std::string Decode(std::span<const int32_t> ids, bool skip_special_tokens = false) const;

  // One past the largest id of the model vocabulary and the added tokens.
  int32_t vocab_size() const;
  // From the tokenizer's own information when known: GGUF bos/eos ids, tokenizer_config.json,
  // or the special token a TemplateProcessing post-processor puts first.
  std::optional<int32_t> bos_id() const;
  std::optional<int32_t> eos_id() const;
  std::string IdToToken(int32_t id) const;  // "" for an id without a token
  std::optional<int32_t> TokenToId(std::string_view token) const;
  bool IsSpecial(int32_t id) const;
  // [vocab_size()]: the bytes each token adds to decoded text in the middle of a sequence (a
  // SentencePiece token's leading ▁ as a space, a byte token <0xE2> as the raw byte, partial
  // UTF-8 kept as it is); empty for special tokens and ids without a token. Computed on first use
  // (thread-safe) and kept: constrained decoding matches grammars against these bytes.
  const std::vector<std::string>& TokenBytes() const;
  // Where the tokenizer was loaded from, for messages.
  const std::string& source() const;

 private:
  explicit Tokenizer(std::unique_ptr<TokenizerParts> parts);
  std::unique_ptr<TokenizerParts> parts_;
  mutable std::once_flag token_bytes_once_;
  mutable std::vector<std::string> token_bytes_;
};

// Streams text as ids arrive; never emits a partial UTF-8 character (SentencePiece byte tokens
// such as <0xE2> included): text is held back until the character it belongs to is complete.
// The concatenation of every Push() plus Flush() equals Tokenizer::Decode of all ids.
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tokenizer, bool skip_special_tokens = false);
  std::string Push(int32_t id);
  // Emits whatever is still held back (an incomplete character decodes to U+FFFD) and resets.
  std::string Flush();

 private:
  const Tokenizer& tokenizer_;
  bool skip_special_;
  // Ids whose text is already emitted and kept as left context (decoders such as Metaspace or
  // Strip treat the first token of a sequence specially), followed by ids not yet emitted.
  std::vector<int32_t> ids_;
  size_t emitted_ids_ = 0;
  std::string emitted_text_;  // Decode(ids_[0, emitted_ids_))
};

}  // namespace fastgen
