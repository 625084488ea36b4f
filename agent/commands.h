// The CLI's subcommands: init, resync, status, uninstall, run, conflicts
// list|resolve. Each takes a
// parsed Config, prints what it did for a human, and returns a process exit code.
// Blocking; main thread only.
#pragma once

#include <string>
#include <vector>

#include "agent/config.h"
#include "sink/conflict_admin.h"
#include "sink/sink_admin.h"

namespace sluice {

int RunInit(const Config& config);
// What init does after the control plane, over `admin` (also an
// administrator's connection, for `sluice admin bootstrap`): refuses a
// deployment bound to another file, prepares the file, the mirror tables and
// the position row. Returns the number of mirror tables.
Result<size_t> PrepareDeployment(const Config& config, SinkAdmin& admin);
int RunStatus(const Config& config, bool json);
int RunUninstall(const Config& config);
// Without tables: prepares the file and makes the deployment follow it from
// scratch. With tables: marks them for a full read by the running agent.
int RunResync(const Config& config, const std::vector<std::string>& tables);
// "to make deployment D follow FILE ..., run `sluice resync --config FILE`".
std::string ResyncAdvice(const Config& config);
int RunAgent(const Config& config);
// `conflicts list`: this deployment's conflict_log entries matching `filter`,
// as a text table or one JSON object per line; `images` adds the four images.
int RunConflictsList(const Config& config, const ConflictFilter& filter, bool json, bool images);
// `conflicts resolve`: resolves one pending entry (sink/conflict_admin.h) and
// prints what it did. request.by empty: the OS user.
int RunConflictsResolve(const Config& config, ResolveRequest request);

}  // namespace sluice
