// Issue #5 item 13 at the sizes it names (slow suite): a 1,000,000-row table
// read whole into a filled mirror with statement_timeout = 2s on the agent's
// sessions, and 2,000 tables at a server with max_connections = 40.
#include "tests/integration/bounded_work_cases.h"

namespace sluice::e2e {
namespace {

TEST_F(BoundedWork, MillionRowFullReadUnderTwoSecondStatementTimeout) {
  if (skipped_) return;
  FullReadOfFilledMirror(1000000, "2s", seconds(300));
}

TEST_F(BoundedWork, TwoThousandTablesAtFortyConnections) {
  if (skipped_) return;
  // 2,000 tables at init; 500 more created by the agent (about 5,000 locks in
  // one transaction, where the lock table holds about 4,000).
  ManyTables(2000, 500, {"max_connections=40"}, seconds(300));
}

}  // namespace
}  // namespace sluice::e2e
