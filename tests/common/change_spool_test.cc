// ChangeSpool: every storage class survives the round trip, in memory and spilled.
#include "common/change_spool.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "tests/test_support.h"

namespace sluice {
namespace {

Change Sample(int i) {
  Change c;
  c.kind = i % 3 == 0 ? Change::Kind::kDelete : Change::Kind::kUpsert;
  c.table = static_cast<uint32_t>(i % 7);
  c.seq = std::numeric_limits<int64_t>::max() - i;
  c.updates_existing = c.kind == Change::Kind::kUpsert && i % 4 == 1;
  c.values.push_back(Value::Integer(std::numeric_limits<int64_t>::min() + i));
  c.values.push_back(Value::Real(i % 2 ? std::numeric_limits<double>::infinity() : -0.5 * i));
  c.values.push_back(Value::Text(std::string("caf\xc3\xa9\0\xff", 7) + std::to_string(i)));
  c.values.push_back(Value::Blob(std::string(static_cast<size_t>(i % 50), '\0')));
  c.values.push_back(Value::Null());
  return c;
}

void ExpectRoundTrip(size_t limit, int n, bool expect_spilled) {
  testing::TempDir dir;
  ChangeSpool spool(limit, dir.path().string());
  for (int i = 0; i < n; ++i) ASSERT_TRUE(spool.Append(Sample(i)).ok());
  EXPECT_EQ(spool.size(), static_cast<size_t>(n));
  EXPECT_EQ(spool.spilled(), expect_spilled);
  for (int pass = 0; pass < 2; ++pass) {
    ASSERT_TRUE(spool.Rewind().ok());
    Change got;
    for (int i = 0; i < n; ++i) {
      Result<bool> more = spool.Next(&got);
      ASSERT_TRUE(more.ok()) << more.status().ToString();
      ASSERT_TRUE(*more);
      Change want = Sample(i);
      EXPECT_EQ(got.kind, want.kind);
      EXPECT_EQ(got.updates_existing, want.updates_existing) << i;
      EXPECT_EQ(got.table, want.table);
      EXPECT_EQ(got.seq, want.seq);
      ASSERT_EQ(got.values.size(), want.values.size());
      for (size_t k = 0; k < want.values.size(); ++k) EXPECT_TRUE(got.values[k] == want.values[k]);
    }
    Result<bool> end = spool.Next(&got);
    ASSERT_TRUE(end.ok());
    EXPECT_FALSE(*end);
  }
}

TEST(ChangeSpool, RoundTripInMemory) { ExpectRoundTrip(1u << 30, 500, false); }

TEST(ChangeSpool, RoundTripSpilledToFile) { ExpectRoundTrip(4096, 2000, true); }

TEST(ChangeSpool, AppendAfterReadIsRefused) {
  ChangeSpool spool;
  ASSERT_TRUE(spool.Append(Sample(1)).ok());
  ASSERT_TRUE(spool.Rewind().ok());
  EXPECT_FALSE(spool.Append(Sample(2)).ok());
}

TEST(ChangeSpool, MoveKeepsContents) {
  ChangeSpool a(64);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(a.Append(Sample(i)).ok());
  ChangeSpool b = std::move(a);
  EXPECT_EQ(b.size(), 10u);
  EXPECT_TRUE(a.empty());
  Change got;
  ASSERT_TRUE(b.Rewind().ok());
  int n = 0;
  while (*b.Next(&got)) ++n;
  EXPECT_EQ(n, 10);
}

// The batch goes on in memory (change_spool_fallback_test.cc); the reason names the directory.
TEST(ChangeSpool, UnwritableSpillDirectoryIsAClearError) {
  ChangeSpool spool(16, "/nonexistent-dir-for-sluice");
  Status st = spool.Append(Sample(1));
  EXPECT_TRUE(st.ok()) << st.ToString();
  EXPECT_NE(spool.spill_error().find("/nonexistent-dir-for-sluice"), std::string::npos);
  EXPECT_FALSE(ChangeSpool::CheckDir("/nonexistent-dir-for-sluice").ok());
}

}  // namespace
}  // namespace sluice
