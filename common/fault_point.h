// FaultPoint: named crash points for tests. When the environment variable
// SLUICE_FAULT names the point, the process kills itself with SIGKILL there,
// exactly as a kill -9 at that instant would. Any thread; no-op otherwise.
#pragma once

namespace sluice {

void FaultPoint(const char* name);

}  // namespace sluice
