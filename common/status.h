// Status and Result<T>: the error values every fallible sluice call returns.
// Value types, safe to copy and move across threads. The code says what the
// caller does next (retry, resynchronise, stop); the message carries context.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace sluice {

class Status {
 public:
  enum class Code {
    kOk,
    kInvalidArgument,  // bad config or input: stop, tell the user
    kNotFound,
    kBusy,         // SQLITE_BUSY or similar: retry later
    kUnavailable,  // network / server down: reconnect with backoff
    kConflict,     // sink position differs from ours: re-read it and go on
    kFenced,       // another node holds the lease: give up leadership
    kDataError,    // a row the sink rejected: isolate it, park it
    kCorruption,   // source and sink disagree in a way that needs a resync
    kInternal,
  };

  Status() = default;
  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string m) {
    return Status(Code::kInvalidArgument, std::move(m));
  }
  static Status NotFound(std::string m) { return Status(Code::kNotFound, std::move(m)); }
  static Status Busy(std::string m) { return Status(Code::kBusy, std::move(m)); }
  static Status Unavailable(std::string m) { return Status(Code::kUnavailable, std::move(m)); }
  static Status Conflict(std::string m) { return Status(Code::kConflict, std::move(m)); }
  static Status Fenced(std::string m) { return Status(Code::kFenced, std::move(m)); }
  static Status DataError(std::string m) { return Status(Code::kDataError, std::move(m)); }
  static Status Corruption(std::string m) { return Status(Code::kCorruption, std::move(m)); }
  static Status Internal(std::string m) { return Status(Code::kInternal, std::move(m)); }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  std::string ToString() const;
  static const char* CodeName(Code c);

  // Same code, message prefixed with "context: ".
  Status Wrap(std::string_view context) const;

 private:
  Status(Code c, std::string m) : code_(c), message_(std::move(m)) {}
  Code code_ = Code::kOk;
  std::string message_;
};

// A value or the Status that explains why there is none.
template <typename T>
class Result {
 public:
  Result(T value) : value_(std::move(value)) {}          // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {}  // NOLINT: implicit by design

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() { return *value_; }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace sluice

// Propagates a non-ok Status from an expression returning Status.
#define SLUICE_RETURN_IF_ERROR(expr) \
  do {                               \
    ::sluice::Status _st = (expr);   \
    if (!_st.ok()) return _st;       \
  } while (0)
