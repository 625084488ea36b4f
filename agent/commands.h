// The CLI's subcommands: init, resync, status, uninstall, run. Each takes a
// parsed Config, prints what it did for a human, and returns a process exit code.
// Blocking; main thread only.
#pragma once

#include <string>
#include <vector>

#include "agent/config.h"

namespace sluice {

int RunInit(const Config& config);
int RunStatus(const Config& config, bool json);
int RunUninstall(const Config& config);
// Without tables: prepares the file and makes the deployment follow it from
// scratch. With tables: marks them for a full read by the running agent.
int RunResync(const Config& config, const std::vector<std::string>& tables);
// "to make deployment D follow FILE ..., run `sluice resync --config FILE`".
std::string ResyncAdvice(const Config& config);
int RunAgent(const Config& config);

}  // namespace sluice
