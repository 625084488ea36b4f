// The benchmark's deployments: a SQLite file made from the Open WebUI fixture
// schema, its sink schema, and one config file per agent node (the same
// `deployment`, each node its own `node` id, so two configs make a pair);
// plus the sink readings every phase polls. Used from the bench's main thread.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "bench/basics.h"
#include "tests/support/processes.h"
#include "tests/support/sql_clients.h"

namespace sluice::bench {

using sluice::testing::AgentProcess;
using sluice::testing::Pg;

struct Deployment {
  std::string name, dir, db, schema;
  std::string config;                // the first node's config file
  std::vector<std::string> configs;  // one per node: configs[0] == config
  std::vector<std::string> nodes;    // node ids, same order
};

// What a new deployment's config files say besides the source and sink.
struct DeploymentSpec {
  std::string tag;         // names the deployment, its folder and its schema
  bool init = true;        // run `sluice init` once
  int nodes = 1;           // config files (agents of a pair: 2)
  std::string lease_json;  // the "lease" object as JSON text; "" = the agent's defaults
  std::string log_level;   // agent.log_level
};

class Deployments {
 public:
  // Borrowed: `sluice`, `conninfo` and `schema_sql` outlive this object.
  Deployments(const std::string& sluice, const std::string& conninfo, std::string dir,
              std::string suffix, const std::string& schema_sql);

  Deployment Create(const DeploymentSpec& spec);
  // A schema the bench made itself (dropped with the rest at the end).
  void AddSchema(const std::string& schema) { schemas_.push_back(schema); }
  const std::vector<std::string>& schemas() const { return schemas_; }

 private:
  const std::string& sluice_;
  const std::string& conninfo_;
  std::string dir_, suffix_;
  const std::string& schema_sql_;
  std::vector<std::string> schemas_;
};

// The sink position for a deployment: -1 while there is none (initial sync not done).
int64_t AppliedSeq(Pg& pg, const std::string& deployment);

// Waits until the sink position for `d` is at least `seq` (-1 < seq: initial
// sync done when seq == 0), failing if one of `agents` exits. Returns false on
// timeout. *first_move (if given): when the position first moved.
bool WaitApplied(Pg& pg, const std::vector<AgentProcess*>& agents, const Deployment& d, int64_t seq,
                 double timeout_s, const char* what, Clock::time_point* first_move = nullptr);

}  // namespace sluice::bench
