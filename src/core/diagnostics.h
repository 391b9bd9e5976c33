// What fastgen tells its user besides results: warnings when it changes or ignores something the
// user asked for (a truncated generation, replaced invalid UTF-8, a tensor it did not use), and
// text from files made safe to print.
//
// Warnings go to one process-wide sink. Library code calls Warn() where it makes the change;
// the CLI leaves the default sink (stderr), the server routes warnings to its log, and tests
// capture them. This is the one piece of process-wide state the library keeps: a warning has
// to reach the user from deep inside a loader without every signature carrying a log object.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace fastgen {

// Text from a file or a request, safe to show on a terminal: control characters (C0, DEL and
// the C1 range, which terminals interpret as escape sequences), backslashes and bytes that are
// not valid UTF-8 come out as \n, \t, \\ or \xNN; everything else, printable UTF-8 included,
// is kept.
std::string EscapeForTerminal(std::string_view text);

// Whether `text` is valid UTF-8 (no overlong forms, surrogates or code points past U+10FFFF).
// On failure, *bad_offset (when given) is the byte offset of the first invalid sequence.
bool IsValidUtf8(std::string_view text, size_t* bad_offset = nullptr);

// Reports a warning: "fastgen: warning: <message>" on stderr unless a handler is installed.
// The message is escaped for the terminal by the default sink.
void Warn(const std::string& message);

using WarningHandler = std::function<void(const std::string& message)>;
// Installs a handler for every warning (nullptr: back to stderr); returns the previous one.
WarningHandler SetWarningHandler(WarningHandler handler);

// Collects the warnings issued while it lives (tests, and front ends that report them later).
class CapturedWarnings {
 public:
  CapturedWarnings();
  ~CapturedWarnings();
  CapturedWarnings(const CapturedWarnings&) = delete;
  CapturedWarnings& operator=(const CapturedWarnings&) = delete;
  std::vector<std::string> messages() const;
  // Whether any warning contains `fragment`.
  bool Contains(std::string_view fragment) const;

 private:
  WarningHandler previous_;
  std::vector<std::string> messages_;
};

}  // namespace fastgen
