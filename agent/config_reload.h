// Config reload (SIGHUP): which settings a running agent takes over from its
// config file read again, and which need a restart. Pure: compares two parsed
// configs, no I/O; any thread. The agent applies `next` and logs both lists.
#pragma once

#include <string>
#include <vector>

#include "agent/config.h"
#include "common/status.h"
#include "common/table_shape.h"

namespace sluice {

struct ReloadPlan {
  // The running config with the reloadable settings taken from the file:
  // agent.log_level, agent.poll_interval_ms, agent.retry_min_ms,
  // agent.retry_max_ms, agent.stop_timeout_ms, and the conflict policy
  // (sink.conflicts) when it fits the source's tables.
  Config next;
  std::vector<std::string> applied;       // "agent.log_level: info -> debug"
  std::vector<std::string> need_restart;  // keys that differ but stay as they run
  // next.sink.conflicts is a changed policy that fits the source's tables:
  // hand it to the BatchApplier (SetConflictPolicy). applied says so too.
  bool conflicts_changed = false;
  // Changes refused, each saying why; the running value stays ("conflicts:
  // ...; keeping the running policy"). The agent logs them as errors.
  std::vector<std::string> refused;
};

// `shapes`: the source's tracked tables as described now, or why they could
// not be; a changed sink.conflicts is checked against them
// (ValidateConflictPolicy with the running tables' column types).
ReloadPlan PlanReload(const Config& running, const Config& file,
                      const Result<std::vector<TableShape>>& shapes);

}  // namespace sluice
