// FailureLog (agent/failure_log.h): the first failure at warn, repeats at
// error at doubling intervals with a count, another kind at once, progress
// resets; numbers in a message do not make it another kind.
#include "agent/failure_log.h"

#include <gtest/gtest.h>

#include <vector>

namespace sluice {
namespace {

using L = FailureReport::Level;

TEST(FailureLog, RepeatsAreReportedAtErrorAtDoublingIntervals) {
  FailureLog log(1000, 8000);
  std::vector<int64_t> reported_at;
  std::vector<L> levels;
  for (int64_t t = 0; t <= 40000; t += 100) {  // a retry every 100 ms for 40 s
    FailureReport r = log.Note("cannot reach PostgreSQL at h:5432", t);
    EXPECT_EQ(r.count, t / 100 + 1);
    EXPECT_EQ(r.first_at_ms, 0);
    if (r.level != L::kQuiet) {
      reported_at.push_back(t);
      levels.push_back(r.level);
    }
  }
  // 0 (warn), then gaps of 1, 2, 4, 8, 8, 8... seconds.
  std::vector<int64_t> want = {0, 1000, 3000, 7000, 15000, 23000, 31000, 39000};
  EXPECT_EQ(reported_at, want);
  ASSERT_FALSE(levels.empty());
  EXPECT_EQ(levels[0], L::kWarn);
  for (size_t i = 1; i < levels.size(); ++i) EXPECT_EQ(levels[i], L::kError);
}

TEST(FailureLog, AnotherKindIsReportedAtOnceAndKeepsTheCount) {
  FailureLog log(1000, 8000);
  EXPECT_EQ(log.Note("a", 0).level, L::kWarn);
  EXPECT_EQ(log.Note("a", 10).level, L::kQuiet);
  FailureReport r = log.Note("b", 20);
  EXPECT_EQ(r.level, L::kError);
  EXPECT_EQ(r.count, 3);
  EXPECT_EQ(log.Note("b", 30).level, L::kQuiet);
}

TEST(FailureLog, NumbersDoNotMakeAnotherKind) {
  EXPECT_EQ(FailureLog::Kind("batch after 12 to 340 failed: query 3 of 7"),
            "batch after # to # failed: query # of #");
  FailureLog log(1000, 8000);
  log.Note("batch after 12 to 40 failed", 0);
  EXPECT_EQ(log.Note("batch after 12 to 41 failed", 10).level, L::kQuiet);
}

TEST(FailureLog, ProgressResets) {
  FailureLog log(1000, 8000);
  log.Note("a", 0);
  log.Note("a", 5000);
  EXPECT_EQ(log.Reset(), 2);
  EXPECT_EQ(log.Reset(), 0);
  FailureReport r = log.Note("a", 6000);
  EXPECT_EQ(r.level, L::kWarn);
  EXPECT_EQ(r.count, 1);
  EXPECT_EQ(r.first_at_ms, 6000);
  EXPECT_EQ(log.Note("a", 6999).level, L::kQuiet);
  EXPECT_EQ(log.Note("a", 7000).level, L::kError);
}

}  // namespace
}  // namespace sluice
