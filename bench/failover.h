// Phase (f) of the benchmark: a pair of agents on one deployment (the same
// SQLite file, two `node` ids) under a steady app write load. It measures the
// time from SIGKILL of the leader to the standby's first commit (the first
// sync_metadata.applied_batches row with the new epoch visible to a client
// polling every 2 ms), the same from SIGTERM (the graceful handover), at each
// lease setting; and the lease's cost: renewals per second and
// commit-to-visible latency with one agent against a pair. Main thread.
#pragma once

#include <cmath>
#include <string>

#include "bench/deployment.h"
#include "bench/options.h"
#include "bench/report.h"

namespace sluice::bench {

// The figures the targets are judged on (NaN: not measured).
struct FailoverFigures {
  double kill_p95_default_s = NAN;  // SIGKILL, agent's default lease
  double kill_p95_1s_s = NAN;       // SIGKILL, lease.duration_ms = 1000
  double term_p95_default_s = NAN;  // SIGTERM, default lease
  double term_p95_1s_s = NAN;       // SIGTERM, 1-second lease
  double latency_p95_one_ms = NAN;  // commit-to-visible, one agent
  double latency_p95_two_ms = NAN;  // commit-to-visible, a pair
};

// Runs the phase: figures with their conditions into `j`, a human summary
// appended to *summary. `deployments` makes (and later drops) the schemas.
void RunFailover(const Options& o, Deployments& deployments, JsonObject& j, std::string* summary,
                 FailoverFigures* figures);

}  // namespace sluice::bench
