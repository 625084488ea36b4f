// sluice_bench's command line (see options.h).
#include "bench/options.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "bench/basics.h"

namespace sluice::bench {

void Usage() {
  std::printf(
      "usage: sluice_bench --sluice PATH [options]\n"
      "  --conninfo STR        libpq conninfo of the sink (default: PG* environment)\n"
      "  --json FILE           write every figure as JSON to FILE\n"
      "  --quick               50,000 changes, 3 s lag and latency runs, 20x3 trigger txns,\n"
      "                        3 takeovers per failover setting, 1 conflicts round\n"
      "  --changes N           backlog size for (a) (default 1000000)\n"
      "  --txn-rows N          rows per app transaction in (a) and (c) (default 1000)\n"
      "  --update-pct P        share of updates in the backlog (default 20)\n"
      "  --row-bytes N         message.content bytes (default 200)\n"
      "  --lag-seconds S       full-speed write run with the agent running (default 10)\n"
      "  --latency-seconds S   steady-rate latency run (default 10)\n"
      "  --latency-rate R      single-row transactions per second (default 1000)\n"
      "  --trigger-txns K      transactions per repetition in (c) (default 100)\n"
      "  --trigger-reps R      repetitions in (c) (default 5)\n"
      "  --synchronous LEVEL   app's PRAGMA synchronous (default NORMAL, Open WebUI's)\n"
      "  --agent-log-level L   agent.log_level in the config (default info)\n"
      "  --failover-reps N     (f) takeovers per signal and lease setting (default 10)\n"
      "  --failover-rate R     (f) app txns per second during the takeovers (default 200)\n"
      "  --failover-leases L   (f) lease.duration_ms values, 'default' = none set\n"
      "                        (default default,1000)\n"
      "  --failover-settle S   (f) seconds the standby runs before each kill (default 1)\n"
      "  --conflict-rounds N   (g) rounds of the four arms, median reported (default 3)\n"
      "  --conflict-pcts L     (g) shares of the backlog in conflict besides 0 (default 1,10)\n"
      "  --conflict-strategy S (g) message's strategy in the agent's `conflicts` key: merge\n"
      "                        (default), source_wins, ...; none = no key (source_wins)\n"
      "  --phases LIST         subset of a,b,c,f,g (default a,b,c,f; d comes with a; g: "
      "conflicts)\n"
      "  --workdir DIR         where the temp dir goes (default $TMPDIR or /tmp)\n"
      "  --keep                keep the temp dir and the sink schemas\n");
}

Options ParseArgs(int argc, char** argv) {
  Options o;
  bool changes_set = false, lag_set = false, lat_set = false, tt_set = false, tr_set = false,
       fr_set = false, cr_set = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) Fail("missing value after " + a);
      return argv[++i];
    };
    if (a == "--sluice") {
      o.sluice = next();
    } else if (a == "--conninfo") {
      o.conninfo = next();
    } else if (a == "--json") {
      o.json_path = next();
    } else if (a == "--workdir") {
      o.workdir = next();
    } else if (a == "--schema-sql") {
      o.schema_sql = next();
    } else if (a == "--synchronous") {
      o.synchronous = next();
    } else if (a == "--agent-log-level") {
      o.agent_log_level = next();
    } else if (a == "--phases") {
      o.phases = next();
    } else if (a == "--changes") {
      o.changes = std::stoll(next());
      changes_set = true;
    } else if (a == "--txn-rows") {
      o.txn_rows = std::stoi(next());
    } else if (a == "--update-pct") {
      o.update_pct = std::stoi(next());
    } else if (a == "--row-bytes") {
      o.row_bytes = std::stoul(next());
    } else if (a == "--lag-seconds") {
      o.lag_seconds = std::stod(next());
      lag_set = true;
    } else if (a == "--latency-seconds") {
      o.latency_seconds = std::stod(next());
      lat_set = true;
    } else if (a == "--latency-rate") {
      o.latency_rate = std::stoi(next());
    } else if (a == "--trigger-txns") {
      o.trigger_txns = std::stoi(next());
      tt_set = true;
    } else if (a == "--trigger-reps") {
      o.trigger_reps = std::stoi(next());
      tr_set = true;
    } else if (a == "--failover-reps") {
      o.failover_reps = std::stoi(next());
      fr_set = true;
    } else if (a == "--failover-rate") {
      o.failover_rate = std::stoi(next());
    } else if (a == "--failover-leases") {
      o.failover_leases = next();
    } else if (a == "--failover-settle") {
      o.failover_settle_s = std::stod(next());
    } else if (a == "--conflict-rounds") {
      o.conflict_rounds = std::stoi(next());
      cr_set = true;
    } else if (a == "--conflict-pcts") {
      o.conflict_pcts.clear();
      std::string list = next();
      for (size_t at = 0; at <= list.size();) {
        size_t comma = std::min(list.find(',', at), list.size());
        if (comma > at) o.conflict_pcts.push_back(std::stod(list.substr(at, comma - at)));
        at = comma + 1;
      }
    } else if (a == "--conflict-strategy") {
      o.conflict_strategy = next();
    } else if (a == "--catchup-timeout") {
      o.catchup_timeout_s = std::stod(next());
    } else if (a == "--keep") {
      o.keep = true;
    } else if (a == "--quick") {
      o.quick = true;
    } else if (a == "-h" || a == "--help") {
      Usage();
      std::exit(0);
    } else {
      Fail("unknown argument " + a + " (see --help)");
    }
  }
  if (o.quick) {
    if (!changes_set) o.changes = 50000;
    if (!lag_set) o.lag_seconds = 3;
    if (!lat_set) o.latency_seconds = 3;
    if (!tt_set) o.trigger_txns = 20;
    if (!tr_set) o.trigger_reps = 3;
    if (!fr_set) o.failover_reps = 3;
    if (!cr_set) o.conflict_rounds = 1;
  }
  if (o.sluice.empty()) Fail("--sluice PATH is required (see --help)");
  if (o.txn_rows <= 0 || o.changes < o.txn_rows) Fail("--changes must be >= --txn-rows > 0");
  if (o.update_pct < 0 || o.update_pct > 90) Fail("--update-pct must be within 0..90");
  if (o.latency_rate <= 0 || o.trigger_reps <= 0 || o.trigger_txns <= 0) Fail("bad count");
  if (o.failover_reps <= 0 || o.failover_rate <= 0 || o.failover_settle_s < 0) {
    Fail("--failover-reps and --failover-rate must be > 0, --failover-settle >= 0");
  }
  if (o.conflict_rounds <= 0) Fail("--conflict-rounds must be > 0");
  for (double p : o.conflict_pcts) {
    if (!(p > 0 && p <= 100)) Fail("--conflict-pcts: each share must be within (0, 100]");
  }
  if (o.workdir.empty()) {
    const char* t = std::getenv("TMPDIR");
    o.workdir = t && *t ? t : "/tmp";
  }
  return o;
}

}  // namespace sluice::bench
