// Issue #5 A1 and A6: the decision "this table must be read whole" survives
// until the sink commit that covers it (a table tracked by a later `init`, a
// table created while the agent runs and a SIGKILL exactly after its triggers
// commit), and `sluice resync` re-binds a deployment after `uninstall`.
#include <cstdlib>
#include <string>

#include "tests/integration/e2e_support.h"

namespace sluice::e2e {
namespace {

class DurableResync : public E2eTest {
 protected:
  void SetUp() override {
    E2eTest::SetUp();
    catch_up_timeout_ = seconds(30);
  }

  static void AddNotes(Sqlite& db, int from, int to) {
    db.Exec("BEGIN");
    for (int i = from; i <= to; ++i) {
      std::string n = std::to_string(i);
      db.Exec("INSERT INTO note (id, user_id, title, data, created_at, updated_at) VALUES ('n" + n +
              "', 'u1', 'Note " + n + "', '{\"n\": " + n + "}', 1730000000000000000, 1)");
    }
    db.Exec("COMMIT");
  }

  static void AddChats(Sqlite& db, int from, int to) {
    db.Exec("BEGIN");
    for (int i = from; i <= to; ++i) {
      std::string n = std::to_string(i);
      db.Exec(
          "INSERT INTO chat (id, user_id, title, archived, created_at, updated_at, chat, meta) "
          "VALUES ('c" +
          n + "', 'u1', 'Chat " + n + "', 0, 1730000000, 1730000000, '{}', '{}')");
    }
    db.Exec("COMMIT");
  }

  int64_t SinkCount(const std::string& table) {
    return pg_->ScalarInt("SELECT count(*) FROM " + PgTable(deployment_, table) +
                          " WHERE _sluice_deleted_at IS NULL");
  }
};

// A1: include ["chat"], init, run; then include ["chat", "note"], init again,
// run: the rows `note` held before the second init arrive too.
TEST_F(DurableResync, TableTrackedByALaterInitGetsItsExistingRows) {
  if (skipped_) return;
  std::string db_path = dir_->file("webui.db");
  CreateOpenWebUiDb(db_path);
  Sqlite app(db_path);
  AddChats(app, 1, 5);
  AddNotes(app, 1, 7);
  std::string config = WriteConfig(db_path, "", [](AgentConfig& c) { c.include = {"chat"}; });
  ASSERT_EQ(Init(config).exit_code, 0);
  AgentProcess* agent = StartAgent(config);
  ASSERT_TRUE(ExpectCaughtUp(config, agent));
  EXPECT_EQ(SinkCount("chat"), 5);
  agent->Signal(SIGTERM);
  ASSERT_EQ(agent->WaitExit(seconds(30)), std::optional<int>(0));

  config = WriteConfig(db_path, "", [](AgentConfig& c) { c.include = {"chat", "note"}; });
  ASSERT_EQ(Init(config).exit_code, 0);
  agent->Start();
  ASSERT_TRUE(ExpectCaughtUp(config, agent));
  // The position does not move (no journal row): caught up at once, before
  // the full read the mark asks for has committed.
  EXPECT_TRUE(WaitUntil([&] { return SinkCount("note") == 7; }, seconds(20))) << AgentLogs();
  ExpectMirrorEqual(app, {.tables = {"chat", "note"}, .is_parked = nullptr});
}

// A1: a table created (with rows) while the agent runs; the agent is killed
// (SIGKILL, by a fault-injection point) right after the SQLite commit that
// installs its triggers, before any sink commit. After a restart its rows arrive.
TEST_F(DurableResync, KillRightAfterTrackingANewTableLosesNothing) {
  if (skipped_) return;
  std::string db_path = dir_->file("webui.db");
  CreateOpenWebUiDb(db_path);
  Sqlite app(db_path);
  AddChats(app, 1, 3);
  std::string config = WriteConfig(db_path);
  ASSERT_EQ(Init(config).exit_code, 0);
  ::setenv("SLUICE_FAULT", "after-track-commit", 1);
  AgentProcess* agent = StartAgent(config);
  ::unsetenv("SLUICE_FAULT");
  ASSERT_TRUE(ExpectCaughtUp(config, agent));

  app.Exec(
      "BEGIN; CREATE TABLE late (id INTEGER PRIMARY KEY, v TEXT);"
      "INSERT INTO late VALUES (1, 'one'), (2, 'two'), (3, 'three'); COMMIT;");
  std::optional<int> code = agent->WaitExit(seconds(30));
  ASSERT_EQ(code, std::optional<int>(128 + SIGKILL))
      << "the fault-injection point was not reached\n"
      << AgentLogs();
  ASSERT_EQ(app.ScalarInt("SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND "
                          "tbl_name = 'late'"),
            3)
      << "the agent died before it tracked the table";

  agent->Start();
  ASSERT_TRUE(ExpectCaughtUp(config, agent));
  ASSERT_TRUE(WaitUntil([&] { return pg_->TableExists(deployment_, "late"); }, seconds(20)))
      << AgentLogs();
  ASSERT_TRUE(WaitUntil([&] { return SinkCount("late") == 3; }, seconds(20)))
      << "rows of a table tracked just before a SIGKILL never arrived\n"
      << AgentLogs();
  ExpectMirrorEqual(app);
}

// A6: uninstall, app writes, init: init refuses with advice; `sluice resync`
// re-binds the deployment to this file and resynchronises every table; status
// shows a mismatch as an error meanwhile.
TEST_F(DurableResync, ResyncAfterUninstall) {
  if (skipped_) return;
  std::string db_path = dir_->file("webui.db");
  CreateOpenWebUiDb(db_path);
  Sqlite app(db_path);
  AddChats(app, 1, 4);
  std::string config = WriteConfig(db_path);
  ASSERT_EQ(Init(config).exit_code, 0);
  AgentProcess* agent = StartAgent(config);
  ASSERT_TRUE(ExpectCaughtUp(config, agent));
  agent->Signal(SIGTERM);
  ASSERT_EQ(agent->WaitExit(seconds(30)), std::optional<int>(0));

  ASSERT_EQ(RunSluice({"uninstall", "--config", config}).exit_code, 0);
  app.Exec("DELETE FROM chat WHERE id = 'c1'; UPDATE chat SET title = 'changed' WHERE id = 'c2'");
  AddChats(app, 5, 6);

  std::string before = app.ScalarText(
      "SELECT group_concat(name) FROM (SELECT name FROM sqlite_master ORDER BY name)");
  CommandResult init = RunSluice({"init", "--config", config});
  EXPECT_NE(init.exit_code, 0) << init.Describe();
  EXPECT_NE(init.err.find("sluice resync"), std::string::npos) << init.Describe();
  EXPECT_EQ(app.ScalarText(
                "SELECT group_concat(name) FROM (SELECT name FROM sqlite_master ORDER BY name)"),
            before)
      << "a refused init changed the file";

  CommandResult status = RunSluice({"status", "--config", config});
  EXPECT_NE(status.exit_code, 0) << status.Describe();
  EXPECT_NE((status.out + status.err).find("sluice resync"), std::string::npos)
      << status.Describe();

  CommandResult run = RunSluice({"run", "--config", config}, seconds(30));
  EXPECT_EQ(run.exit_code, 2) << run.Describe();  // usage: the file is not prepared
  EXPECT_NE(run.err.find("sluice resync"), std::string::npos) << run.Describe();

  CommandResult resync = RunSluice({"resync", "--config", config});
  ASSERT_EQ(resync.exit_code, 0) << resync.Describe();
  agent->Start();
  ASSERT_TRUE(ExpectCaughtUp(config, agent));
  ExpectMirrorEqual(app, {.tables = {"chat"}, .is_parked = nullptr});
  EXPECT_EQ(SinkRowTombstoned(*pg_, deployment_, "chat", {{"id", "c1"}}),
            std::optional<bool>(true));

  // One table: its mirror is read whole again (a row changed at the sink by
  // hand comes back to the source's value).
  pg_->Query("UPDATE " + PgTable(deployment_, "chat") + " SET title = 'vandal' WHERE id = 'c3'");
  CommandResult one = RunSluice({"resync", "--config", config, "--table", "chat"});
  ASSERT_EQ(one.exit_code, 0) << one.Describe();
  ASSERT_TRUE(WaitUntil(
      [&] {
        return pg_->Scalar("SELECT title FROM " + PgTable(deployment_, "chat") +
                           " WHERE id = 'c3'") == std::optional<std::string>("Chat 3");
      },
      seconds(20)))
      << AgentLogs();
  CommandResult bad = RunSluice({"resync", "--config", config, "--table", "no_such_table"});
  EXPECT_NE(bad.exit_code, 0) << bad.Describe();
}

// `resync --table T` says why T cannot be marked: gone from the file (exit 1),
// there but not tracked yet (exit 1: the file's state, the next schema check
// fixes it), or left out by the filter (exit 2: the config and the command
// disagree). A refused request marks no table, not even the valid ones.
TEST_F(DurableResync, ResyncTableSaysWhyATableCannotBeMarked) {
  if (skipped_) return;
  std::string db_path = dir_->file("webui.db");
  CreateOpenWebUiDb(db_path);
  std::string config = WriteConfig(db_path, "", [](AgentConfig& c) { c.exclude = {"memory"}; });
  ASSERT_EQ(Init(config).exit_code, 0);
  Sqlite app(db_path);
  app.Exec("DROP TABLE tag; ALTER TABLE note RENAME TO notebook");
  const std::string kMarks =
      "SELECT coalesce(group_concat(name || ':' || token), '') FROM (SELECT * FROM "
      "_sluice_full_reads ORDER BY name)";
  const std::string marks_before = app.ScalarText(kMarks);

  struct Case {
    std::string table;
    int exit_code;
    std::string says;
  };
  const Case cases[] = {
      {"tag", 1, "table \"tag\" was dropped from the source file " + db_path},
      {"note", 1, "table \"note\" was dropped from the source file"},
      {"notebook", 1,
       "table \"notebook\" exists in " + db_path +
           " but is not tracked yet (the agent or `sluice init` tracks it at the next schema "
           "check)"},
      {"memory", 2,
       "table \"memory\" of " + db_path + " is left out by source.include / source.exclude"},
      {"_sluice_journal", 2, "table \"_sluice_journal\" is internal to SQLite or sluice"},
  };
  for (const Case& c : cases) {
    CommandResult r =
        RunSluice({"resync", "--config", config, "--table", "chat", "--table", c.table});
    EXPECT_EQ(r.exit_code, c.exit_code) << r.Describe();
    EXPECT_NE(r.err.find(c.says), std::string::npos) << r.Describe();
    EXPECT_EQ(r.err.find("(see source.include"), std::string::npos) << r.Describe();
  }
  EXPECT_EQ(app.ScalarText(kMarks), marks_before) << "a refused request marked a table";
}

}  // namespace
}  // namespace sluice::e2e
