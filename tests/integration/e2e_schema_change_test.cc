// Issue test 6: schema changes while the agent runs: ADD COLUMN, a new table,
// and a 12-step table rebuild that silently drops sluice's triggers.
#include <string>

#include "tests/integration/e2e_support.h"

namespace sluice::e2e {
namespace {

class SchemaChange : public E2eTest {
 protected:
  bool TriggersPresent(Sqlite& db, const std::string& table) {
    return db.ScalarInt(
               "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ? AND "
               "name IN (?, ?, ?)",
               {SqlValue::Text(table), SqlValue::Text("_sluice_" + table + "_ai"),
                SqlValue::Text("_sluice_" + table + "_au"),
                SqlValue::Text("_sluice_" + table + "_ad")}) == 3;
  }
};

TEST_F(SchemaChange, AddColumnNewTableAndTableRebuild) {
  if (skipped_) return;
  std::string db_path = dir_->file("webui.db");
  CreateOpenWebUiDb(db_path);
  Sqlite app(db_path);
  app.Exec("BEGIN");
  for (int i = 1; i <= 10; ++i) {
    std::string n = std::to_string(i);
    app.Exec(
        "INSERT INTO chat (id, user_id, title, archived, created_at, updated_at, chat, meta) "
        "VALUES ('c" +
        n + "', 'u1', 'Chat " + n + "', 0, 1730000000, 1730000000, '{\"n\": " + n +
        "}', '{}');"
        "INSERT INTO note (id, user_id, title, data, meta, access_control, created_at, updated_at) "
        "VALUES ('n" +
        n + "', 'u1', 'Note " + n + "', '{\"content\": \"text " + n +
        "\"}', NULL, NULL, 1730000000000000000, 1730000000000000000);");
  }
  app.Exec("COMMIT");
  std::string config = WriteConfig(db_path);
  ASSERT_EQ(Init(config).exit_code, 0);
  AgentProcess* agent = StartAgent(config);
  ASSERT_TRUE(ExpectCaughtUp(config, agent));
  ExpectMirrorEqual(app);

  // 1. ALTER TABLE ADD COLUMN: the column arrives at the sink with its values.
  app.Exec(
      "ALTER TABLE chat ADD COLUMN extra TEXT;"
      "UPDATE chat SET extra = 'x-' || id WHERE id IN ('c1', 'c2');"
      "INSERT INTO chat (id, user_id, title, archived, created_at, updated_at, chat, meta, extra) "
      "VALUES ('c11', 'u1', 'With extra', 0, 1730000001, 1730000001, '{}', '{}', 'brand new ✓');");
  ASSERT_TRUE(ExpectCaughtUp(config, agent));
  EXPECT_NE(SinkColumnType(*pg_, deployment_, "chat", "extra"), "")
      << "column chat.extra not added at the sink";
  ExpectMirrorEqual(app, {.tables = {"chat"}, .is_parked = nullptr});

  // 2. A new table: tracked (triggers) and synced, then streamed.
  app.Exec(
      "CREATE TABLE brand_new (id INTEGER PRIMARY KEY, v TEXT, n REAL, j JSON);"
      "INSERT INTO brand_new VALUES (1, 'one', 1.5, '{\"a\": 1}'), (2, 'two', -2.25, '[]'), "
      "(3, 'three', 1e300, NULL);");
  ASSERT_TRUE(WaitUntil([&] { return TriggersPresent(app, "brand_new"); }, seconds(30)))
      << "the new table got no capture triggers";
  ASSERT_TRUE(ExpectCaughtUp(config, agent));
  ASSERT_TRUE(WaitUntil([&] { return pg_->TableExists(deployment_, "brand_new"); }, seconds(30)));
  ExpectMirrorEqual(app, {.tables = {"brand_new"}, .is_parked = nullptr});
  app.Exec(
      "UPDATE brand_new SET v = 'ONE' WHERE id = 1; DELETE FROM brand_new WHERE id = 2;"
      "INSERT INTO brand_new VALUES (4, 'four', 4, '{}');");
  ASSERT_TRUE(ExpectCaughtUp(config, agent));
  ExpectMirrorEqual(app, {.tables = {"brand_new"}, .is_parked = nullptr});
  EXPECT_EQ(SinkRowTombstoned(*pg_, deployment_, "brand_new", {{"id", "2"}}),
            std::optional<bool>(true));

  // 3. The 12-step rebuild (as alembic batch operations do): the triggers on
  //    `note` vanish with DROP TABLE; rows dropped and changed during the
  //    rebuild fire nothing.
  ASSERT_TRUE(TriggersPresent(app, "note"));
  app.Exec("PRAGMA foreign_keys = OFF");
  app.Exec(
      "BEGIN;"
      "CREATE TABLE _alembic_tmp_note (id TEXT NOT NULL, user_id TEXT, title TEXT, data JSON, meta "
      "JSON, "
      "access_control JSON, created_at BIGINT, updated_at BIGINT, pinned BOOLEAN, PRIMARY KEY "
      "(id), UNIQUE (id));"
      "INSERT INTO _alembic_tmp_note (id, user_id, title, data, meta, access_control, created_at, "
      "updated_at, pinned) "
      "SELECT id, user_id, CASE id WHEN 'n5' THEN 'Changed during the rebuild' ELSE title END, "
      "data, meta, "
      "access_control, created_at, updated_at, 0 FROM note WHERE id NOT IN ('n3', 'n4');"
      "DROP TABLE note;"
      "ALTER TABLE _alembic_tmp_note RENAME TO note;"
      "COMMIT;");
  ASSERT_FALSE(TriggersPresent(app, "note"));
  ASSERT_TRUE(WaitUntil([&] { return TriggersPresent(app, "note"); }, seconds(30)))
      << "the agent did not restore the triggers of the rebuilt table";
  // Writes after the triggers are back are captured again.
  app.Exec(
      "INSERT INTO note (id, user_id, title, created_at, updated_at, pinned) VALUES "
      "('n11', 'u1', 'After rebuild', 1, 2, 1);"
      "UPDATE note SET title = 'Edited after rebuild' WHERE id = 'n1';"
      "DELETE FROM note WHERE id = 'n2';");
  ASSERT_TRUE(ExpectCaughtUp(config, agent));
  ExpectMirrorEqual(app);
  for (const char* id : {"n2", "n3", "n4"}) {
    EXPECT_EQ(SinkRowTombstoned(*pg_, deployment_, "note", {{"id", id}}), std::optional<bool>(true))
        << "note " << id << " was deleted (during or after the rebuild) but is not a tombstone";
  }
  EXPECT_TRUE(agent->Running());
}

}  // namespace
}  // namespace sluice::e2e
