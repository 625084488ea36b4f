// Small helpers of the benchmark: failing with a message, clocks in the units
// the report uses, printf-style formatting, progress lines, file tails.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "tests/support/processes.h"

namespace sluice::bench {

using Clock = sluice::testing::Clock;

[[noreturn]] void Fail(const std::string& msg);

double Seconds(Clock::duration d);

double Millis(Clock::duration d);

int64_t UnixMillis();

int64_t UnixNanos();

std::string Fmt(const char* format, ...) __attribute__((format(printf, 1, 2)));

void Log(const std::string& msg);

// The whole file; fails when it cannot be read (tests/support's ReadFile
// returns "" for a missing file, which the bench must not mistake for data).
std::string ReadWholeFile(const std::string& path);

std::string Trim(std::string s);

std::string TailOf(const std::string& path, size_t max_bytes);

}  // namespace sluice::bench
