// Post-processors: add the special tokens a model expects around one encoded sequence
// (Encode with add_special_tokens). Only single sequences are encoded, so pair templates are
// parsed for validation but not used.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

namespace fastgen::tok {

class PostProcessor {
 public:
  virtual ~PostProcessor() = default;
  virtual void Process(std::vector<int32_t>* ids) const = 0;
  // The id the processor puts first, when it puts one (used to report bos_id()).
  virtual std::optional<int32_t> LeadingId() const { return std::nullopt; }
  virtual std::optional<int32_t> TrailingId() const { return std::nullopt; }
};

// One piece of a TemplateProcessing "single" template: either the sequence itself or the ids
// of a named special token.
struct TemplatePiece {
  bool is_sequence = false;
  std::vector<int32_t> ids;  // when !is_sequence
};

std::unique_ptr<PostProcessor> MakeTemplateProcessor(std::vector<TemplatePiece> single);
// Wraps the sequence as [prefix..., ids..., suffix...] (RobertaProcessing, BertProcessing,
// and GGUF's add_bos / add_eos flags).
std::unique_ptr<PostProcessor> MakeWrapProcessor(std::vector<int32_t> prefix, std::vector<int32_t> suffix);
// ByteLevel only trims offsets, which fastgen does not report: ids pass through.
std::unique_ptr<PostProcessor> MakeIdentityProcessor();
std::unique_ptr<PostProcessor> MakeSequenceProcessor(std::vector<std::unique_ptr<PostProcessor>> parts);

}  // namespace fastgen::tok
