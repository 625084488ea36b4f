// Issue #6, a pair of agents: two real `sluice run` processes (nodes a and b)
// on one deployment and one SQLite file, a real PostgreSQL, a 1-second lease.
// Exactly one applies; a leader frozen inside an open apply transaction for
// longer than the lease never commits that batch (its transaction dies by
// idle_in_transaction_session_timeout, or the fence refuses it) and comes
// back as a standby; a wall-clock jump on an agent changes nothing (the lease
// runs on the monotonic clock and the database's); a sink unreachable for
// longer than the lease makes the leader give up by its own clock, and
// leadership comes back under a new epoch. Every test ends with the mirror
// exact, every ledger row applied exactly once and the epochs in order.
// The long loops (kills, simultaneous starts, handovers) are in
// e2e_failover_slow_test.cc.
#include <signal.h>

#include <string>
#include <vector>

#include "tests/integration/pair_support.h"
#include "tests/integration/stalling_proxy.h"

namespace sluice::e2e {
namespace {

class Failover : public PairTest {
 protected:
  // Nodes a and b, one row per chunk: a syncs and commits under a first epoch,
  // then runs again (alone, so it leads again) with the fault point `fault`
  // armed, and b stands by. Returns the epoch a leads under (0 on a failure,
  // recorded).
  int64_t LeaderArmedWith(const std::string& fault) {
    auto small_chunks = [](AgentConfig& c) { c.sink_extra = "\"chunk_rows\": 1"; };
    Node& a = AddNode("a", small_chunks);
    Node& b = AddNode("b", small_chunks);
    watch_.Start();
    Start(a);
    if (WaitLeader() != &a) return Failed("a did not lead");
    for (int i = 0; i < 3; ++i) ledger_->Write(*app_, 1);
    if (!ExpectCaughtUp(init_config_, a.agent)) return Failed("a did not catch up");
    if (Term(a) != 0) return Failed("a did not stop with 0");
    Start(a, {{"SLUICE_FAULT", fault}});
    if (WaitLeader() != &a) return Failed("a did not lead again");
    const int64_t epoch = Lease().epoch;
    Start(b);
    if (!WaitStandby(b)) return Failed("b did not stand by");
    return epoch;
  }
  static int64_t Failed(const std::string& what) {
    ADD_FAILURE() << what;
    return 0;
  }
  int64_t AppliedSeq() {
    return pg_->ScalarInt(
        "SELECT applied_seq FROM sync_metadata.source_position WHERE deployment = $1",
        {deployment_});
  }
  // Batches committed under `epoch` that start at or after `seq`.
  int64_t CommittedUnder(int64_t epoch, int64_t seq) {
    return pg_->ScalarInt(
        "SELECT count(*) FROM sync_metadata.applied_batches WHERE deployment = $1 AND epoch = $2 "
        "AND after_seq >= $3",
        {deployment_, std::to_string(epoch), std::to_string(seq)});
  }
};

// /proc/<pid>/stat says the process is stopped (SIGSTOP).
bool Frozen(pid_t pid) {
  std::string stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  size_t p = stat.rfind(')');
  return p != std::string::npos && p + 2 < stat.size() && stat[p + 2] == 'T';
}

TEST_F(Failover, ExactlyOneApplies) {
  if (skipped_) return;
  MakeApp(500);
  ASSERT_TRUE(StartPair());
  Node& a = *nodes_[0];
  Node& b = *nodes_[1];
  StartLoad();
  // Both run under the load for a while: only a commits.
  std::this_thread::sleep_for(seconds(3));
  SinkLease lease = Lease();
  EXPECT_EQ(lease.holder, "a");
  EXPECT_TRUE(lease.valid);
  EXPECT_EQ(StateOf(b.state_path, b.pid()), "standby");
  EXPECT_FALSE(SaysLeader(b.state_path, b.pid()));
  EXPECT_TRUE(SaysLeader(a.state_path, a.pid()));
  ExpectExact();
  std::vector<int64_t> epochs;
  EXPECT_EQ(CheckEpochOrder(&epochs), "");
  EXPECT_EQ(epochs, std::vector<int64_t>{lease.epoch}) << "every batch must carry a's epoch";
  EXPECT_EQ(b.agent->Log().find("leader lease acquired"), std::string::npos);
  EXPECT_GT(watch_.led(), watch_.samples() / 2) << "a did not say it leads most of the time";
}

TEST_F(Failover, LeaderFrozenInsideATransactionNeverCommitsIt) {
  if (skipped_) return;
  MakeApp(300);
  const int64_t old_epoch = LeaderArmedWith("between-chunks:stop");
  ASSERT_GT(old_epoch, 0);
  Node& a = *nodes_[0];

  // A five-row batch: a stops itself after its first chunk, transaction open.
  ledger_->Write(*app_, 5);
  ASSERT_TRUE(WaitUntil([&] { return Frozen(a.pid()); }, seconds(10)))
      << "a did not freeze inside the batch";
  auto frozen_at = Clock::now();
  watch_.Set(a.id, a.state_path, -1);  // a frozen process answers nothing
  const int64_t frozen_after = AppliedSeq();
  StartLoad();

  // b takes over and commits, while a is still frozen.
  std::optional<milliseconds> took = WaitCommitAbove(old_epoch, frozen_at, seconds(15));
  ASSERT_TRUE(took.has_value()) << "b never committed while a was frozen";
  EXPECT_TRUE(Frozen(a.pid()));
  SinkLease lease = Lease();
  EXPECT_EQ(lease.holder, "b");
  EXPECT_GT(lease.epoch, old_epoch);
  std::cerr << "frozen leader: b's first commit " << took->count() << " ms after a froze\n";

  // Longer than the lease (and than the idle-in-transaction timeout), then resume a.
  std::this_thread::sleep_until(frozen_at + milliseconds(3 * kLeaseMs));
  a.agent->Signal(SIGCONT);
  // Watched again once it wrote its state file again (the one there is
  // from before the freeze).
  EXPECT_TRUE(WaitStandby(a));
  watch_.Set(a.id, a.state_path, a.pid());
  EXPECT_FALSE(SaysLeader(a.state_path, a.pid()));
  std::this_thread::sleep_for(seconds(1));  // b goes on applying; a stays by
  EXPECT_EQ(StateOf(a.state_path, a.pid()), "standby");
  EXPECT_NE(CurrentLog(a).find("leader lease lost"), std::string::npos);
  ExpectExact();

  // The batch a held open never committed: no batch under a's epoch starts
  // at or after the position it froze at, and along after_seq the epochs
  // never go down (ExpectExact).
  EXPECT_EQ(CommittedUnder(old_epoch, frozen_after), 0);
  EXPECT_EQ(Lease().holder, "b");
}

// A leader frozen halfway through sending a batch: the first chunk (with the
// batch's header, which locks the position row) is over libpq's 64 kB, so it
// leaves before its Sync, and the agent stops there. The server runs what came
// and waits for the rest with its locks held; it is not idle in transaction
// (no Sync came), so idle_in_transaction_session_timeout never ends it. The
// next leader must still commit while the old one stays frozen.
TEST_F(Failover, LeaderFrozenHalfwayThroughSendingABatchDoesNotHoldUpTheNext) {
  if (skipped_) return;
  MakeApp(100);
  const int64_t old_epoch = LeaderArmedWith("pipeline-before-sync:stop");
  ASSERT_GT(old_epoch, 0);
  Node& a = *nodes_[0];

  // Two rows of 150 kB in one app transaction: one batch of two chunks.
  app_->Exec(
      "BEGIN; INSERT OR REPLACE INTO prompt (id, command, user_id, title, content, timestamp) "
      "VALUES (900001, '/big1', 'u', 't', replace(hex(zeroblob(75000)), '00', 'xy'), 1), "
      "(900002, '/big2', 'u', 't', replace(hex(zeroblob(75000)), '00', 'yz'), 2); COMMIT;");
  ASSERT_TRUE(WaitUntil([&] { return Frozen(a.pid()); }, seconds(10)))
      << "a did not freeze while sending the batch";
  auto frozen_at = Clock::now();
  watch_.Set(a.id, a.state_path, -1);  // a frozen process answers nothing
  const int64_t frozen_after = AppliedSeq();

  std::optional<milliseconds> took = WaitCommitAbove(old_epoch, frozen_at, seconds(10));
  EXPECT_TRUE(took.has_value()) << "b never committed while a was frozen halfway through a batch";
  EXPECT_TRUE(Frozen(a.pid()));
  if (took)
    std::cerr << "half-sent batch: b's first commit " << took->count() << " ms after a froze\n";

  a.agent->Signal(SIGCONT);
  EXPECT_TRUE(WaitStandby(a));
  watch_.Set(a.id, a.state_path, a.pid());
  EXPECT_EQ(Lease().holder, "b");
  ExpectExact();
  EXPECT_EQ(CommittedUnder(old_epoch, frozen_after), 0);
}

TEST_F(Failover, WallClockJumpMovesNothing) {
  if (skipped_) return;
  const std::string kFaketime = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";
  if (ReadFile(kFaketime).empty()) GTEST_SKIP() << "no libfaketime (Debian package faketime)";
  MakeApp(300);
  // Each agent reads its wall-clock offset from a file of its own on every
  // call (no cache): the test moves it while the agent runs. The monotonic
  // clock is left alone.
  auto rc_of = [&](const std::string& id) { return dir_->file(id + ".faketime"); };
  // Under ASan the sanitizer's runtime must come first among the preloaded
  // libraries unless told otherwise; libfaketime does not touch memory.
  std::string asan = std::getenv("ASAN_OPTIONS") ? std::getenv("ASAN_OPTIONS") : "";
  asan += std::string(asan.empty() ? "" : ":") + "verify_asan_link_order=0";
  ASSERT_TRUE(StartPair(nullptr, "", [&](const std::string& id) {
    WriteFile(rc_of(id), "+0\n");
    return Env{{"LD_PRELOAD", kFaketime},
               {"FAKETIME_TIMESTAMP_FILE", rc_of(id)},
               {"FAKETIME_NO_CACHE", "1"},
               {"FAKETIME_DONT_FAKE_MONOTONIC", "1"},
               {"ASAN_OPTIONS", asan}};
  }));
  Node& a = *nodes_[0];
  Node& b = *nodes_[1];
  const std::string rc_a = rc_of("a");
  const std::string rc_b = rc_of("b");
  StartLoad();
  const SinkLease before = Lease();

  // The leader's wall clock jumps an hour ahead, then two hours back; then
  // the standby's a day ahead and back.
  auto wall_of = [](const Node& n) {
    return ParseInt(JsonField(ReadFile(n.state_path), "updated_at_ms").value_or("0")).value_or(0);
  };
  auto now_ms = [] {
    return std::chrono::duration_cast<milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  };
  struct Step {
    Node* node;
    std::string rc;
    std::string offset;
    int64_t expect_ms;
  };
  const int64_t kHour = 3600 * 1000;
  std::vector<Step> steps = {{&a, rc_a, "+1h", kHour},
                             {&a, rc_a, "-1h", -kHour},
                             {&b, rc_b, "+1d", 24 * kHour},
                             {&b, rc_b, "+0", 0}};
  for (const Step& s : steps) {
    WriteFile(s.rc, s.offset + "\n");
    std::this_thread::sleep_for(milliseconds(1500));
    // The jump took: the agent's own timestamps moved (state file heartbeat, 5 s at most).
    EXPECT_TRUE(
        WaitUntil([&] { return std::llabs(wall_of(*s.node) - now_ms() - s.expect_ms) < 60 * 1000; },
                  seconds(8)))
        << s.node->id << "'s clock did not move to " << s.offset << ": "
        << ReadFile(s.node->state_path);
    SinkLease now = Lease();
    EXPECT_EQ(now.holder, "a") << "after " << s.node->id << " " << s.offset;
    EXPECT_EQ(now.epoch, before.epoch) << "after " << s.node->id << " " << s.offset;
    EXPECT_TRUE(now.valid);
    EXPECT_TRUE(SaysLeader(a.state_path, a.pid()));
    EXPECT_FALSE(SaysLeader(b.state_path, b.pid()));
    EXPECT_EQ(StateOf(b.state_path, b.pid()), "standby");
  }
  ExpectExact();
  std::vector<int64_t> epochs;
  EXPECT_EQ(CheckEpochOrder(&epochs), "");
  EXPECT_EQ(epochs, std::vector<int64_t>{before.epoch}) << "a clock jump caused a failover";
  EXPECT_EQ(a.agent->Log().find("leader lease lost"), std::string::npos);
  EXPECT_EQ(b.agent->Log().find("leader lease acquired"), std::string::npos);
}

// The agent starts while the sink does not answer: its first connect fails
// and it backs off (6 to 12 s: agent.retry_min_ms 12 s here). Then the sink
// answers and the lease connection takes the lease. Holding it, the agent
// must not sit out the rest of its backoff (the lease just proved the sink
// answers): nobody else may apply while it leads.
TEST_F(Failover, LeaseTakenDuringABackoffEndsTheBackoff) {
  if (skipped_) return;
  auto [addr, len] = TcpAddressOf(pg_url_);
  StallingProxy proxy(addr, len);
  MakeApp(50);  // init straight to PostgreSQL
  auto slow_retry = [](AgentConfig& c) {
    c.agent_extra = "\"retry_min_ms\": 12000, \"retry_max_ms\": 12000";
  };
  Node& a = AddNode("a", slow_retry, ViaProxy(pg_url_, proxy));
  proxy.Stall();
  watch_.Start();
  Start(a);
  ASSERT_TRUE(
      WaitUntil([&] { return CurrentLog(a).find("-> backoff") != std::string::npos; }, seconds(10)))
      << CurrentLog(a);
  proxy.Resume();
  auto resumed = Clock::now();
  std::optional<milliseconds> took = WaitCommitAbove(0, resumed, seconds(15));
  ASSERT_TRUE(took.has_value()) << CurrentLog(a);
  EXPECT_LT(took->count(), 4000) << "a held the lease and sat out its backoff: " << CurrentLog(a);
  std::cerr << "lease taken during a backoff: first commit " << took->count()
            << " ms after the sink answered again\n";
  ExpectExact();
}

TEST_F(Failover, SinkUnreachableLongerThanTheLease) {
  if (skipped_) return;
  auto [addr, len] = TcpAddressOf(pg_url_);
  StallingProxy proxy(addr, len);
  const std::string via = ViaProxy(pg_url_, proxy);
  MakeApp(300);  // init straight to PostgreSQL
  auto quick = [](AgentConfig& c) { c.sink_extra = "\"query_timeout_ms\": 1500"; };
  ASSERT_TRUE(StartPair(quick, via));
  Node& a = *nodes_[0];
  Node& b = *nodes_[1];
  StartLoad();
  std::this_thread::sleep_for(seconds(1));
  const SinkLease before = Lease();
  ASSERT_EQ(before.holder, "a");

  // Nothing reaches PostgreSQL for three lease durations.
  proxy.Stall();
  auto stalled_at = Clock::now();
  // By its own clock: /leader says no once the lease may have run out (a
  // renewal every third of it; the deadline is a tenth short of it)...
  ASSERT_TRUE(WaitUntil([&] { return !SaysLeader(a.state_path, a.pid()); }, seconds(5)))
      << "a still says it leads";
  auto gave_up = std::chrono::duration_cast<milliseconds>(Clock::now() - stalled_at);
  EXPECT_LT(gave_up.count(), 2 * kLeaseMs);
  EXPECT_NE(CurrentLog(a).find("leader lease lost"), std::string::npos);
  // ...and it stops streaming once the apply in flight, if any, gave up
  // (sink.query_timeout_ms 1500).
  ASSERT_TRUE(WaitUntil([&] { return StateOf(a.state_path, a.pid()) != "streaming"; }, seconds(5)))
      << "a still streams: " << ReadFile(a.state_path);
  auto stood_by = std::chrono::duration_cast<milliseconds>(Clock::now() - stalled_at);
  EXPECT_LT(stood_by.count(), kLeaseMs + 1500 + 1000);
  std::cerr << "unreachable sink: a said it no longer leads " << gave_up.count()
            << " ms after the stall, stopped streaming after " << stood_by.count() << " ms\n";
  std::this_thread::sleep_until(stalled_at + milliseconds(3 * kLeaseMs));
  EXPECT_FALSE(SaysLeader(a.state_path, a.pid()));
  EXPECT_FALSE(SaysLeader(b.state_path, b.pid()));
  EXPECT_TRUE(a.agent->Running());
  EXPECT_TRUE(b.agent->Running());

  // Back: one of them leads again, under a new epoch, and everything arrives.
  proxy.Resume();
  auto resumed_at = Clock::now();
  std::optional<milliseconds> took = WaitCommitAbove(before.epoch, resumed_at, seconds(20));
  ASSERT_TRUE(took.has_value()) << "no commit under a new epoch after the sink came back";
  std::cerr << "unreachable sink: first commit " << took->count() << " ms after it came back\n";
  Node* leader = WaitLeader();
  ASSERT_NE(leader, nullptr);
  EXPECT_GT(Lease().epoch, before.epoch);
  ExpectExact();
}

}  // namespace
}  // namespace sluice::e2e
