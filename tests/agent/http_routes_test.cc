// Route (agent/http_routes.h): what each endpoint answers for a given AgentView, and that
// /health stays valid JSON whatever bytes an error message holds. Pure, no sockets.
#include "agent/http_routes.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <string>

namespace sluice {
namespace {

HttpRequest Get(const std::string& path) { return HttpRequest{"GET", path, path}; }

AgentView Healthy() {
  AgentView v;
  v.node = "node-a";
  v.deployment = "webui";
  v.role = "leader";
  v.state = "streaming";
  v.epoch = 7;
  v.position = 1234;
  v.backlog = 0;
  v.lag_seconds = 0.25;
  v.sink_reachable = true;
  v.lease_held_or_watched = true;
  v.leader = true;
  return v;
}

std::string NoMetrics() { return "unused"; }

TEST(HttpRoutes, HealthIsJsonWithEveryField) {
  HttpResponse r = Route(Get("/health"), Healthy(), NoMetrics);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(r.body,
            "{\"status\":\"ok\",\"role\":\"leader\",\"node\":\"node-a\",\"deployment\":\"webui\","
            "\"epoch\":7,\"position\":1234,\"backlog\":0,\"lag_seconds\":0.250,"
            "\"last_error\":null,\"state\":\"streaming\",\"progress\":null}\n");
}

TEST(HttpRoutes, HealthUnknownBacklogIsNullAndErrorsDegrade) {
  AgentView v = Healthy();
  v.backlog = -1;
  v.last_error = "sink: connection refused";
  HttpResponse r = Route(Get("/health"), v, NoMetrics);
  EXPECT_EQ(r.status, 200);  // degraded is reported in the body; the process is alive
  EXPECT_NE(r.body.find("\"status\":\"degraded\""), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("\"backlog\":null"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("\"last_error\":\"sink: connection refused\""), std::string::npos);

  v = Healthy();
  v.sink_reachable = false;
  EXPECT_NE(Route(Get("/health"), v, NoMetrics).body.find("\"status\":\"degraded\""),
            std::string::npos);
}

// A last_error holding quotes, backslashes, control characters, NUL and bytes that are not
// UTF-8 (text from a peer or a file) must still give JSON a strict parser accepts, and the
// valid part must come back unchanged.
TEST(HttpRoutes, HealthEscapesHostileStrings) {
  AgentView v = Healthy();
  v.last_error = std::string("say \"hi\"\\ \n\r\t\x01\x1f", 15) + std::string(1, '\0') +
                 "\xff\xc3(\xed\xa0\x80\xf0\x9f\x98\x80 end";
  v.node = "n\"}{";
  HttpResponse r = Route(Get("/health"), v, NoMetrics);
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  ASSERT_EQ(parser.parse(r.body).get(doc), simdjson::SUCCESS) << r.body;
  std::string_view err, node;
  ASSERT_EQ(doc["last_error"].get(err), simdjson::SUCCESS);
  ASSERT_EQ(doc["node"].get(node), simdjson::SUCCESS);
  EXPECT_EQ(node, "n\"}{");
  // \xff, \xc3 (cut short), and the three bytes of an encoded surrogate each become
  // U+FFFD; the emoji (valid 4-byte UTF-8) stays.
  std::string want = std::string("say \"hi\"\\ \n\r\t\x01\x1f", 15) + std::string(1, '\0') +
                     "\xEF\xBF\xBD\xEF\xBF\xBD(\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"
                     "\xf0\x9f\x98\x80 end";
  EXPECT_EQ(err, want);
  EXPECT_NE(r.body.find("\\u0000"), std::string::npos);
  EXPECT_NE(r.body.find("\\u0001"), std::string::npos);
}

TEST(HttpRoutes, LivezAlwaysOk) {
  AgentView v;  // nothing known yet
  HttpResponse r = Route(Get("/livez"), v, NoMetrics);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "ok\n");
}

TEST(HttpRoutes, ReadyzNeedsSinkAndLease) {
  EXPECT_EQ(Route(Get("/readyz"), Healthy(), NoMetrics).status, 200);
  EXPECT_EQ(Route(Get("/readyz"), Healthy(), NoMetrics).body, "ready\n");

  AgentView v = Healthy();
  v.sink_reachable = false;
  HttpResponse r = Route(Get("/readyz"), v, NoMetrics);
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.body, "not ready: sink not reachable\n");

  v = Healthy();
  v.lease_held_or_watched = false;
  EXPECT_EQ(Route(Get("/readyz"), v, NoMetrics).body,
            "not ready: lease neither held nor watched\n");

  v.not_ready_reason = "config not loaded\nsecond line";
  r = Route(Get("/readyz"), v, NoMetrics);
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.body, "not ready: config not loaded second line\n");
}

TEST(HttpRoutes, LeaderOnlyOnTheLeader) {
  HttpResponse r = Route(Get("/leader"), Healthy(), NoMetrics);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "leader\n");

  AgentView v = Healthy();
  v.leader = false;
  v.role = "standby";
  r = Route(Get("/leader"), v, NoMetrics);
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.body, "standby\n");
  v.role = "starting";
  EXPECT_EQ(Route(Get("/leader"), v, NoMetrics).body, "starting\n");
  v.role = "leader";  // lost the lease, not yet told the rest of the agent
  EXPECT_EQ(Route(Get("/leader"), v, NoMetrics).status, 503);
  EXPECT_EQ(Route(Get("/leader"), v, NoMetrics).body, "standby\n");
}

TEST(HttpRoutes, MetricsIsPrometheusText) {
  int calls = 0;
  auto metrics = [&] {
    ++calls;
    return std::string("sluice_leader 1\n");
  };
  HttpResponse r = Route(Get("/metrics"), Healthy(), metrics);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(r.body, "sluice_leader 1\n");
  EXPECT_EQ(calls, 1);
  Route(Get("/health"), Healthy(), metrics);
  EXPECT_EQ(calls, 1);  // only /metrics pays for a scrape
}

TEST(HttpRoutes, EverythingElseIsNotFound) {
  for (const char* path : {"/", "/healthz", "/health/", "/metrics2", "", "*"}) {
    EXPECT_EQ(Route(Get(path), Healthy(), NoMetrics).status, 404) << path;
  }
  // The query is not part of the path the server hands over.
  EXPECT_EQ(Route(HttpRequest{"GET", "/livez?verbose", "/livez"}, Healthy(), NoMetrics).status,
            200);
}

}  // namespace
}  // namespace sluice
