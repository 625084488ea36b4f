// A scrape of Metrics after every method was called, with hostile table names,
// passes Debian's `promtool check metrics` (Prometheus's own parser and its
// naming lint: _total on counters, base units, help on every family). The
// binary comes from $PROMTOOL (meson passes find_program('promtool')).
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "agent/metrics.h"
#include "tests/support/processes.h"
#include "tests/test_support.h"

namespace sluice {
namespace {

// Runs `promtool check metrics` (it reads stdin only) on `scrape`.
testing::CommandResult PromtoolCheckMetrics(const std::string& scrape) {
  const char* promtool = std::getenv("PROMTOOL");
  EXPECT_NE(promtool, nullptr) << "PROMTOOL is not set";
  if (promtool == nullptr) return {};
  testing::TempDir dir;
  std::string file = dir.file("scrape.txt");
  testing::WriteFile(file, scrape);
  return testing::RunCommand(
      {"sh", "-c", "exec \"$0\" check metrics < \"$1\" 2>&1", promtool, file});
}

void ExerciseEverything(Metrics& m, const std::vector<std::string>& tables) {
  m.SetTables(tables);
  m.SetLeader(true);
  m.SetEpoch(42);
  m.SetLeaseExpirySeconds(3.5);
  m.LeaseAcquired();
  m.LeaseRenewed();
  m.LeaseRenewalFailed();
  m.ChangesCaptured(100);
  for (const std::string& t : tables) {
    m.RowsApplied(t, 7, 3);
    m.RowsParked(t, 1);
    m.ConflictsSeen(t, "update_origin_differs", "merge", 2);
  }
  m.SetConflictsPending(3);
  m.RowsApplied("added later \"x\"\n", 1, 1);
  m.BatchApplied(10, 0.004);
  m.BatchApplied(250000, 12.5);
  m.SetLag(0.2);
  m.SetBacklog(99);
  m.SetPosition(1234);
  for (SinkErrorKind k :
       {SinkErrorKind::kConnection, SinkErrorKind::kTimeout, SinkErrorKind::kPositionConflict,
        SinkErrorKind::kFenced, SinkErrorKind::kRejectedRow, SinkErrorKind::kPermission,
        SinkErrorKind::kSchema, SinkErrorKind::kOther}) {
    m.SinkError(k);
  }
  m.Reconnected();
}

TEST(MetricsPromtool, FirstScrapePasses) {
  Metrics m("0.1.0", "node-a", "acme");
  m.SetTables({"user", "chat"});
  testing::CommandResult c = PromtoolCheckMetrics(m.Serialize());
  EXPECT_EQ(c.exit_code, 0) << c.out;
  EXPECT_EQ(c.out, "");
}

TEST(MetricsPromtool, ScrapeAfterEveryMethodWithHostileTableNamesPasses) {
  Metrics m("0.1.0+\"dirty\"\n", "node\\a", "dep loyment\n");
  ExerciseEverything(
      m, {"user", "quo\"te", "back\\slash", "new\nline", "ünïcødé 表 🦀", "", "tab\there",
          "cr\rhere", "}{=,\" x=\"y", "trailing\\", "sluice_leader 1", "#TYPE x counter",
          "bad\xff"
          "utf8"});
  std::string scrape = m.Serialize();
  testing::CommandResult c = PromtoolCheckMetrics(scrape);
  EXPECT_EQ(c.exit_code, 0) << c.out << "\n--- scrape:\n" << scrape;
  EXPECT_EQ(c.out, "");
}

// The harness itself: promtool's complaints must fail the check above.
TEST(MetricsPromtool, HarnessSeesPromtoolComplaints) {
  testing::CommandResult lint = PromtoolCheckMetrics(
      "# HELP x_rows a counter without _total\n"
      "# TYPE x_rows counter\nx_rows 1\n");
  EXPECT_NE(lint.exit_code, 0);
  EXPECT_NE(lint.out, "");
  testing::CommandResult parse = PromtoolCheckMetrics("# TYPE y gauge\ny{table=\"a\nb\"} 1\n");
  EXPECT_NE(parse.exit_code, 0);
  EXPECT_NE(parse.out, "");
}

}  // namespace
}  // namespace sluice
