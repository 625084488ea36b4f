// Mirror table planning: new tables, adoption of existing ones, overrides, refusals.
#include "sink/mirror_table.h"

#include <gtest/gtest.h>

#include "common/value.h"
#include "sink/pg_sql.h"
#include "tests/sink/sink_test_util.h"

namespace sluice {
namespace {

using testing::Col;

TableShape Chat() {
  TableShape t;
  t.name = "chat";
  t.identity = TableShape::Identity::kUniqueIndex;
  t.columns = {Col("id", "VARCHAR(255)", 1),
               Col("created_at", "DATETIME", 0, Value::Bit(Value::Kind::kInteger)),
               Col("chat", "JSON"), Col("pinned", "BOOLEAN")};
  return t;
}

// A table found at the sink; `detecting`: with all four conflict triggers.
ExistingTable Existing(std::vector<ExistingColumn> columns, bool key_index,
                       std::vector<std::string> indexes, std::string relid, bool detecting = true) {
  ExistingTable t;
  t.columns = std::move(columns);
  t.key_index_exists = key_index;
  t.index_names = std::move(indexes);
  t.relid = std::move(relid);
  if (detecting) {
    for (const char* name : kConflictTriggers) t.triggers[name] = std::string("dep\0id\0", 7);
  }
  return t;
}

TEST(MirrorTable, NewTable) {
  Result<MirrorTable> m = PlanMirror("app", "dep", Chat(), nullptr, {});
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->qualified, "\"app\".\"chat\"");
  ASSERT_EQ(m->columns.size(), 4u);
  EXPECT_EQ(m->columns[1].pg_type, "bigint");
  EXPECT_EQ(m->columns[2].kind, TargetKind::kJsonb);
  EXPECT_EQ(m->columns[3].kind, TargetKind::kBoolean);
  ASSERT_EQ(m->ddl.size(), 7u);
  EXPECT_EQ(m->ddl[0],
            "CREATE TABLE IF NOT EXISTS \"app\".\"chat\" (\"id\" text, \"created_at\" bigint, "
            "\"chat\" jsonb, \"pinned\" boolean, \"_sluice_seq\" bigint NOT NULL, "
            "\"_sluice_deleted_at\" timestamptz, \"_sluice_updated_at\" timestamptz NOT NULL "
            "DEFAULT now(), \"_sluice_outside_at\" timestamptz, \"_sluice_base\" jsonb, "
            "PRIMARY KEY (\"id\"))");
  // Every mirror detects outside writes: its triggers name the deployment and the key.
  EXPECT_EQ(std::vector<std::string>(m->ddl.begin() + 1, m->ddl.end()),
            ConflictDetectionSql("app", "chat", "dep", {"id"}));
}

TEST(MirrorTable, ConflictTriggersNameTheDeploymentAndKeyAsLiterals) {
  std::vector<std::string> ddl = ConflictDetectionSql("app", "chat", "it's", {"a'b", "c"});
  ASSERT_EQ(ddl.size(), 6u);
  EXPECT_EQ(
      ddl[3],
      "CREATE OR REPLACE TRIGGER sluice_conflict BEFORE UPDATE ON \"app\".\"chat\" FOR EACH "
      "ROW WHEN (OLD.\"_sluice_outside_at\" IS NOT NULL AND current_setting('sluice.writer', "
      "true) = 'it''s') EXECUTE FUNCTION sync_metadata.sluice_conflict('it''s', 'a''b', 'c')");
}

TEST(MirrorTable, MirrorWithoutConflictDetectionGetsIt) {
  // A mirror made before control plane version 5: the two columns (added
  // without a default: nothing rewritten), then the defaults and triggers.
  std::vector<ExistingColumn> v4 = {{"id", "text", "text"},
                                    {"created_at", "bigint", "bigint"},
                                    {"chat", "jsonb", "jsonb"},
                                    {"pinned", "boolean", "boolean"},
                                    {"_sluice_seq", "bigint", "bigint"},
                                    {"_sluice_deleted_at", "timestamptz", "timestamptz"},
                                    {"_sluice_updated_at", "timestamptz", "timestamptz"}};
  Result<MirrorTable> m =
      PlanMirror("app", "dep", Chat(), nullptr, Existing(v4, true, {}, "", false));
  ASSERT_TRUE(m.ok());
  ASSERT_EQ(m->ddl.size(), 7u);
  EXPECT_EQ(m->ddl[0],
            "ALTER TABLE \"app\".\"chat\" ADD COLUMN IF NOT EXISTS \"_sluice_outside_at\" "
            "timestamptz, ADD COLUMN IF NOT EXISTS \"_sluice_base\" jsonb");
  // Columns there, a trigger missing (dropped by hand): all four again.
  v4.push_back({"_sluice_outside_at", "timestamptz", "timestamptz"});
  v4.push_back({"_sluice_base", "jsonb", "jsonb"});
  ExistingTable partial = Existing(v4, true, {}, "");
  partial.triggers.erase("sluice_inserted");
  m = PlanMirror("app", "dep", Chat(), nullptr, partial);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->ddl, ConflictDetectionSql("app", "chat", "dep", {"id"}));
  // Complete, but for another deployment (the config's `deployment` changed,
  // the schema kept): its writes would all look like outside writes.
  m = PlanMirror("app", "other", Chat(), nullptr, Existing(v4, true, {}, ""));
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->ddl, ConflictDetectionSql("app", "chat", "other", {"id"}));
  m = PlanMirror("app", "dep", Chat(), nullptr, Existing(v4, true, {}, ""));
  ASSERT_TRUE(m.ok());
  EXPECT_TRUE(m->ddl.empty());
}

TEST(MirrorTable, OverrideWins) {
  std::map<std::string, std::string> o = {{"created_at", "timestamptz"}};
  Result<MirrorTable> m = PlanMirror("app", "dep", Chat(), &o, {});
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->columns[1].pg_type, "timestamptz");
  EXPECT_EQ(m->columns[1].kind, TargetKind::kOther);
  std::map<std::string, std::string> bad = {{"chat", "text); DROP TABLE x; --"}};
  EXPECT_EQ(PlanMirror("app", "dep", Chat(), &bad, {}).status().code(),
            Status::Code::kInvalidArgument);
}

TEST(MirrorTable, AdoptsExistingTable) {
  std::vector<ExistingColumn> existing = {
      {"id", "character varying(255)", "character varying"},
      {"created_at", "timestamp with time zone", "timestamp with time zone"},
      {"extra", "integer", "integer"}};
  Result<MirrorTable> m =
      PlanMirror("app", "dep", Chat(), nullptr, Existing(existing, false, {}, "", false));
  ASSERT_TRUE(m.ok());
  EXPECT_TRUE(m->columns[0].exists);
  EXPECT_EQ(m->columns[0].cast_type, "character varying");  // typmod left to assignment
  EXPECT_EQ(m->columns[1].kind, TargetKind::kOther);        // keeps timestamptz
  ASSERT_EQ(m->ddl.size(), 8u);
  EXPECT_EQ(m->ddl[0],
            "ALTER TABLE \"app\".\"chat\" ADD COLUMN IF NOT EXISTS \"chat\" jsonb, "
            "ADD COLUMN IF NOT EXISTS \"pinned\" boolean, "
            "ADD COLUMN IF NOT EXISTS \"_sluice_seq\" bigint, "
            "ADD COLUMN IF NOT EXISTS \"_sluice_deleted_at\" timestamptz, "
            "ADD COLUMN IF NOT EXISTS \"_sluice_updated_at\" timestamptz NOT NULL DEFAULT now(), "
            "ADD COLUMN IF NOT EXISTS \"_sluice_outside_at\" timestamptz, "
            "ADD COLUMN IF NOT EXISTS \"_sluice_base\" jsonb");
  EXPECT_EQ(m->ddl[1],
            "CREATE UNIQUE INDEX IF NOT EXISTS \"chat_sluice_key\" ON \"app\".\"chat\" (\"id\")");
  EXPECT_EQ(std::vector<std::string>(m->ddl.begin() + 2, m->ddl.end()),
            ConflictDetectionSql("app", "chat", "dep", {"id"}));
}

TEST(MirrorTable, ReadyTableNeedsNoDdl) {
  std::vector<ExistingColumn> existing = {{"id", "text", "text"},
                                          {"created_at", "bigint", "bigint"},
                                          {"chat", "jsonb", "jsonb"},
                                          {"pinned", "boolean", "boolean"},
                                          {"_sluice_seq", "bigint", "bigint"},
                                          {"_sluice_deleted_at", "timestamptz", "timestamptz"},
                                          {"_sluice_updated_at", "timestamptz", "timestamptz"},
                                          {"_sluice_outside_at", "timestamptz", "timestamptz"},
                                          {"_sluice_base", "jsonb", "jsonb"}};
  Result<MirrorTable> m =
      PlanMirror("app", "dep", Chat(), nullptr, Existing(existing, true, {}, ""));
  ASSERT_TRUE(m.ok());
  EXPECT_TRUE(m->ddl.empty());
}

// The sluice columns and the shape's columns, as an earlier run created them.
std::vector<ExistingColumn> EarlierMirror() {
  return {{"id", "text", "text"},
          {"created_at", "bigint", "bigint"},
          {"chat", "jsonb", "jsonb"},
          {"pinned", "boolean", "boolean"},
          {"share_id", "text", "text"},
          {"_sluice_seq", "bigint", "bigint"},
          {"_sluice_deleted_at", "timestamptz", "timestamptz"},
          {"_sluice_updated_at", "timestamptz", "timestamptz"},
          {"_sluice_outside_at", "timestamptz", "timestamptz"},
          {"_sluice_base", "jsonb", "jsonb"}};
}

TableShape ChatWithShareId() {
  TableShape t = Chat();
  t.columns.push_back(Col("share_id", "VARCHAR(255)"));
  t.unique_keys = {{4}};
  return t;
}

TEST(MirrorTable, UniqueKeysGetAnEvictIndexOnce) {
  Result<MirrorTable> m = PlanMirror("app", "dep", ChatWithShareId(), nullptr, {});
  ASSERT_TRUE(m.ok());
  ASSERT_EQ(m->ddl.size(), 8u);
  EXPECT_EQ(m->ddl[1], "CREATE INDEX IF NOT EXISTS \"" + EvictIndexName("chat", "share_id") +
                           "\" ON \"app\".\"chat\" USING hash (\"share_id\") WHERE "
                           "\"_sluice_deleted_at\" IS NULL");
  // An existing mirror without it gets it; with it, nothing to do.
  ExistingTable existing = Existing(EarlierMirror(), true, {"chat_pkey"}, "123");
  m = PlanMirror("app", "dep", ChatWithShareId(), nullptr, existing);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->ddl, std::vector<std::string>{CreateEvictIndexSql("app", "chat", "share_id")});
  existing.index_names.push_back(EvictIndexName("chat", "share_id"));
  m = PlanMirror("app", "dep", ChatWithShareId(), nullptr, existing);
  ASSERT_TRUE(m.ok());
  EXPECT_TRUE(m->ddl.empty());
  EXPECT_TRUE(m->set_aside_as.empty());
}

TEST(MirrorTable, MirrorWithAnotherKeyIsSetAsideNotDeleted) {
  TableShape rekeyed = ChatWithShareId();
  rekeyed.columns[0].key_position = 0;
  rekeyed.columns[4].key_position = 1;  // share_id is the key now
  rekeyed.unique_keys.clear();
  ExistingTable existing =
      Existing(EarlierMirror(), false, {"chat_pkey", "chat_sluice_key"}, "4242");
  existing.pages = 300;  // 8 KiB pages: 128 per statement, so three statements
  Result<MirrorTable> m = PlanMirror("app", "dep", rekeyed, nullptr, existing);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->set_aside_as, "chat__old_4242");
  ASSERT_EQ(m->ddl.size(), 13u);
  EXPECT_EQ(std::vector<std::string>(m->ddl.begin(), m->ddl.begin() + 3),
            TombstoneSweepSql("\"app\".\"chat\"", 300, 128));
  EXPECT_NE(m->ddl[0].find("ctid < '(128,0)'"), std::string::npos) << m->ddl[0];
  EXPECT_EQ(m->ddl[2].find("ctid <"), std::string::npos) << "the last range is open: " << m->ddl[2];
  EXPECT_EQ(m->ddl[3], "ALTER INDEX \"app\".\"chat_pkey\" RENAME TO \"chat_pkey__old_4242\"");
  EXPECT_EQ(m->ddl[4],
            "ALTER INDEX \"app\".\"chat_sluice_key\" RENAME TO \"chat_sluice_key__old_4242\"");
  EXPECT_EQ(m->ddl[5], "ALTER TABLE \"app\".\"chat\" RENAME TO \"chat__old_4242\"");
  EXPECT_EQ(m->ddl[6].rfind("CREATE TABLE IF NOT EXISTS \"app\".\"chat\" (", 0), 0u);
  EXPECT_NE(m->ddl[6].find("PRIMARY KEY (\"share_id\")"), std::string::npos) << m->ddl[6];
  for (const MirrorColumn& c : m->columns) EXPECT_FALSE(c.exists) << c.name;
  // A table without sluice's columns is adopted instead: only a key index is added.
  std::vector<ExistingColumn> app_owned = EarlierMirror();
  app_owned.resize(5);
  m = PlanMirror("app", "dep", rekeyed, nullptr, Existing(app_owned, false, {"chat_pkey"}, "4242"));
  ASSERT_TRUE(m.ok());
  EXPECT_TRUE(m->set_aside_as.empty());
  EXPECT_EQ(m->ddl[1], CreateKeyIndexSql("app", "chat", {"share_id"}));
}

// A host role changes mirrors through sql/03's sluice_mirror_ddl: the plan
// says the same in its steps, and what only an owner may do is named.
TEST(MirrorTable, StepsForAHostRole) {
  TableShape chat = Chat();
  chat.unique_keys = {{1}};
  Result<MirrorTable> m = PlanMirror("app", "dep", chat, nullptr, {});
  ASSERT_TRUE(m.ok());
  ASSERT_EQ(m->steps.size(), 3u);
  EXPECT_EQ(m->steps[0].table, "chat");
  EXPECT_EQ(m->steps[0].step,
            "{\"op\":\"create_table\",\"columns\":[{\"name\":\"id\",\"type\":\"text\"},"
            "{\"name\":\"created_at\",\"type\":\"bigint\"},{\"name\":\"chat\",\"type\":\"jsonb\"},"
            "{\"name\":\"pinned\",\"type\":\"boolean\"}],\"key\":[\"id\"]}");
  EXPECT_EQ(m->steps[1].step, "{\"op\":\"evict_index\",\"column\":\"created_at\",\"index\":\"" +
                                  EvictIndexName("chat", "created_at") + "\"}");
  EXPECT_EQ(m->steps[2].step,
            "{\"op\":\"conflict_detection\",\"index\":\"chat_sluice_outside\",\"key\":[\"id\"]}");
  EXPECT_TRUE(m->owner_only.empty());

  Result<std::vector<DdlStatement>> calls = DdlStatements(
      DdlMode::kDelegated, "dep", "app", m->qualified, m->ddl, m->steps, m->owner_only);
  ASSERT_TRUE(calls.ok());
  ASSERT_EQ(calls->size(), 3u);
  EXPECT_EQ((*calls)[0].sql, MirrorDdlSql());
  EXPECT_EQ((*calls)[0].params,
            (std::vector<std::optional<std::string>>{"dep", "app", "chat", m->steps[0].step}));
  Result<std::vector<DdlStatement>> direct =
      DdlStatements(DdlMode::kDirect, "dep", "app", m->qualified, m->ddl, m->steps, m->owner_only);
  ASSERT_TRUE(direct.ok());
  ASSERT_EQ(direct->size(), m->ddl.size());
  EXPECT_EQ((*direct)[0].sql, m->ddl[0]);
  EXPECT_TRUE((*direct)[0].params.empty());

  // A column the app added: one add_columns step, nothing else.
  std::vector<ExistingColumn> earlier = {{"id", "text", "text"},
                                         {"created_at", "bigint", "bigint"},
                                         {"chat", "jsonb", "jsonb"},
                                         {"_sluice_seq", "bigint", "bigint"},
                                         {"_sluice_deleted_at", "timestamptz", "timestamptz"},
                                         {"_sluice_updated_at", "timestamptz", "timestamptz"},
                                         {"_sluice_outside_at", "timestamptz", "timestamptz"},
                                         {"_sluice_base", "jsonb", "jsonb"}};
  m = PlanMirror("app", "dep", Chat(), nullptr, Existing(earlier, true, {}, ""));
  ASSERT_TRUE(m.ok());
  ASSERT_EQ(m->steps.size(), 1u);
  EXPECT_EQ(m->steps[0].step,
            "{\"op\":\"add_columns\",\"columns\":[{\"name\":\"pinned\",\"type\":\"boolean\"}]}");
  EXPECT_TRUE(m->owner_only.empty());

  // Adopting a table the app made itself needs its owner, with or without a
  // key index of its own; so does setting aside a mirror whose key changed.
  m = PlanMirror("app", "dep", Chat(), nullptr,
                 Existing({{"id", "text", "text"}}, true, {}, "", false));
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->owner_only, "adopting a table sluice did not create");
  Result<MirrorTable> aside =
      PlanMirror("app", "dep", Chat(), nullptr, Existing(earlier, false, {}, "16400"));
  ASSERT_TRUE(aside.ok());
  ASSERT_FALSE(aside->set_aside_as.empty());
  EXPECT_EQ(aside->owner_only, "setting aside a mirror whose key changed");
  m = PlanMirror("app", "dep", Chat(), nullptr,
                 Existing({{"id", "text", "text"}}, false, {}, "", false));
  ASSERT_TRUE(m.ok());
  EXPECT_FALSE(m->owner_only.empty());
  Result<std::vector<DdlStatement>> refused = DdlStatements(
      DdlMode::kDelegated, "dep", "app", m->qualified, m->ddl, m->steps, m->owner_only);
  EXPECT_EQ(refused.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("sluice admin bootstrap"), std::string::npos)
      << refused.status().message();
  EXPECT_TRUE(
      DdlStatements(DdlMode::kDirect, "dep", "app", m->qualified, m->ddl, m->steps, m->owner_only)
          .ok());
}

TEST(MirrorTable, Refusals) {
  TableShape t = Chat();
  t.columns[2].name = std::string(64, 'c');
  EXPECT_EQ(PlanMirror("app", "dep", t, nullptr, {}).status().code(),
            Status::Code::kInvalidArgument);
  t = Chat();
  t.columns[2].name = "_sluice_seq";
  EXPECT_FALSE(PlanMirror("app", "dep", t, nullptr, {}).ok());
  t = Chat();
  t.columns[0].key_position = 0;
  EXPECT_FALSE(PlanMirror("app", "dep", t, nullptr, {}).ok());
  EXPECT_FALSE(PlanMirror(std::string(64, 's'), "dep", Chat(), nullptr, {}).ok());
}

TEST(MirrorTable, RowidTable) {
  TableShape t;
  t.name = "log";
  t.identity = TableShape::Identity::kRowid;
  t.columns = {Col(kRowidColumn, "INTEGER", 1), Col("msg", "")};
  Result<MirrorTable> m = PlanMirror("app", "dep", t, nullptr, {});
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->columns[0].pg_type, "bigint");
  EXPECT_EQ(m->key, std::vector<size_t>{0});
}

}  // namespace
}  // namespace sluice
