// The lease's cost, part of the failover phase (f): commit-to-visible latency
// at a steady rate with the leader alone and with a standby beside it (the
// shared measurement of bench/latency), the leader's renewals per second
// (sync_metadata.leader_election.heartbeat_count), and the CPU and wake-ups
// of each agent meanwhile. Main thread.
#pragma once

#include <string>

#include "bench/deployment.h"
#include "bench/options.h"
#include "bench/report.h"

namespace sluice::bench {

// Figures into `j`, a human summary appended to *summary; the two p95s (ms)
// into *p95_one_ms (the leader alone) and *p95_two_ms (with a standby).
void MeasureLeaseCost(const Options& o, Deployments& deployments, JsonObject& j,
                      std::string* summary, double* p95_one_ms, double* p95_two_ms);

}  // namespace sluice::bench
