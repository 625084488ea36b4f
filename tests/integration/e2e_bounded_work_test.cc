// Issue #5 item 13 at sizes that run in seconds: a full read of a filled
// mirror under a low statement_timeout, and more tables than a small lock
// table holds in one transaction. The issue's own sizes: e2e_bounded_work_heavy.
#include "sink/pg_sql.h"
#include "tests/integration/bounded_work_cases.h"

namespace sluice::e2e {
namespace {

TEST_F(BoundedWork, FullReadOfAFilledMirrorUnderStatementTimeout) {
  if (skipped_) return;
  FullReadOfFilledMirror(200000, "500ms", seconds(120));
}

// Each statement of the sweep reads only its own pages (a TID range scan), so
// sweeping a table costs one pass, not one pass per statement.
TEST_F(BoundedWork, SweepStatementReadsOnlyItsPages) {
  if (skipped_) return;
  std::string t = PgTable(deployment_, "swept");
  pg_->Query("CREATE SCHEMA " + QuoteIdent(deployment_));
  pg_->Query("CREATE TABLE " + t +
             " (id bigint PRIMARY KEY, _sluice_seq bigint, _sluice_deleted_at timestamptz, "
             "_sluice_updated_at timestamptz, _sluice_outside_at timestamptz, _sluice_base jsonb)");
  pg_->Query("INSERT INTO " + t +
             " SELECT g, 0, NULL, now(), NULL, NULL FROM generate_series(1, 100000) g");
  pg_->Query("ANALYZE " + t);
  PgRows plan = pg_->Query("EXPLAIN (COSTS OFF) " + TombstoneRangeSql(t), {"128", "256"});
  std::string text;
  for (auto& r : plan.rows) text += r[0].value_or("") + "\n";
  EXPECT_NE(text.find("Tid Range Scan"), std::string::npos) << text;
  EXPECT_EQ(text.find("Seq Scan"), std::string::npos) << text;
}

TEST_F(BoundedWork, ManyTablesOnASmallLockTable) {
  if (skipped_) return;
  // A lock table of about 600 entries (10 x (5 connections + 22 background
  // slots), plus slack): creating 100 tables in one transaction (about 10 locks
  // each: table, key index, TOAST table and index, type, array type) does not
  // fit; reading each of them whole in one transaction (3 locks each) does.
  ManyTables(100, 100, {"max_connections=5", "max_locks_per_transaction=10"}, seconds(120));
}

// A filled mirror whose source table comes back with another key is set aside
// with every row tombstoned (item 7): under a low statement_timeout that too
// must be bounded statements, not one UPDATE of the whole table.
TEST_F(BoundedWork, KeyChangeOfAFilledMirrorUnderStatementTimeout) {
  if (skipped_) return;
  constexpr int64_t kRows = 200000;
  std::string db_path = dir_->file("rekey.db");
  Sqlite app(db_path);
  app.Exec("PRAGMA journal_mode=WAL");
  app.Exec("CREATE TABLE big (id INTEGER PRIMARY KEY, name TEXT)");
  app.Exec("WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < " +
           std::to_string(kRows) + ") INSERT INTO big SELECT i, 'row ' || i FROM c");
  std::string url = pg_url_ + " options='-c statement_timeout=150ms'";
  std::string config = WriteConfig(db_path, url);
  ASSERT_EQ(Init(config).exit_code, 0);
  AgentProcess* agent = StartAgent(config);
  ASSERT_TRUE(ExpectCaughtUp(config, agent, seconds(120)));
  int64_t old_relid =
      pg_->ScalarInt("SELECT to_regclass($1)::oid::bigint", {PgTable(deployment_, "big")});

  app.Exec(
      "BEGIN; DROP TABLE big; CREATE TABLE big (id INTEGER, name TEXT PRIMARY KEY);"
      "INSERT INTO big VALUES (1, 'one'), (2, 'two'); COMMIT;");
  ASSERT_TRUE(WaitUntil([&] { return agent->Log().find("has another key") != std::string::npos; },
                        seconds(60)))
      << agent->Log();
  bool timed_out = false;
  ASSERT_TRUE(WaitUntil(
      [&] {
        timed_out = agent->Log().find("statement timeout") != std::string::npos;
        AgentStatus st = QueryStatus(config);
        return timed_out || (st.CaughtUp() && st.pending_full_reads == 0) || !agent->Running();
      },
      seconds(120)));
  ASSERT_FALSE(timed_out) << "setting the old mirror aside hit statement_timeout:\n"
                          << agent->Log();
  ASSERT_TRUE(ExpectCaughtUp(config, agent, seconds(60)));
  std::string aside = PgTable(deployment_, "big__old_" + std::to_string(old_relid));
  EXPECT_EQ(pg_->ScalarInt("SELECT count(*) FROM " + aside + " WHERE _sluice_deleted_at IS NULL"),
            0);
  EXPECT_EQ(pg_->ScalarInt("SELECT count(*) FROM " + aside), kRows);
  ExpectMirrorEqual(app);
}

}  // namespace
}  // namespace sluice::e2e
