// Issue 5 item 11: sink errors sorted by what to do next. A permanent problem
// in the sink URL (a database that does not exist, an invalid connection
// option) stops `sluice run` at once with a message that names the problem,
// instead of "cannot reach PostgreSQL" and a retry loop that never ends.
#include <string>

#include "tests/integration/e2e_support.h"

namespace sluice::e2e {
namespace {

class SinkErrors : public E2eTest {
 protected:
  // An initialised source and its config with `sink_url` for `sluice run`.
  std::string InitThenConfigFor(const std::string& sink_url) {
    std::string db_path = dir_->file("webui.db");
    CreateOpenWebUiDb(db_path);
    Init(WriteConfig(db_path));
    return WriteConfig(db_path, sink_url, nullptr, "bad-sink.json");
  }

  // `sluice run` must exit non-zero within a few seconds; returns its result.
  CommandResult RunExpectingStop(const std::string& config) {
    CommandResult r = RunSluice({"run", "--config", config}, seconds(20));
    EXPECT_FALSE(r.timed_out) << "sluice run kept retrying\n" << r.Describe();
    EXPECT_NE(r.exit_code, 0) << r.Describe();
    EXPECT_LT(r.seconds, 5.0) << r.Describe();
    return r;
  }
};

TEST_F(SinkErrors, MissingDatabaseStopsRunWithAClearMessage) {
  if (skipped_) return;
  std::string missing = "no_such_db_" + deployment_;
  std::string url = pg_url_ + " dbname=" + missing;
  CommandResult r = RunExpectingStop(InitThenConfigFor(url));
  // The config names a database the server does not have: the config must
  // change, exit 2, as for init and status (a supervisor need not restart it).
  EXPECT_EQ(r.exit_code, 2) << r.Describe();
  EXPECT_TRUE(ContainsNoCase(r.err, "database \"" + missing + "\" does not exist")) << r.Describe();
  EXPECT_FALSE(ContainsNoCase(r.err, "cannot reach PostgreSQL")) << r.Describe();

  // `init` says the same, with the same exit code.
  CommandResult init = RunSluice({"init", "--config", dir_->file("bad-sink.json")}, seconds(20));
  EXPECT_EQ(init.exit_code, 2) << init.Describe();
  EXPECT_TRUE(ContainsNoCase(init.err, "database \"" + missing + "\" does not exist"))
      << init.Describe();
}

TEST_F(SinkErrors, InvalidConnectTimeoutStopsRunWithAClearMessage) {
  if (skipped_) return;
  CommandResult r = RunExpectingStop(InitThenConfigFor(pg_url_ + " connect_timeout=abc"));
  EXPECT_EQ(r.exit_code, 2) << r.Describe();
  EXPECT_TRUE(ContainsNoCase(r.err, "connect_timeout")) << r.Describe();
  EXPECT_TRUE(ContainsNoCase(r.err, "abc")) << r.Describe();
  EXPECT_FALSE(ContainsNoCase(r.err, "cannot reach PostgreSQL")) << r.Describe();
}

TEST_F(SinkErrors, InvalidKeepaliveOptionStopsRun) {
  if (skipped_) return;
  CommandResult r = RunExpectingStop(InitThenConfigFor(pg_url_ + " keepalives_idle=soon"));
  EXPECT_TRUE(ContainsNoCase(r.err, "keepalives_idle")) << r.Describe();
  EXPECT_FALSE(ContainsNoCase(r.err, "cannot reach PostgreSQL")) << r.Describe();
}

// A control plane missing a table the agent needs (as if from before version
// 3): the agent says so, with the advice, at escalating levels, and heals once
// the table is there; it no longer retried a connect on a live connection
// for ever ("Connect called while ready"), which hid the cause.
TEST_F(SinkErrors, ControlPlaneMissingATableIsNamedAndHealsOnceFixed) {
  if (skipped_) return;
  std::string db_path = dir_->file("webui.db");
  CreateOpenWebUiDb(db_path);
  std::string config = WriteConfig(db_path);
  ASSERT_EQ(Init(config).exit_code, 0);
  pg_->Query("ALTER TABLE sync_metadata.mirror_tables RENAME TO mirror_tables_hidden");
  AgentProcess* agent = StartAgent(config);
  bool named = WaitUntil([&] { return agent->Log().find("error [sluice]") != std::string::npos; },
                         seconds(20));
  std::string log = agent->Log();
  pg_->Query("ALTER TABLE sync_metadata.mirror_tables_hidden RENAME TO mirror_tables");
  ASSERT_TRUE(named) << "the failure never reached level error\n" << AgentLogs();
  EXPECT_NE(log.find("sync_metadata.mirror_tables"), std::string::npos) << AgentLogs();
  EXPECT_NE(log.find("run `sluice init`"), std::string::npos) << AgentLogs();
  EXPECT_EQ(log.find("Connect called while ready"), std::string::npos) << AgentLogs();
  Sqlite app(db_path);
  app.Exec("INSERT INTO tag (id, name, user_id) VALUES ('t1', 'healed', 'u1')");
  ASSERT_TRUE(ExpectCaughtUp(config, agent));
  ExpectMirrorEqual(app);
}
// An adopted sink table (created before sluice, holding duplicate keys)
// cannot get its unique key index: retrying cannot help, an operator must
// act (deduplicate it, or exclude the table). `init` and `run` say so alike,
// naming the table, with the same exit code (2, as for any stop that needs
// a change by the operator rather than a restart).
TEST_F(SinkErrors, AdoptedTableWithDuplicateKeysStopsInitAndRunAlike) {
  if (skipped_) return;
  std::string db_path = dir_->file("webui.db");
  CreateOpenWebUiDb(db_path);
  std::string config = WriteConfig(db_path);
  pg_->Query(
      "CREATE SCHEMA " + QuoteIdent(deployment_) + "; CREATE TABLE " + QuoteIdent(deployment_) +
      ".tag (id text, name text, user_id text, meta text); INSERT INTO " + QuoteIdent(deployment_) +
      ".tag VALUES ('t1', 'a', 'u1', NULL), ('t1', 'b', 'u1', NULL)");
  CommandResult init = RunSluice({"init", "--config", config}, seconds(60));
  EXPECT_EQ(init.exit_code, 2) << init.Describe();
  EXPECT_TRUE(ContainsNoCase(init.err, "tag")) << init.Describe();
  EXPECT_TRUE(ContainsNoCase(init.err, "23505")) << init.Describe();
  // The same file prepared without that table, then the table included: run
  // meets the same index build and stops the same way.
  std::string without = WriteConfig(
      db_path, "", [](AgentConfig& c) { c.exclude = {"tag"}; }, "without-tag.json");
  ASSERT_EQ(RunSluice({"init", "--config", without}, seconds(60)).exit_code, 0);
  CommandResult run = RunSluice({"run", "--config", config}, seconds(30));
  EXPECT_FALSE(run.timed_out) << run.Describe();
  EXPECT_EQ(run.exit_code, 2) << run.Describe();
  EXPECT_TRUE(ContainsNoCase(run.err, "23505")) << run.Describe();
}

}  // namespace
}  // namespace sluice::e2e
