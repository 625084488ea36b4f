// PlanReload: field-by-field comparison of the running and the re-read config.
#include "agent/config_reload.h"

#include "sink/conflict_policy.h"

namespace sluice {
namespace {

std::string Text(const std::string& v) { return v; }
std::string Text(int v) { return std::to_string(v); }

}  // namespace

ReloadPlan PlanReload(const Config& running, const Config& file,
                      const Result<std::vector<TableShape>>& shapes) {
  ReloadPlan plan;
  plan.next = running;
  AgentOptions& to = plan.next.agent;
  auto take = [&](const char* key, auto AgentOptions::*field) {
    if (to.*field == file.agent.*field) return;
    plan.applied.push_back(std::string(key) + ": " + Text(to.*field) + " -> " +
                           Text(file.agent.*field));
    to.*field = file.agent.*field;
  };
  take("agent.log_level", &AgentOptions::log_level);
  take("agent.poll_interval_ms", &AgentOptions::poll_interval_ms);
  take("agent.retry_min_ms", &AgentOptions::retry_min_ms);
  take("agent.retry_max_ms", &AgentOptions::retry_max_ms);
  take("agent.stop_timeout_ms", &AgentOptions::stop_timeout_ms);
  if (to != file.agent) plan.need_restart.push_back("agent");  // a key not listed above

  auto restart_if = [&](bool differs, const char* key) {
    if (differs) plan.need_restart.push_back(key);
  };
  restart_if(running.deployment != file.deployment, "deployment");
  restart_if(running.node != file.node, "node");
  // Keys added later than these lists still count: each section is also
  // compared whole.
  size_t before = plan.need_restart.size();
  const CaptureOptions &rs = running.source, &fs = file.source;
  restart_if(rs.path != fs.path, "source.path");
  restart_if(rs.include != fs.include, "source.include");
  restart_if(rs.exclude != fs.exclude, "source.exclude");
  restart_if(rs.busy_timeout_ms != fs.busy_timeout_ms, "source.busy_timeout_ms");
  restart_if(rs.spool_dir != fs.spool_dir, "source.spool_dir");
  restart_if(plan.need_restart.size() == before && !(rs == fs), "source");
  before = plan.need_restart.size();
  const SinkOptions &rk = running.sink, &fk = file.sink;
  restart_if(rk.url != fk.url, "sink.url");
  restart_if(rk.schema != fk.schema, "sink.schema");
  restart_if(rk.query_timeout_ms != fk.query_timeout_ms, "sink.query_timeout_ms");
  restart_if(rk.chunk_rows != fk.chunk_rows, "sink.chunk_rows");
  restart_if(rk.chunk_bytes != fk.chunk_bytes, "sink.chunk_bytes");
  restart_if(rk.toast_compression != fk.toast_compression, "sink.toast_compression");
  restart_if(rk.column_types != fk.column_types, "tables");
  SinkOptions fk_but_policy = fk;
  fk_but_policy.conflicts = rk.conflicts;  // reloadable: below
  restart_if(plan.need_restart.size() == before && !(rk == fk_but_policy), "sink");
  if (rk.conflicts != fk.conflicts) {
    // Checked against the tables as the agent runs them: with the running
    // column types (a change of those waits for the restart).
    Status fits = shapes.ok()
                      ? ValidateConflictPolicy(fk.conflicts, shapes.value(), rk.column_types)
                      : Status::InvalidArgument(
                            "conflicts: the new policy cannot be checked against the "
                            "source's tables (" +
                            shapes.status().ToString() + ")");
    if (fits.ok()) {
      plan.next.sink.conflicts = fk.conflicts;
      plan.conflicts_changed = true;
      plan.applied.push_back("conflicts: policy reloaded");
    } else {
      plan.refused.push_back(fits.message() + "; keeping the running policy");
    }
  }
  before = plan.need_restart.size();
  const LeaseOptions &rl = running.lease, &fl = file.lease;
  restart_if(rl.duration_ms != fl.duration_ms, "lease.duration_ms");
  restart_if(rl.renew_ms != fl.renew_ms, "lease.renew_ms");
  restart_if(rl.poll_ms != fl.poll_ms, "lease.poll_ms");
  restart_if(plan.need_restart.size() == before && !(rl == fl), "lease");
  before = plan.need_restart.size();
  const HttpOptions &rh = running.http, &fh = file.http;
  restart_if(rh.listen != fh.listen, "http.listen");
  restart_if(rh.max_connections != fh.max_connections, "http.max_connections");
  restart_if(plan.need_restart.size() == before && !(rh == fh), "http");
  return plan;
}

}  // namespace sluice
