// The pipeline stages a loader assembles into a Tokenizer. Internal to the tokenizer layer
// (loaders for tokenizer.json and GGUF fill it in), but public so other formats can be added.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tokenizer/added_vocabulary.h"
#include "tokenizer/bpe_model.h"
#include "tokenizer/decoder.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/post_processor.h"
#include "tokenizer/pre_tokenizer.h"

namespace fastgen {

struct TokenizerParts {
  std::string source;                                  // path or name, for messages
  std::unique_ptr<tok::Normalizer> normalizer;         // may be null
  std::unique_ptr<tok::PreTokenizer> pre_tokenizer;    // may be null: the segment is one word
  std::unique_ptr<tok::BpeModel> model;                // required
  std::unique_ptr<tok::PostProcessor> post_processor;  // may be null
  std::unique_ptr<tok::Decoder> decoder;               // may be null: tokens joined with ' '
  std::vector<tok::AddedToken> added_tokens;
  std::optional<int32_t> bos_id, eos_id;

  // Filled by Tokenizer::FromParts.
  tok::AddedVocabulary added;
};

}  // namespace fastgen
