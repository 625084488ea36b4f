// Commit-to-visible latency: the app commits single-row inserts into
// `message` at a steady rate; a LISTEN connection hears each row arrive in the
// mirror through pg_notify from an AFTER INSERT trigger the bench adds to the
// mirror table. Used by phase (b) (one agent) and by the failover phase (the
// lease's cost: one agent against a pair). Main thread; it runs its own
// listener thread for the duration of a call.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "bench/basics.h"
#include "bench/report.h"
#include "bench/workload.h"
#include "tests/support/sql_clients.h"

namespace sluice::bench {

using sluice::testing::Pg;

struct LatencyRun {
  int rate = 0;
  int64_t transactions = 0;  // measured, after the warm-up
  int warmup = 0;
  double paced_seconds = 0;
  std::vector<double> latency_ms;  // sorted; one per transaction seen
  int64_t missing = 0;
  int64_t duplicates = 0;
  double max_behind_ms = 0;       // how late the app's pacing got
  int64_t late = 0;               // transactions started more than 1 ms late
  std::vector<double> commit_ms;  // the app's own INSERT+COMMIT, sorted

  double P(double p) const { return Percentile(latency_ms, p); }
  double Mean() const;  // NaN when none arrived
};

// Adds an AFTER INSERT trigger to `schema`.message (the mirror: it exists
// after the initial sync) that notifies channel sluice_bench with the id.
void AddVisibilityTrigger(Pg& pg, const std::string& schema);

// Writes warm-up + rate * seconds single-row transactions through `app`
// (message indexes first_index.., new to the table) and hears each arrive
// through the trigger above, waiting up to 10 s for the last. `check` runs
// every 1,024 transactions (e.g. to fail when an agent exited).
LatencyRun MeasureCommitToVisible(const std::string& conninfo, App& app, int rate, double seconds,
                                  uint64_t first_index, const std::function<void()>& check);

// Several runs as one: their latencies and the app's commit times merged.
LatencyRun Merge(const std::vector<LatencyRun>& runs);

// The figures of a run into `j` (p50/p95/p99/max/mean/min ms and the pacing).
void LatencyJson(const LatencyRun& r, JsonObject& j);

// "p50 x ms, p95 y ms, p99 z ms, max w ms, mean v ms; received n, missing m".
std::string LatencySummary(const LatencyRun& r);

}  // namespace sluice::bench
