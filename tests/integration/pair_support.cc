// Test support for a pair of agents (see pair_support.h).
#include "tests/integration/pair_support.h"

#include <signal.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <sstream>

#include "tests/support/http_client.h"

namespace sluice::e2e {

// ---------------------------------------------------------------- roles

std::string StateOf(const std::string& state_path, pid_t pid) {
  std::string raw = ReadFile(state_path);
  std::optional<std::string> p = JsonField(raw, "pid");
  std::optional<std::string> s = JsonField(raw, "state");
  if (!p || !s || pid <= 0 || *p != std::to_string(pid)) return "";
  return *s;
}

bool SaysLeader(const std::string& state_path, pid_t pid) {
  std::string raw = ReadFile(state_path);
  std::optional<std::string> p = JsonField(raw, "pid");
  std::optional<std::string> http = JsonField(raw, "http");
  if (!p || !http || pid <= 0 || *p != std::to_string(pid)) return false;
  size_t colon = http->rfind(':');
  std::optional<int64_t> port =
      colon == std::string::npos ? std::nullopt : ParseInt(http->substr(colon + 1));
  if (!port) return false;
  std::optional<testing::HttpReply> reply =
      testing::HttpGet(http->substr(0, colon), static_cast<int>(*port), "/leader", 500);
  return reply && reply->status == 200;
}

void LeaderWatch::Set(const std::string& id, const std::string& state_path, pid_t pid) {
  std::lock_guard<std::mutex> lock(mu_);
  nodes_[id] = {state_path, pid};
}

void LeaderWatch::Start() {
  if (thread_.joinable()) return;  // running
  stop_ = false;
  thread_ = std::thread([this] {
    auto start = Clock::now();
    while (!stop_) {
      std::map<std::string, Watched> nodes;
      {
        std::lock_guard<std::mutex> lock(mu_);
        nodes = nodes_;
      }
      std::vector<std::string> leaders, streaming;
      for (const auto& [id, w] : nodes) {
        if (w.pid <= 0) continue;
        if (SaysLeader(w.state_path, w.pid)) leaders.push_back(id);
        if (StateOf(w.state_path, w.pid) == "streaming") streaming.push_back(id);
      }
      ++samples_;
      if (!leaders.empty()) ++led_;
      auto at = std::chrono::duration_cast<milliseconds>(Clock::now() - start).count();
      auto note = [&](const std::vector<std::string>& who, const char* what) {
        if (who.size() < 2) return;
        std::string names;
        for (const std::string& l : who) names += (names.empty() ? "" : " and ") + l;
        std::lock_guard<std::mutex> lock(mu_);
        violations_.push_back("at " + std::to_string(at) + " ms: " + names + " " + what);
      };
      note(leaders, "answer 200 on /leader");
      note(streaming, "are streaming (state file)");
      std::this_thread::sleep_for(milliseconds(10));
    }
  });
}

void LeaderWatch::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

std::vector<std::string> LeaderWatch::violations() {
  std::lock_guard<std::mutex> lock(mu_);
  return violations_;
}

// ---------------------------------------------------------------- fixture

void PairTest::SetUp() {
  E2eTest::SetUp();
  catch_up_timeout_ = seconds(60);
}

void PairTest::TearDown() {
  watch_.Stop();
  ExpectOneLeaderAtATime();
  if (ledger_) ledger_->Stop();
  if (writer_) writer_->Stop();
  if (!HasFailure() && audit_) audit_->Drop();
  E2eTest::TearDown();
}

void PairTest::MakeApp(int64_t seed_changes, const std::string& sink_url) {
  db_path_ = dir_->file("webui.db");
  CreateOpenWebUiDb(db_path_);
  if (seed_changes > 0) {
    RandomWriter::Options seed;
    seed.min_changes = seed_changes;
    seed.seed = 11;
    std::vector<std::string> errors = WriteRandomChanges(db_path_, seed);
    if (!errors.empty()) throw std::runtime_error("seed writes failed: " + errors[0]);
  }
  app_ = std::make_unique<Sqlite>(db_path_);
  app_->Exec(LedgerWriter::kCreateTable);
  ledger_ = std::make_unique<LedgerWriter>(db_path_);
  if (seed_changes > 0) {
    for (int i = 0; i < 5; ++i) ledger_->Write(*app_, 20);
  }
  init_config_ = WriteConfig(db_path_, sink_url, nullptr, "init.json");
  CommandResult init = Init(init_config_);
  if (init.exit_code != 0) throw std::runtime_error("sluice init failed");
  audit_ = std::make_unique<LedgerAudit>(*pg_, deployment_);
  audit_->Install();
}

PairTest::Node& PairTest::AddNode(const std::string& id,
                                  const std::function<void(AgentConfig&)>& tweak,
                                  const std::string& sink_url) {
  auto n = std::make_unique<Node>();
  n->id = id;
  n->config = WriteConfig(
      db_path_, sink_url,
      [&](AgentConfig& c) {
        c.node = id;
        c.lease_json = "{\"duration_ms\": " + std::to_string(kLeaseMs) + "}";
        if (tweak) tweak(c);
      },
      id + ".json");
  // agent/agent_state_file.h: <source>.sluice-<deployment>.<node>.state.json
  n->state_path = db_path_ + ".sluice-" + deployment_ + "." + id + ".state.json";
  nodes_.push_back(std::move(n));
  return *nodes_.back();
}

void PairTest::Start(Node& n, const std::vector<std::pair<std::string, std::string>>& env) {
  std::vector<std::pair<std::string, std::optional<std::string>>> saved;
  for (const auto& [name, value] : env) {
    const char* old = std::getenv(name.c_str());
    saved.emplace_back(name, old == nullptr ? std::nullopt : std::optional<std::string>(old));
    ::setenv(name.c_str(), value.c_str(), 1);
  }
  if (n.agent == nullptr) {
    n.agent = StartAgent(n.config, n.id);
  } else {
    n.agent->Start();
  }
  for (const auto& [name, old] : saved) {
    if (old) {
      ::setenv(name.c_str(), old->c_str(), 1);
    } else {
      ::unsetenv(name.c_str());
    }
  }
  watch_.Set(n.id, n.state_path, n.pid());
}

void PairTest::Kill(Node& n) {
  watch_.Set(n.id, n.state_path, -1);
  n.agent->KillHard();
}

int PairTest::Term(Node& n, milliseconds grace) {
  int code = n.agent->Stop(grace);
  watch_.Set(n.id, n.state_path, -1);
  return code;
}

PairTest::Node* PairTest::ByName(const std::string& id) {
  for (auto& n : nodes_) {
    if (n->id == id) return n.get();
  }
  return nullptr;
}

std::string PairTest::CurrentLog(const Node& n) {
  std::string log = n.agent->Log();
  size_t start = log.rfind("===== e2e: start #");  // AgentProcess's marker line
  return start == std::string::npos ? log : log.substr(start);
}

bool PairTest::WaitStandby(Node& n, milliseconds timeout) {
  if (WaitUntil([&] { return StateOf(n.state_path, n.pid()) == "standby"; }, timeout)) return true;
  ADD_FAILURE() << n.id << " does not stand by; its state file says: " << ReadFile(n.state_path);
  return false;
}

bool PairTest::StartPair(const std::function<void(AgentConfig&)>& tweak,
                         const std::string& sink_url,
                         const std::function<Env(const std::string&)>& env_of) {
  Node& a = AddNode("a", tweak, sink_url);
  Node& b = AddNode("b", tweak, sink_url);
  watch_.Start();
  Start(a, env_of ? env_of(a.id) : Env{});
  Node* leader = WaitLeader();
  if (leader != &a) {
    ADD_FAILURE() << "a, started alone, does not lead";
    return false;
  }
  Start(b, env_of ? env_of(b.id) : Env{});
  return WaitStandby(b);
}

SinkLease PairTest::Lease() {
  SinkLease l;
  PgRows r = pg_->Query(
      "SELECT coalesce(leader_id, ''), epoch, coalesce(expires_at > clock_timestamp(), false) "
      "FROM sync_metadata.leader_election WHERE deployment = $1",
      {deployment_});
  if (r.rows.empty()) return l;
  l.holder = r.rows[0][0].value_or("");
  l.epoch = std::stoll(r.rows[0][1].value_or("0"));
  l.valid = r.rows[0][2] == std::optional<std::string>("t");
  return l;
}

PairTest::Node* PairTest::WaitLeader(milliseconds timeout) {
  Node* leader = nullptr;
  WaitUntil(
      [&] {
        SinkLease l = Lease();
        Node* n = l.valid ? ByName(l.holder) : nullptr;
        if (n != nullptr && n->agent != nullptr && SaysLeader(n->state_path, n->pid())) {
          leader = n;
        }
        return leader != nullptr;
      },
      timeout);
  return leader;
}

int64_t PairTest::MaxCommittedEpoch() {
  return pg_->ScalarInt(
      "SELECT coalesce(max(epoch), 0) FROM sync_metadata.applied_batches WHERE deployment = $1",
      {deployment_});
}

std::optional<milliseconds> PairTest::WaitCommitAbove(int64_t epoch, Clock::time_point since,
                                                      milliseconds timeout) {
  auto deadline = since + timeout;
  while (Clock::now() < deadline) {
    if (MaxCommittedEpoch() > epoch) {
      return std::chrono::duration_cast<milliseconds>(Clock::now() - since);
    }
    std::this_thread::sleep_for(milliseconds(5));
  }
  return std::nullopt;
}

std::string PairTest::CheckEpochOrder(std::vector<int64_t>* epochs) {
  PgRows r = pg_->Query(
      "SELECT after_seq, snapshot_seq, epoch FROM sync_metadata.applied_batches "
      "WHERE deployment = $1 ORDER BY after_seq, applied_at",
      {deployment_});
  std::optional<int64_t> last;
  std::vector<int64_t> seen;
  for (const auto& row : r.rows) {
    std::string range = "batch after " + row[0].value_or("?") + " to " + row[1].value_or("?");
    if (!row[2]) return range + " has no epoch";
    int64_t e = std::stoll(*row[2]);
    if (last && e < *last) {
      return range + " committed under epoch " + std::to_string(e) + " after a batch under " +
             std::to_string(*last);
    }
    if (!last || e != *last) seen.push_back(e);
    last = e;
  }
  if (epochs != nullptr) *epochs = seen;
  return "";
}

void PairTest::StartLoad() {
  ++load_rounds_;
  RandomWriter::Options opts;
  opts.min_changes = 0;
  opts.run_until_stopped = true;
  opts.pause_us = 5000;
  opts.max_txn_rows = 10;
  opts.seed = static_cast<uint32_t>(22 + load_rounds_);
  opts.key_base = 10000000 * load_rounds_;
  writer_ = std::make_unique<RandomWriter>(db_path_, opts);
  writer_->LoadKeys();
  writer_->Start();
  ledger_->Start(10);
}

void PairTest::StopLoad() {
  if (writer_) {
    writer_->Stop();
    std::vector<std::string> errors = writer_->errors();
    EXPECT_TRUE(errors.empty()) << "the app's writes failed: " << errors[0];
    EXPECT_EQ(writer_->busy_errors(), 0);
    writer_.reset();
  }
  if (ledger_) {
    ledger_->Stop();
    EXPECT_EQ(ledger_->error(), "") << "the app's ledger writes failed";
  }
}

void PairTest::ExpectExact() {
  StopLoad();
  ASSERT_TRUE(ExpectCaughtUp(init_config_, nullptr));
  ExpectMirrorEqual(*app_, LedgerWriter::ParkedBadRows());
  LedgerAudit::Result once = audit_->Check(*app_, ledger_->rows());
  for (const std::string& p : once.problems) ADD_FAILURE() << p;
  EXPECT_GT(once.good, 0);
  EXPECT_EQ(CheckBatchChain(*pg_, deployment_), "");
  EXPECT_EQ(CheckEpochOrder(), "");
  ExpectOneLeaderAtATime();
  std::cerr << "pair: " << once.good << " ledger rows applied once, " << once.bad
            << " parked once; " << watch_.samples() << " role samples, " << watch_.led()
            << " with a leader\n";
}

void PairTest::ExpectOneLeaderAtATime() {
  std::vector<std::string> v = watch_.violations();
  for (size_t i = violations_reported_; i < v.size(); ++i) {
    ADD_FAILURE() << "two leaders " << v[i];
    if (i >= violations_reported_ + 20) break;  // enough to see it
  }
  violations_reported_ = v.size();
}

std::string Figures::Text() const {
  return "median " + std::to_string(median_ms) + " ms, max " + std::to_string(max_ms) + " ms";
}

Figures FiguresOf(std::vector<milliseconds> v) {
  Figures f;
  if (v.empty()) return f;
  std::sort(v.begin(), v.end());
  f.median_ms = v[v.size() / 2].count();
  f.max_ms = v.back().count();
  return f;
}

Figures PrintFigures(const std::string& what, const std::vector<milliseconds>& v) {
  Figures f = FiguresOf(v);
  std::string all;
  for (milliseconds t : v) all += " " + std::to_string(t.count());
  std::cerr << what << ": " << f.Text() << " (ms:" << all << ")\n";
  return f;
}

}  // namespace sluice::e2e
