// PlanReload: what SIGHUP takes over and what it says needs a restart.
#include "agent/config_reload.h"

#include <gtest/gtest.h>

#include "sink/conflict_policy.h"

namespace sluice {
namespace {

Config Base() {
  Result<Config> c = ParseConfig(R"({"deployment":"acme","source":{"path":"/data/webui.db"}})",
                                 [](const char*) -> const char* { return nullptr; });
  EXPECT_TRUE(c.ok());
  return *c;
}

// The source's tables as the agent describes them on SIGHUP.
std::vector<TableShape> Shapes() {
  TableShape chat;
  chat.name = "chat";
  chat.columns = {{.name = "id", .declared_type = "VARCHAR(255)", .key_position = 1},
                  {.name = "title", .declared_type = "TEXT"},
                  {.name = "updated_at", .declared_type = "DATETIME"},
                  {.name = "chat", .declared_type = "JSON"}};
  return {chat};
}

ConflictPolicy Policy(const char* json) {
  Result<ConflictPolicy> p = ParseConflictPolicy(json);
  EXPECT_TRUE(p.ok()) << p.status().ToString();
  return p.ok() ? *p : ConflictPolicy{};
}

TEST(ConfigReload, NothingChanged) {
  ReloadPlan p = PlanReload(Base(), Base(), Shapes());
  EXPECT_TRUE(p.applied.empty());
  EXPECT_TRUE(p.need_restart.empty());
}

TEST(ConfigReload, AgentSettingsAreTakenOver) {
  Config file = Base();
  file.agent.log_level = "debug";
  file.agent.stop_timeout_ms = 5000;
  file.agent.poll_interval_ms = 1000;
  ReloadPlan p = PlanReload(Base(), file, Shapes());
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
  ReloadPlan p = PlanReload(running, file, Shapes());
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
  ReloadPlan p = PlanReload(Base(), file, Shapes());
  EXPECT_EQ(p.need_restart, (std::vector<std::string>{"lease.duration_ms", "http.listen"}));
  EXPECT_EQ(p.next.lease, Base().lease);  // the running values stay
  EXPECT_EQ(p.next.http, Base().http);
  file = Base();
  file.lease.poll_ms = 50;
  file.http.max_connections = 3;
  EXPECT_EQ(PlanReload(Base(), file, Shapes()).need_restart,
            (std::vector<std::string>{"lease.poll_ms", "http.max_connections"}));
}

TEST(ConfigReload, AKeyNotListedStillCounts) {
  Config file = Base();
  file.source.spool_memory_limit = 1;  // not a config key today, but a difference
  ReloadPlan p = PlanReload(Base(), file, Shapes());
  EXPECT_EQ(p.need_restart, (std::vector<std::string>{"source"}));
}

TEST(ConfigReload, AChangedConflictPolicyThatFitsIsTakenOver) {
  Config file = Base();
  file.sink.conflicts = Policy(
      R"({"default_compare_field":"updated_at","table_strategies":{"chat":{"strategy":"merge",)"
      R"("merge_rules":{"chat":"union","title":"newest_wins"}}}})");
  ReloadPlan p = PlanReload(Base(), file, Shapes());
  EXPECT_TRUE(p.conflicts_changed);
  EXPECT_EQ(p.next.sink.conflicts, file.sink.conflicts);
  EXPECT_EQ(p.applied, std::vector<std::string>{"conflicts: policy reloaded"});
  EXPECT_TRUE(p.need_restart.empty());  // not "sink": the policy is not a restart key
  EXPECT_TRUE(p.refused.empty());
  // The same policy again: nothing to do.
  ReloadPlan again = PlanReload(p.next, file, Shapes());
  EXPECT_FALSE(again.conflicts_changed);
  EXPECT_TRUE(again.applied.empty());
}

TEST(ConfigReload, ABadConflictPolicyKeepsTheRunningOne) {
  Config running = Base();
  running.sink.conflicts = Policy(R"({"table_strategies":{"chat":{"strategy":"target_wins"}}})");
  Config file = Base();
  file.agent.log_level = "debug";
  file.sink.conflicts = Policy(
      R"({"table_strategies":{"chat":{"strategy":"merge","merge_rules":{"messages":"append"}}}})");
  ReloadPlan p = PlanReload(running, file, Shapes());
  EXPECT_FALSE(p.conflicts_changed);
  EXPECT_EQ(p.next.sink.conflicts, running.sink.conflicts);
  EXPECT_EQ(p.next.agent.log_level, "debug");  // the rest is still taken over
  EXPECT_EQ(p.applied, std::vector<std::string>{"agent.log_level: info -> debug"});
  ASSERT_EQ(p.refused.size(), 1u);
  EXPECT_EQ(p.refused[0],
            "conflicts: table_strategies.chat.merge_rules.messages: table \"chat\" has no column "
            "\"messages\"; keeping the running policy");
  // Tables that could not be described: the policy cannot be checked, so it is not taken.
  p = PlanReload(running, file, Status::Busy("source busy"));
  EXPECT_FALSE(p.conflicts_changed);
  EXPECT_EQ(p.next.sink.conflicts, running.sink.conflicts);
  ASSERT_EQ(p.refused.size(), 1u);
  EXPECT_EQ(p.refused[0],
            "conflicts: the new policy cannot be checked against the source's tables (busy: "
            "source busy); keeping the running policy");
}

}  // namespace
}  // namespace sluice
