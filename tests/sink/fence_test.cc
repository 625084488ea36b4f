// The epoch fence, deterministic, against a real PostgreSQL: a batch applied
// under epoch N whose lease is taken over by epoch N+1 while the batch's
// transaction is open (held on a table lock of the test's after
// sluice_advance let it in) is refused at its commit with kFenced and leaves
// nothing behind; a batch under the current epoch commits and records that
// epoch in applied_batches; a batch under an old epoch is refused at once.
#include <gtest/gtest.h>
#include <uv.h>

#include <optional>
#include <string>
#include <vector>

#include "sink/batch_applier.h"
#include "tests/sink/applier_fixture.h"

namespace sluice {
namespace {

using testing::ApplierTest;
using testing::I;
using testing::Pg;
using testing::T;
using testing::TagShape;
using testing::Upsert;

class FenceTest : public ApplierTest {
 protected:
  // sluice_lease for `node` (holding no epoch): the epoch it holds after, or
  // nullopt when someone else holds an unexpired lease.
  std::optional<int64_t> Acquire(Pg& pg, const std::string& node) {
    testing::PgRows r = pg.Query(
        "SELECT held, epoch FROM sync_metadata.sluice_lease($1, $2, 'test-host', NULL, 60000)",
        {name_, node});
    if (r.rows.empty() || r.rows[0][0] != std::optional<std::string>("t")) return std::nullopt;
    return std::stoll(*r.rows[0][1]);
  }
  std::vector<std::string> Batches() {
    return Q(
        "SELECT after_seq || '-' || snapshot_seq || '@' || coalesce(epoch::text, 'NULL') FROM "
        "sync_metadata.applied_batches WHERE deployment = '" +
        name_ + "' ORDER BY after_seq");
  }
};

TEST_F(FenceTest, TakenOverBeforeTheCommitIsFencedCurrentEpochCommits) {
  if (pg_.empty()) return;
  Pg admin(pg_);
  std::optional<int64_t> n = Acquire(admin, "n1");
  ASSERT_TRUE(n.has_value());

  // Under the current epoch: commits, with the epoch recorded.
  applier_->SetLease(*n, 0);
  Batch b1 = NewBatch(-1, 10, {TagShape()});
  ASSERT_TRUE(b1.changes.Append(Upsert(0, 5, {T("t1"), T("u1"), T("work")})).ok());
  Status st = Apply(&b1);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(Position(), 10);
  EXPECT_EQ(Batches(), std::vector<std::string>{"-1-10@" + std::to_string(*n)});

  // The next batch under N gets past sluice_advance, then waits on a lock
  // the test holds on the mirror table: its transaction is open.
  Pg locker(pg_);
  locker.Query("BEGIN");
  locker.Query("LOCK TABLE " + S() + ".tag IN EXCLUSIVE MODE");
  Batch b2 = NewBatch(10, 20, {TagShape()});
  ASSERT_TRUE(b2.changes.Append(Upsert(0, 15, {T("t2"), T("u1"), T("home")})).ok());
  ASSERT_TRUE(b2.changes.Append(Upsert(0, 16, {T("t1"), T("u1"), T("changed")})).ok());
  std::optional<Status> result;
  applier_->Apply(conn_.get(), &b2, [&](Status s, ApplyStats) { result = s; });
  ASSERT_TRUE(RunUntil([&] {
    return result.has_value() ||
           admin.ScalarInt("SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = '" +
                           S() + ".tag'::regclass") > 0;
  }));
  ASSERT_FALSE(result.has_value()) << result->ToString();

  // N's lease runs out and node n2 takes it: epoch N+1.
  admin.Query(
      "UPDATE sync_metadata.leader_election SET expires_at = clock_timestamp() - interval '1 s' "
      "WHERE deployment = $1",
      {name_});
  std::optional<int64_t> next = Acquire(admin, "n2");
  ASSERT_EQ(next, std::optional<int64_t>(*n + 1));

  // The lock goes: the batch reaches its commit and is refused there.
  locker.Query("COMMIT");
  ASSERT_TRUE(RunUntil([&] { return result.has_value(); }));
  EXPECT_EQ(result->code(), Status::Code::kFenced) << result->ToString();
  EXPECT_EQ(Position(), 10);
  EXPECT_EQ(Q("SELECT id, name, _sluice_seq FROM " + S() + ".tag ORDER BY id"),
            std::vector<std::string>{"t1|work|5"});
  EXPECT_EQ(Batches(), std::vector<std::string>{"-1-10@" + std::to_string(*n)});

  // The same batch under an old epoch again: refused at once.
  st = Apply(&b2);
  EXPECT_EQ(st.code(), Status::Code::kFenced) << st.ToString();
  EXPECT_EQ(Position(), 10);

  // Under N+1 it commits, and applied_batches says so.
  applier_->SetLease(*next, 0);
  st = Apply(&b2);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(Position(), 20);
  EXPECT_EQ(Q("SELECT id, name, _sluice_seq FROM " + S() + ".tag ORDER BY id"),
            (std::vector<std::string>{"t1|changed|16", "t2|home|15"}));
  EXPECT_EQ(Batches(), (std::vector<std::string>{"-1-10@" + std::to_string(*n),
                                                 "10-20@" + std::to_string(*next)}));
}

}  // namespace
}  // namespace sluice
