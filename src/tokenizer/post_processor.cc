#include "tokenizer/post_processor.h"

namespace fastgen::tok {
namespace {

class TemplateProcessor final : public PostProcessor {
 public:
  explicit TemplateProcessor(std::vector<TemplatePiece> single) : single_(std::move(single)) {}
  void Process(std::vector<int32_t>* ids) const override {
    std::vector<int32_t> out;
    out.reserve(ids->size() + 4);
    for (const TemplatePiece& p : single_) {
      if (p.is_sequence) {
        out.insert(out.end(), ids->begin(), ids->end());
      } else {
        out.insert(out.end(), p.ids.begin(), p.ids.end());
      }
    }
    ids->swap(out);
  }
  std::optional<int32_t> LeadingId() const override {
    if (single_.empty() || single_.front().is_sequence || single_.front().ids.empty()) return std::nullopt;
    return single_.front().ids.front();
  }
  std::optional<int32_t> TrailingId() const override {
    if (single_.empty() || single_.back().is_sequence || single_.back().ids.empty()) return std::nullopt;
    return single_.back().ids.back();
  }

 private:
  std::vector<TemplatePiece> single_;
};

class WrapProcessor final : public PostProcessor {
 public:
  WrapProcessor(std::vector<int32_t> prefix, std::vector<int32_t> suffix)
      : prefix_(std::move(prefix)), suffix_(std::move(suffix)) {}
  void Process(std::vector<int32_t>* ids) const override {
    ids->insert(ids->begin(), prefix_.begin(), prefix_.end());
    ids->insert(ids->end(), suffix_.begin(), suffix_.end());
  }
  std::optional<int32_t> LeadingId() const override {
    if (prefix_.empty()) return std::nullopt;
    return prefix_.front();
  }
  std::optional<int32_t> TrailingId() const override {
    if (suffix_.empty()) return std::nullopt;
    return suffix_.back();
  }

 private:
  std::vector<int32_t> prefix_, suffix_;
};

class IdentityProcessor final : public PostProcessor {
 public:
  void Process(std::vector<int32_t>*) const override {}
};

class SequenceProcessor final : public PostProcessor {
 public:
  explicit SequenceProcessor(std::vector<std::unique_ptr<PostProcessor>> parts) : parts_(std::move(parts)) {}
  void Process(std::vector<int32_t>* ids) const override {
    for (const auto& p : parts_) p->Process(ids);
  }
  std::optional<int32_t> LeadingId() const override {
    for (const auto& p : parts_) {
      if (auto id = p->LeadingId()) return id;
    }
    return std::nullopt;
  }
  std::optional<int32_t> TrailingId() const override {
    for (const auto& p : parts_) {
      if (auto id = p->TrailingId()) return id;
    }
    return std::nullopt;
  }

 private:
  std::vector<std::unique_ptr<PostProcessor>> parts_;
};

}  // namespace

std::unique_ptr<PostProcessor> MakeTemplateProcessor(std::vector<TemplatePiece> single) {
  return std::make_unique<TemplateProcessor>(std::move(single));
}
std::unique_ptr<PostProcessor> MakeWrapProcessor(std::vector<int32_t> prefix, std::vector<int32_t> suffix) {
  return std::make_unique<WrapProcessor>(std::move(prefix), std::move(suffix));
}
std::unique_ptr<PostProcessor> MakeIdentityProcessor() { return std::make_unique<IdentityProcessor>(); }
std::unique_ptr<PostProcessor> MakeSequenceProcessor(std::vector<std::unique_ptr<PostProcessor>> parts) {
  return std::make_unique<SequenceProcessor>(std::move(parts));
}

}  // namespace fastgen::tok
