// Identity choice (pure) and catalog reading on the Open WebUI schema.
#include "capture/schema_reader.h"

#include <gtest/gtest.h>

#include "capture/row_sql.h"
#include "capture/sqlite_db.h"
#include "tests/capture/capture_test_util.h"

namespace sluice {
namespace {

std::vector<std::string> KeyNames(const TableShape& t) {
  std::vector<std::string> out;
  for (size_t i : t.KeyColumns()) out.push_back(t.columns[i].name);
  return out;
}

TEST(ChooseIdentity, PrimaryKeyWins) {
  RawTable raw{"t",
               {{"a", "TEXT", true, 2}, {"b", "INT", true, 1}, {"c", "", true, 0}},
               false,
               {{"u", true, false, {2}}}};
  TableShape t = ChooseIdentity(raw);
  EXPECT_EQ(t.identity, TableShape::Identity::kPrimaryKey);
  EXPECT_EQ(KeyNames(t), (std::vector<std::string>{"b", "a"}));
}

TEST(ChooseIdentity, UniqueNotNullIndexFewestColumns) {
  RawTable raw{"t",
               {{"a", "", true, 0}, {"b", "", false, 0}, {"c", "", true, 0}, {"d", "", true, 0}},
               false,
               {{"ab", true, false, {0, 1}},   // b nullable: no
                {"cd", true, false, {2, 3}},   // two columns
                {"d_part", true, true, {3}},   // partial: no
                {"expr", true, false, {-2}},   // expression: no
                {"plain", false, false, {0}},  // not unique: no
                {"z_c", true, false, {2}},     // one column
                {"y_a", true, false, {0}}}};   // one column, earlier name
  TableShape t = ChooseIdentity(raw);
  EXPECT_EQ(t.identity, TableShape::Identity::kUniqueIndex);
  EXPECT_EQ(KeyNames(t), (std::vector<std::string>{"a"}));
}

TEST(ChooseIdentity, OtherUniqueIndexesAreKeptForEvictions) {
  RawTable raw{"t",
               {{"id", "INTEGER", true, 1},
                {"email", "TEXT", true, 0},
                {"a", "", false, 0},
                {"b", "", false, 0}},
               false,
               {{"email_u", true, false, {1}},
                {"ab_u", true, false, {2, 3}},
                {"a_part", true, true, {2}},     // partial: no
                {"expr", true, false, {-2}},     // expression: no
                {"plain", false, false, {1}}}};  // not unique: no
  TableShape t = ChooseIdentity(raw);
  EXPECT_EQ(t.unique_keys, (std::vector<std::vector<size_t>>{{1}, {2, 3}}));
  // Keyed by rowid: indices shift past the synthetic first column; the index
  // chosen as identity is not listed again.
  RawTable norowid{"r",
                   {{"v", "", false, 0}, {"u", "", true, 0}},
                   false,
                   {{"v_u", true, false, {0}}, {"u_u", true, false, {1}}}};
  TableShape r = ChooseIdentity(norowid);
  EXPECT_EQ(r.identity, TableShape::Identity::kUniqueIndex);
  EXPECT_EQ(r.unique_keys, (std::vector<std::vector<size_t>>{{0}}));
  RawTable rowid{"r", {{"v", "", false, 0}}, false, {{"v_u", true, false, {0}}}};
  TableShape w = ChooseIdentity(rowid);
  EXPECT_EQ(w.identity, TableShape::Identity::kRowid);
  EXPECT_EQ(w.unique_keys, (std::vector<std::vector<size_t>>{{1}}));
}

TEST(ChooseIdentity, RowidFallback) {
  RawTable raw{"t", {{"a", "TEXT", false, 0}}, false, {{"u", true, false, {0}}}};
  TableShape t = ChooseIdentity(raw);
  EXPECT_EQ(t.identity, TableShape::Identity::kRowid);
  ASSERT_EQ(t.columns.size(), 2u);
  EXPECT_EQ(t.columns[0].name, kRowidColumn);
  EXPECT_EQ(t.columns[0].declared_type, "INTEGER");
  EXPECT_EQ(t.columns[0].key_position, 1);
  EXPECT_EQ(t.columns[1].key_position, 0);
}

TEST(CheckNames, RefusesLongCollidingAndReservedNames) {
  TableShape ok;
  ok.name = std::string(63, 'a');
  ok.columns = {{"id", "", true, 1}};
  EXPECT_TRUE(CheckNames({ok}).ok());

  TableShape t1 = ok, t2 = ok;
  t1.name = std::string(63, 'x') + "1";
  t2.name = std::string(63, 'x') + "2";
  Status s = CheckNames({t1, t2});
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(s.message().find(t1.name), std::string::npos);
  EXPECT_NE(s.message().find("same first 63 bytes"), std::string::npos);
  EXPECT_NE(s.message().find("source.exclude"), std::string::npos);

  TableShape c = ok;
  c.columns.push_back({std::string(64, 'c'), "", false, 0});
  c.columns.push_back({"_Sluice_origin", "", false, 0});
  s = CheckNames({c});
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("64 bytes"), std::string::npos);
  EXPECT_NE(s.message().find("_Sluice_origin"), std::string::npos);

  TableShape r = ChooseIdentity(RawTable{"r", {{"x", "", false, 0}}, false, {}});
  EXPECT_TRUE(CheckNames({r}).ok());  // the synthetic _sluice_rowid is ours
}

TableShape ShapeWithColumns(const std::string& name, size_t n, bool rowid) {
  TableShape t;
  t.name = name;
  if (rowid) {
    t.identity = TableShape::Identity::kRowid;
    t.columns.push_back({kRowidColumn, "INTEGER", true, 1});
  }
  for (size_t i = 0; i < n; ++i) t.columns.push_back({"c" + std::to_string(i), "", false, 0});
  return t;
}

TEST(CheckLimits, PostgresColumnLimitLessSluiceColumns) {
  EXPECT_TRUE(CheckLimits({ShapeWithColumns("fits", 1596, false)}, 2000).ok());
  EXPECT_TRUE(CheckLimits({ShapeWithColumns("fits", 1595, true)}, 2000).ok());
  Status s = CheckLimits({ShapeWithColumns("a", 10, false), ShapeWithColumns("wide", 1597, false),
                          ShapeWithColumns("wider", 1596, true)},
                         2000);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(s.message().find("table \"wide\" has 1597 columns"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("table \"wider\" has 1597 columns"), std::string::npos) << s.message();
  EXPECT_EQ(s.message().find("\"a\""), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("source.exclude"), std::string::npos);
  // A build of SQLite with a lower result-column limit: the select list with
  // the rowid must fit too.
  EXPECT_TRUE(CheckLimits({ShapeWithColumns("r", 9, true)}, 10).ok());
  s = CheckLimits({ShapeWithColumns("r", 10, true)}, 10);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("\"r\""), std::string::npos) << s.message();
}

TEST(CheckLimits, KeyOfAtMost32Columns) {
  TableShape t = ShapeWithColumns("k", 40, false);
  for (int i = 0; i < 32; ++i) t.columns[static_cast<size_t>(i)].key_position = i + 1;
  EXPECT_TRUE(CheckLimits({t}, 2000).ok());
  t.columns[32].key_position = 33;
  Status s = CheckLimits({t}, 2000);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("table \"k\" is keyed by 33 columns"), std::string::npos)
      << s.message();
}

TEST(ValueStatsSql, SplitIntoGroupsWithinTheColumnLimit) {
  TableShape t = ShapeWithColumns("t", 1500, true);
  std::vector<std::pair<size_t, size_t>> groups = ValueStatsGroups(t, 2000);
  ASSERT_EQ(groups.size(), 6u);  // 285 columns x 7 per query
  size_t next = 0;
  for (const auto& [first, count] : groups) {
    EXPECT_EQ(first, next);
    EXPECT_LE(count * kStatsPerColumn, 2000u);
    next = first + count;
  }
  EXPECT_EQ(next, t.columns.size());
  EXPECT_EQ(ValueStatsGroups(ShapeWithColumns("e", 0, false), 2000).size(), 0u);
}

TEST(SchemaReader, OpenWebuiIdentities) {
  Result<std::unique_ptr<SqliteDb>> db = SqliteDb::OpenMemory();
  ASSERT_TRUE(db.ok());
  ASSERT_TRUE((*db)->Exec(testing::OpenWebuiSchema()).ok());
  Result<std::vector<std::string>> tables = ListUserTables(**db);
  ASSERT_TRUE(tables.ok());
  EXPECT_EQ(tables->size(), 25u);

  auto describe = [&](const std::string& name) {
    Result<TableShape> t = DescribeTable(**db, name);
    EXPECT_TRUE(t.ok()) << t.status().ToString();
    return t.ok() ? *t : TableShape{};
  };
  TableShape chat = describe("chat");
  EXPECT_EQ(chat.identity, TableShape::Identity::kUniqueIndex);
  EXPECT_EQ(KeyNames(chat), (std::vector<std::string>{"id"}));
  EXPECT_EQ(chat.columns.size(), 11u);
  EXPECT_EQ(chat.columns[7].declared_type, "JSON");

  TableShape tag = describe("tag");
  EXPECT_EQ(tag.identity, TableShape::Identity::kPrimaryKey);
  EXPECT_EQ(KeyNames(tag), (std::vector<std::string>{"id", "user_id"}));

  TableShape config = describe("config");
  EXPECT_EQ(config.identity, TableShape::Identity::kPrimaryKey);
  EXPECT_EQ(KeyNames(config), (std::vector<std::string>{"id"}));

  TableShape user = describe("user");
  EXPECT_EQ(user.identity, TableShape::Identity::kUniqueIndex);
  EXPECT_EQ(KeyNames(user), (std::vector<std::string>{"id"}));

  TableShape prompt = describe("prompt");  // INTEGER PRIMARY KEY (rowid alias)
  EXPECT_EQ(prompt.identity, TableShape::Identity::kPrimaryKey);
  EXPECT_EQ(KeyNames(prompt), (std::vector<std::string>{"id"}));

  for (const char* name : {"chatidtag", "auth", "memory", "model", "tool", "function", "file"}) {
    TableShape t = describe(name);
    EXPECT_EQ(t.identity, TableShape::Identity::kUniqueIndex) << name;
    EXPECT_EQ(KeyNames(t), (std::vector<std::string>{"id"})) << name;
  }
  for (const std::string& name : *tables) {
    EXPECT_NE(describe(name).identity, TableShape::Identity::kRowid) << name;
  }
}

TEST(SchemaReader, WithoutRowidAndVirtualTables) {
  Result<std::unique_ptr<SqliteDb>> db = SqliteDb::OpenMemory();
  ASSERT_TRUE(db.ok());
  ASSERT_TRUE((*db)
                  ->Exec("CREATE TABLE w(a TEXT, b INT, PRIMARY KEY (b, a)) WITHOUT ROWID;"
                         "CREATE VIRTUAL TABLE docs USING fts5(body);"
                         "CREATE TABLE plain(x);")
                  .ok());
  Result<TableShape> w = DescribeTable(**db, "w");
  ASSERT_TRUE(w.ok());
  EXPECT_TRUE(w->without_rowid);
  EXPECT_EQ(KeyNames(*w), (std::vector<std::string>{"b", "a"}));
  Result<TableShape> p = DescribeTable(**db, "plain");
  ASSERT_TRUE(p.ok());
  EXPECT_FALSE(p->without_rowid);
  EXPECT_EQ(p->identity, TableShape::Identity::kRowid);
  Result<std::vector<std::string>> tables = ListUserTables(**db);
  ASSERT_TRUE(tables.ok());
  EXPECT_EQ(*tables, (std::vector<std::string>{"plain", "w"}));  // no fts5 nor its shadows
}

TEST(SchemaReader, ValueStats) {
  Result<std::unique_ptr<SqliteDb>> db = SqliteDb::OpenMemory();
  ASSERT_TRUE(db.ok());
  ASSERT_TRUE((*db)
                  ->Exec("CREATE TABLE s(id INTEGER PRIMARY KEY, flag BOOLEAN, js JSON, any_);"
                         "INSERT INTO s VALUES (1, 0, '{\"a\":1}', 'abc'), (2, 1, '[1]', x'00'),"
                         "(3, NULL, NULL, 2.5);")
                  .ok());
  Result<TableShape> s = DescribeTable(**db, "s");
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE(FillValueStats(**db, &*s).ok());
  const uint8_t kInt = Value::Bit(Value::Kind::kInteger), kNull = Value::Bit(Value::Kind::kNull),
                kText = Value::Bit(Value::Kind::kText), kBlob = Value::Bit(Value::Kind::kBlob),
                kReal = Value::Bit(Value::Kind::kReal);
  EXPECT_EQ(s->columns[0].seen_kinds, kInt);
  EXPECT_FALSE(s->columns[0].integers_all_bool);
  EXPECT_EQ(s->columns[1].seen_kinds, kInt | kNull);
  EXPECT_TRUE(s->columns[1].integers_all_bool);
  EXPECT_EQ(s->columns[2].seen_kinds, kText | kNull);
  EXPECT_TRUE(s->columns[2].text_all_json);
  EXPECT_EQ(s->columns[3].seen_kinds, kText | kBlob | kReal);
  EXPECT_FALSE(s->columns[3].text_all_json);

  ASSERT_TRUE((*db)->Exec("DELETE FROM s").ok());
  ASSERT_TRUE(FillValueStats(**db, &*s).ok());
  EXPECT_EQ(s->columns[3].seen_kinds, 0);
  EXPECT_TRUE(s->columns[3].text_all_json);
  EXPECT_TRUE(s->columns[0].integers_all_bool);
}

TEST(SchemaReader, GeneratedColumnsAreColumnsAndCanBeTheIdentity) {
  Result<std::unique_ptr<SqliteDb>> db = SqliteDb::OpenMemory();
  ASSERT_TRUE(db.ok());
  ASSERT_TRUE((*db)
                  ->Exec("CREATE TABLE g(b TEXT, v INT GENERATED ALWAYS AS (length(b)) VIRTUAL,"
                         " s TEXT GENERATED ALWAYS AS ('k'||b) STORED UNIQUE NOT NULL, z);"
                         "CREATE TABLE h(b TEXT NOT NULL, v TEXT AS ('v'||b) NOT NULL, z);"
                         "CREATE UNIQUE INDEX h_v ON h(v);"
                         // The generated column before k shifts index column numbers.
                         "CREATE TABLE p(a, x AS (a+1), k TEXT NOT NULL UNIQUE);")
                  .ok());
  Result<TableShape> g = DescribeTable(**db, "g");
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  ASSERT_EQ(g->columns.size(), 4u);
  EXPECT_EQ(g->columns[1].name, "v");
  EXPECT_EQ(g->columns[1].declared_type, "INT");
  EXPECT_EQ(g->columns[2].name, "s");
  EXPECT_TRUE(g->columns[2].not_null);
  EXPECT_EQ(g->identity, TableShape::Identity::kUniqueIndex);  // the STORED one
  EXPECT_EQ(KeyNames(*g), (std::vector<std::string>{"s"}));

  Result<TableShape> h = DescribeTable(**db, "h");
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  ASSERT_EQ(h->columns.size(), 3u);
  EXPECT_EQ(h->identity, TableShape::Identity::kUniqueIndex);  // a VIRTUAL one
  EXPECT_EQ(KeyNames(*h), (std::vector<std::string>{"v"}));

  Result<TableShape> p = DescribeTable(**db, "p");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  ASSERT_EQ(p->columns.size(), 3u);
  EXPECT_EQ(KeyNames(*p), (std::vector<std::string>{"k"}));

  ASSERT_TRUE((*db)->Exec("INSERT INTO g(b, z) VALUES ('abc', 1)").ok());
  ASSERT_TRUE(FillValueStats(**db, &*g).ok());
  EXPECT_EQ(g->columns[1].seen_kinds, Value::Bit(Value::Kind::kInteger));
  EXPECT_EQ(g->columns[2].seen_kinds, Value::Bit(Value::Kind::kText));
}

}  // namespace
}  // namespace sluice
