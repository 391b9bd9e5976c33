// Errors are values in fastgen: library code returns Status or Expected<T> carrying a message
// that names the file, tensor or field at fault. Front ends print it and exit non-zero (CLI) or
// map it to an HTTP status (server); nothing in the library aborts on user input.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace fastgen {

enum class ErrorCode {
  kOk = 0,
  kInvalidArgument,  // a request or flag is out of range (prompt too long, id outside vocab)
  kNotFound,         // a file, tensor or key is missing
  kCorruptFile,      // a file's bytes disagree with its own header
  kUnsupported,      // valid input fastgen does not handle (unknown architecture or dtype)
  kIo,               // the operating system refused (open, mmap, read)
  kUnavailable,      // valid, but not now: the server's queue is full or it is shutting down
  kInternal,
};

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return {}; }
  bool ok() const { return code_ == ErrorCode::kOk; }
  ErrorCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // Prefixes context ("loading model.safetensors: ") so errors read from outermost to innermost.
  Status WithContext(const std::string& context) const {
    if (ok()) return *this;
    return {code_, context + ": " + message_};
  }

 private:
  ErrorCode code_ = ErrorCode::kOk;
  std::string message_;
};

inline Status InvalidArgument(std::string m) { return {ErrorCode::kInvalidArgument, std::move(m)}; }
inline Status NotFound(std::string m) { return {ErrorCode::kNotFound, std::move(m)}; }
inline Status CorruptFile(std::string m) { return {ErrorCode::kCorruptFile, std::move(m)}; }
inline Status Unsupported(std::string m) { return {ErrorCode::kUnsupported, std::move(m)}; }
inline Status IoError(std::string m) { return {ErrorCode::kIo, std::move(m)}; }
inline Status Unavailable(std::string m) { return {ErrorCode::kUnavailable, std::move(m)}; }
inline Status Internal(std::string m) { return {ErrorCode::kInternal, std::move(m)}; }

// A value or the Status explaining why there is none.
template <typename T>
class [[nodiscard]] Expected {
 public:
  Expected(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design, like std::expected
  Expected(Status status) : v_(std::move(status)) { assert(!std::get<Status>(v_).ok()); }  // NOLINT

  bool ok() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return ok(); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace fastgen

#define FASTGEN_CONCAT_INNER(a, b) a##b
#define FASTGEN_CONCAT(a, b) FASTGEN_CONCAT_INNER(a, b)

// Returns early from a function returning Status or Expected<T> when `expr` is an error.
#define FG_RETURN_IF_ERROR(expr)                   \
  do {                                             \
    ::fastgen::Status fg_status_ = (expr);         \
    if (!fg_status_.ok()) return fg_status_;       \
  } while (0)

// `FG_ASSIGN_OR_RETURN(auto x, Foo());` binds the value or returns the error.
#define FG_ASSIGN_OR_RETURN(lhs, expr) \
  FG_ASSIGN_OR_RETURN_IMPL(FASTGEN_CONCAT(fg_expected_, __LINE__), lhs, expr)
#define FG_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                             \
  if (!tmp.ok()) return tmp.status();            \
  lhs = std::move(tmp).value()
