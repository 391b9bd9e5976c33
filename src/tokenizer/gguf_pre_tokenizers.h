// The pre-tokenizers GGUF files name in tokenizer.ggml.pre, as fastgen's tokenizer pipeline:
// each name stands for the pre-tokenization of the Hugging Face tokenizer.json the file was
// converted from (llama.cpp's convert_hf_to_gguf.py recognises the tokenizer by hashing its
// output and writes the name). Most are byte-level BPE whose text is first cut by one or more
// regular expressions in turn (Hugging Face's Sequence of Split(pattern, Isolated) stages),
// then mapped to GPT-2's byte alphabet.
#pragma once

#include <string>
#include <vector>

#include "core/status.h"
#include "tokenizer/bpe_model.h"
#include "tokenizer/tokenizer_parts.h"

namespace fastgen {

// Sets the normalizer, pre-tokenizer and BPE options of a "gpt2" (byte-level BPE) vocabulary
// for the tokenizer.ggml.pre name `pre`. An unknown name is an error naming the key and value.
Status SetGgufBpePreTokenizer(const std::string& pre, TokenizerParts* parts, tok::BpeOptions* options);

// Every tokenizer.ggml.pre name SetGgufBpePreTokenizer accepts (tests).
std::vector<std::string> KnownGgufPreTokenizers();

}  // namespace fastgen
