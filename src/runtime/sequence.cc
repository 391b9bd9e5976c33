#include "runtime/sequence.h"

#include <algorithm>

namespace fastgen::runtime {

const char* FinishReasonName(FinishReason r) {
  switch (r) {
    case FinishReason::kStop: return "stop";
    case FinishReason::kLength: return "length";
    case FinishReason::kCancelled: return "cancelled";
    case FinishReason::kNone: break;
  }
  return "none";
}

bool RequestHandle::Next(Event* e, int timeout_ms) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [this] { return !events_.empty(); })) return false;
  *e = std::move(events_.front());
  events_.pop_front();
  return true;
}

void RequestHandle::Cancel() {
  std::lock_guard<std::mutex> lock(mu_);
  cancelled_ = true;
}

bool RequestHandle::cancelled() const {
  std::lock_guard<std::mutex> lock(mu_);
  return cancelled_;
}

void RequestHandle::Push(Event e) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    events_.push_back(std::move(e));
  }
  cv_.notify_all();
}

TextOutput::TextOutput(const Tokenizer* tokenizer, bool skip_special, std::vector<std::string> stops)
    : stops_(std::move(stops)) {
  if (tokenizer) decoder_ = std::make_unique<StreamDecoder>(*tokenizer, skip_special);
  std::erase_if(stops_, [](const std::string& s) { return s.empty(); });
}

std::string TextOutput::Release(bool* stopped) {
  // The earliest stop string ends the text.
  size_t cut = std::string::npos;
  for (const std::string& s : stops_) cut = std::min(cut, pending_.find(s));
  if (cut != std::string::npos) {
    std::string out = pending_.substr(0, cut);
    pending_.clear();
    stopped_ = true;
    *stopped = true;
    return out;
  }
  // Hold back the longest tail that is a proper prefix of a stop string: it may complete one.
  size_t keep = 0;
  for (const std::string& s : stops_)
    for (size_t len = std::min(s.size() - 1, pending_.size()); len > keep; --len)
      if (pending_.compare(pending_.size() - len, len, s, 0, len) == 0) {
        keep = len;
        break;
      }
  std::string out = pending_.substr(0, pending_.size() - keep);
  pending_.erase(0, pending_.size() - keep);
  return out;
}

std::string TextOutput::Push(int32_t id, bool* stopped) {
  *stopped = false;
  if (!decoder_ || stopped_) return {};
  pending_ += decoder_->Push(id);
  return Release(stopped);
}

std::string TextOutput::Flush() {
  if (!decoder_ || stopped_) return {};
  pending_ += decoder_->Flush();
  bool stopped = false;
  std::string out = Release(&stopped);
  if (!stopped) {
    out += pending_;  // nothing more can complete a stop string
    pending_.clear();
  }
  return out;
}

}  // namespace fastgen::runtime
