// Issue #6, a pair of agents, the long loops (suite 'slow'): the leader
// SIGKILLed ten times under a steady write load (restarted each time, so a
// standby is always there), both agents started at the same instant fifty
// times, and a graceful handover by SIGTERM ten times. At every sample at
// most one agent says it leads; the time from the kill (or the signal) to
// the standby's first commit is printed; at the end the mirror is exact,
// every ledger row was applied exactly once and the epochs are in order.
#include <signal.h>

#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "tests/integration/pair_support.h"

namespace sluice::e2e {
namespace {

class FailoverLoop : public PairTest {
 protected:
  Node& Other(const Node& n) { return nodes_[0].get() == &n ? *nodes_[1] : *nodes_[0]; }
  // Starts a pair under the write load and runs `rounds` handovers: the
  // leader is taken away by `take_down` (after it committed under its
  // epoch), the time to the other's first commit is recorded, `after` sees
  // the old leader, which is then started again as the standby.
  std::vector<milliseconds> Handovers(int rounds, const std::function<void(Node&)>& take_down,
                                      const std::function<void(Node&)>& after) {
    std::vector<milliseconds> took;
    MakeApp(500);
    if (!StartPair()) return took;
    StartLoad();
    std::mt19937 rng(std::random_device{}());
    for (int i = 0; i < rounds; ++i) {
      Node* leader = WaitLeader();
      if (leader == nullptr) {
        ADD_FAILURE() << "no leader before round " << i + 1;
        break;
      }
      Node& standby = Other(*leader);
      if (!WaitUntil([&] { return StateOf(standby.state_path, standby.pid()) == "standby"; },
                     seconds(10))) {
        ADD_FAILURE() << "round " << i + 1 << ": " << standby.id
                      << " is not standing by: " << ReadFile(standby.state_path);
        break;
      }
      const int64_t epoch = Lease().epoch;
      // The leader applies for a while (at least one commit under its epoch).
      if (!WaitCommitAbove(epoch - 1, Clock::now(), seconds(10))) {
        ADD_FAILURE() << "round " << i + 1 << ": " << leader->id << " never committed";
        break;
      }
      std::this_thread::sleep_for(milliseconds(200 + static_cast<int>(rng() % 500)));
      auto at = Clock::now();
      take_down(*leader);
      std::optional<milliseconds> d = WaitCommitAbove(epoch, at, seconds(15));
      if (!d) {
        ADD_FAILURE() << "round " << i + 1 << ": " << standby.id << " never committed";
        break;
      }
      took.push_back(*d);
      SinkLease now = Lease();
      EXPECT_EQ(now.holder, standby.id) << "round " << i + 1;
      EXPECT_GT(now.epoch, epoch) << "round " << i + 1;
      after(*leader);
      Start(*leader);
    }
    return took;
  }
};

TEST_F(FailoverLoop, KillTheLeaderTenTimes) {
  if (skipped_) return;
  std::vector<milliseconds> took = Handovers(
      10, [&](Node& n) { Kill(n); }, [](Node&) {});
  EXPECT_EQ(took.size(), 10u);
  Figures f = PrintFigures("SIGKILL failover, lease " + std::to_string(kLeaseMs) +
                               " ms: kill to the standby's first commit",
                           took);
  // Generous: the lease, the standby's poll, one batch. Speed is for bench/.
  EXPECT_LT(f.max_ms, 4 * kLeaseMs);
  ExpectExact();
  std::vector<int64_t> epochs;
  EXPECT_EQ(CheckEpochOrder(&epochs), "");
  EXPECT_GE(epochs.size(), 11u);
}

TEST_F(FailoverLoop, BothStartedAtOnceFiftyTimes) {
  if (skipped_) return;
  MakeApp(100);
  Node& a = AddNode("a");
  Node& b = AddNode("b");
  watch_.Start();
  int64_t last_epoch = -1;
  std::map<std::string, int> led;
  for (int round = 0; round < 50; ++round) {
    Start(a);
    Start(b);
    ledger_->Write(*app_, 1);  // something for the leader to commit
    std::string sa, sb;
    bool settled = WaitUntil(
        [&] {
          sa = StateOf(a.state_path, a.pid());
          sb = StateOf(b.state_path, b.pid());
          return ((sa == "streaming" && sb == "standby") ||
                  (sa == "standby" && sb == "streaming")) &&
                 SaysLeader(a.state_path, a.pid()) != SaysLeader(b.state_path, b.pid());
        },
        seconds(10));
    SinkLease lease = Lease();
    EXPECT_TRUE(settled) << "round " << round + 1 << ": a says " << sa << ", b says " << sb;
    EXPECT_TRUE(lease.valid) << "round " << round + 1;
    EXPECT_EQ(lease.holder, sa == "streaming" ? "a" : "b") << "round " << round + 1;
    EXPECT_GT(lease.epoch, last_epoch) << "round " << round + 1;
    last_epoch = lease.epoch;
    ++led[lease.holder];
    a.agent->Signal(SIGTERM);
    b.agent->Signal(SIGTERM);
    EXPECT_EQ(a.agent->WaitExit(seconds(15)), std::optional<int>(0)) << "round " << round + 1;
    EXPECT_EQ(b.agent->WaitExit(seconds(15)), std::optional<int>(0)) << "round " << round + 1;
    watch_.Set(a.id, a.state_path, -1);
    watch_.Set(b.id, b.state_path, -1);
    if (HasFailure()) break;
  }
  std::cerr << "simultaneous starts: a led " << led["a"] << " times, b " << led["b"]
            << "; last epoch " << last_epoch << "\n";
  Start(a);
  ExpectExact();
}

TEST_F(FailoverLoop, GracefulHandoverTenTimes) {
  if (skipped_) return;
  std::vector<milliseconds> took = Handovers(
      10,
      [&](Node& n) {
        watch_.Set(n.id, n.state_path, -1);
        n.agent->Signal(SIGTERM);
      },
      [&](Node& n) {
        EXPECT_EQ(n.agent->WaitExit(seconds(15)), std::optional<int>(0));
        EXPECT_NE(CurrentLog(n).find("leader lease released"), std::string::npos);
      });
  EXPECT_EQ(took.size(), 10u);
  Figures f = PrintFigures("SIGTERM handover, lease " + std::to_string(kLeaseMs) +
                               " ms: signal to the standby's first commit",
                           took);
  EXPECT_LT(f.max_ms, 3000);
  ExpectExact();
}

}  // namespace
}  // namespace sluice::e2e
