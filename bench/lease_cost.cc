// The lease's cost: one agent against a pair at a steady rate (see lease_cost.h).
#include "bench/lease_cost.h"

#include <thread>
#include <vector>

#include "bench/host.h"
#include "bench/latency.h"
#include "bench/pair.h"
#include "bench/workload.h"

namespace sluice::bench {
namespace {

// The latency run is cut into blocks ordered alone, pair, pair, alone, pair,
// alone, alone, pair (1: with a standby), so that a drift or a burst of the
// machine's load (other processes) hits both arms alike.
constexpr int kBlockOrder[] = {0, 1, 1, 0, 1, 0, 0, 1};
constexpr int kBlocks = sizeof(kBlockOrder) / sizeof(kBlockOrder[0]);

}  // namespace

// At the default lease: one deployment, the leader always running, the
// standby running only through its blocks (started a settle time before).
void MeasureLeaseCost(const Options& o, Deployments& deployments, JsonObject& j,
                      std::string* summary, double* p95_one_ms, double* p95_two_ms) {
  Log(Fmt("(f) lease cost: %d single-row txn/s for %.1f s with one agent, the same with two",
          o.latency_rate, o.latency_seconds));
  Pair p = StartFirst(o, deployments, "f_cost", "");
  Pg pg(o.conninfo);
  AddVisibilityTrigger(pg, p.d.schema);
  MessageGen gen(o.row_bytes);
  App app(p.d.db, o.synchronous, &gen);
  AgentProcess& leader = *p.agents[0];
  AgentProcess& standby = *p.agents[1];

  struct Arm {
    std::vector<LatencyRun> runs;
    double seconds = 0, leader_cpu = 0, standby_cpu = 0;
    int64_t leader_wakeups = 0, standby_wakeups = 0;
  };
  Arm arms[2];  // [0]: one agent, [1]: leader + standby
  uint64_t next_index = 0;
  std::string standby_stops;
  LeaseRow l0 = ReadLease(pg, p.d.name);
  auto t0 = Clock::now();
  for (int pair : kBlockOrder) {
    if (pair == 1 && !standby.Running()) p.Start(1);
    if (pair == 0 && standby.Running()) {
      standby_stops +=
          (standby_stops.empty() ? "" : ", ") + StopAgent(standby, std::chrono::seconds(30));
    }
    std::this_thread::sleep_for(std::chrono::duration<double>(o.failover_settle_s));
    CheckAlive(leader);
    if (pair == 1) CheckAlive(standby);
    double lc = ProcessCpuSeconds(leader.pid());
    double sc = pair == 1 ? ProcessCpuSeconds(standby.pid()) : 0;
    int64_t lw = Wakeups(leader.pid());
    int64_t sw = pair == 1 ? Wakeups(standby.pid()) : 0;
    auto b0 = Clock::now();
    LatencyRun run = MeasureCommitToVisible(
        o.conninfo, app, o.latency_rate, o.latency_seconds / (kBlocks / 2), next_index,
        [&] { pair == 1 ? p.CheckAllAlive() : CheckAlive(leader); });
    Arm& arm = arms[pair];
    arm.seconds += Seconds(Clock::now() - b0);
    arm.leader_cpu += ProcessCpuSeconds(leader.pid()) - lc;
    arm.leader_wakeups += Wakeups(leader.pid()) - lw;
    if (pair == 1) {
      arm.standby_cpu += ProcessCpuSeconds(standby.pid()) - sc;
      arm.standby_wakeups += Wakeups(standby.pid()) - sw;
    }
    next_index += static_cast<uint64_t>(run.warmup + run.transactions);
    arm.runs.push_back(std::move(run));
  }
  LeaseRow l1 = ReadLease(pg, p.d.name);
  double secs = Seconds(Clock::now() - t0);
  CheckAlive(leader);
  std::string leader_stop = StopAgent(leader, std::chrono::seconds(30));
  bool same_holder = l0.epoch == l1.epoch && l1.leader == p.d.nodes[0];
  double renewals = same_holder ? static_cast<double>(l1.heartbeats - l0.heartbeats) / secs : NAN;

  j.Set("lease", Json::Str("default (no lease object)"));
  j.Set("blocks", Json::Str(Fmt("%d of %.2f s at %d txn/s: agents 1 2 2 1 2 1 1 2; the standby "
                                "started %.1f s before its blocks",
                                kBlocks, o.latency_seconds / (kBlocks / 2), o.latency_rate,
                                o.failover_settle_s)));
  j.Set("lease_renewals_per_s", Json::Num(renewals));
  j.Set("lease_renewals", Json::Int(l1.heartbeats - l0.heartbeats));
  j.Set("lease_renewals_over_s", Json::Num(secs));
  j.Set("leadership_changed_during_run", Json::Bool(!same_holder));
  std::string arm_text;
  for (int pair : {0, 1}) {
    const Arm& arm = arms[pair];
    LatencyRun all = Merge(arm.runs);
    JsonObject a;
    LatencyJson(all, a);
    double leader_wps = static_cast<double>(arm.leader_wakeups) / arm.seconds;
    double standby_wps = static_cast<double>(arm.standby_wakeups) / arm.seconds;
    a.Set("leader_cpu_s_per_s", Json::Num(arm.leader_cpu / arm.seconds));
    a.Set("leader_wakeups_per_s", Json::Num(leader_wps));
    if (pair == 1) {
      a.Set("standby_cpu_s_per_s", Json::Num(arm.standby_cpu / arm.seconds));
      a.Set("standby_wakeups_per_s", Json::Num(standby_wps));
    }
    j.Set(pair == 0 ? "one_agent" : "two_agents", a);
    *(pair == 0 ? p95_one_ms : p95_two_ms) = all.P(95);
    arm_text +=
        Fmt("      %s: commit-to-visible %s\n        leader CPU %.3f s/s, %.0f wake-ups/s%s\n",
            pair == 0 ? "one agent" : "a pair (leader + standby)", LatencySummary(all).c_str(),
            arm.leader_cpu / arm.seconds, leader_wps,
            pair == 1 ? Fmt("; standby CPU %.3f s/s, %.0f wake-ups/s",
                            arm.standby_cpu / arm.seconds, standby_wps)
                            .c_str()
                      : "");
  }
  j.Set("p95_extra_ms_with_a_standby", Json::Num(*p95_two_ms - *p95_one_ms));
  j.Set("agent_stops", Json::Str(standby_stops + ", " + leader_stop));
  *summary += Fmt(
      "    the lease's cost at the default lease (%d single-row txn/s, %.1f s per arm in blocks "
      "of 1 2 2 1 2 1 1 2 agents):\n%s      lease renewals %.2f/s (heartbeat_count over "
      "%.1f s)\n",
      o.latency_rate, o.latency_seconds, arm_text.c_str(), renewals, secs);
}

}  // namespace sluice::bench
