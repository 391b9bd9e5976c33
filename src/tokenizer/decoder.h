// Decoders: turn the token strings of a sequence back into text. Each stage rewrites the list
// of strings (tokenizers' decode_chain), and the final text is their concatenation.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/regex.h"

namespace fastgen::tok {

class Decoder {
 public:
  virtual ~Decoder() = default;
  virtual void DecodeChain(std::vector<std::string>* tokens) const = 0;
  // As DecodeChain, but bytes that are not valid UTF-8 by themselves stay as they are instead of
  // becoming U+FFFD: a token may hold part of a character, and a grammar matcher must see it.
  virtual void DecodeChainBytes(std::vector<std::string>* tokens) const { DecodeChain(tokens); }
};

std::unique_ptr<Decoder> MakeByteLevelDecoder();
std::unique_ptr<Decoder> MakeMetaspaceDecoder(std::string replacement, PrependScheme scheme);
std::unique_ptr<Decoder> MakeReplaceDecoder(Regex pattern, std::string content);
std::unique_ptr<Decoder> MakeByteFallbackDecoder();
std::unique_ptr<Decoder> MakeFuseDecoder();
std::unique_ptr<Decoder> MakeStripDecoder(std::string content, size_t start, size_t stop);
// WordPiece-style: drops `prefix` from continuation tokens and joins the rest with spaces.
std::unique_ptr<Decoder> MakeWordPieceDecoder(std::string prefix, bool cleanup);
// Classic BPE with an end-of-word suffix: the suffix becomes a space.
std::unique_ptr<Decoder> MakeBpeSuffixDecoder(std::string suffix);
std::unique_ptr<Decoder> MakeSequenceDecoder(std::vector<std::unique_ptr<Decoder>> parts);

}  // namespace fastgen::tok
