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

TEST(MirrorTable, NewTable) {
  Result<MirrorTable> m = PlanMirror("app", Chat(), nullptr, {});
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->qualified, "\"app\".\"chat\"");
  ASSERT_EQ(m->columns.size(), 4u);
  EXPECT_EQ(m->columns[1].pg_type, "bigint");
  EXPECT_EQ(m->columns[2].kind, TargetKind::kJsonb);
  EXPECT_EQ(m->columns[3].kind, TargetKind::kBoolean);
  ASSERT_EQ(m->ddl.size(), 1u);
  EXPECT_EQ(m->ddl[0],
            "CREATE TABLE IF NOT EXISTS \"app\".\"chat\" (\"id\" text, \"created_at\" bigint, "
            "\"chat\" jsonb, \"pinned\" boolean, \"_sluice_seq\" bigint NOT NULL, "
            "\"_sluice_deleted_at\" timestamptz, \"_sluice_updated_at\" timestamptz NOT NULL "
            "DEFAULT now(), PRIMARY KEY (\"id\"))");
}

TEST(MirrorTable, OverrideWins) {
  std::map<std::string, std::string> o = {{"created_at", "timestamptz"}};
  Result<MirrorTable> m = PlanMirror("app", Chat(), &o, {});
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->columns[1].pg_type, "timestamptz");
  EXPECT_EQ(m->columns[1].kind, TargetKind::kOther);
  std::map<std::string, std::string> bad = {{"chat", "text); DROP TABLE x; --"}};
  EXPECT_EQ(PlanMirror("app", Chat(), &bad, {}).status().code(), Status::Code::kInvalidArgument);
}

TEST(MirrorTable, AdoptsExistingTable) {
  std::vector<ExistingColumn> existing = {
      {"id", "character varying(255)", "character varying"},
      {"created_at", "timestamp with time zone", "timestamp with time zone"},
      {"extra", "integer", "integer"}};
  Result<MirrorTable> m = PlanMirror("app", Chat(), nullptr, {existing, false, {}, ""});
  ASSERT_TRUE(m.ok());
  EXPECT_TRUE(m->columns[0].exists);
  EXPECT_EQ(m->columns[0].cast_type, "character varying");  // typmod left to assignment
  EXPECT_EQ(m->columns[1].kind, TargetKind::kOther);        // keeps timestamptz
  ASSERT_EQ(m->ddl.size(), 2u);
  EXPECT_EQ(m->ddl[0],
            "ALTER TABLE \"app\".\"chat\" ADD COLUMN IF NOT EXISTS \"chat\" jsonb, "
            "ADD COLUMN IF NOT EXISTS \"pinned\" boolean, "
            "ADD COLUMN IF NOT EXISTS \"_sluice_seq\" bigint, "
            "ADD COLUMN IF NOT EXISTS \"_sluice_deleted_at\" timestamptz, "
            "ADD COLUMN IF NOT EXISTS \"_sluice_updated_at\" timestamptz NOT NULL DEFAULT now()");
  EXPECT_EQ(m->ddl[1],
            "CREATE UNIQUE INDEX IF NOT EXISTS \"chat_sluice_key\" ON \"app\".\"chat\" (\"id\")");
}

TEST(MirrorTable, ReadyTableNeedsNoDdl) {
  std::vector<ExistingColumn> existing = {{"id", "text", "text"},
                                          {"created_at", "bigint", "bigint"},
                                          {"chat", "jsonb", "jsonb"},
                                          {"pinned", "boolean", "boolean"},
                                          {"_sluice_seq", "bigint", "bigint"},
                                          {"_sluice_deleted_at", "timestamptz", "timestamptz"},
                                          {"_sluice_updated_at", "timestamptz", "timestamptz"}};
  Result<MirrorTable> m = PlanMirror("app", Chat(), nullptr, {existing, true, {}, ""});
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
          {"_sluice_updated_at", "timestamptz", "timestamptz"}};
}

TableShape ChatWithShareId() {
  TableShape t = Chat();
  t.columns.push_back(Col("share_id", "VARCHAR(255)"));
  t.unique_keys = {{4}};
  return t;
}

TEST(MirrorTable, UniqueKeysGetAnEvictIndexOnce) {
  Result<MirrorTable> m = PlanMirror("app", ChatWithShareId(), nullptr, {});
  ASSERT_TRUE(m.ok());
  ASSERT_EQ(m->ddl.size(), 2u);
  EXPECT_EQ(m->ddl[1], "CREATE INDEX IF NOT EXISTS \"" + EvictIndexName("chat", "share_id") +
                           "\" ON \"app\".\"chat\" USING hash (\"share_id\") WHERE "
                           "\"_sluice_deleted_at\" IS NULL");
  // An existing mirror without it gets it; with it, nothing to do.
  ExistingTable existing{EarlierMirror(), true, {"chat_pkey"}, "123"};
  m = PlanMirror("app", ChatWithShareId(), nullptr, existing);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->ddl, std::vector<std::string>{CreateEvictIndexSql("app", "chat", "share_id")});
  existing.index_names.push_back(EvictIndexName("chat", "share_id"));
  m = PlanMirror("app", ChatWithShareId(), nullptr, existing);
  ASSERT_TRUE(m.ok());
  EXPECT_TRUE(m->ddl.empty());
  EXPECT_TRUE(m->set_aside_as.empty());
}

TEST(MirrorTable, MirrorWithAnotherKeyIsSetAsideNotDeleted) {
  TableShape rekeyed = ChatWithShareId();
  rekeyed.columns[0].key_position = 0;
  rekeyed.columns[4].key_position = 1;  // share_id is the key now
  rekeyed.unique_keys.clear();
  ExistingTable existing{EarlierMirror(), false, {"chat_pkey", "chat_sluice_key"}, "4242"};
  existing.pages = 300;  // 8 KiB pages: 128 per statement, so three statements
  Result<MirrorTable> m = PlanMirror("app", rekeyed, nullptr, existing);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->set_aside_as, "chat__old_4242");
  ASSERT_EQ(m->ddl.size(), 7u);
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
  m = PlanMirror("app", rekeyed, nullptr, {app_owned, false, {"chat_pkey"}, "4242"});
  ASSERT_TRUE(m.ok());
  EXPECT_TRUE(m->set_aside_as.empty());
  EXPECT_EQ(m->ddl.back(), CreateKeyIndexSql("app", "chat", {"share_id"}));
}

TEST(MirrorTable, Refusals) {
  TableShape t = Chat();
  t.columns[2].name = std::string(64, 'c');
  EXPECT_EQ(PlanMirror("app", t, nullptr, {}).status().code(), Status::Code::kInvalidArgument);
  t = Chat();
  t.columns[2].name = "_sluice_seq";
  EXPECT_FALSE(PlanMirror("app", t, nullptr, {}).ok());
  t = Chat();
  t.columns[0].key_position = 0;
  EXPECT_FALSE(PlanMirror("app", t, nullptr, {}).ok());
  EXPECT_FALSE(PlanMirror(std::string(64, 's'), Chat(), nullptr, {}).ok());
}

TEST(MirrorTable, RowidTable) {
  TableShape t;
  t.name = "log";
  t.identity = TableShape::Identity::kRowid;
  t.columns = {Col(kRowidColumn, "INTEGER", 1), Col("msg", "")};
  Result<MirrorTable> m = PlanMirror("app", t, nullptr, {});
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->columns[0].pg_type, "bigint");
  EXPECT_EQ(m->key, std::vector<size_t>{0});
}

}  // namespace
}  // namespace sluice
