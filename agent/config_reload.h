// Config reload (SIGHUP): which settings a running agent takes over from its
// config file read again, and which need a restart. Pure: compares two parsed
// configs, no I/O; any thread. The agent applies `next` and logs both lists.
#pragma once

#include <string>
#include <vector>

#include "agent/config.h"

namespace sluice {

struct ReloadPlan {
  // The running config with the reloadable settings taken from the file:
  // agent.log_level, agent.poll_interval_ms, agent.retry_min_ms,
  // agent.retry_max_ms, agent.stop_timeout_ms.
  Config next;
  std::vector<std::string> applied;       // "agent.log_level: info -> debug"
  std::vector<std::string> need_restart;  // keys that differ but stay as they run
};

ReloadPlan PlanReload(const Config& running, const Config& file);

}  // namespace sluice
