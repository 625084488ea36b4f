// Issue #5 A5: the SQLite file replaced under the agent. (a) `mv backup.db
// webui.db` while the agent runs: the agent notices the new inode, reopens and
// resynchronises to what the restored file holds. (b) A restored file to which
// the app writes past the sink position before the agent looks: the seq check
// alone would skip the changes in between; the fingerprint of the journal row
// at the sink position catches it.
#include <cstdio>
#include <filesystem>
#include <string>

#include "tests/integration/e2e_support.h"

namespace sluice::e2e {
namespace {

class ReplacedFile : public E2eTest {
 protected:
  void SetUp() override {
    E2eTest::SetUp();
    catch_up_timeout_ = seconds(40);
  }

  static void AddTags(Sqlite& db, const std::string& prefix, int n) {
    db.Exec("BEGIN");
    for (int i = 0; i < n; ++i) {
      db.Exec("INSERT INTO tag (id, name, user_id) VALUES ('" + prefix + std::to_string(i) +
              "', 'tag', 'u1')");
    }
    db.Exec("COMMIT");
  }

  // A restore the way an operator does it: the backup's pages, WAL mode, with
  // no -wal / -shm of the old file left beside it.
  static void TakeBackup(const std::string& db_path, const std::string& backup) {
    {
      Sqlite db(db_path);
      db.Query("VACUUM INTO ?", {SqlValue::Text(backup)});
    }
    Sqlite copy(backup);
    copy.Exec("PRAGMA journal_mode = WAL");
  }

  // An Open WebUI file at `db_path` prepared by init (its config in *config),
  // synced with `before` tags, its backup, `lost` more tags that reach the
  // sink, the agent stopped, the backup moved in place. Returns the status seen
  // just before the stop.
  AgentStatus SyncThenRestore(const std::string& db_path, std::string* config_out, int before,
                              int lost, AgentProcess** agent) {
    CreateOpenWebUiDb(db_path);
    std::string config = WriteConfig(db_path);
    *config_out = config;
    EXPECT_EQ(Init(config).exit_code, 0);
    std::string backup = dir_->file("backup.db");
    *agent = StartAgent(config);
    {
      Sqlite app(db_path);
      AddTags(app, "before-", before);
    }
    EXPECT_TRUE(ExpectCaughtUp(config, *agent));
    TakeBackup(db_path, backup);
    {
      Sqlite app(db_path);
      AddTags(app, "lost-", lost);  // reach the sink, then vanish with the restore
    }
    AgentStatus synced = WaitCaughtUp(config, *agent);
    EXPECT_TRUE(synced.CaughtUp()) << synced.raw << synced.error;
    (*agent)->Signal(SIGTERM);
    EXPECT_EQ((*agent)->WaitExit(seconds(20)), std::optional<int>(0));
    for (const char* suffix : {"-wal", "-shm"}) std::filesystem::remove(db_path + suffix);
    EXPECT_EQ(std::rename(backup.c_str(), db_path.c_str()), 0);
    return synced;
  }
};

TEST_F(ReplacedFile, MovedInPlaceWhileTheAgentRuns) {
  if (skipped_) return;
  std::string db_path = dir_->file("webui.db");
  std::string backup = dir_->file("backup.db");
  CreateOpenWebUiDb(db_path);
  std::string config = WriteConfig(db_path);
  ASSERT_EQ(Init(config).exit_code, 0);
  {
    Sqlite app(db_path);
    AddTags(app, "before-", 20);
  }
  AgentProcess* agent = StartAgent(config);
  ASSERT_TRUE(ExpectCaughtUp(config, agent));
  TakeBackup(db_path, backup);
  {
    Sqlite app(db_path);
    AddTags(app, "after-backup-", 30);
    app.Exec("DELETE FROM tag WHERE id = 'before-3'");
  }
  ASSERT_TRUE(ExpectCaughtUp(config, agent));
  {
    Sqlite app(db_path);
    app.Exec("PRAGMA wal_checkpoint(TRUNCATE)");  // the app's own, before its restore
  }
  ASSERT_EQ(std::rename(backup.c_str(), db_path.c_str()), 0);
  std::filesystem::remove(db_path + "-shm");

  ASSERT_TRUE(
      WaitUntil([&] { return agent->Log().find("replaced") != std::string::npos; }, seconds(20)))
      << "the agent did not notice the new file\n"
      << AgentLogs();
  Sqlite restored(db_path);
  ASSERT_TRUE(ExpectCaughtUp(config, agent));
  ExpectMirrorEqual(restored);
  EXPECT_EQ(
      SinkRowTombstoned(*pg_, deployment_, "tag", {{"id", "after-backup-0"}, {"user_id", "u1"}}),
      std::optional<bool>(true))
      << "a row the restored file does not hold is still live at the sink";
  // The restored file streams on.
  AddTags(restored, "after-restore-", 5);
  ASSERT_TRUE(ExpectCaughtUp(config, agent));
  ExpectMirrorEqual(restored);
  EXPECT_TRUE(agent->Running());
}

TEST_F(ReplacedFile, RestoredFileWrittenPastThePositionIsDetected) {
  if (skipped_) return;
  std::string db_path = dir_->file("webui.db");
  std::string config;
  AgentProcess* agent = nullptr;
  AgentStatus synced = SyncThenRestore(db_path, &config, 10, 10, &agent);
  ASSERT_FALSE(HasFailure());
  Sqlite app(db_path);
  // The app writes more than the sink is ahead: the journal's seq passes the
  // sink position, so "journal behind the position" no longer shows the restore.
  AddTags(app, "new-", 25);
  ASSERT_GT(app.ScalarInt("SELECT seq FROM sqlite_sequence WHERE name = '_sluice_journal'"),
            synced.sink_position);

  agent->Start();
  ASSERT_TRUE(ExpectCaughtUp(config, agent));
  ExpectMirrorEqual(app);
  EXPECT_EQ(SinkRowTombstoned(*pg_, deployment_, "tag", {{"id", "lost-0"}, {"user_id", "u1"}}),
            std::optional<bool>(true));
  EXPECT_NE(agent->Log().find("restored"), std::string::npos) << AgentLogs();
}

// `sluice status` before the agent has run on a restored file: the journal is
// behind the sink position, which status used to show as "backlog 0", exit 0.
TEST_F(ReplacedFile, StatusCallsARestoredFileAnErrorBeforeTheAgentRuns) {
  if (skipped_) return;
  std::string db_path = dir_->file("webui.db");
  std::string config;
  AgentProcess* agent = nullptr;
  SyncThenRestore(db_path, &config, 5, 20, &agent);
  ASSERT_FALSE(HasFailure());

  CommandResult status = RunSluice({"status", "--config", config});
  EXPECT_EQ(status.exit_code, 1) << status.Describe();
  EXPECT_TRUE(ContainsNoCase(status.err, "behind the sink position")) << status.Describe();
  CommandResult json = RunSluice({"status", "--config", config, "--json"});
  EXPECT_EQ(JsonField(json.out, "state"), std::optional<std::string>("error")) << json.Describe();

  agent->Start();
  ASSERT_TRUE(ExpectCaughtUp(config, agent));
  Sqlite app(db_path);
  ExpectMirrorEqual(app);
  EXPECT_EQ(RunSluice({"status", "--config", config}).exit_code, 0);
}

}  // namespace
}  // namespace sluice::e2e
