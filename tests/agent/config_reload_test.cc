// PlanReload: what SIGHUP takes over and what it says needs a restart.
#include "agent/config_reload.h"

#include <gtest/gtest.h>

namespace sluice {
namespace {

Config Base() {
  Result<Config> c = ParseConfig(R"({"deployment":"acme","source":{"path":"/data/webui.db"}})",
                                 [](const char*) -> const char* { return nullptr; });
  EXPECT_TRUE(c.ok());
  return *c;
}

TEST(ConfigReload, NothingChanged) {
  ReloadPlan p = PlanReload(Base(), Base());
  EXPECT_TRUE(p.applied.empty());
  EXPECT_TRUE(p.need_restart.empty());
}

TEST(ConfigReload, AgentSettingsAreTakenOver) {
  Config file = Base();
  file.agent.log_level = "debug";
  file.agent.stop_timeout_ms = 5000;
  file.agent.poll_interval_ms = 1000;
  ReloadPlan p = PlanReload(Base(), file);
  EXPECT_EQ(p.next.agent, file.agent);
  ASSERT_EQ(p.applied.size(), 3u);
  EXPECT_EQ(p.applied[0], "agent.log_level: info -> debug");
  EXPECT_EQ(p.applied[1], "agent.poll_interval_ms: 200 -> 1000");
  EXPECT_EQ(p.applied[2], "agent.stop_timeout_ms: 30000 -> 5000");
  EXPECT_TRUE(p.need_restart.empty());
}

TEST(ConfigReload, OtherKeysNeedARestartAndKeepTheirRunningValue) {
  Config running = Base();
  Config file = Base();
  file.source.busy_timeout_ms = 100;
  file.sink.schema = "other";
  file.sink.chunk_rows = 10;
  file.agent.log_level = "warn";
  ReloadPlan p = PlanReload(running, file);
  EXPECT_EQ(p.next.source, running.source);
  EXPECT_EQ(p.next.sink, running.sink);
  EXPECT_EQ(p.next.agent.log_level, "warn");
  EXPECT_EQ(p.need_restart,
            (std::vector<std::string>{"source.busy_timeout_ms", "sink.schema", "sink.chunk_rows"}));
}

TEST(ConfigReload, LeaseAndHttpChangesNeedARestart) {
  Config file = Base();
  file.lease.duration_ms = 1000;
  file.http.listen = "off";
  ReloadPlan p = PlanReload(Base(), file);
  EXPECT_EQ(p.need_restart, (std::vector<std::string>{"lease.duration_ms", "http.listen"}));
  EXPECT_EQ(p.next.lease, Base().lease);  // the running values stay
  EXPECT_EQ(p.next.http, Base().http);
  file = Base();
  file.lease.poll_ms = 50;
  file.http.max_connections = 3;
  EXPECT_EQ(PlanReload(Base(), file).need_restart,
            (std::vector<std::string>{"lease.poll_ms", "http.max_connections"}));
}

TEST(ConfigReload, AKeyNotListedStillCounts) {
  Config file = Base();
  file.source.spool_memory_limit = 1;  // not a config key today, but a difference
  ReloadPlan p = PlanReload(Base(), file);
  EXPECT_EQ(p.need_restart, (std::vector<std::string>{"source"}));
}

}  // namespace
}  // namespace sluice
