// Issue #5 item 13 at sizes that run in seconds: a full read of a filled
// mirror under a low statement_timeout, and more tables than a small lock
// table holds in one transaction. The issue's own sizes: e2e_bounded_work_heavy.
#include "tests/integration/bounded_work_cases.h"

namespace sluice::e2e {
namespace {

TEST_F(BoundedWork, FullReadOfAFilledMirrorUnderStatementTimeout) {
  if (skipped_) return;
  FullReadOfFilledMirror(200000, "500ms", seconds(120));
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
