// FailureLog: decides how loudly to report a failure that keeps repeating
// (a retry that fails again and again), so that a stall is never logged at
// info forever nor every few milliseconds. The first failure is reported at
// warn; repeats at error, each after a longer pause than the one before
// (doubling from `first_interval_ms` up to `max_interval_ms`), with the count;
// a failure of another kind is reported at once. Progress resets it. Pure: the
// caller passes `now`; LogFailure below does the logging. One owner, any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace sluice {

struct FailureReport {
  enum class Level { kQuiet, kWarn, kError };
  Level level = Level::kQuiet;  // kQuiet: log at debug only
  int64_t count = 0;            // failures in a row, this one included
  int64_t first_at_ms = 0;      // when the first of them happened
  int64_t next_report_ms = 0;   // a repeat of the same kind is quiet before this
};

class FailureLog {
 public:
  FailureLog(int64_t first_interval_ms, int64_t max_interval_ms);

  FailureReport Note(std::string_view message, int64_t now_ms);
  // Progress: the failures in a row end. Returns how many there were.
  int64_t Reset();
  int64_t count() const { return count_; }
  int64_t first_at_ms() const { return first_at_ms_; }  // of the failures in a row

  // Messages of one kind differ only in numbers (positions, sequence
  // numbers, delays): "batch 12 failed" and "batch 13 failed" are one kind.
  static std::string Kind(std::string_view message);

 private:
  int64_t first_interval_ms_;
  int64_t max_interval_ms_;
  int64_t interval_ms_ = 0;
  int64_t count_ = 0;
  int64_t first_at_ms_ = 0;
  int64_t next_report_ms_ = 0;
  std::string kind_;
};

// Logs `line` at the level `report` gave it (quiet: debug), with
// " (failure N in a row, ...)" appended for a repeat.
void LogFailure(const FailureReport& report, const std::string& line, int64_t now_ms);

}  // namespace sluice
