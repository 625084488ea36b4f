// Small benchmark helpers (see basics.h): failing, clocks, formatting, file tails.
#include "bench/basics.h"

#include <cstdarg>
#include <cstdio>
#include <filesystem>
#include <stdexcept>

namespace sluice::bench {

namespace fs = std::filesystem;
using sluice::testing::ReadFile;

[[noreturn]] void Fail(const std::string& msg) { throw std::runtime_error(msg); }

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

double Millis(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

int64_t UnixMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int64_t UnixNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string Fmt(const char* format, ...) {
  va_list ap;
  va_start(ap, format);
  va_list ap2;
  va_copy(ap2, ap);
  int n = std::vsnprintf(nullptr, 0, format, ap);
  va_end(ap);
  std::string out(n > 0 ? static_cast<size_t>(n) : 0, '\0');
  std::vsnprintf(out.data(), out.size() + 1, format, ap2);
  va_end(ap2);
  return out;
}

void Log(const std::string& msg) {
  std::fprintf(stderr, "[bench] %s\n", msg.c_str());
  std::fflush(stderr);
}

std::string ReadWholeFile(const std::string& path) {
  if (!fs::exists(path)) Fail("cannot read " + path);
  return ReadFile(path);
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r')) s.pop_back();
  size_t i = 0;
  while (i < s.size() && s[i] == ' ') ++i;
  return s.substr(i);
}

std::string TailOf(const std::string& path, size_t max_bytes) {
  std::string all = ReadFile(path);
  if (all.size() > max_bytes) all = "..." + all.substr(all.size() - max_bytes);
  return all;
}

}  // namespace sluice::bench
