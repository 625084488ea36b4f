// FaultPoint: see fault_point.h. SLUICE_FAULT is read once, at the first
// call: a test chooses the fault when it starts the process, and a point may
// sit on a per-chunk path (between the chunks of a batch), where a getenv and
// a string per call would be wasted.
#include "common/fault_point.h"

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

namespace sluice {

void FaultPoint(const char* name) {
  static const std::optional<std::string> want = []() -> std::optional<std::string> {
    const char* v = std::getenv("SLUICE_FAULT");
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  }();
  if (!want) return;
  if (*want == name) {
    std::fprintf(stderr, "sluice: fault point %s reached: SIGKILL\n", name);
    std::fflush(stderr);
    std::raise(SIGKILL);
  }
  static std::atomic<bool> stopped{false};
  const std::string_view stop = ":stop";
  std::string_view w = *want;
  if (w.size() == std::strlen(name) + stop.size() && w.starts_with(name) && w.ends_with(stop) &&
      !stopped.exchange(true)) {
    std::fprintf(stderr, "sluice: fault point %s reached: SIGSTOP\n", name);
    std::fflush(stderr);
    std::raise(SIGSTOP);
  }
}

}  // namespace sluice
