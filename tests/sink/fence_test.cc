// The epoch fence, deterministic, against a real PostgreSQL: a batch applied
// under epoch N whose lease is taken over by epoch N+1 while the batch's
// transaction is open (held on a table lock of the test's after
// sluice_advance let it in) is refused at its commit with kFenced and leaves
// nothing behind; a batch under the current epoch commits and records that
// epoch in applied_batches; a batch under an old epoch is refused at once; a
// takeover ends the session of a batch still open under an older epoch.
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
  // Batches waiting on a lock of the test's on the mirror table (their transaction open).
  int64_t Waiting(Pg& pg) {
    return pg.ScalarInt("SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = '" + S() +
                        ".tag'::regclass");
  }
  // What OpenBatchUnderALock sets up: an admin session, the session holding
  // the lock, the two batches and b2's outcome (once it has one).
  struct OpenBatch {
    explicit OpenBatch(const std::string& conninfo) : admin(conninfo), locker(conninfo) {}
    Pg admin;
    Pg locker;
    Batch b1, b2;
    std::optional<Status> result;
  };
  // n1 takes the lease (epoch N) and a first batch b1 commits under it, with
  // the epoch recorded; then b2 (rows t2 and t1 again) under N gets past
  // sluice_advance and waits on a lock `o->locker` holds on the mirror table.
  // N, or nullopt on a failure (recorded).
  std::optional<int64_t> OpenBatchUnderALock(OpenBatch* o) {
    Pg& admin = o->admin;
    std::optional<int64_t> n = Acquire(admin, "n1");
    if (!n) return Failed("n1 did not get the lease");
    applier_->SetLease(*n, 0);
    o->b1 = NewBatch(-1, 10, {TagShape()});
    if (!o->b1.changes.Append(Upsert(0, 5, {T("t1"), T("u1"), T("work")})).ok()) {
      return Failed("b1");
    }
    Status st = Apply(&o->b1);
    if (!st.ok()) return Failed(st.ToString());
    EXPECT_EQ(Position(), 10);
    EXPECT_EQ(Batches(), std::vector<std::string>{"-1-10@" + std::to_string(*n)});
    o->locker.Query("BEGIN");
    o->locker.Query("LOCK TABLE " + S() + ".tag IN EXCLUSIVE MODE");
    o->b2 = NewBatch(10, 20, {TagShape()});
    if (!o->b2.changes.Append(Upsert(0, 15, {T("t2"), T("u1"), T("home")})).ok() ||
        !o->b2.changes.Append(Upsert(0, 16, {T("t1"), T("u1"), T("changed")})).ok()) {
      return Failed("b2");
    }
    std::optional<Status>* result = &o->result;
    applier_->Apply(conn_.get(), &o->b2, [result](Status s, ApplyStats) { *result = s; });
    if (!RunUntil([&] { return result->has_value() || Waiting(admin) > 0; })) {
      return Failed("b2 neither waits nor ends");
    }
    if (result->has_value()) return Failed("b2 ended: " + (*result)->ToString());
    return n;
  }
  static std::optional<int64_t> Failed(const std::string& what) {
    ADD_FAILURE() << what;
    return std::nullopt;
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
  // Under the current epoch: commits, with the epoch recorded. The next
  // batch under N gets past sluice_advance, then waits on a lock the test
  // holds on the mirror table: its transaction is open.
  OpenBatch o(pg_);
  std::optional<int64_t> n = OpenBatchUnderALock(&o);
  ASSERT_TRUE(n.has_value());
  Pg& admin = o.admin;
  std::optional<Status>& result = o.result;

  // N's lease runs out and node n2 takes it: epoch N+1. Taken by hand, as a
  // takeover that cannot end the old session would (another role's: see
  // sluice_lease and TakeoverEndsTheOpenBatchOfAnOlderEpoch): then the fence
  // at the commit is what refuses the batch.
  admin.Query(
      "UPDATE sync_metadata.leader_election SET epoch = epoch + 1, leader_id = 'n2', "
      "expires_at = clock_timestamp() + interval '60 s' WHERE deployment = $1",
      {name_});
  std::optional<int64_t> next = *n + 1;

  // The lock goes: the batch reaches its commit and is refused there.
  o.locker.Query("COMMIT");
  ASSERT_TRUE(RunUntil([&] { return result.has_value(); }));
  EXPECT_EQ(result->code(), Status::Code::kFenced) << result->ToString();
  EXPECT_EQ(Position(), 10);
  EXPECT_EQ(Q("SELECT id, name, _sluice_seq FROM " + S() + ".tag ORDER BY id"),
            std::vector<std::string>{"t1|work|5"});
  EXPECT_EQ(Batches(), std::vector<std::string>{"-1-10@" + std::to_string(*n)});

  // The same batch under an old epoch again: refused at once.
  Status st = Apply(&o.b2);
  EXPECT_EQ(st.code(), Status::Code::kFenced) << st.ToString();
  EXPECT_EQ(Position(), 10);

  // Under N+1 it commits, and applied_batches says so.
  applier_->SetLease(*next, 0);
  st = Apply(&o.b2);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(Position(), 20);
  EXPECT_EQ(Q("SELECT id, name, _sluice_seq FROM " + S() + ".tag ORDER BY id"),
            (std::vector<std::string>{"t1|changed|16", "t2|home|15"}));
  EXPECT_EQ(Batches(), (std::vector<std::string>{"-1-10@" + std::to_string(*n),
                                                 "10-20@" + std::to_string(*next)}));
}

// A new holder of the lease ends the session of a batch still open under an
// older epoch (it could never commit, but it holds its locks against the new
// holder's batches, and one whose client froze halfway through a pipeline is
// not idle in transaction: nothing else would end it). A renewal ends nothing.
TEST_F(FenceTest, TakeoverEndsTheOpenBatchOfAnOlderEpoch) {
  if (pg_.empty()) return;
  OpenBatch o(pg_);
  std::optional<int64_t> n = OpenBatchUnderALock(&o);
  ASSERT_TRUE(n.has_value());
  Pg& admin = o.admin;
  std::optional<Status>& result = o.result;

  // n1 renews: its own open batch goes on waiting.
  testing::PgRows renewed =
      admin.Query("SELECT held FROM sync_metadata.sluice_lease($1, 'n1', 'test-host', $2, 60000)",
                  {name_, std::to_string(*n)});
  ASSERT_EQ(renewed.rows.at(0).at(0), std::optional<std::string>("t"));
  EXPECT_EQ(Waiting(admin), 1);

  // n1's lease runs out and n2 takes it: the batch's session ends at once,
  // while the test still holds its lock.
  admin.Query(
      "UPDATE sync_metadata.leader_election SET expires_at = clock_timestamp() - interval '1 s' "
      "WHERE deployment = $1",
      {name_});
  ASSERT_EQ(Acquire(admin, "n2"), std::optional<int64_t>(*n + 1));
  ASSERT_TRUE(RunUntil([&] { return result.has_value(); }));
  EXPECT_EQ(result->code(), Status::Code::kUnavailable) << result->ToString();
  EXPECT_NE(result->message().find("SQLSTATE 57P01"), std::string::npos) << result->ToString();
  EXPECT_EQ(Waiting(admin), 0);
  o.locker.Query("COMMIT");
  EXPECT_EQ(Position(), 10);
  EXPECT_EQ(Q("SELECT id, name, _sluice_seq FROM " + S() + ".tag ORDER BY id"),
            std::vector<std::string>{"t1|work|5"});
  EXPECT_EQ(Batches(), std::vector<std::string>{"-1-10@" + std::to_string(*n)});
}

}  // namespace
}  // namespace sluice
