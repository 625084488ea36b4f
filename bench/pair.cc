// A pair of agents and the lease as the sink records it (see pair.h).
#include "bench/pair.h"

#include <optional>

#include "bench/host.h"

namespace sluice::bench {

using sluice::testing::PgRows;

LeaseRow ReadLease(Pg& pg, const std::string& deployment) {
  PgRows r = pg.Query(
      "SELECT epoch, coalesce(leader_id, ''), heartbeat_count, "
      "coalesce(expires_at > clock_timestamp(), false) FROM sync_metadata.leader_election "
      "WHERE deployment = $1",
      {deployment});
  LeaseRow out;
  if (r.rows.empty()) return out;
  const auto& row = r.rows[0];
  out.epoch = std::stoll(row[0].value_or("0"));
  out.leader = row[1].value_or("");
  out.heartbeats = std::stoll(row[2].value_or("0"));
  out.live = row[3].value_or("f") == "t";
  return out;
}

int64_t LastBatchEpoch(Pg& pg, const std::string& deployment) {
  std::optional<std::string> e = pg.Scalar(
      "SELECT coalesce(epoch, 0) FROM sync_metadata.applied_batches WHERE deployment = $1 "
      "ORDER BY after_seq DESC, applied_at DESC LIMIT 1",
      {deployment});
  return e ? std::stoll(*e) : 0;
}

void Pair::Start(size_t i) {
  agents[i]->Start();
  started[i] = Clock::now();
}

std::vector<AgentProcess*> Pair::All() {
  std::vector<AgentProcess*> out;
  for (auto& a : agents) out.push_back(a.get());
  return out;
}

int Pair::IndexOf(const std::string& node) const {
  for (size_t i = 0; i < d.nodes.size(); ++i) {
    if (d.nodes[i] == node) return static_cast<int>(i);
  }
  return -1;
}

void Pair::CheckAllAlive() {
  for (auto& a : agents) CheckAlive(*a);
}

Pair StartFirst(const Options& o, Deployments& deployments, const std::string& tag,
                const std::string& lease_json) {
  const int nodes = 2;
  DeploymentSpec spec;
  spec.tag = tag;
  spec.nodes = nodes;
  spec.lease_json = lease_json;
  spec.log_level = o.agent_log_level;
  Pair p;
  p.d = deployments.Create(spec);
  for (int i = 0; i < nodes; ++i) {
    p.agents.push_back(std::make_unique<AgentProcess>(
        o.sluice, p.d.configs[static_cast<size_t>(i)],
        p.d.dir + "/agent-" + p.d.nodes[static_cast<size_t>(i)] + ".log"));
    p.started.emplace_back();
  }
  // The first agent takes the lease and does the initial sync; the caller
  // starts the others, which stand by.
  Pg pg(o.conninfo);
  p.Start(0);
  if (!WaitApplied(pg, {p.agents[0].get()}, p.d, 0, 120, "initial sync")) {
    Fail("initial sync timed out; log tail:\n" + TailOf(p.agents[0]->log_path(), 3000));
  }
  return p;
}

}  // namespace sluice::bench
