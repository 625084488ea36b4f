// The conflict policy against the source's tables: `sluice init` and
// `sluice run` refuse a policy that does not fit them, SIGHUP keeps the
// running one (agent/config_reload.h). The tables are described from the
// SQLite file as it is now, on a connection of their own, read-only work;
// any thread (the reload's runs on the loop, so it waits little on a lock).
#pragma once

#include <vector>

#include "agent/config.h"
#include "common/status.h"
#include "common/table_shape.h"

namespace sluice {

// The tables source.include/exclude select, described now (names, declared
// types, keys; no value stats: types map by declaration). A table the agent
// would hold back (TableRefusal) is left out. `busy_timeout_ms` bounds the
// wait for a lock.
Result<std::vector<TableShape>> DescribeSourceTables(const CaptureOptions& source,
                                                     int busy_timeout_ms);

// sink.conflicts against those tables and tables.<t>.columns: Ok, or
// InvalidArgument naming every problem (exit 2); an error reading the file as
// it is. A policy of defaults only that needs no column is not checked
// against anything (no file read).
Status CheckConflictPolicy(const Config& config);

}  // namespace sluice
