// Tables at the edges of what sluice mirrors, through the real binary: a
// 300-column table (at init) and a 400-column one (created while the agent
// runs) arrive whole (their scan once failed with "too many columns in
// result set"); a 1,700-column table (PostgreSQL holds 1,600) or a 33-column
// key (a PostgreSQL index holds 32) fails `init` by name and leaves the file
// untouched; generated columns (VIRTUAL and
// STORED, one of them the identity) arrive and follow their base column.
#include <ostream>
#include <string>
#include <vector>

#include "tests/integration/e2e_support.h"

namespace sluice::e2e {
namespace {

// CREATE TABLE "name"(id INTEGER PRIMARY KEY, c0 INTEGER, c1 TEXT, c2 REAL, ...).
std::string WideTableSql(const std::string& name, int columns) {
  static const char* kTypes[] = {"INTEGER", "TEXT", "REAL"};
  std::string sql = "CREATE TABLE " + QuoteIdent(name) + "(id INTEGER PRIMARY KEY";
  for (int i = 0; i < columns; ++i) sql += ", c" + std::to_string(i) + " " + kTypes[i % 3];
  return sql + ")";
}

// The value row `r` holds in column c{i}, as PostgreSQL prints it.
std::string WideValueText(int r, int i) {
  switch (i % 3) {
    case 0:
      return std::to_string(r * 1000 + i);
    case 1:
      return "r" + std::to_string(r) + "c" + std::to_string(i);
    default:
      return std::to_string(r) + ".5";
  }
}

void InsertWideRows(Sqlite& db, const std::string& name, int columns, int rows) {
  std::string cols = "id", params = "?1";
  for (int i = 0; i < columns; ++i) {
    cols += ", c" + std::to_string(i);
    params += ", ?" + std::to_string(i + 2);
  }
  db.Exec("BEGIN");
  for (int r = 1; r <= rows; ++r) {
    std::vector<SqlValue> values{SqlValue::Int(r)};
    for (int i = 0; i < columns; ++i) {
      std::string v = WideValueText(r, i);
      values.push_back(i % 3 == 0   ? SqlValue::Int(std::stoll(v))
                       : i % 3 == 1 ? SqlValue::Text(v)
                                    : SqlValue::Real(std::stod(v)));
    }
    db.Query("INSERT INTO " + QuoteIdent(name) + "(" + cols + ") VALUES (" + params + ")", values);
  }
  db.Exec("COMMIT");
}

std::string SchemaDump(Sqlite& db) {
  std::string out;
  for (const SqlRow& row :
       db.Query("SELECT type, name, tbl_name, rootpage, sql FROM sqlite_master ORDER BY rowid")) {
    for (const SqlValue& v : row) out += v.Describe() + "\x1f";
    out += "\n";
  }
  return out;
}

class TableShapes : public E2eTest {};

TEST_F(TableShapes, WideTableArrivesInFull) {
  if (skipped_) return;
  constexpr int kColumns = 300, kRows = 40;
  std::string db_path = dir_->file("wide.db");
  Sqlite app(db_path);
  app.Exec(WideTableSql("w300", kColumns));
  InsertWideRows(app, "w300", kColumns, kRows);
  std::string config = WriteConfig(db_path);
  ASSERT_EQ(Init(config).exit_code, 0);
  AgentProcess* agent = StartAgent(config);
  ASSERT_TRUE(ExpectCaughtUp(config, agent, seconds(60)));
  ExpectMirrorEqual(app);
  EXPECT_EQ(pg_->ScalarInt("SELECT count(*) FROM " + PgTable(deployment_, "w300") +
                           " WHERE _sluice_deleted_at IS NULL"),
            kRows);
  // The last column of the last row, so a cut-off row cannot pass.
  EXPECT_EQ(pg_->Scalar("SELECT c299::text FROM " + PgTable(deployment_, "w300") +
                        " WHERE id = " + std::to_string(kRows)),
            std::optional<std::string>(WideValueText(kRows, 299)));

  app.Exec("UPDATE w300 SET c298 = 'changed' WHERE id = 7");
  ASSERT_TRUE(ExpectCaughtUp(config, agent, seconds(60)));
  EXPECT_EQ(pg_->Scalar("SELECT c298 FROM " + PgTable(deployment_, "w300") + " WHERE id = 7"),
            std::optional<std::string>("changed"));

  // Created while the agent runs, rows written before its triggers exist:
  // read whole by the agent's own scan of the new table.
  app.Exec("BEGIN; " + WideTableSql("w400", 400) + "; COMMIT;");
  InsertWideRows(app, "w400", 400, 5);
  ASSERT_TRUE(WaitUntil([&] { return pg_->TableExists(deployment_, "w400"); }, seconds(30)))
      << AgentLogs();
  ASSERT_TRUE(ExpectCaughtUp(config, agent, seconds(60)));
  EXPECT_EQ(pg_->ScalarInt("SELECT count(*) FROM " + PgTable(deployment_, "w400")), 5);
  ExpectMirrorEqual(app);
}

struct Refusal {
  std::string name;      // test name suffix
  std::string bad_sql;   // CREATE TABLE bad(...)
  std::string expected;  // in init's message
};
void PrintTo(const Refusal& r, std::ostream* os) { *os << r.name; }

class TableShapesRefused : public E2eTest, public ::testing::WithParamInterface<Refusal> {};

// A file with table `ok` and the refused table "bad": `init` fails by name
// (exit 2) before writing anything; with "bad" excluded, `ok` is mirrored.
TEST_P(TableShapesRefused, InitFailsByNameAndLeavesTheFileUntouched) {
  if (skipped_) return;
  const Refusal& refusal = GetParam();
  std::string db_path = dir_->file("refused.db");
  std::string before;
  {
    Sqlite app(db_path);
    app.Exec("CREATE TABLE ok(id INTEGER PRIMARY KEY, v TEXT); INSERT INTO ok VALUES (1, 'a');");
    app.Exec(refusal.bad_sql);
    before = SchemaDump(app);
  }
  std::string config = WriteConfig(db_path);
  CommandResult r = RunSluice({"init", "--config", config}, seconds(60));
  EXPECT_NE(r.exit_code, 0) << r.Describe();
  EXPECT_EQ(r.exit_code, 2) << "a table to leave out with source.exclude is a config matter";
  EXPECT_NE(r.err.find(refusal.expected), std::string::npos) << r.Describe();
  EXPECT_NE(r.err.find("source.exclude"), std::string::npos) << r.Describe();
  Sqlite app(db_path);
  EXPECT_TRUE(SchemaDump(app) == before) << "init changed sqlite_master";
  EXPECT_EQ(app.ScalarInt("SELECT count(*) FROM sqlite_master WHERE name LIKE '%sluice%'"), 0);
  EXPECT_FALSE(pg_->TableExists(deployment_, "ok")) << "init went on to the sink";

  config = WriteConfig(db_path, "", [](AgentConfig& c) { c.exclude = {"bad"}; });
  ASSERT_EQ(Init(config).exit_code, 0);
  AgentProcess* agent = StartAgent(config);
  ASSERT_TRUE(ExpectCaughtUp(config, agent, seconds(60)));
  ExpectMirrorEqual(app, {.tables = {"ok"}, .is_parked = nullptr});
}

std::string KeyOf33Columns() {
  std::string cols, key;
  for (int i = 0; i < 33; ++i) {
    cols += "k" + std::to_string(i) + " INTEGER, ";
    key += (i ? ", k" : "k") + std::to_string(i);
  }
  return "CREATE TABLE bad(" + cols + "PRIMARY KEY (" + key + "))";
}

INSTANTIATE_TEST_SUITE_P(
    Limits, TableShapesRefused,
    ::testing::Values(
        // PostgreSQL holds 1,600 columns a table, sluice keeps 4 of them.
        Refusal{"TooManyColumns", WideTableSql("bad", 1700), "table \"bad\" has 1701 columns"},
        // A PostgreSQL index holds 32 columns.
        Refusal{"KeyTooWide", KeyOf33Columns(), "table \"bad\" is keyed by 33 columns"}),
    [](const ::testing::TestParamInfo<Refusal>& p) { return p.param.name; });

TEST_F(TableShapes, GeneratedColumnsArriveAndFollowTheirBase) {
  if (skipped_) return;
  std::string db_path = dir_->file("generated.db");
  Sqlite app(db_path);
  app.Exec(
      "CREATE TABLE item(name TEXT NOT NULL, qty INTEGER,"
      " slug TEXT GENERATED ALWAYS AS ('item-' || lower(name)) STORED UNIQUE NOT NULL,"
      " total INTEGER GENERATED ALWAYS AS (qty * 10) VIRTUAL);"
      "INSERT INTO item(name, qty) VALUES ('Apple', 1), ('Pear', 2);");
  std::string config = WriteConfig(db_path);
  ASSERT_EQ(Init(config).exit_code, 0);
  AgentProcess* agent = StartAgent(config);
  ASSERT_TRUE(ExpectCaughtUp(config, agent, seconds(60)));
  const std::string table = PgTable(deployment_, "item");
  auto live = [&] {
    PgRows rows = pg_->Query("SELECT slug, name, qty::text, total::text FROM " + table +
                             " WHERE _sluice_deleted_at IS NULL ORDER BY slug");
    std::string out;
    for (const auto& row : rows.rows) {
      for (const auto& v : row) out += (v ? *v : "<null>") + " ";
      out += "| ";
    }
    return out;
  };
  EXPECT_EQ(SinkKeyColumns(*pg_, deployment_, "item"), (std::vector<std::string>{"slug"}));
  EXPECT_EQ(live(), "item-apple Apple 1 10 | item-pear Pear 2 20 | ");

  // The VIRTUAL column follows qty; renaming moves the STORED key.
  app.Exec(
      "UPDATE item SET qty = 5 WHERE name = 'Pear'; UPDATE item SET name = 'Quince' "
      "WHERE name = 'Apple'; INSERT INTO item(name, qty) VALUES ('Fig', 3);");
  ASSERT_TRUE(ExpectCaughtUp(config, agent, seconds(60)));
  EXPECT_EQ(live(), "item-fig Fig 3 30 | item-pear Pear 5 50 | item-quince Quince 1 10 | ");
  EXPECT_EQ(SinkRowTombstoned(*pg_, deployment_, "item", {{"slug", "item-apple"}}),
            std::optional<bool>(true));
}

}  // namespace
}  // namespace sluice::e2e
