// Tables as wide as the engines allow, and what a failed `init` leaves behind:
// a 300- and a 1,500-column table are scanned, tracked and read back whole; a
// table PostgreSQL cannot hold, or one whose scan fails, is refused by name
// before anything is written: a fresh file keeps no sluice object, an
// installed one keeps its earlier, working install.
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <fstream>
#include <string>
#include <vector>

#include "capture/installer.h"
#include "capture/journal_reader.h"
#include "capture/schema_reader.h"
#include "tests/capture/capture_test_util.h"
#include "tests/test_support.h"

namespace sluice {
namespace {

using testing::AppDb;
using testing::OptionsFor;

// CREATE TABLE with `columns` app columns c0..c{n-1}: INTEGER, TEXT and JSON
// in turn; with `id INTEGER PRIMARY KEY` first when `keyed` (else rowid).
std::string WideTableSql(const std::string& name, int columns, bool keyed) {
  static const char* kTypes[] = {"INTEGER", "TEXT", "JSON"};
  std::string sql = "CREATE TABLE \"" + name + "\"(";
  if (keyed) sql += "id INTEGER PRIMARY KEY, ";
  for (int i = 0; i < columns; ++i) {
    if (i > 0) sql += ", ";
    sql += "c" + std::to_string(i) + " " + kTypes[i % 3];
  }
  return sql + ")";
}

// The value row `r` holds in column c{i}.
Value WideValue(int r, int i) {
  switch (i % 3) {
    case 0:
      return Value::Integer(r * 100000 + i);
    case 1:
      return Value::Text("r" + std::to_string(r) + "c" + std::to_string(i));
    default:
      return Value::Text("{\"r\":" + std::to_string(r) + "}");
  }
}

void InsertWideRow(AppDb& app, const std::string& name, int columns, int r) {
  std::string cols, params;
  std::vector<Value> values;
  for (int i = 0; i < columns; ++i) {
    if (i > 0) {
      cols += ",";
      params += ",";
    }
    cols += "c" + std::to_string(i);
    params += "?" + std::to_string(i + 1);
    values.push_back(WideValue(r, i));
  }
  ASSERT_EQ(app.Run("INSERT INTO \"" + name + "\"(" + cols + ") VALUES (" + params + ")", values),
            SQLITE_OK);
}

// Every row of sqlite_master as text: equal dumps mean the schema is untouched.
std::string SchemaDump(const std::string& path);

// The names in sqlite_master, for failure messages (dumps are long).
std::string SchemaNames(const std::string& path) {
  AppDb app(path);
  return app.Scalar("SELECT group_concat(name, ' ') FROM sqlite_master");
}

#define EXPECT_SCHEMA_UNCHANGED(path, before) \
  EXPECT_TRUE(SchemaDump(path) == (before)) << "sqlite_master now: " << SchemaNames(path)

std::string SchemaDump(const std::string& path) {
  AppDb app(path);
  std::string out;
  for (const auto& row :
       app.Query("SELECT type, name, tbl_name, rootpage, sql FROM sqlite_master ORDER BY rowid")) {
    for (const std::string& f : row) out += f + "\x1f";
    out += "\n";
  }
  return out;
}

class WideTableTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { spdlog::set_level(spdlog::level::warn); }
  testing::TempDir dir_;
  std::string path_ = dir_.file("app.db");
};

TEST_F(WideTableTest, ScannedTrackedAndReadBack) {
  {
    AppDb app(path_);
    app.Exec("PRAGMA journal_mode=WAL");
    app.Exec(WideTableSql("w300", 300, /*keyed=*/true));
    app.Exec(WideTableSql("w1500", 1500, /*keyed=*/false));  // 1,501 columns with the rowid
    for (int r = 1; r <= 3; ++r) {
      InsertWideRow(app, "w300", 300, r);
      InsertWideRow(app, "w1500", 1500, r);
    }
  }
  Result<InstallReport> report = InstallCapture(OptionsFor(path_));
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  ASSERT_EQ(report->tables.size(), 2u);
  const uint8_t kInt = Value::Bit(Value::Kind::kInteger), kText = Value::Bit(Value::Kind::kText);
  for (const TableShape& t : report->tables) {
    ASSERT_EQ(t.columns.size(), 301u + (t.name == "w1500" ? 1200u : 0u)) << t.name;
    // Stats of the first, a middle and the last column: every query group lands.
    for (size_t i : {size_t{1}, t.columns.size() / 2, t.columns.size() - 1}) {
      const ColumnShape& c = t.columns[i];
      int n = std::stoi(c.name.substr(1));
      EXPECT_EQ(c.seen_kinds, n % 3 == 0 ? kInt : kText) << t.name << "." << c.name;
      EXPECT_EQ(c.text_all_json, n % 3 != 1) << t.name << "." << c.name;
    }
  }

  Result<std::unique_ptr<JournalReader>> reader = JournalReader::Open(OptionsFor(path_));
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  ASSERT_TRUE((*reader)->CheckSchema().ok());
  Batch batch;
  Status s = (*reader)->ReadBatch(0, {"w1500", "w300"}, &batch);
  ASSERT_TRUE(s.ok()) << s.ToString();
  std::vector<testing::Drained> rows = testing::Drain(&batch);
  ASSERT_EQ(rows.size(), 6u);
  for (const testing::Drained& d : rows) {
    int columns = d.table == "w300" ? 300 : 1500;
    ASSERT_EQ(d.values.size(), static_cast<size_t>(columns) + 1) << d.table;
    ASSERT_EQ(d.values[0].kind, Value::Kind::kInteger);  // id, or the rowid
    int r = static_cast<int>(d.values[0].integer);
    for (int i = 0; i < columns; ++i) {
      ASSERT_TRUE(d.values[static_cast<size_t>(i) + 1] == WideValue(r, i)) << d.table << " c" << i;
    }
  }

  // A change is looked up by key with every column.
  {
    AppDb app(path_);
    app.Exec("UPDATE w1500 SET c1499 = 'last' WHERE rowid = 2");
  }
  (*reader)->NoteCommitted(batch.full_read_marks);  // as after the sink commit
  Batch next;
  ASSERT_TRUE((*reader)->ReadBatch(batch.snapshot_seq, {}, &next).ok());
  rows = testing::Drain(&next);
  ASSERT_EQ(rows.size(), 1u);
  ASSERT_EQ(rows[0].values.size(), 1501u);
  EXPECT_EQ(rows[0].values[0], Value::Integer(2));
  EXPECT_EQ(rows[0].values[1500], Value::Text("last"));
  EXPECT_TRUE(rows[0].values[1499] == WideValue(2, 1498));
}

TEST_F(WideTableTest, TooWideForPostgresIsRefusedAndTheFileUntouched) {
  {
    AppDb app(path_);  // rollback journal mode: init would switch it to WAL
    app.Exec("CREATE TABLE ok(id INTEGER PRIMARY KEY, v)");
    app.Exec(WideTableSql("w1700", 1700, /*keyed=*/true));
  }
  std::string before = SchemaDump(path_);
  Result<InstallReport> r = InstallCapture(OptionsFor(path_));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(r.status().message().find("\"w1700\""), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("1701 columns"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("source.exclude"), std::string::npos);
  EXPECT_EQ(r.status().message().find("\"ok\""), std::string::npos) << r.status().message();
  EXPECT_SCHEMA_UNCHANGED(path_, before);
  {
    AppDb app(path_);
    EXPECT_EQ(app.Scalar("PRAGMA journal_mode"), "delete");  // switched back
  }

  CaptureOptions o = OptionsFor(path_);
  o.exclude = {"w1700"};
  r = InstallCapture(o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->tables.size(), 1u);

  // On an installed file the refusal changes nothing of the working install.
  before = SchemaDump(path_);
  r = InstallCapture(OptionsFor(path_));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("\"w1700\""), std::string::npos) << r.status().message();
  EXPECT_SCHEMA_UNCHANGED(path_, before);
  AppDb app(path_);
  EXPECT_EQ(app.Scalar("SELECT group_concat(name) FROM _sluice_tables"), "ok");
  EXPECT_EQ(app.Scalar("PRAGMA journal_mode"), "wal");
}

// Overwrites the b-tree page type of `table`'s root page: the schema still
// reads, a scan of the table fails with SQLITE_CORRUPT. The file must have no
// WAL content (rollback mode, or checkpointed and closed).
void CorruptRootPage(const std::string& path, const std::string& table) {
  int64_t root = 0, page_size = 0;
  {
    AppDb app(path);
    root =
        std::stoll(app.Scalar("SELECT rootpage FROM sqlite_master WHERE name = '" + table + "'"));
    page_size = std::stoll(app.Scalar("PRAGMA page_size"));
    app.Exec("PRAGMA wal_checkpoint(TRUNCATE)");
  }
  ASSERT_GT(root, 1);
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp((root - 1) * page_size);
  f.put(static_cast<char>(0xff));
  ASSERT_TRUE(f.good());
}

TEST_F(WideTableTest, InitThatCannotScanATableLeavesAFreshFileAsItWas) {
  {
    AppDb app(path_);
    app.Exec("CREATE TABLE ok(id INTEGER PRIMARY KEY, v); INSERT INTO ok VALUES (1, 'a');");
    app.Exec("CREATE TABLE bad(id INTEGER PRIMARY KEY, v); INSERT INTO bad VALUES (1, 'b');");
  }
  CorruptRootPage(path_, "bad");
  std::string before = SchemaDump(path_);
  Result<InstallReport> r = InstallCapture(OptionsFor(path_));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("\"bad\""), std::string::npos) << r.status().message();
  EXPECT_SCHEMA_UNCHANGED(path_, before);
  AppDb app(path_);
  EXPECT_EQ(app.Scalar("SELECT count(*) FROM sqlite_master WHERE name LIKE '%sluice%'"), "0");
  EXPECT_EQ(app.Scalar("SELECT v FROM ok"), "a");
}

TEST_F(WideTableTest, InitThatCannotScanATableKeepsTheEarlierInstall) {
  {
    AppDb app(path_);
    app.Exec("PRAGMA journal_mode=WAL");
    app.Exec("CREATE TABLE ok(id INTEGER PRIMARY KEY, v)");
  }
  Result<InstallReport> r = InstallCapture(OptionsFor(path_));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  {
    AppDb app(path_);
    app.Exec("INSERT INTO ok VALUES (1, 'a')");  // journaled: seq 1
    app.Exec("CREATE TABLE bad(id INTEGER PRIMARY KEY, v); INSERT INTO bad VALUES (1, 'b');");
  }
  CorruptRootPage(path_, "bad");
  std::string before = SchemaDump(path_);
  r = InstallCapture(OptionsFor(path_));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("\"bad\""), std::string::npos) << r.status().message();
  EXPECT_SCHEMA_UNCHANGED(path_, before);  // ok's triggers kept, none on bad
  AppDb app(path_);
  EXPECT_EQ(app.Scalar("SELECT group_concat(name) FROM _sluice_tables"), "ok");
  EXPECT_EQ(app.Scalar("SELECT count(*) || ' ' || max(seq) FROM _sluice_journal"), "1 1");
  app.Exec("INSERT INTO ok VALUES (2, 'b')");  // still captured
  EXPECT_EQ(app.Scalar("SELECT count(*) FROM _sluice_journal"), "2");
}

}  // namespace
}  // namespace sluice
