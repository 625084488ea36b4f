// Unit tests of the lease state machine (agent/lease.h): acquire, renew,
// expiry by the agent's own monotonic clock, release and fencing, with `now`
// as an argument.
#include "agent/lease.h"

#include <gtest/gtest.h>

namespace sluice {
namespace {

LeaseTimings Timings() { return {5000, 1666, 200}; }

LeaseReply Held(int64_t epoch, int64_t expires_in_ms = 5000) {
  return {true, epoch, "n1", "h1", expires_in_ms};
}

LeaseReply Other(int64_t epoch) { return {false, epoch, "n2", "h2", 3000}; }

TEST(LeaseTest, SafetyMarginIsATenthWithinBounds) {
  EXPECT_EQ(LeaseSafetyMarginMs(5000), 500);
  EXPECT_EQ(LeaseSafetyMarginMs(200), 50);
  EXPECT_EQ(LeaseSafetyMarginMs(60000), 1000);
}

TEST(LeaseTest, AcquireThenApplyUntilSendTimePlusDurationMinusMargin) {
  Lease lease(Timings());
  EXPECT_FALSE(lease.RequestEpoch().has_value());
  EXPECT_FALSE(lease.MayApply(0));
  lease.Sent(1000);
  // The reply takes 300 ms: the deadline still counts from the send.
  EXPECT_EQ(lease.OnReply(Held(7), 1300), LeaseEvent::kAcquired);
  EXPECT_TRUE(lease.leader());
  EXPECT_EQ(lease.epoch(), 7);
  EXPECT_EQ(lease.valid_until(), 1000 + 5000 - 500);
  EXPECT_TRUE(lease.MayApply(5499));
  EXPECT_FALSE(lease.MayApply(5500));
  EXPECT_EQ(lease.RequestEpoch(), 7);
}

TEST(LeaseTest, RenewalExtendsFromItsOwnSendTime) {
  Lease lease(Timings());
  lease.Sent(0);
  ASSERT_EQ(lease.OnReply(Held(1), 10), LeaseEvent::kAcquired);
  EXPECT_EQ(lease.NextRequestIn(10), 1666 - 10);
  lease.Sent(1666);
  EXPECT_EQ(lease.OnReply(Held(1), 1700), LeaseEvent::kRenewed);
  EXPECT_EQ(lease.valid_until(), 1666 + 4500);
  EXPECT_EQ(lease.NextRequestIn(1700), 1666 + 1666 - 1700);
}

TEST(LeaseTest, ExpiresByTheMonotonicClockWithoutAnyReply) {
  Lease lease(Timings());
  lease.Sent(0);
  ASSERT_EQ(lease.OnReply(Held(1), 5), LeaseEvent::kAcquired);
  lease.Sent(1666);  // the network is gone: no reply ever comes
  EXPECT_EQ(lease.OnTick(4499), LeaseEvent::kNone);
  EXPECT_TRUE(lease.MayApply(4499));
  EXPECT_EQ(lease.OnTick(4500), LeaseEvent::kLost);
  EXPECT_FALSE(lease.leader());
  EXPECT_FALSE(lease.MayApply(4500));
  EXPECT_EQ(lease.OnTick(9000), LeaseEvent::kNone);  // lost once
}

TEST(LeaseTest, FailedRenewalsRetrySoonAndLoseAtTheDeadline) {
  Lease lease(Timings());
  lease.Sent(0);
  ASSERT_EQ(lease.OnReply(Held(1), 5), LeaseEvent::kAcquired);
  lease.Sent(1666);
  EXPECT_EQ(lease.OnFailure(1700), LeaseEvent::kNone);
  EXPECT_TRUE(lease.leader());
  EXPECT_EQ(lease.NextRequestIn(1700), 200);  // poll_ms, not renew_ms
  lease.Sent(1900);
  EXPECT_EQ(lease.OnFailure(4600), LeaseEvent::kLost);
}

TEST(LeaseTest, AReplyThatComesTooLateDoesNotMakeALeader) {
  Lease lease(Timings());
  lease.Sent(0);
  EXPECT_EQ(lease.OnReply(Held(3), 4500), LeaseEvent::kNone);
  EXPECT_FALSE(lease.leader());
  EXPECT_EQ(lease.epoch(), 3);  // seen, for status
  Lease leader(Timings());
  leader.Sent(0);
  ASSERT_EQ(leader.OnReply(Held(3), 1), LeaseEvent::kAcquired);
  leader.Sent(1666);
  EXPECT_EQ(leader.OnReply(Held(3), 1666 + 4500), LeaseEvent::kLost);
}

TEST(LeaseTest, TheDatabasesShorterExpiryWins) {
  Lease lease(Timings());
  lease.Sent(0);
  ASSERT_EQ(lease.OnReply(Held(1, 2000), 5), LeaseEvent::kAcquired);
  EXPECT_EQ(lease.valid_until(), 2000 - 500);
}

TEST(LeaseTest, AnotherHolderMakesALeaderLoseAndAStandbyStay) {
  Lease standby(Timings());
  standby.Sent(0);
  EXPECT_EQ(standby.OnReply(Other(4), 2), LeaseEvent::kNone);
  EXPECT_FALSE(standby.leader());
  EXPECT_EQ(standby.holder(), "n2");
  EXPECT_EQ(standby.NextRequestIn(2), 200);
  Lease leader(Timings());
  leader.Sent(0);
  ASSERT_EQ(leader.OnReply(Held(4), 2), LeaseEvent::kAcquired);
  leader.Sent(1666);
  EXPECT_EQ(leader.OnReply(Other(5), 1670), LeaseEvent::kLost);
  EXPECT_EQ(leader.epoch(), 5);
  EXPECT_FALSE(leader.RequestEpoch().has_value());
}

TEST(LeaseTest, ANewEpochWhileLeadingIsANewAcquisition) {
  // The database expired the lease and this agent took it again at once.
  Lease lease(Timings());
  lease.Sent(0);
  ASSERT_EQ(lease.OnReply(Held(1), 1), LeaseEvent::kAcquired);
  lease.Sent(1666);
  EXPECT_EQ(lease.OnReply(Held(2), 1667), LeaseEvent::kAcquired);
  EXPECT_EQ(lease.epoch(), 2);
}

TEST(LeaseTest, FencedLosesAtOnce) {
  Lease lease(Timings());
  lease.Sent(0);
  ASSERT_EQ(lease.OnReply(Held(9), 1), LeaseEvent::kAcquired);
  EXPECT_EQ(lease.OnFenced(9), LeaseEvent::kLost);
  EXPECT_FALSE(lease.MayApply(2));
  EXPECT_EQ(lease.OnFenced(9), LeaseEvent::kNone);
}

// The lease ran out by this agent's clock while a batch was at the sink, and
// the agent took it again under a newer epoch before the batch's answer came:
// the sink's refusal of that batch (made under the older epoch) says nothing
// of the newer lease, which this agent holds at the sink.
TEST(LeaseTest, ARefusalOfAnOlderEpochsBatchLeavesTheNewerLease) {
  Lease lease(Timings());
  lease.Sent(0);
  ASSERT_EQ(lease.OnReply(Held(5), 1), LeaseEvent::kAcquired);
  ASSERT_EQ(lease.OnTick(4500), LeaseEvent::kLost);
  lease.Sent(5000);
  ASSERT_EQ(lease.OnReply(Held(6), 5001), LeaseEvent::kAcquired);
  EXPECT_EQ(lease.OnFenced(5), LeaseEvent::kNone);
  EXPECT_TRUE(lease.MayApply(5002));
  EXPECT_EQ(lease.epoch(), 6);
  EXPECT_EQ(lease.OnFenced(6), LeaseEvent::kLost);
  EXPECT_FALSE(lease.MayApply(5002));
}

}  // namespace
}  // namespace sluice
