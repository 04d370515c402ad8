#pragma once
// Status and Result<T>: errors as values for every call that can fail on bad input.
// Thread-safety: plain values; safe to copy between threads.
// A caller may rely on: ok() is true exactly when code() == Code::kOk; message() is a
// human-readable explanation meant for logs and error replies, never parsed.

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace mstream {

class [[nodiscard]] Status {
 public:
  enum class Code {
    kOk = 0,
    kInvalidArgument,   // the caller passed something malformed or out of range
    kMalformed,         // bytes from the network did not decode
    kWouldBlock,        // a bounded buffer is full; retry after it drains (see Channel)
    kTooLarge,          // a message exceeds the configured maximum size
    kNotFound,          // no such stream, channel or site
    kAlreadyExists,     // a name or id is taken
    kUnavailable,       // the peer or resource cannot be reached now
    kIoError,           // the operating system refused (socket, file)
    kInternal,          // a bug: an invariant of ours did not hold
    kPermissionDenied,  // allowed to nobody, or not to this caller (e.g. a system stream)
    kLimit,             // a configured limit would be exceeded (COMMANDS.md, Limits)
  };

  Status() = default;
  static Status ok_status() { return Status(); }
  static Status error(Code code, std::string message) { return Status(code, std::move(message)); }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  std::string to_string() const;

 private:
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}
  Code code_ = Code::kOk;
  std::string message_;
};

const char* code_name(Status::Code code);

inline std::string Status::to_string() const {
  if (ok()) return "ok";
  return std::string(code_name(code_)) + ": " + message_;
}

inline const char* code_name(Status::Code code) {
  switch (code) {
    case Status::Code::kOk: return "ok";
    case Status::Code::kInvalidArgument: return "invalid argument";
    case Status::Code::kMalformed: return "malformed";
    case Status::Code::kWouldBlock: return "would block";
    case Status::Code::kTooLarge: return "too large";
    case Status::Code::kNotFound: return "not found";
    case Status::Code::kAlreadyExists: return "already exists";
    case Status::Code::kUnavailable: return "unavailable";
    case Status::Code::kIoError: return "i/o error";
    case Status::Code::kInternal: return "internal";
    case Status::Code::kPermissionDenied: return "permission denied";
    case Status::Code::kLimit:
      return "limit";
  }
  return "unknown";
}

// Result<T> holds either a value or a non-ok Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design, like std::expected
  Result(Status status) : v_(std::move(status)) {  // NOLINT
    assert(!std::get<Status>(v_).ok() && "Result built from an ok Status carries no value");
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return ok(); }
  // REQUIRES: ok()
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  // REQUIRES: !ok()
  const Status& status() const { return std::get<Status>(v_); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace mstream
