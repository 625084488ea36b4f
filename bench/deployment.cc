// The benchmark's deployments and sink position readings (see deployment.h).
#include "bench/deployment.h"

#include <filesystem>
#include <optional>
#include <thread>

#include "bench/host.h"
#include "bench/report.h"
#include "bench/workload.h"

namespace sluice::bench {

namespace fs = std::filesystem;
using sluice::testing::WriteFile;

Deployments::Deployments(const std::string& sluice, const std::string& conninfo, std::string dir,
                         std::string suffix, const std::string& schema_sql)
    : sluice_(sluice),
      conninfo_(conninfo),
      dir_(std::move(dir)),
      suffix_(std::move(suffix)),
      schema_sql_(schema_sql) {}

Deployment Deployments::Create(const DeploymentSpec& spec) {
  Deployment d;
  d.name = "sluice_bench_" + suffix_ + "_" + spec.tag;
  d.schema = d.name;
  d.dir = dir_ + "/" + spec.tag;
  fs::create_directories(d.dir);
  d.db = d.dir + "/webui.db";
  {
    Sqlite db(d.db, kBusyTimeoutMs);
    db.Exec(schema_sql_);
    db.Exec("PRAGMA journal_mode=WAL");
  }
  std::string url = Json::Str(conninfo_).text();
  for (int i = 0; i < spec.nodes; ++i) {
    // The first node keeps the single-agent name. HTTP is off: the bench reads
    // the sink, and agents of a pair (or of two bench runs) on one machine
    // would all want the default port.
    std::string node = i == 0 ? "bench" : "bench-" + std::to_string(i + 1);
    std::string config = d.dir + (i == 0 ? "/sluice.json" : "/sluice-" + node + ".json");
    WriteFile(config, "{\"deployment\": \"" + d.name + "\", \"node\": \"" + node +
                          "\", \"source\": {\"path\": " + Json::Str(d.db).text() +
                          "}, \"sink\": {\"url\": " + url + ", \"schema\": \"" + d.schema +
                          "\"}, \"agent\": {\"log_level\": \"" + spec.log_level + "\"}" +
                          (spec.lease_json.empty() ? "" : ", \"lease\": " + spec.lease_json) +
                          ", \"http\": {\"listen\": \"off\"}}\n");
    d.configs.push_back(config);
    d.nodes.push_back(node);
  }
  d.config = d.configs[0];
  schemas_.push_back(d.schema);
  if (spec.init) RunOrFail({sluice_, "init", "--config", d.config}, d.dir + "/init.log");
  return d;
}

int64_t AppliedSeq(Pg& pg, const std::string& deployment) {
  std::optional<std::string> seq = pg.Scalar(
      "SELECT applied_seq FROM sync_metadata.source_position WHERE deployment = $1", {deployment});
  return seq ? std::stoll(*seq) : -1;
}

bool WaitApplied(Pg& pg, const std::vector<AgentProcess*>& agents, const Deployment& d, int64_t seq,
                 double timeout_s, const char* what, Clock::time_point* first_move) {
  auto deadline = Clock::now() + std::chrono::duration<double>(timeout_s);
  auto next_progress = Clock::now() + std::chrono::seconds(5);
  const int64_t initial = AppliedSeq(pg, d.name);
  while (true) {
    int64_t a = AppliedSeq(pg, d.name);
    if (first_move != nullptr && a != initial && *first_move == Clock::time_point()) {
      *first_move = Clock::now();
    }
    if (a >= seq) return true;
    for (AgentProcess* agent : agents) CheckAlive(*agent);
    if (Clock::now() > deadline) return false;
    if (Clock::now() > next_progress) {
      Log(Fmt("%s: applied %lld of %lld", what, static_cast<long long>(a),
              static_cast<long long>(seq)));
      next_progress += std::chrono::seconds(5);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

}  // namespace sluice::bench
