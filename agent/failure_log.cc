// FailureLog: the doubling report schedule for repeated failures.
#include "agent/failure_log.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>

namespace sluice {

FailureLog::FailureLog(int64_t first_interval_ms, int64_t max_interval_ms)
    : first_interval_ms_(std::max<int64_t>(first_interval_ms, 1)),
      max_interval_ms_(std::max(max_interval_ms, std::max<int64_t>(first_interval_ms, 1))) {}

std::string FailureLog::Kind(std::string_view message) {
  std::string kind;
  bool in_number = false;
  for (char c : message) {
    bool digit = std::isdigit(static_cast<unsigned char>(c)) != 0;
    if (digit && !in_number) kind.push_back('#');
    if (!digit) kind.push_back(c);
    in_number = digit;
  }
  return kind;
}

FailureReport FailureLog::Note(std::string_view message, int64_t now_ms) {
  std::string kind = Kind(message);
  FailureReport r;
  ++count_;
  if (count_ == 1) {
    first_at_ms_ = now_ms;
    interval_ms_ = first_interval_ms_;
    r.level = FailureReport::Level::kWarn;
  } else if (kind != kind_) {
    // New information: say it now, without restarting the schedule.
    r.level = FailureReport::Level::kError;
  } else if (now_ms >= next_report_ms_) {
    r.level = FailureReport::Level::kError;
    interval_ms_ = std::min(interval_ms_ * 2, max_interval_ms_);
  }
  if (r.level != FailureReport::Level::kQuiet) next_report_ms_ = now_ms + interval_ms_;
  kind_ = std::move(kind);
  r.count = count_;
  r.first_at_ms = first_at_ms_;
  r.next_report_ms = next_report_ms_;
  return r;
}

int64_t FailureLog::Reset() {
  int64_t n = count_;
  count_ = 0;
  kind_.clear();
  interval_ms_ = first_interval_ms_;
  next_report_ms_ = 0;
  return n;
}

void LogFailure(const FailureReport& report, const std::string& line, int64_t now_ms) {
  std::string text = line;
  if (report.count > 1) {
    text += fmt::format(" (failure {} in a row, the first {} s ago; next report in {} s or less)",
                        report.count, (now_ms - report.first_at_ms) / 1000,
                        (report.next_report_ms - now_ms + 999) / 1000);
  }
  switch (report.level) {
    case FailureReport::Level::kWarn:
      spdlog::warn("{}", text);
      break;
    case FailureReport::Level::kError:
      spdlog::error("{}", text);
      break;
    case FailureReport::Level::kQuiet:
      spdlog::debug("{}", text);
      break;
  }
}

}  // namespace sluice
