// A pair of agents on one deployment (the same SQLite file, two `node` ids)
// as the failover phase drives it, and the lease as the sink records it
// (sync_metadata.leader_election, applied_batches.epoch). Main thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "bench/deployment.h"
#include "bench/options.h"

namespace sluice::bench {

// The lease row of a deployment as the sink sees it now.
struct LeaseRow {
  int64_t epoch = 0;
  std::string leader;  // node id
  int64_t heartbeats = 0;
  bool live = false;  // expires_at is in the future by the database clock
};

LeaseRow ReadLease(Pg& pg, const std::string& deployment);

// The epoch of the latest committed batch (0 when none, or none under a lease).
int64_t LastBatchEpoch(Pg& pg, const std::string& deployment);

// Two agents of one deployment: d.configs[i] runs as agents[i].
struct Pair {
  Deployment d;
  std::vector<std::unique_ptr<AgentProcess>> agents;
  std::vector<Clock::time_point> started;  // the last start of each

  void Start(size_t i);
  std::vector<AgentProcess*> All();
  int IndexOf(const std::string& node) const;  // -1: not one of the pair
  void CheckAllAlive();                        // fails if one exited
};

// A new deployment with two configs (`lease_json` as their "lease" object,
// "" for the agent's defaults); the first agent started and through its
// initial sync, so it leads. The caller starts the second, a standby.
Pair StartFirst(const Options& o, Deployments& deployments, const std::string& tag,
                const std::string& lease_json);

}  // namespace sluice::bench
