#include <string>

#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace fastgen {
namespace {

// A decode that ends in U+FFFD may be an incomplete character (ByteLevel's lossy UTF-8 and
// ByteFallback both produce it for dangling bytes), so it is held back until the next token
// shows whether the character completes.
bool EndsUnstable(const std::string& text) {
  static const std::string kReplacement = tok::CodepointToUtf8(tok::kReplacementChar);
  return text.size() >= kReplacement.size() &&
         text.compare(text.size() - kReplacement.size(), kReplacement.size(), kReplacement) == 0;
}

bool HasVisibleChar(const std::string& text) {
  size_t pos = 0;
  while (pos < text.size()) {
    if (!tok::IsWhitespace(tok::NextCodepoint(text, &pos))) return true;
  }
  return false;
}

}  // namespace

StreamDecoder::StreamDecoder(const Tokenizer& tokenizer, bool skip_special_tokens)
    : tokenizer_(tokenizer), skip_special_(skip_special_tokens) {}

std::string StreamDecoder::Push(int32_t id) {
  ids_.push_back(id);
  std::string full = tokenizer_.Decode(ids_, skip_special_);
  if (EndsUnstable(full) || full.size() < emitted_text_.size() ||
      full.compare(0, emitted_text_.size(), emitted_text_) != 0) {
    return std::string();
  }
  std::string out = full.substr(emitted_text_.size());
  // Keep only the ids just emitted as left context for the next decode, so the window stays
  // small. Decoders that treat the start of a sequence specially (Metaspace drops the first ▁,
  // Strip removes leading spaces) only touch the context's leading whitespace, so the context
  // is widened until its text holds something else.
  size_t start = emitted_ids_;
  std::string context = tokenizer_.Decode(std::span<const int32_t>(ids_).subspan(start), skip_special_);
  while (start > 0 && !HasVisibleChar(context)) {
    --start;
    context = tokenizer_.Decode(std::span<const int32_t>(ids_).subspan(start), skip_special_);
  }
  ids_.erase(ids_.begin(), ids_.begin() + static_cast<std::ptrdiff_t>(start));
  emitted_ids_ = ids_.size();
  emitted_text_ = std::move(context);
  return out;
}

std::string StreamDecoder::Flush() {
  std::string out;
  if (emitted_ids_ < ids_.size()) {
    const std::string full = tokenizer_.Decode(ids_, skip_special_);
    if (full.size() >= emitted_text_.size() && full.compare(0, emitted_text_.size(), emitted_text_) == 0) {
      out = full.substr(emitted_text_.size());
    } else {
      // The decoder is not prefix-stable for this window; the unemitted ids alone are the best
      // remaining answer.
      out = tokenizer_.Decode(std::span<const int32_t>(ids_).subspan(emitted_ids_), skip_special_);
    }
  }
  ids_.clear();
  emitted_ids_ = 0;
  emitted_text_.clear();
  return out;
}

}  // namespace fastgen
