// The agent's HTTP endpoints: probes answer in plain text with the status code carrying
// the verdict (load balancers and kubelets read only that); /health is JSON for people
// and scripts; /metrics is whatever the metrics registry serializes.
#include "agent/http_routes.h"

#include <cmath>
#include <cstdio>

#include "common/json_text.h"

namespace sluice {
namespace {

HttpResponse Text(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

void AppendField(std::string* out, const char* name) {
  if (out->size() > 1) *out += ",";
  AppendJsonString(out, name);
  *out += ":";
}

void AppendStringField(std::string* out, const char* name, const std::string& value) {
  AppendField(out, name);
  AppendJsonStringLossy(out, value);
}

void AppendIntField(std::string* out, const char* name, int64_t value) {
  AppendField(out, name);
  *out += std::to_string(value);
}

// One line: a probe's body is read by people in `curl` and in kubelet events.
std::string OneLine(const std::string& s) {
  std::string out;
  for (char c : s) out.push_back(c == '\n' || c == '\r' ? ' ' : c);
  return out + "\n";
}

}  // namespace

std::string HealthJson(const AgentView& view) {
  bool degraded = !view.last_error.empty() || !view.sink_reachable;
  std::string out = "{";
  AppendField(&out, "status");
  out += degraded ? "\"degraded\"" : "\"ok\"";
  AppendStringField(&out, "role", view.role);
  AppendStringField(&out, "node", view.node);
  AppendStringField(&out, "deployment", view.deployment);
  AppendIntField(&out, "epoch", view.epoch);
  AppendIntField(&out, "position", view.position);
  AppendField(&out, "backlog");
  out += view.backlog < 0 ? "null" : std::to_string(view.backlog);
  AppendField(&out, "lag_seconds");
  if (std::isfinite(view.lag_seconds)) {  // JSON has no NaN or Infinity
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.3f", view.lag_seconds);
    out += buf;
  } else {
    out += "null";
  }
  AppendField(&out, "last_error");
  if (view.last_error.empty()) {
    out += "null";
  } else {
    AppendJsonStringLossy(&out, view.last_error);
  }
  AppendStringField(&out, "state", view.state);
  AppendField(&out, "progress");
  out += SyncProgressJson(view.progress);
  return out + "}\n";
}

HttpResponse Route(const HttpRequest& req, const AgentView& view,
                   const std::function<std::string()>& metrics_text) {
  if (req.path == "/health") {
    HttpResponse r = Text(200, HealthJson(view));
    r.content_type = "application/json";
    return r;
  }
  if (req.path == "/livez") return Text(200, "ok\n");
  if (req.path == "/readyz") {
    if (view.sink_reachable && view.lease_held_or_watched) return Text(200, "ready\n");
    std::string reason = view.not_ready_reason;
    if (reason.empty()) {
      reason = !view.sink_reachable ? "sink not reachable" : "lease neither held nor watched";
    }
    return Text(503, "not ready: " + OneLine(reason));
  }
  if (req.path == "/leader") {
    if (view.leader) return Text(200, "leader\n");
    bool named = !view.role.empty() && view.role != "leader";  // not yet, or no longer
    return Text(503, OneLine(named ? view.role : "standby"));
  }
  if (req.path == "/metrics") {
    HttpResponse r = Text(200, metrics_text ? metrics_text() : std::string());
    r.content_type = kPrometheusContentType;
    return r;
  }
  return Text(404, "not found\n");
}

}  // namespace sluice
