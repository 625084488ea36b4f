// Issue #5 items 4 and 7: what happens to the mirror at the sink behind
// sluice's back is detected and repaired. A mirror schema dropped, a mirror
// table dropped or truncated (while the agent runs, or while it is stopped)
// is read whole again, so every source row is back; a source table dropped
// and created again with another key gets a new mirror, the old one kept
// aside with its rows tombstoned.
#include <string>
#include <vector>

#include "tests/integration/e2e_support.h"

namespace sluice::e2e {
namespace {

class MirrorLoss : public SyncedE2eTest {
 protected:
  using SyncedE2eTest::StartSynced;
  // Three tables of 20 rows each, synced by a running agent.
  void StartSynced() {
    std::string ddl;
    for (const std::string t : {"a", "b", "c"}) {
      ddl += "CREATE TABLE " + t + " (id INTEGER PRIMARY KEY, v TEXT);";
      for (int i = 1; i <= 20; ++i) {
        ddl += "INSERT INTO " + t + " VALUES (" + std::to_string(i) + ", '" + t + " row " +
               std::to_string(i) + "');";
      }
    }
    SyncedE2eTest::StartSynced(ddl);
  }

  void Insert(const std::string& table, int id) {
    app_->Query("INSERT INTO " + table + " VALUES (?, ?)",
                {SqlValue::Int(id), SqlValue::Text(table + " row " + std::to_string(id))});
  }

  // The mirror equals the source again (the resync is one batch after the one
  // that found the loss), and nothing was parked on the way.
  void ExpectRepaired(const std::string& what) {
    SCOPED_TRACE("after " + what);
    ExpectSynced();
    ExpectNothingParked();
  }
};

TEST_F(MirrorLoss, DroppedSchemaDroppedTableAndTruncateWhileRunning) {
  if (skipped_) return;
  StartSynced();
  const std::string schema = QuoteIdent(deployment_);

  pg_->Query("DROP SCHEMA " + schema + " CASCADE");
  Insert("a", 21);
  ExpectRepaired("DROP SCHEMA ... CASCADE");

  // The app writes to another table than the one dropped.
  pg_->Query("DROP TABLE " + schema + ".b");
  Insert("a", 22);
  ExpectRepaired("DROP TABLE of mirror b");

  pg_->Query("TRUNCATE " + schema + ".c");
  Insert("c", 21);
  ExpectRepaired("TRUNCATE of mirror c");
  EXPECT_NE(agent_->Log().find("reading it whole again"), std::string::npos);
  EXPECT_TRUE(agent_->Running());
}

TEST_F(MirrorLoss, TruncateWhileTheAgentIsStopped) {
  if (skipped_) return;
  StartSynced();
  agent_->KillHard();
  pg_->Query("TRUNCATE " + QuoteIdent(deployment_) + ".b");
  // No app write: the agent finds the loss by itself when it starts.
  agent_->Start();
  ExpectRepaired("TRUNCATE while stopped");
  // Killed as soon as the loss is seen (the repair may or may not have
  // committed): the sink's mismatch is the record, so the next start repairs
  // whatever is still missing.
  agent_->KillHard();
  pg_->Query("TRUNCATE " + QuoteIdent(deployment_) + ".a, " + QuoteIdent(deployment_) + ".c");
  agent_->Start();
  ASSERT_TRUE(
      WaitUntil([&] { return agent_->Log().find("reading it whole again") != std::string::npos; },
                seconds(30)));
  agent_->KillHard();
  agent_->Start();
  ExpectRepaired("TRUNCATE, kill, restart");
}

TEST_F(MirrorLoss, TableRecreatedWithAnotherKeyGetsANewMirror) {
  if (skipped_) return;
  StartSynced(
      "CREATE TABLE t (id INTEGER PRIMARY KEY, b TEXT);"
      "INSERT INTO t VALUES (1, 'one'), (2, 'two'), (3, 'three'), (4, 'four'), (5, 'five');");
  int64_t old_relid =
      pg_->ScalarInt("SELECT to_regclass($1)::oid::bigint", {PgTable(deployment_, "t")});

  // The same ids again, under a new key: with the old mirror's key each would collide.
  app_->Exec(
      "DROP TABLE t;"
      "CREATE TABLE t (id INTEGER, b TEXT PRIMARY KEY);"
      "INSERT INTO t VALUES (1, 'uno'), (2, 'dos'), (3, 'tres'), (4, 'cuatro'), (5, 'cinco'), "
      "(5, 'cinco bis');");
  ExpectRepaired("DROP TABLE t; CREATE TABLE t with another key");
  EXPECT_EQ(SinkKeyColumns(*pg_, deployment_, "t"), std::vector<std::string>{"b"});

  // The old mirror is kept aside, every row a tombstone.
  std::string aside = "t__old_" + std::to_string(old_relid);
  ASSERT_TRUE(pg_->TableExists(deployment_, aside)) << "the old mirror is not kept as " << aside;
  EXPECT_EQ(pg_->ScalarInt("SELECT count(*) FROM " + PgTable(deployment_, aside) +
                           " WHERE _sluice_deleted_at IS NOT NULL AND b IN "
                           "('one', 'two', 'three', 'four', 'five')"),
            5);
  EXPECT_EQ(pg_->ScalarInt("SELECT count(*) FROM " + PgTable(deployment_, aside)), 5);
  EXPECT_NE(agent_->Log().find("has another key"), std::string::npos);

  // And it keeps streaming under the new key.
  app_->Exec("UPDATE t SET id = 50 WHERE b = 'uno'; DELETE FROM t WHERE b = 'dos';");
  ExpectRepaired("changes under the new key");
  EXPECT_EQ(SinkRowTombstoned(*pg_, deployment_, "t", {{"b", "dos"}}), std::optional<bool>(true));
}

}  // namespace
}  // namespace sluice::e2e
