// FaultPoint: named crash points for tests. When the environment variable
// SLUICE_FAULT names the point, the process kills itself with SIGKILL there,
// exactly as a kill -9 at that instant would; "<name>:stop" instead stops
// itself with SIGSTOP the first time it gets there (a frozen process, e.g. a
// VM pause, until someone sends SIGCONT). Any thread; no-op otherwise.
#pragma once

namespace sluice {

void FaultPoint(const char* name);

}  // namespace sluice
