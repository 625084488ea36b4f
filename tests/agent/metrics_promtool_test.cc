// A scrape of Metrics after every method was called, with hostile table names,
// passes Debian's `promtool check metrics` (Prometheus's own parser and its
// naming lint: _total on counters, base units, help on every family). The
// binary comes from $PROMTOOL (meson passes find_program('promtool')).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "agent/metrics.h"
#include "tests/test_support.h"

namespace sluice {
namespace {

struct Check {
  int exit_code = -1;
  std::string output;
};

// Runs `promtool check metrics` on `scrape`; returns its exit code and output.
Check PromtoolCheckMetrics(const std::string& scrape) {
  const char* promtool = std::getenv("PROMTOOL");
  EXPECT_NE(promtool, nullptr) << "PROMTOOL is not set";
  if (promtool == nullptr) return {};
  testing::TempDir dir;
  std::string file = dir.file("scrape.txt");
  std::ofstream(file, std::ios::binary) << scrape;
  std::string cmd = std::string("'") + promtool + "' check metrics < '" + file + "' 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  EXPECT_NE(p, nullptr);
  if (p == nullptr) return {};
  Check c;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) c.output.append(buf, n);
  int status = pclose(p);
  c.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return c;
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
  }
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
  Check c = PromtoolCheckMetrics(m.Serialize());
  EXPECT_EQ(c.exit_code, 0) << c.output;
  EXPECT_EQ(c.output, "");
}

TEST(MetricsPromtool, ScrapeAfterEveryMethodWithHostileTableNamesPasses) {
  Metrics m("0.1.0+\"dirty\"\n", "node\\a", "dep loyment\n");
  ExerciseEverything(
      m, {"user", "quo\"te", "back\\slash", "new\nline", "ünïcødé 表 🦀", "", "tab\there",
          "cr\rhere", "}{=,\" x=\"y", "trailing\\", "sluice_leader 1", "#TYPE x counter",
          "bad\xff"
          "utf8"});
  std::string scrape = m.Serialize();
  Check c = PromtoolCheckMetrics(scrape);
  EXPECT_EQ(c.exit_code, 0) << c.output << "\n--- scrape:\n" << scrape;
  EXPECT_EQ(c.output, "");
}

// The harness itself: promtool's complaints must fail the check above.
TEST(MetricsPromtool, HarnessSeesPromtoolComplaints) {
  Check lint = PromtoolCheckMetrics(
      "# HELP x_rows a counter without _total\n"
      "# TYPE x_rows counter\nx_rows 1\n");
  EXPECT_NE(lint.exit_code, 0);
  EXPECT_NE(lint.output, "");
  Check parse = PromtoolCheckMetrics("# TYPE y gauge\ny{table=\"a\nb\"} 1\n");
  EXPECT_NE(parse.exit_code, 0);
  EXPECT_NE(parse.output, "");
}

}  // namespace
}  // namespace sluice
