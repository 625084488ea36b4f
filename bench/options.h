// Command line of sluice_bench: every knob with its default (see Usage), and
// --quick, which scales the run down to a few seconds.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bench/bench_paths.h"

namespace sluice::bench {

struct Options {
  std::string sluice;
  std::string conninfo;  // empty: libpq's PG* variables
  std::string json_path;
  std::string workdir;  // parent of the temp dir
  std::string schema_sql = SLUICE_BENCH_SCHEMA_SQL;
  std::string synchronous = "NORMAL";
  std::string agent_log_level = "info";
  std::string phases = "a,b,c,f";  // g (conflicts, ~14 min): bench/run.sh conflicts
  int64_t changes = 1000000;
  int txn_rows = 1000;
  int update_pct = 20;
  size_t row_bytes = 200;
  double lag_seconds = 10;
  double latency_seconds = 10;
  int latency_rate = 1000;
  int trigger_txns = 100;
  int trigger_reps = 5;
  double catchup_timeout_s = 3600;
  // (f) failover: takeovers per signal and lease setting, the app's steady
  // rate meanwhile, the lease settings ("default" = no lease object), and how
  // long the standby runs before each kill.
  int failover_reps = 10;
  int failover_rate = 200;
  std::string failover_leases = "default,1000";
  double failover_settle_s = 1.0;
  // (g) conflicts: rounds of the four arms, the conflict shares besides 0 %,
  // and the agent's strategy for `message` ("none": no `conflicts` key).
  int conflict_rounds = 3;
  std::vector<double> conflict_pcts = {1, 10};
  std::string conflict_strategy = "merge";
  bool keep = false;
  bool quick = false;
};

void Usage();

Options ParseArgs(int argc, char** argv);

}  // namespace sluice::bench
