// Trigger SQL: quoting, hostile names that still parse and run, and the SQL
// key expression agreeing byte for byte with EncodeKey.
#include "capture/trigger_sql.h"

#include <gtest/gtest.h>

#include <limits>

#include "capture/key_codec.h"
#include "capture/row_sql.h"
#include "capture/schema_reader.h"
#include "capture/sqlite_db.h"

namespace sluice {
namespace {

std::unique_ptr<SqliteDb> Memory() {
  Result<std::unique_ptr<SqliteDb>> db = SqliteDb::OpenMemory();
  EXPECT_TRUE(db.ok());
  for (const std::string& ddl : CaptureTablesDdl()) EXPECT_TRUE((*db)->Exec(ddl).ok());
  return std::move(*db);
}

TEST(TriggerSql, Quoting) {
  EXPECT_EQ(QuoteIdent("a\"b"), "\"a\"\"b\"");
  EXPECT_EQ(QuoteIdent(""), "\"\"");
  EXPECT_EQ(QuoteLiteral("it's"), "'it''s'");
}

TEST(TriggerSql, TriggerText) {
  TableShape t;
  t.name = "tag";
  t.columns = {{"id", "TEXT", true, 1}, {"user_id", "TEXT", true, 2}, {"meta", "JSON", false, 0}};
  std::vector<TriggerSql> trig = CaptureTriggers(t);
  ASSERT_EQ(trig.size(), 3u);
  EXPECT_EQ(trig[0].name, "_sluice_tag_ai");
  EXPECT_EQ(trig[1].name, "_sluice_tag_au");
  EXPECT_EQ(trig[2].name, "_sluice_tag_ad");
  EXPECT_NE(trig[0].create.find("AFTER INSERT ON \"tag\""), std::string::npos);
  EXPECT_NE(trig[1].create.find("WHERE k IS NOT"), std::string::npos);
  EXPECT_NE(trig[1].create.find("||'|'||"), std::string::npos);
  EXPECT_EQ(trig[0].create.find("json"), std::string::npos);  // no JSON functions
  EXPECT_EQ(IdentityText(t), "primary key (\"id\", \"user_id\")");

  TableShape r;
  r.name = "log";
  r.identity = TableShape::Identity::kRowid;
  r.columns = {{kRowidColumn, "INTEGER", true, 1}, {"msg", "", false, 0}};
  EXPECT_EQ(KeyExpr(r, "NEW"), "'i'||NEW.rowid");
  r.columns.push_back({"RowId", "TEXT", false, 0});
  EXPECT_EQ(KeyExpr(r, "OLD"), "'i'||OLD._rowid_");
  EXPECT_EQ(SelectList(r), "_rowid_, \"msg\", \"RowId\"");
}

class HostileNames : public ::testing::TestWithParam<std::string> {};

TEST_P(HostileNames, TriggersParseAndJournalTheName) {
  const std::string name = GetParam();
  auto db = Memory();
  ASSERT_TRUE(db->Exec("PRAGMA recursive_triggers=ON").ok());
  const std::string col = name + " col";
  ASSERT_TRUE(
      db->Exec("CREATE TABLE " + QuoteIdent(name) + "(" + QuoteIdent(col) + " TEXT PRIMARY KEY, v)")
          .ok());
  Result<TableShape> shape = DescribeTable(*db, name);
  ASSERT_TRUE(shape.ok()) << shape.status().ToString();
  for (const TriggerSql& t : CaptureTriggers(*shape)) {
    Result<Statement> s = db->Prepare(t.create);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    ASSERT_TRUE(s->Run().ok());
  }
  ASSERT_TRUE(db->Prepare(LookupSql(*shape)).ok());
  ASSERT_TRUE(db->Prepare(LookupByEncodedKeySql(*shape)).ok());
  ASSERT_TRUE(db->Prepare(ValueStatsSql(*shape, 0, shape->columns.size())).ok());
  const std::string q = QuoteIdent(name);
  const std::string c = QuoteIdent(col);
  ASSERT_TRUE(db->Exec("INSERT INTO " + q + " VALUES ('k', 1)").ok());
  ASSERT_TRUE(db->Exec("UPDATE " + q + " SET " + c + " = 'k2'").ok());
  ASSERT_TRUE(db->Exec("DELETE FROM " + q).ok());
  Result<Statement> j = db->Prepare("SELECT tbl, op, key FROM _sluice_journal ORDER BY seq");
  ASSERT_TRUE(j.ok());
  std::vector<std::string> ops;
  for (;;) {
    Result<bool> row = j->Step();
    ASSERT_TRUE(row.ok());
    if (!*row) break;
    EXPECT_EQ(j->ColumnText(0), name);
    ops.push_back(j->ColumnText(1) + j->ColumnText(2));
  }
  EXPECT_EQ(ops, (std::vector<std::string>{"It6B", "Dt6B", "Ut6B32", "Dt6B32"}));
}

INSTANTIATE_TEST_SUITE_P(Names, HostileNames,
                         ::testing::Values("plain", "with space", "quo\"te", "apo'strophe",
                                           "select", "MixedCase", "caf\xc3\xa9 \xe2\x98\x83",
                                           "semi;colon -- comment", "end", "a\"\"b''c",
                                           "_sluice_x_ai", "[brackets]", "`tick`"));

TEST(TriggerSql, SqlKeyExpressionMatchesEncodeKey) {
  auto db = Memory();
  ASSERT_TRUE(db->Exec("CREATE TABLE k(c PRIMARY KEY)").ok());  // no affinity
  Result<TableShape> shape = DescribeTable(*db, "k");
  ASSERT_TRUE(shape.ok());
  Result<Statement> expr = db->Prepare("SELECT " + KeyExpr(*shape, "") + " FROM k");
  ASSERT_TRUE(expr.ok()) << expr.status().ToString();
  Result<Statement> ins = db->Prepare("INSERT INTO k VALUES (?1)");
  ASSERT_TRUE(ins.ok());
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<Value> values = {Value::Integer(0),
                               Value::Integer(std::numeric_limits<int64_t>::min()),
                               Value::Integer(std::numeric_limits<int64_t>::max()),
                               Value::Integer(-7),
                               Value::Real(0.1),
                               Value::Real(-2.5e-300),
                               Value::Real(1.7976931348623157e308),
                               Value::Real(inf),
                               Value::Real(-inf),
                               Value::Real(123456789.0),
                               Value::Text(""),
                               Value::Text("it's"),
                               Value::Text(std::string("a\0b", 3)),
                               Value::Text("\xff\xfe"),
                               Value::Text("\xe2\x98\x83"),
                               Value::Blob(""),
                               Value::Blob(std::string("\0\xff", 2)),
                               Value::Null()};
  for (const Value& v : values) {
    ASSERT_TRUE(db->Exec("DELETE FROM k").ok());
    ASSERT_TRUE(ins->Bind(1, v).ok());
    ASSERT_TRUE(ins->Run().ok());
    ScopedReset reset(&*expr);
    Result<bool> row = expr->Step();
    ASSERT_TRUE(row.ok() && *row);
    EXPECT_EQ(expr->ColumnText(0), EncodeKey({v})) << KindName(v.kind);
  }
}

}  // namespace
}  // namespace sluice
