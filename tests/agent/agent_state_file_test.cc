// The agent's state file (agent/agent_state_file.h): the record survives a
// write and a read, the file is replaced whole, names are safe, and a record
// is stale once the agent stopped, its process is gone, or it is old.
#include "agent/agent_state_file.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "tests/test_support.h"

namespace sluice {
namespace {

AgentStateRecord Sample() {
  AgentStateRecord r;
  r.state = "backoff";
  r.since_ms = 1764600000123;
  r.position = 42;
  r.last_error = "cannot reach PostgreSQL at \"h\":5432\n(refused)";
  r.last_error_at_ms = 1764600001000;
  r.failures = 7;
  r.pid = 1234;
  r.host = "box";
  r.node = "box-a";
  r.role = "standby";
  r.epoch = 12;
  r.http = "127.0.0.1:9444";
  r.updated_at_ms = 1764600002000;
  r.stopped_tables.push_back({"b", "column \"b\".\"_sluice_x\" uses the reserved prefix", 5});
  return r;
}

TEST(AgentStateFile, RoundTrip) {
  testing::TempDir dir;
  std::string path = dir.file("x.state.json");
  Result<std::optional<AgentStateRecord>> none = ReadAgentState(path);
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_FALSE(none->has_value());

  ASSERT_TRUE(WriteAgentState(path, Sample()).ok());
  AgentStateRecord changed = Sample();
  changed.state = "idle";
  changed.failures = 0;
  changed.stopped_tables.clear();
  ASSERT_TRUE(WriteAgentState(path, changed).ok());
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  Result<std::optional<AgentStateRecord>> got = ReadAgentState(path);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ(FormatAgentState(**got), FormatAgentState(changed));

  Result<AgentStateRecord> parsed = ParseAgentState(FormatAgentState(Sample()));
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->last_error, Sample().last_error);
  ASSERT_EQ(parsed->stopped_tables.size(), 1u);
  EXPECT_EQ(parsed->stopped_tables[0].table, "b");
  EXPECT_EQ(parsed->since_ms, 1764600000123);
  EXPECT_EQ(parsed->node, "box-a");
  EXPECT_EQ(parsed->role, "standby");
  EXPECT_EQ(parsed->epoch, 12);
  EXPECT_EQ(parsed->http, "127.0.0.1:9444");
  EXPECT_FALSE(parsed->progress.has_value());
}

// A batch's progress (an initial sync here) survives the file; a file of an
// older agent, without the field, reads as no progress.
TEST(AgentStateFile, ProgressRoundTrip) {
  ApplyProgress a;
  a.tables = {{"chat", true, 5156, 1200, 60000000}, {"user \"x\"", true, 200, 200, 40000}};
  a.rows_total = 5356;
  a.rows_done = 1400;
  a.bytes_done = 60040000;
  AgentStateRecord r = Sample();
  r.progress = MakeSyncProgress(a, /*initial=*/true, 1764600000000, 1764600002000);
  EXPECT_EQ(r.progress->kind, "initial sync");
  EXPECT_EQ(r.progress->tables_total, 2);
  EXPECT_EQ(r.progress->tables_done, 1);
  EXPECT_DOUBLE_EQ(r.progress->rows_per_s, 700);
  EXPECT_NEAR(r.progress->eta_s, (5356.0 - 1400) / 700, 1e-9);
  Result<AgentStateRecord> parsed = ParseAgentState(FormatAgentState(r));
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  ASSERT_TRUE(parsed->progress.has_value());
  EXPECT_EQ(FormatAgentState(*parsed), FormatAgentState(r));
  EXPECT_EQ(parsed->progress->tables.at(1).table, "user \"x\"");
  EXPECT_EQ(parsed->progress->tables.at(0).bytes_done, 60000000);

  // Nothing sent yet: no rate, no time left (null in the JSON).
  ApplyProgress none = a;
  none.rows_done = 0;
  SyncProgress p = MakeSyncProgress(none, false, 1764600000000, 1764600000000);
  EXPECT_EQ(p.kind, "resync");
  EXPECT_LT(p.eta_s, 0);
  EXPECT_NE(SyncProgressJson(p).find("\"eta_s\":null"), std::string::npos) << SyncProgressJson(p);
  std::string old = FormatAgentState(Sample());
  old.erase(old.find(",\"progress\":null"), std::string(",\"progress\":null").size());
  Result<AgentStateRecord> older = ParseAgentState(old);
  ASSERT_TRUE(older.ok()) << older.status().ToString() << "\n" << old;
  EXPECT_FALSE(older->progress.has_value());
  // A progress that does not parse costs the progress, not the record.
  std::string broken = FormatAgentState(r);
  broken.replace(broken.find("\"kind\""), 6, "\"kinx\"");
  Result<AgentStateRecord> kept = ParseAgentState(broken);
  ASSERT_TRUE(kept.ok()) << kept.status().ToString();
  EXPECT_FALSE(kept->progress.has_value());
  EXPECT_EQ(kept->node, Sample().node);
}

TEST(AgentStateFile, GarbageIsCorruption) {
  EXPECT_EQ(ParseAgentState("{\"state\":1}").status().code(), Status::Code::kCorruption);
  EXPECT_EQ(ParseAgentState("not json").status().code(), Status::Code::kCorruption);
}

TEST(AgentStateFile, PathIsBesideTheSourceWithASafeName) {
  EXPECT_EQ(StateFilePath("/data/webui.db", "prod/eu 1", "node:a"),
            "/data/webui.db.sluice-prod_eu_1.node_a.state.json");
}

TEST(AgentStateFile, Staleness) {
  AgentStateRecord r = Sample();
  EXPECT_EQ(StaleReason(r, r.updated_at_ms + 1000, true, 30000), "");
  EXPECT_EQ(StaleReason(r, r.updated_at_ms + 1000, false, 30000), "agent process 1234 is gone");
  EXPECT_EQ(StaleReason(r, r.updated_at_ms + 31000, true, 30000), "not updated for 31 s");
  r.state = "stopped";
  r.exit_code = 1;
  EXPECT_EQ(StaleReason(r, r.updated_at_ms, true, 30000), "the agent stopped (exit 1)");
}

}  // namespace
}  // namespace sluice
