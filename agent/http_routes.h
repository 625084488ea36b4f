// Route: what the agent's HTTP endpoints answer (/health, /livez, /readyz, /leader,
// /metrics), from a snapshot of the agent's state. Pure, no I/O: any thread; the server
// calls it on the loop thread.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "agent/http_server.h"
#include "agent/sync_progress.h"

namespace sluice {

// What the endpoints report, copied from the agent at request time.
struct AgentView {
  std::string node, deployment;
  std::string role;  // "leader", "standby", "starting"
  std::string state;
  int64_t epoch = 0;
  int64_t position = -1;
  int64_t backlog = -1;  // -1: unknown
  double lag_seconds = 0;
  std::string last_error;
  bool sink_reachable = false;
  bool lease_held_or_watched = false;
  std::string not_ready_reason;  // why /readyz says 503; a default is used when empty
  bool leader = false;
  std::optional<SyncProgress> progress;  // the batch at the sink, while there is one
};

// The content type of the Prometheus text exposition format.
inline constexpr const char* kPrometheusContentType = "text/plain; version=0.0.4; charset=utf-8";

// The answer to `req` (GET or HEAD: the method is not looked at). `metrics_text` is called
// only for /metrics.
HttpResponse Route(const HttpRequest& req, const AgentView& view,
                   const std::function<std::string()>& metrics_text);

// The /health body: {"status":"ok"|"degraded", "role", "node", "deployment", "epoch",
// "position", "backlog" (null when unknown), "lag_seconds", "last_error" (null when
// none), "state", "progress" (SyncProgressJson: null between batches)}. Strings may hold any bytes
// (invalid UTF-8 becomes U+FFFD).
std::string HealthJson(const AgentView& view);

}  // namespace sluice
