// SinkAdmin against a real PostgreSQL: control plane install, mirror tables
// (new, hostile names, adopted), position row, connection errors.
#include "sink/sink_admin.h"

#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <string>
#include <vector>

#include "common/value.h"
#include "tests/sink/sink_test_util.h"
#include "tests/test_support.h"

namespace sluice {
namespace {

using testing::Col;
using testing::Query;

constexpr const char* kSourceA = "11111111-1111-4111-8111-111111111111";
constexpr const char* kSourceB = "22222222-2222-4222-8222-222222222222";

SinkOptions Options(const std::string& pg, const std::string& name) {
  SinkOptions o;
  o.url = pg;
  o.schema = name;
  o.deployment = name;
  return o;
}

std::unique_ptr<SinkAdmin> Admin(const SinkOptions& o) {
  Result<std::unique_ptr<SinkAdmin>> a = SinkAdmin::Connect(o);
  EXPECT_TRUE(a.ok()) << a.status().ToString();
  if (!a.ok()) return nullptr;
  EXPECT_TRUE((*a)->InstallControlPlane().ok());
  return std::move(a.value());
}

// "column:type" pairs of a table, in column order.
std::vector<std::string> Columns(const std::string& pg, const std::string& schema,
                                 const std::string& table) {
  std::string lit = "'\"" + schema + "\".\"";
  for (char c : table) {
    if (c == '"')
      lit += "\"\"";
    else if (c == '\'')
      lit += "''";
    else
      lit += c;
  }
  lit += "\"'";
  return Query(pg,
               "SELECT attname || ':' || format_type(atttypid, atttypmod) FROM pg_attribute "
               "WHERE attrelid = to_regclass(" +
                   lit +
                   ") AND attnum > 0 AND NOT attisdropped "
                   "ORDER BY attnum");
}

TEST(SinkAdmin, InstallTwiceAndPosition) {
  std::string pg = testing::PgConninfoOrSkip();
  if (pg.empty()) return;
  SinkOptions o = Options(pg, testing::UniqueName("admin"));
  auto admin = Admin(o);
  ASSERT_NE(admin, nullptr);
  ASSERT_TRUE(admin->InstallControlPlane().ok());  // idempotent

  Result<SinkPosition> pos = admin->ReadPosition();
  ASSERT_TRUE(pos.ok()) << pos.status().ToString();
  EXPECT_FALSE(pos->exists);

  ASSERT_TRUE(admin->EnsurePosition(kSourceA).ok());
  ASSERT_TRUE(admin->EnsurePosition(kSourceA).ok());
  pos = admin->ReadPosition();
  ASSERT_TRUE(pos.ok());
  EXPECT_TRUE(pos->exists);
  EXPECT_EQ(pos->source_id, kSourceA);
  EXPECT_EQ(pos->applied_seq, -1);
  EXPECT_FALSE(pos->updated_at.empty());

  Status st = admin->EnsurePosition(kSourceB);
  EXPECT_EQ(st.code(), Status::Code::kConflict);
  EXPECT_EQ(st.message(), "deployment " + o.deployment + " already follows source " + kSourceA +
                              "; this file is source " + kSourceB);

  Result<int64_t> parked = admin->CountParked();
  ASSERT_TRUE(parked.ok());
  EXPECT_EQ(*parked, 0);
}

TEST(SinkAdmin, MirrorsShapesWithHostileNames) {
  std::string pg = testing::PgConninfoOrSkip();
  if (pg.empty()) return;
  SinkOptions o = Options(pg, testing::UniqueName("mirror"));
  o.column_types["tag"]["meta"] = "json";
  auto admin = Admin(o);
  ASSERT_NE(admin, nullptr);

  constexpr uint8_t kInt = Value::Bit(Value::Kind::kInteger);
  TableShape chat;
  chat.name = "chat";
  chat.identity = TableShape::Identity::kUniqueIndex;
  chat.columns = {Col("id", "VARCHAR(255)", 1), Col("created_at", "DATETIME", 0, kInt),
                  Col("chat", "JSON"), Col("pinned", "BOOLEAN")};
  TableShape tag;
  tag.name = "tag";
  tag.columns = {Col("id", "VARCHAR(255)", 1), Col("user_id", "VARCHAR(255)", 2),
                 Col("meta", "JSON")};
  TableShape hostile;
  hostile.name = "we\"ird tablé; DROP";
  hostile.columns = {Col("select", "INTEGER", 1), Col("a \"quoted\" col", "TEXT"),
                     Col("日本語", "REAL")};
  TableShape rowid;
  rowid.name = "user";
  rowid.identity = TableShape::Identity::kRowid;
  rowid.columns = {Col(kRowidColumn, "INTEGER", 1), Col("x", "")};

  ASSERT_TRUE(admin->EnsureMirror({chat, tag, hostile, rowid}).ok());
  ASSERT_TRUE(admin->EnsureMirror({chat, tag, hostile, rowid}).ok());  // idempotent

  EXPECT_EQ(Columns(pg, o.schema, "chat"),
            (std::vector<std::string>{
                "id:text", "created_at:bigint", "chat:jsonb", "pinned:boolean",
                "_sluice_seq:bigint", "_sluice_deleted_at:timestamp with time zone",
                "_sluice_updated_at:timestamp with time zone",
                "_sluice_outside_at:timestamp with time zone", "_sluice_base:jsonb"}));
  EXPECT_EQ(Columns(pg, o.schema, "tag")[2], "meta:json");
  std::vector<std::string> h = Columns(pg, o.schema, hostile.name);
  ASSERT_EQ(h.size(), 8u);
  // Every mirror detects outside writes, hostile names too (trigger arguments are literals).
  EXPECT_EQ(Query(pg,
                  "SELECT count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                  "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = '" +
                      o.schema + "' AND c.relname = '" + hostile.name + "'"),
            std::vector<std::string>{"4"});
  EXPECT_EQ(h[0], "select:bigint");
  EXPECT_EQ(h[1], "a \"quoted\" col:text");
  EXPECT_EQ(h[2], "日本語:double precision");
  EXPECT_EQ(Columns(pg, o.schema, "user")[0], "_sluice_rowid:bigint");

  // A later shape with a new column extends the table.
  chat.columns.push_back(Col("folder_id", "TEXT"));
  ASSERT_TRUE(admin->EnsureMirror({chat}).ok());
  EXPECT_EQ(Columns(pg, o.schema, "chat").back(), "folder_id:text");

  TableShape too_long = tag;
  too_long.name = std::string(64, 't');
  Status st = admin->EnsureMirror({too_long});
  EXPECT_EQ(st.code(), Status::Code::kInvalidArgument) << st.ToString();
}

TEST(SinkAdmin, AdoptsExistingTable) {
  std::string pg = testing::PgConninfoOrSkip();
  if (pg.empty()) return;
  SinkOptions o = Options(pg, testing::UniqueName("adopt"));
  auto admin = Admin(o);
  ASSERT_NE(admin, nullptr);
  Query(pg, "CREATE SCHEMA \"" + o.schema + "\"; CREATE TABLE \"" + o.schema +
                "\".config (id integer, data jsonb, created_at timestamptz, note varchar(5))");

  TableShape config;
  config.name = "config";
  config.columns = {Col("id", "INTEGER", 1), Col("data", "JSON"), Col("created_at", "DATETIME"),
                    Col("note", "TEXT"), Col("version", "INTEGER")};
  ASSERT_TRUE(admin->EnsureMirror({config}).ok());
  ASSERT_TRUE(admin->EnsureMirror({config}).ok());
  EXPECT_EQ(Columns(pg, o.schema, "config"),
            (std::vector<std::string>{
                "id:integer", "data:jsonb", "created_at:timestamp with time zone",
                "note:character varying(5)", "version:bigint", "_sluice_seq:bigint",
                "_sluice_deleted_at:timestamp with time zone",
                "_sluice_updated_at:timestamp with time zone",
                "_sluice_outside_at:timestamp with time zone", "_sluice_base:jsonb"}));
  EXPECT_EQ(
      Query(pg, "SELECT indexdef FROM pg_indexes WHERE schemaname = '" + o.schema + "' ORDER BY 1"),
      (std::vector<std::string>{
          "CREATE INDEX config_sluice_outside ON " + o.schema +
              ".config USING btree (_sluice_outside_at) WHERE (_sluice_outside_at IS NOT NULL)",
          "CREATE UNIQUE INDEX config_sluice_key ON " + o.schema + ".config USING btree (id)"}));
}

TEST(SinkAdmin, ConnectErrors) {
  std::string pg = testing::PgConninfoOrSkip();
  if (pg.empty()) return;
  SinkOptions o;
  o.url = "host=127.0.0.1 port=1 dbname=x user=nobody password=hunter2secret connect_timeout=2";
  Result<std::unique_ptr<SinkAdmin>> a = SinkAdmin::Connect(o);
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.status().code(), Status::Code::kUnavailable);
  EXPECT_NE(a.status().message().find("127.0.0.1:1"), std::string::npos) << a.status().message();
  EXPECT_EQ(a.status().message().find("hunter2secret"), std::string::npos);

  o.url = pg + " password=wrong-password-123";
  a = SinkAdmin::Connect(o);
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.status().code(), Status::Code::kInvalidArgument) << a.status().ToString();
  EXPECT_NE(a.status().message().find("authentication failed"), std::string::npos);
  EXPECT_EQ(a.status().message().find("wrong-password-123"), std::string::npos);

  o.url = "host=localhost password=\"unterminated";
  a = SinkAdmin::Connect(o);
  EXPECT_EQ(a.status().code(), Status::Code::kInvalidArgument);
}

}  // namespace
}  // namespace sluice
