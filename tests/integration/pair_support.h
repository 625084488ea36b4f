// Test support for a pair of agents (issue #6): two or more real `sluice run`
// processes with different node ids on one deployment and one SQLite file, a
// real PostgreSQL, a short lease. What each agent says of its own role is
// sampled on a thread of its own (LeaderWatch, through SaysLeader), what the
// sink decided is read from sync_metadata.leader_election and
// applied_batches, and the end of every test checks exactly-once (the ledger
// audit of ledger_audit.h), the batch chain and the epoch order.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/e2e_support.h"
#include "tests/integration/ledger_audit.h"

namespace sluice::e2e {

// Whether the agent `pid` whose state file is `state_path` says it leads
// now: GET /leader on the HTTP address its state file names (written by that
// very process) answers 200. The one place the tests ask an agent its role.
bool SaysLeader(const std::string& state_path, pid_t pid);

// The "state" of an agent's state file if written by `pid`, else "". An
// agent that reads, applies or is idle with the lease says "streaming".
std::string StateOf(const std::string& state_path, pid_t pid);

// Samples every watched agent every few milliseconds on its own thread and
// records each sample at which more than one said it leads (SaysLeader), or
// more than one was applying (its state file says "streaming": an agent
// that streams without the lease is caught here even if /leader is right).
class LeaderWatch {
 public:
  LeaderWatch() = default;
  ~LeaderWatch() { Stop(); }
  LeaderWatch(const LeaderWatch&) = delete;
  LeaderWatch& operator=(const LeaderWatch&) = delete;

  // Watches node `id` as process `pid` (<= 0: not watched, e.g. killed or frozen).
  void Set(const std::string& id, const std::string& state_path, pid_t pid);
  void Start();  // no-op when running
  void Stop();
  int64_t samples() const { return samples_; }
  // Samples at which a leader was seen, and at which two or more were.
  int64_t led() const { return led_; }
  std::vector<std::string> violations();

 private:
  struct Watched {
    std::string state_path;
    pid_t pid = -1;
  };
  std::mutex mu_;
  std::map<std::string, Watched> nodes_;
  std::vector<std::string> violations_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> samples_{0};
  std::atomic<int64_t> led_{0};
};

// The lease as the sink holds it now.
struct SinkLease {
  std::string holder;  // leader_id
  int64_t epoch = 0;
  bool valid = false;  // expires_at > clock_timestamp()
};

class PairTest : public E2eTest {
 protected:
  struct Node {
    std::string id;
    std::string config;
    std::string state_path;
    AgentProcess* agent = nullptr;
    pid_t pid() const { return agent == nullptr ? -1 : agent->pid(); }
  };

  static constexpr int kLeaseMs = 1000;

  void SetUp() override;
  void TearDown() override;

  // The app file (Open WebUI schema + ledger), `seed_changes` random changes
  // and some ledger rows in it, `sluice init`, the ledger audit at the sink.
  void MakeApp(int64_t seed_changes, const std::string& sink_url = "");
  // A config for node `id` (lease 1 s unless `tweak` says otherwise).
  Node& AddNode(const std::string& id, const std::function<void(AgentConfig&)>& tweak = nullptr,
                const std::string& sink_url = "");
  // Starts (or restarts) the node's agent with `env` (NAME=value) added to
  // the environment, and watches it.
  void Start(Node& n, const std::vector<std::pair<std::string, std::string>>& env = {});
  void Kill(Node& n);  // SIGKILL, unwatched first
  // SIGTERM, waits for exit; returns the exit code (137 if it had to be killed).
  int Term(Node& n, std::chrono::milliseconds grace = std::chrono::seconds(15));
  Node* ByName(const std::string& id);
  using Env = std::vector<std::pair<std::string, std::string>>;
  // Nodes "a" and "b" (AddNode with `tweak`, `sink_url`), a started first so
  // that it leads, then b, which stands by; `env_of(id)`: what each gets in
  // its environment. The watch starts first. False (a test failure
  // recorded) when it does not go so.
  bool StartPair(const std::function<void(AgentConfig&)>& tweak = nullptr,
                 const std::string& sink_url = "",
                 const std::function<Env(const std::string&)>& env_of = nullptr);
  bool WaitStandby(Node& n, std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // The node's log since its agent last started.
  static std::string CurrentLog(const Node& n);

  SinkLease Lease();
  // The node the sink's valid lease names, once it also says it leads
  // (nullptr after `timeout`).
  Node* WaitLeader(std::chrono::milliseconds timeout = std::chrono::seconds(20));
  int64_t MaxCommittedEpoch();
  // Polls applied_batches every 5 ms until a batch under an epoch above
  // `epoch` committed; returns the time from `since` (nullopt on timeout).
  std::optional<std::chrono::milliseconds> WaitCommitAbove(
      int64_t epoch, Clock::time_point since,
      std::chrono::milliseconds timeout = std::chrono::seconds(20));
  // Epochs of the deployment's applied_batches, along after_seq: never NULL,
  // never going down ("" when so, else what breaks it). `epochs` gets the
  // distinct epochs in chain order.
  std::string CheckEpochOrder(std::vector<int64_t>* epochs = nullptr);

  // The app writes: random changes to message/tag/prompt and ledger rows.
  void StartLoad();
  void StopLoad();

  // Stops the load, waits for catch-up, and checks: mirror equals source,
  // every ledger row applied exactly once (bad ones parked once), the batch
  // chain has no gap or overlap, the epochs never go down, and the watch
  // never saw two leaders.
  void ExpectExact();
  // The watch's samples with two leaders, each reported once.
  void ExpectOneLeaderAtATime();

  std::string db_path_;
  std::unique_ptr<Sqlite> app_;
  std::unique_ptr<LedgerAudit> audit_;
  std::unique_ptr<LedgerWriter> ledger_;
  std::unique_ptr<RandomWriter> writer_;
  std::vector<std::unique_ptr<Node>> nodes_;
  LeaderWatch watch_;
  std::string init_config_;
  int64_t load_rounds_ = 0;
  size_t violations_reported_ = 0;
};

// Median and max of a list of durations, for the figures tests print.
struct Figures {
  int64_t median_ms = 0;
  int64_t max_ms = 0;
  std::string Text() const;
};
Figures FiguresOf(std::vector<std::chrono::milliseconds> v);
// Prints "<what>: median .. ms, max .. ms (ms: ...)" and returns the figures.
Figures PrintFigures(const std::string& what, const std::vector<std::chrono::milliseconds>& v);

}  // namespace sluice::e2e
