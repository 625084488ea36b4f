// FaultPoint: see fault_point.h. getenv is read on every call: the points sit
// on rare paths (schema changes, resyncs), never in per-row loops.
#include "common/fault_point.h"

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace sluice {

void FaultPoint(const char* name) {
  const char* want = std::getenv("SLUICE_FAULT");
  if (want == nullptr || std::strcmp(want, name) != 0) return;
  std::fprintf(stderr, "sluice: fault point %s reached: SIGKILL\n", name);
  std::fflush(stderr);
  std::raise(SIGKILL);
}

}  // namespace sluice
