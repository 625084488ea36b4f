// FaultPoint: see fault_point.h. getenv is read on every call: the points sit
// on rare paths (schema changes, resyncs, the end of a batch), never in
// per-row loops.
#include "common/fault_point.h"

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace sluice {

void FaultPoint(const char* name) {
  const char* want = std::getenv("SLUICE_FAULT");
  if (want == nullptr) return;
  if (std::strcmp(want, name) == 0) {
    std::fprintf(stderr, "sluice: fault point %s reached: SIGKILL\n", name);
    std::fflush(stderr);
    std::raise(SIGKILL);
  }
  static std::atomic<bool> stopped{false};
  if (std::string(want) == std::string(name) + ":stop" && !stopped.exchange(true)) {
    std::fprintf(stderr, "sluice: fault point %s reached: SIGSTOP\n", name);
    std::fflush(stderr);
    std::raise(SIGSTOP);
  }
}

}  // namespace sluice
