// The mirror registry (sync_metadata.mirror_tables) only speaks for tables the
// source still follows: a table dropped in SQLite keeps its registry row (the
// sync role cannot delete), and once its leftover mirror is dropped at the
// sink too, nothing is "read whole again" and nothing is warned per batch
// (at most once per start, before the agent knows its tables).
#include <string>

#include "tests/integration/e2e_support.h"

namespace sluice::e2e {
namespace {

class MirrorRegistry : public E2eTest {};

size_t Count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t p = text.find(what); p != std::string::npos; p = text.find(what, p + 1)) ++n;
  return n;
}

TEST_F(MirrorRegistry, ARetiredMirrorDroppedAtTheSinkIsLeftAlone) {
  if (skipped_) return;
  std::string db_path = dir_->file("app.db");
  Sqlite app(db_path);
  app.Exec("CREATE TABLE keep (id INTEGER PRIMARY KEY, v TEXT)");
  app.Exec("CREATE TABLE gone (id INTEGER PRIMARY KEY, v TEXT)");
  app.Exec("INSERT INTO keep VALUES (1, 'a'); INSERT INTO gone VALUES (1, 'b')");
  std::string config = WriteConfig(db_path);
  ASSERT_EQ(Init(config).exit_code, 0);
  AgentProcess* agent = StartAgent(config);
  ASSERT_TRUE(ExpectCaughtUp(config, agent));

  app.Exec("DROP TABLE gone");
  app.Exec("INSERT INTO keep VALUES (2, 'c')");
  ASSERT_TRUE(ExpectCaughtUp(config, agent));
  ASSERT_TRUE(
      WaitUntil([&] { return agent->Log().find("was dropped") != std::string::npos; }, seconds(20)))
      << AgentLogs();
  // The operator cleans up the leftover mirror; the app goes on writing.
  pg_->Query("DROP TABLE " + PgTable(deployment_, "gone"));
  // The case under test: a registry row left for a mirror that is no more
  // (without it the checks below would pass whatever the agent does).
  ASSERT_EQ(pg_->ScalarInt("SELECT count(*) FROM sync_metadata.mirror_tables "
                           "WHERE deployment = $1 AND table_name = 'gone'",
                           {deployment_}),
            1);
  ASSERT_FALSE(pg_->TableExists(deployment_, "gone"));
  size_t before = Count(agent->Log(), "reading it whole again");
  for (int i = 3; i < 13; ++i) {
    app.Exec("INSERT INTO keep VALUES (" + std::to_string(i) + ", 'x')");
    ASSERT_TRUE(ExpectCaughtUp(config, agent));
  }
  EXPECT_EQ(Count(agent->Log(), "reading it whole again"), before)
      << "a mirror of a table the source no longer has is reported as lost\n"
      << AgentLogs();
  ExpectMirrorEqual(app);
  // After a restart the check at connect (before the agent knows its tables)
  // may say it once; batches do not repeat it.
  agent->KillHard();
  agent->Start();
  for (int i = 20; i < 25; ++i) {
    app.Exec("INSERT INTO keep VALUES (" + std::to_string(i) + ", 'y')");
    ASSERT_TRUE(ExpectCaughtUp(config, agent));
  }
  EXPECT_LE(Count(agent->Log(), "reading it whole again"), before + 1) << AgentLogs();
  ExpectMirrorEqual(app);
}

}  // namespace
}  // namespace sluice::e2e
