// Issue #5 item 3: a row the sink cannot index (a 1 MB TEXT primary key:
// SQLSTATE 54000, "index row requires ... bytes") is parked in conflict_log
// with its table and reason, at the initial sync and incrementally, and every
// other row of every table arrives.
#include <string>
#include <vector>

#include "tests/integration/e2e_support.h"

namespace sluice::e2e {
namespace {

class UnindexableRow : public E2eTest {
 protected:
  void SetUp() override {
    E2eTest::SetUp();
    catch_up_timeout_ = seconds(30);
  }

  // "table|key length|reason" of every conflict_log row of this deployment.
  std::vector<std::string> Parked() {
    PgRows r = pg_->Query(
        "SELECT table_name, length(row_key->>0), reason FROM sync_metadata.conflict_log "
        "WHERE deployment = $1 ORDER BY id",
        {deployment_});
    std::vector<std::string> out;
    for (auto& row : r.rows) {
      out.push_back(row[0].value_or("") + "|" + row[1].value_or("") + "|" + row[2].value_or(""));
    }
    return out;
  }

  void Insert(Sqlite& app, const std::string& table, const std::string& id) {
    app.Query("INSERT INTO " + table + " (id, v) VALUES (?, ?)",
              {SqlValue::Text(id), SqlValue::Text("value of " + id)});
  }
};

TEST_F(UnindexableRow, HugeKeyIsParkedAtInitialSyncAndIncrementally) {
  if (skipped_) return;
  std::string db_path = dir_->file("huge_key.db");
  Sqlite app(db_path);
  app.Exec(
      "CREATE TABLE a (id TEXT PRIMARY KEY, v TEXT);"
      "CREATE TABLE b (id TEXT PRIMARY KEY, v TEXT);"
      "CREATE TABLE c (id TEXT PRIMARY KEY, v TEXT);");
  // Incompressible, so that TOAST cannot squeeze it into a btree entry.
  std::mt19937 rng(5);
  auto huge = [&rng] {
    std::string s;
    for (int i = 0; i < (1 << 20); ++i) s += static_cast<char>('a' + rng() % 26);
    return s;
  };
  const std::string huge1 = huge(), huge2 = huge();
  app.Exec("BEGIN");
  for (int i = 0; i < 33; ++i) {
    for (const char* t : {"a", "b", "c"}) Insert(app, t, std::string(t) + std::to_string(i));
    if (i == 16) Insert(app, "b", huge1);
  }
  app.Exec("COMMIT");

  std::string config = WriteConfig(db_path);
  ASSERT_EQ(Init(config).exit_code, 0);
  AgentProcess* agent = StartAgent(config);
  ASSERT_TRUE(ExpectCaughtUp(config, agent));
  auto parked_huge = [&](const std::string&, const SourceRowRef& row) {
    const SqlValue* id = row.Get("id");
    return id != nullptr && id->bytes.size() == huge1.size();
  };
  std::vector<std::string> parked = Parked();
  ASSERT_EQ(parked.size(), 1u) << ::testing::PrintToString(parked);
  EXPECT_EQ(parked[0].substr(0, 10), "b|1048576|") << parked[0];
  EXPECT_NE(parked[0].find("SQLSTATE 54000"), std::string::npos) << parked[0];
  {
    CompareReport report =
        CompareMirror(app, *pg_, deployment_, {.tables = {}, .is_parked = parked_huge});
    EXPECT_TRUE(report.ok()) << report.Text();
    EXPECT_EQ(report.rows_compared, 99);
    EXPECT_EQ(report.rows_parked, 1);
  }

  // Incrementally: another huge key among new rows, in another table.
  app.Exec("BEGIN");
  for (int i = 33; i < 66; ++i) {
    for (const char* t : {"a", "b", "c"}) Insert(app, t, std::string(t) + std::to_string(i));
    if (i == 40) Insert(app, "c", huge2);
  }
  app.Exec("COMMIT");
  ASSERT_TRUE(ExpectCaughtUp(config, agent));
  parked = Parked();
  ASSERT_EQ(parked.size(), 2u) << ::testing::PrintToString(parked);
  EXPECT_EQ(parked[1].substr(0, 10), "c|1048576|") << parked[1];
  EXPECT_NE(parked[1].find("SQLSTATE 54000"), std::string::npos) << parked[1];
  CompareReport report =
      CompareMirror(app, *pg_, deployment_, {.tables = {}, .is_parked = parked_huge});
  EXPECT_TRUE(report.ok()) << report.Text();
  EXPECT_EQ(report.rows_compared, 198);
  EXPECT_EQ(report.rows_parked, 2);
  EXPECT_NE(agent->Log().find("parking a row of table c"), std::string::npos);
  EXPECT_TRUE(agent->Running());
}

}  // namespace
}  // namespace sluice::e2e
