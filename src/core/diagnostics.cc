#include "core/diagnostics.h"

#include <cstdio>
#include <memory>
#include <mutex>

namespace fastgen {
namespace {

// Length of the valid UTF-8 sequence starting at s[i], or 0 when it is not one.
size_t Utf8SequenceLength(std::string_view s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const unsigned char c = b(0);
  if (c < 0x80) return 1;
  size_t len;
  uint32_t cp;
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
    cp = c & 0x1F;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    cp = c & 0x0F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    cp = c & 0x07;
  } else {
    return 0;  // a continuation byte, an overlong lead (C0, C1) or past U+10FFFF (F5..FF)
  }
  if (i + len > s.size()) return 0;
  for (size_t k = 1; k < len; ++k) {
    if ((b(k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b(k) & 0x3F);
  }
  if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF))) return 0;
  if (cp >= 0xD800 && cp <= 0xDFFF) return 0;  // UTF-16 surrogates
  return len;
}

std::mutex& SinkMutex() {
  static std::mutex m;
  return m;
}
WarningHandler& Handler() {
  static WarningHandler h;
  return h;
}

}  // namespace

bool IsValidUtf8(std::string_view text, size_t* bad_offset) {
  for (size_t i = 0; i < text.size();) {
    const size_t len = Utf8SequenceLength(text, i);
    if (len == 0) {
      if (bad_offset) *bad_offset = i;
      return false;
    }
    i += len;
  }
  return true;
}

std::string EscapeForTerminal(std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(text.size());
  auto hex = [&](unsigned char c) {
    out += "\\x";
    out += kHex[c >> 4];
    out += kHex[c & 15];
  };
  for (size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '\\') {
      out += "\\\\";
      ++i;
    } else if (c == '\n') {
      out += "\\n";
      ++i;
    } else if (c == '\t') {
      out += "\\t";
      ++i;
    } else if (c < 0x20 || c == 0x7F) {
      hex(c);
      ++i;
    } else if (c < 0x80) {
      out += static_cast<char>(c);
      ++i;
    } else {
      const size_t len = Utf8SequenceLength(text, i);
      // U+0080..U+009F (C2 80..C2 9F) are the C1 controls: CSI, OSC and friends.
      const bool c1 = len == 2 && c == 0xC2 && static_cast<unsigned char>(text[i + 1]) < 0xA0;
      if (len == 0 || c1) {
        for (size_t k = 0; k < (len == 0 ? 1 : len); ++k) hex(static_cast<unsigned char>(text[i + k]));
        i += len == 0 ? 1 : len;
      } else {
        out.append(text.substr(i, len));
        i += len;
      }
    }
  }
  return out;
}

void Warn(const std::string& message) {
  std::lock_guard<std::mutex> lock(SinkMutex());
  if (Handler()) {
    Handler()(message);
    return;
  }
  const std::string line = "fastgen: warning: " + EscapeForTerminal(message) + "\n";
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

WarningHandler SetWarningHandler(WarningHandler handler) {
  std::lock_guard<std::mutex> lock(SinkMutex());
  WarningHandler previous = std::move(Handler());
  Handler() = std::move(handler);
  return previous;
}

// The handler runs under SinkMutex, so appending needs no lock of its own; reads take it.
CapturedWarnings::CapturedWarnings() {
  previous_ = SetWarningHandler([this](const std::string& m) { messages_.push_back(m); });
}

CapturedWarnings::~CapturedWarnings() { SetWarningHandler(std::move(previous_)); }

std::vector<std::string> CapturedWarnings::messages() const {
  std::lock_guard<std::mutex> lock(SinkMutex());
  return messages_;
}

bool CapturedWarnings::Contains(std::string_view fragment) const {
  for (const std::string& m : messages())
    if (m.find(fragment) != std::string::npos) return true;
  return false;
}

}  // namespace fastgen
