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
             "_sluice_updated_at timestamptz)");
  pg_->Query("INSERT INTO " + t + " SELECT g, 0, NULL, now() FROM generate_series(1, 100000) g");
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

}  // namespace
}  // namespace sluice::e2e
