// Phase (g) of the benchmark: catch-up throughput with conflict detection at
// the sink (issue #7). One backlog shape, four variants per round on fresh
// deployments: detection off (the mirror's four conflict triggers replaced by
// inert namesakes, so the agent's catalog step keeps them), detection on with
// 0 % conflicts, and detection on with N % of the backlog's changes hitting a
// row an outside writer (a second PostgreSQL client) updated after the first
// sync. Asserts that every such row is logged once in conflict_log and ends as
// the source wrote it. Main thread.
#pragma once

#include <cmath>
#include <string>

#include "bench/deployment.h"
#include "bench/options.h"
#include "bench/report.h"

namespace sluice::bench {

// The figure the target is judged on (NaN: not measured).
struct ConflictFigures {
  double detection_ratio = NAN;  // median catch-up rate, detection on, 0 %: / detection off
};

// Runs the phase: figures with their conditions into `j`, a human summary
// appended to *summary. `deployments` makes (and later drops) the schemas.
void RunConflicts(const Options& o, Deployments& deployments, JsonObject& j, std::string* summary,
                  ConflictFigures* figures);

}  // namespace sluice::bench
