// The CLI's subcommands other than `run`: init, status, uninstall. Each takes a
// parsed Config, prints what it did for a human, and returns a process exit code.
// Blocking; main thread only.
#pragma once

#include "agent/config.h"

namespace sluice {

int RunInit(const Config& config);
int RunStatus(const Config& config, bool json);
int RunUninstall(const Config& config);
int RunAgent(const Config& config);

}  // namespace sluice
