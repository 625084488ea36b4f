// Issue #5 item 8: what the mirror does when the app drops or renames a table
// or a column. Nothing is ever deleted at the sink:
// - DROP TABLE: the mirror's live rows become tombstones, the mirror table
//   stays; a table of that name created later is read whole into it. The
//   decision survives a SIGKILL right after the SQLite commit that records it.
// - ALTER TABLE ... RENAME TO: the mirror is renamed with it (rows, tombstones
//   and registry entry follow), then read whole under its new name.
// - RENAME COLUMN: the mirror column is renamed, old values (tombstoned rows'
//   too) follow; a renamed key column stays the key.
// - DROP COLUMN: the mirror column stays with the values it had; rows written
//   afterwards have NULL there; logged.
#include <csignal>
#include <cstdlib>
#include <string>
#include <vector>

#include "tests/integration/e2e_support.h"

namespace sluice::e2e {
namespace {

class SchemaDropRename : public SyncedE2eTest {
 protected:
  // StartSynced(ddl), then row `id` of `table` deleted and caught up: the
  // mirror holds a tombstone. Returns the mirror's oid (nonzero).
  int64_t StartSyncedWithTombstone(const std::string& ddl, const std::string& table, int id) {
    StartSynced(ddl);
    if (HasFatalFailure()) return 0;
    app_->Exec("DELETE FROM " + QuoteIdent(table) + " WHERE id = " + std::to_string(id));
    EXPECT_TRUE(ExpectCaughtUp(config_, agent_));
    int64_t relid = Relid(table);
    EXPECT_NE(relid, 0);
    return relid;
  }

  // Every row of a mirror as "key:col1:col2...:live|dead" joined with "; ",
  // ordered by `order_by`; NULL shows as "-".
  std::string Dump(const std::string& table, const std::vector<std::string>& columns,
                   const std::string& order_by) {
    std::string sql = "SELECT ";
    for (const std::string& c : columns) sql += "coalesce(" + QuoteIdent(c) + "::text, '-'), ";
    sql += "CASE WHEN _sluice_deleted_at IS NULL THEN 'live' ELSE 'dead' END FROM " +
           PgTable(deployment_, table) + " ORDER BY " + order_by;
    std::string out;
    for (const auto& row : pg_->Query(sql).rows) {
      if (!out.empty()) out += "; ";
      for (size_t i = 0; i < row.size(); ++i) out += (i ? ":" : "") + row[i].value_or("?");
    }
    return out;
  }

  // How many of sluice's three capture triggers named after `table` exist (on any table).
  int64_t Triggers(const std::string& table) {
    return app_->ScalarInt(
        "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name IN (?, ?, ?)",
        {SqlValue::Text("_sluice_" + table + "_ai"), SqlValue::Text("_sluice_" + table + "_au"),
         SqlValue::Text("_sluice_" + table + "_ad")});
  }

  int64_t Relid(const std::string& table) {
    return pg_->ScalarInt("SELECT coalesce(to_regclass($1)::oid::bigint, 0)",
                          {PgTable(deployment_, table)});
  }

  // Names of the mirror's indexes that serve EvictSql, sorted, joined by ",".
  std::string EvictIndexes(const std::string& table) {
    return pg_
        ->Scalar(
            "SELECT coalesce(string_agg(indexname, ',' ORDER BY indexname), '') FROM "
            "pg_indexes WHERE schemaname = $1 AND tablename = $2 AND indexname LIKE "
            "'%sluice_evict'",
            {deployment_, table})
        .value_or("?");
  }

  int64_t RegisteredRelid(const std::string& table) {
    return pg_->ScalarInt(
        "SELECT coalesce((SELECT relid::bigint FROM sync_metadata.mirror_tables WHERE "
        "deployment = $1 AND table_name = $2), 0)",
        {deployment_, table});
  }
};

// DROP TABLE while the agent runs; the agent is SIGKILLed (fault point) right
// after the SQLite commit that untracks the table, before any sink commit. After
// the restart every live row of the mirror is a tombstone; the mirror stays.
// The table created again is tracked and read whole into the same mirror.
TEST_F(SchemaDropRename, DroppedTableIsTombstonedAndMayComeBack) {
  if (skipped_) return;
  StartSynced(
      "CREATE TABLE keep (id INTEGER PRIMARY KEY, v TEXT);"
      "CREATE TABLE gone (id INTEGER PRIMARY KEY, v TEXT);"
      "INSERT INTO keep VALUES (1, 'k1');"
      "INSERT INTO gone VALUES (1, 'one'), (2, 'two'), (3, 'three'), (4, 'four');",
      /*fault_after_track=*/true);
  app_->Exec("DELETE FROM gone WHERE id = 4");
  ASSERT_TRUE(ExpectCaughtUp(config_, agent_));
  ASSERT_EQ(Dump("gone", {"id", "v"}, "id"), "1:one:live; 2:two:live; 3:three:live; 4:four:dead");

  app_->Exec(
      "BEGIN; UPDATE gone SET v = 'changed just before the drop' WHERE id = 1; DROP TABLE gone; "
      "COMMIT;");
  std::optional<int> code = agent_->WaitExit(seconds(30));
  ASSERT_EQ(code, std::optional<int>(128 + SIGKILL))
      << "the fault-injection point was not reached\n"
      << AgentLogs();
  EXPECT_EQ(app_->ScalarInt("SELECT count(*) FROM _sluice_tables WHERE name = 'gone'"), 0)
      << "the agent died before it untracked the table";
  agent_->Start();
  app_->Exec("INSERT INTO keep VALUES (2, 'k2')");
  ASSERT_TRUE(ExpectCaughtUp(config_, agent_));
  ASSERT_TRUE(WaitUntil(
      [&] {
        return pg_->ScalarInt("SELECT count(*) FROM " + PgTable(deployment_, "gone") +
                              " WHERE _sluice_deleted_at IS NULL") == 0;
      },
      seconds(20)))
      << "live rows of a dropped table stay live at the sink: " << Dump("gone", {"id", "v"}, "id")
      << "\n"
      << AgentLogs();
  // Old values kept (the update just before the drop never reached the sink,
  // the row is gone now), every row a tombstone, the table still there.
  EXPECT_EQ(Dump("gone", {"id", "v"}, "id"), "1:one:dead; 2:two:dead; 3:three:dead; 4:four:dead");
  EXPECT_NE(agent_->Log().find("table \"gone\" was dropped"), std::string::npos) << AgentLogs();
  ExpectMirrorEqual(*app_);

  // Created again (same key): tracked, read whole into the existing mirror.
  app_->Exec(
      "CREATE TABLE gone (id INTEGER PRIMARY KEY, v TEXT);"
      "INSERT INTO gone VALUES (2, 'back'), (7, 'new');");
  ASSERT_TRUE(WaitUntil([&] { return Triggers("gone") == 3; }, seconds(20)));
  ExpectSynced();
  EXPECT_EQ(Dump("gone", {"id", "v"}, "id"),
            "1:one:dead; 2:back:live; 3:three:dead; 4:four:dead; 7:new:live");
  app_->Exec("DELETE FROM gone WHERE id = 7");
  ASSERT_TRUE(ExpectCaughtUp(config_, agent_));
  EXPECT_EQ(Dump("gone", {"id", "v"}, "id"),
            "1:one:dead; 2:back:live; 3:three:dead; 4:four:dead; 7:new:dead");
  ExpectNothingParked();
}

// ALTER TABLE ... RENAME TO while the agent runs, and again while it is
// stopped (with an init in between): the mirror table follows (same oid, its tombstones kept), the
// triggers are reinstalled under the new name, nothing stays live under the
// old name.
TEST_F(SchemaDropRename, RenamedTableMirrorFollows) {
  if (skipped_) return;
  const int64_t relid = StartSyncedWithTombstone(
      "CREATE TABLE old_name (id INTEGER PRIMARY KEY, v TEXT UNIQUE);"
      "INSERT INTO old_name VALUES (1, 'one'), (2, 'two'), (3, 'three'), (4, 'four');",
      "old_name", 4);
  if (HasFailure()) return;

  app_->Exec("ALTER TABLE old_name RENAME TO new_name");
  // Written before the agent reinstalls the triggers: caught by the full read.
  app_->Exec(
      "UPDATE new_name SET v = 'uno' WHERE id = 1; INSERT INTO new_name VALUES (5, 'five');");
  ASSERT_TRUE(WaitUntil([&] { return Triggers("new_name") == 3; }, seconds(20)));
  EXPECT_EQ(Triggers("old_name"), 0);
  app_->Exec("DELETE FROM new_name WHERE id = 2");
  ExpectSynced();
  EXPECT_EQ(Relid("old_name"), 0) << "the old mirror stays under its old name: "
                                  << Dump("old_name", {"id", "v"}, "id");
  EXPECT_EQ(Relid("new_name"), relid) << "a new mirror was created instead of renaming the old one";
  EXPECT_EQ(RegisteredRelid("new_name"), relid);
  EXPECT_EQ(RegisteredRelid("old_name"), 0);
  EXPECT_EQ(Dump("new_name", {"id", "v"}, "id"),
            "1:uno:live; 2:two:dead; 3:three:live; 4:four:dead; 5:five:live");
  // The index sluice named after the table moved with it (none was added).
  EXPECT_EQ(EvictIndexes("new_name").rfind("new_name_v_", 0), 0u) << EvictIndexes("new_name");
  EXPECT_EQ(EvictIndexes("new_name").find(','), std::string::npos) << EvictIndexes("new_name");
  EXPECT_NE(agent_->Log().find("renamed to \"new_name\""), std::string::npos) << AgentLogs();

  // Renamed while no agent runs, and `sluice init` run before it starts:
  // init records the rename and leaves the mirror to the agent, which follows.
  agent_->Signal(SIGTERM);
  ASSERT_EQ(agent_->WaitExit(seconds(30)), std::optional<int>(0));
  app_->Exec("ALTER TABLE new_name RENAME TO third; INSERT INTO third VALUES (6, 'six');");
  CommandResult init = Init(config_);
  ASSERT_EQ(init.exit_code, 0);
  EXPECT_NE(init.out.find("third was renamed"), std::string::npos) << init.Describe();
  EXPECT_EQ(Relid("third"), 0) << "init created a mirror for the renamed table";
  agent_->Start();
  ExpectSynced();
  EXPECT_EQ(Relid("new_name"), 0);
  EXPECT_EQ(Relid("third"), relid);
  EXPECT_EQ(Dump("third", {"id", "v"}, "id"),
            "1:uno:live; 2:two:dead; 3:three:live; 4:four:dead; 5:five:live; 6:six:live");
  ExpectNothingParked();
}

// The rename is recorded with the full-read mark, in the SQLite transaction
// that retracks the table: a SIGKILL right after it (fault point) does not
// keep the mirror from following. A table renamed to a name whose mirror
// exists (its table was dropped) never clobbers that mirror: the old mirror's
// rows are tombstoned and the new name's mirror is read whole.
TEST_F(SchemaDropRename, RenameSurvivesAKillAndNeverClobbersAnotherMirror) {
  if (skipped_) return;
  StartSynced(
      "CREATE TABLE a (id INTEGER PRIMARY KEY, v TEXT);"
      "CREATE TABLE b (id INTEGER PRIMARY KEY, v TEXT);"
      "INSERT INTO a VALUES (1, 'a1'), (2, 'a2'); INSERT INTO b VALUES (1, 'b1'), (3, 'b3');",
      /*fault_after_track=*/true);
  app_->Exec("DELETE FROM a WHERE id = 2");
  ASSERT_TRUE(ExpectCaughtUp(config_, agent_));
  const int64_t relid_a = Relid("a"), relid_b = Relid("b");

  app_->Exec("ALTER TABLE a RENAME TO a2");
  ASSERT_EQ(agent_->WaitExit(seconds(30)), std::optional<int>(128 + SIGKILL))
      << "the fault-injection point was not reached\n"
      << AgentLogs();
  agent_->Start();
  ExpectSynced();
  EXPECT_EQ(Relid("a"), 0);
  EXPECT_EQ(Relid("a2"), relid_a) << "the rename was lost with the process";
  EXPECT_EQ(Dump("a2", {"id", "v"}, "id"), "1:a1:live; 2:a2:dead");

  app_->Exec("DROP TABLE b");
  ASSERT_TRUE(ExpectCaughtUp(config_, agent_));
  ASSERT_TRUE(WaitUntil(
      [&] {
        return Dump("b", {"id", "v"}, "id") == "1:b1:dead; 3:b3:dead";
      },
      seconds(20)))
      << Dump("b", {"id", "v"}, "id");
  app_->Exec("ALTER TABLE a2 RENAME TO b");
  ExpectSynced();
  EXPECT_EQ(Relid("b"), relid_b);
  EXPECT_EQ(Relid("a2"), relid_a);
  EXPECT_EQ(Dump("b", {"id", "v"}, "id"), "1:a1:live; 3:b3:dead");
  EXPECT_EQ(Dump("a2", {"id", "v"}, "id"), "1:a1:dead; 2:a2:dead");
  ExpectNothingParked();
}

// RENAME COLUMN of a plain column and of the key column: the mirror column is
// renamed, so its old values (those of tombstoned rows too) follow and no
// stale column stays; the renamed key stays the mirror's key.
TEST_F(SchemaDropRename, RenamedColumnFollows) {
  if (skipped_) return;
  StartSynced(
      "CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT UNIQUE, b INTEGER);"
      "INSERT INTO t VALUES (1, 'a1', 10), (2, 'a2', 20), (3, 'a3', 30), (4, 'a4', 40);");
  app_->Exec("DELETE FROM t WHERE id = 4");
  ASSERT_TRUE(ExpectCaughtUp(config_, agent_));
  const int64_t relid = Relid("t");

  app_->Exec(
      "ALTER TABLE t RENAME COLUMN a TO a_new;"
      "UPDATE t SET a_new = 'changed' WHERE id = 1; INSERT INTO t VALUES (5, 'a5', 50);");
  ExpectSynced();
  EXPECT_EQ(SinkColumnType(*pg_, deployment_, "t", "a"), "")
      << "the old column stays at the sink: " << Dump("t", {"id", "a", "a_new"}, "id");
  EXPECT_EQ(Dump("t", {"id", "a_new", "b"}, "id"),
            "1:changed:10:live; 2:a2:20:live; 3:a3:30:live; 4:a4:40:dead; 5:a5:50:live");
  EXPECT_EQ(EvictIndexes("t").rfind("t_a_new_", 0), 0u) << EvictIndexes("t");
  EXPECT_EQ(EvictIndexes("t").find(','), std::string::npos) << EvictIndexes("t");
  EXPECT_NE(agent_->Log().find("column \"a\" renamed to \"a_new\""), std::string::npos)
      << AgentLogs();

  // The key column.
  app_->Exec("ALTER TABLE t RENAME COLUMN id TO ident; UPDATE t SET b = 21 WHERE ident = 2;");
  ExpectSynced();
  EXPECT_EQ(SinkKeyColumns(*pg_, deployment_, "t"), std::vector<std::string>{"ident"});
  EXPECT_EQ(Relid("t"), relid) << "the mirror was set aside instead of following the rename";
  EXPECT_EQ(SinkColumnType(*pg_, deployment_, "t", "id"), "");
  EXPECT_EQ(Dump("t", {"ident", "a_new", "b"}, "ident"),
            "1:changed:10:live; 2:a2:21:live; 3:a3:30:live; 4:a4:40:dead; 5:a5:50:live");
  app_->Exec("DELETE FROM t WHERE ident = 3");
  ASSERT_TRUE(ExpectCaughtUp(config_, agent_));
  EXPECT_EQ(SinkRowTombstoned(*pg_, deployment_, "t", {{"ident", "3"}}), std::optional<bool>(true));
  ExpectNothingParked();
}

// DROP COLUMN: the mirror column stays and keeps the values it had (as of the
// drop); rows inserted afterwards have NULL there; the drop is logged.
TEST_F(SchemaDropRename, DroppedColumnIsKeptWithItsOldValues) {
  if (skipped_) return;
  StartSynced(
      "CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT, b TEXT);"
      "INSERT INTO t VALUES (1, 'a1', 'b1'), (2, 'a2', 'b2'), (3, 'a3', 'b3');");

  app_->Exec(
      "ALTER TABLE t DROP COLUMN b;"
      "UPDATE t SET a = 'changed' WHERE id = 1; INSERT INTO t VALUES (4, 'a4');"
      "DELETE FROM t WHERE id = 3;");
  ExpectSynced();
  EXPECT_EQ(SinkColumnType(*pg_, deployment_, "t", "b"), "text");
  EXPECT_EQ(Dump("t", {"id", "a", "b"}, "id"),
            "1:changed:b1:live; 2:a2:b2:live; 3:a3:b3:dead; 4:a4:-:live");
  EXPECT_NE(agent_->Log().find("column \"b\" dropped"), std::string::npos) << AgentLogs();
  ExpectNothingParked();
}

// DROP COLUMN a then ADD COLUMN b between two polls (one transaction): the
// column count and b's position are a's, yet it is no rename (two ALTERs moved
// the schema version; the types differ too). The mirror keeps a with its old
// values and gains b; every row stays live. The same with equal types (only
// the schema version tells the two ALTERs from one RENAME COLUMN).
TEST_F(SchemaDropRename, DroppedAndAddedColumnIsNoRename) {
  if (skipped_) return;
  StartSynced(
      "CREATE TABLE t (id INTEGER PRIMARY KEY, x TEXT, a INTEGER);"
      "INSERT INTO t VALUES (1, 'x1', 10), (2, 'x2', 20), (3, 'x3', 30);");
  // `ddl` in one transaction; then `kept` is still a mirror column of type
  // `kept_type`, the mirror's `columns` hold `rows`, and nothing was renamed.
  auto drop_then_add = [&](const std::string& ddl, const std::string& kept,
                           const std::string& kept_type, const std::vector<std::string>& columns,
                           const std::string& rows) {
    app_->Exec("BEGIN; " + ddl + " COMMIT;");
    ExpectSynced();
    EXPECT_EQ(SinkColumnType(*pg_, deployment_, "t", kept), kept_type);
    EXPECT_EQ(Dump("t", columns, "id"), rows);
    EXPECT_EQ(agent_->Log().find("renamed to"), std::string::npos) << AgentLogs();
    ExpectNothingParked();
  };
  drop_then_add(
      "ALTER TABLE t DROP COLUMN a; ALTER TABLE t ADD COLUMN b TEXT; UPDATE t SET b = 'hello ' || "
      "id;",
      "a", "bigint", {"id", "x", "a", "b"},
      "1:x1:10:hello 1:live; 2:x2:20:hello 2:live; 3:x3:30:hello 3:live");
  // b (TEXT, last) dropped, c (TEXT, last) added: same position, same type.
  drop_then_add(
      "ALTER TABLE t DROP COLUMN b; ALTER TABLE t ADD COLUMN c TEXT; UPDATE t SET c = 'c' || id;"
      "INSERT INTO t (id, x, c) VALUES (4, 'x4', 'c4');",
      "b", "text", {"id", "x", "a", "b", "c"},
      "1:x1:10:hello 1:c1:live; 2:x2:20:hello 2:c2:live; 3:x3:30:hello 3:c3:live; "
      "4:x4:-:-:c4:live");
}

// ALTER TABLE t RENAME TO t_old and a new t created in the same transaction:
// the old name is taken again, yet the capture triggers SQLite carried to
// t_old tell the rename. The mirror of t follows to t_old (same oid, rows and
// tombstones kept); the new t gets a new mirror, read whole; nothing parked.
TEST_F(SchemaDropRename, RenamedTableWhoseNameIsReused) {
  if (skipped_) return;
  const int64_t relid = StartSyncedWithTombstone(
      "CREATE TABLE t (id INTEGER PRIMARY KEY, x TEXT);"
      "INSERT INTO t VALUES (1, 'o1'), (2, 'o2'), (3, 'o3');",
      "t", 3);
  if (HasFailure()) return;

  app_->Exec(
      "BEGIN; ALTER TABLE t RENAME TO t_old; CREATE TABLE t (id INTEGER PRIMARY KEY, y TEXT);"
      "INSERT INTO t VALUES (1, 'n1'), (2, 'n2'); COMMIT;");
  ASSERT_TRUE(WaitUntil([&] { return Triggers("t") == 3 && Triggers("t_old") == 3; }, seconds(20)));
  ExpectSynced();
  EXPECT_EQ(Relid("t_old"), relid) << "the old mirror did not follow the rename";
  EXPECT_EQ(RegisteredRelid("t_old"), relid);
  EXPECT_NE(Relid("t"), 0);
  EXPECT_NE(Relid("t"), relid);
  EXPECT_EQ(RegisteredRelid("t"), Relid("t"));
  EXPECT_EQ(Dump("t_old", {"id", "x"}, "id"), "1:o1:live; 2:o2:live; 3:o3:dead");
  EXPECT_EQ(SinkColumnType(*pg_, deployment_, "t", "x"), "");
  EXPECT_EQ(Dump("t", {"id", "y"}, "id"), "1:n1:live; 2:n2:live");
  EXPECT_EQ(agent_->Log().find("column \"x\" renamed"), std::string::npos) << AgentLogs();
  ExpectNothingParked();

  // Both are captured from now on, each into its own mirror.
  app_->Exec("UPDATE t_old SET x = 'o1b' WHERE id = 1; DELETE FROM t WHERE id = 2;");
  ExpectSynced();
  EXPECT_EQ(Dump("t_old", {"id", "x"}, "id"), "1:o1b:live; 2:o2:live; 3:o3:dead");
  EXPECT_EQ(Dump("t", {"id", "y"}, "id"), "1:n1:live; 2:n2:dead");
  ExpectNothingParked();
}

}  // namespace
}  // namespace sluice::e2e
