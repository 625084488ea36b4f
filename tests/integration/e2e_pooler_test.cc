// "Through a transaction pooler" proven: pgbouncer in transaction mode with a
// pool of ONE server connection (SLUICE_TEST_PGBOUNCER_POOL1, set by
// scripts/with-pgbouncer.sh), so every client takes turns on the same backend.
// A named prepared statement, a plain SET, a LISTEN, a session advisory lock or
// a temp table that one client leaves behind is then visible to the next one.
// A spy client keeps polling that backend's session state between the agents'
// transactions; two agents of two deployments stream through it at once. The
// first test shows that the spy does see a deliberately stateful client.
#include <libpq-fe.h>

#include <atomic>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/e2e_support.h"

namespace sluice::e2e {
namespace {

// Everything a session can keep on its backend beyond one transaction, as one
// line. Settings pgbouncer itself sets per client when it hands the backend
// over (its tracked startup parameters) are left out: they are the pooler's
// bookkeeping, not state a client left behind.
const char* const kSessionStateSql =
    "SELECT pg_backend_pid()::text, "
    "'prepared=' || coalesce((SELECT string_agg(name, ',' ORDER BY name) "
    "FROM pg_prepared_statements), '') || "
    "' settings=' || coalesce((SELECT string_agg(name || '=' || setting, ',' ORDER BY name) "
    "FROM pg_settings WHERE source = 'session' AND lower(name) NOT IN ('client_encoding', "
    "'datestyle', 'timezone', 'standard_conforming_strings', 'application_name')), '') || "
    "' listen=' || coalesce((SELECT string_agg(c, ',' ORDER BY c) "
    "FROM pg_listening_channels() c), '') || "
    "' advisory=' || (SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid() "
    "AND locktype = 'advisory')::text || "
    "' temp=' || (pg_my_temp_schema() <> 0)::text";

// Polls the session state of the pool's backend from its own client until
// stopped; records every state that differs from the first one it saw.
class SessionSpy {
 public:
  explicit SessionSpy(std::string conninfo) : conninfo_(std::move(conninfo)) {}
  ~SessionSpy() { Stop(); }

  // Takes the baseline synchronously, then polls on a thread.
  void Start() {
    pg_ = std::make_unique<Pg>(conninfo_);
    PgRows r = pg_->Query(kSessionStateSql);
    pid_ = r.rows[0][0].value_or("");
    baseline_ = r.rows[0][1].value_or("");
    thread_ = std::thread([this] { Run(); });
  }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  // One poll now, on the caller's thread (only while the thread is stopped).
  std::string StateNow() { return pg_->Query(kSessionStateSql).rows[0][1].value_or(""); }

  const std::string& pid() const { return pid_; }
  const std::string& baseline() const { return baseline_; }
  int64_t polls() const { return polls_; }
  std::vector<std::string> problems() {
    std::lock_guard<std::mutex> lock(mu_);
    return problems_;
  }

 private:
  void Run() {
    while (!stop_) {
      PgRows r;
      std::string err;
      std::string problem;
      if (!pg_->TryQuery(kSessionStateSql, &r, &err)) {
        problem = "the spy's query failed: " + err;
      } else if (r.rows[0][0].value_or("") != pid_) {
        problem = "the spy got backend " + r.rows[0][0].value_or("?") + " instead of " + pid_ +
                  ": the pool is not one connection";
      } else if (r.rows[0][1].value_or("") != baseline_) {
        problem = "session state left behind: " + r.rows[0][1].value_or("");
      }
      ++polls_;
      if (!problem.empty()) {
        std::lock_guard<std::mutex> lock(mu_);
        if (problems_.size() < 10) problems_.push_back(problem);
      }
      std::this_thread::sleep_for(milliseconds(3));  // pacing: the agents need turns too
    }
  }

  std::string conninfo_;
  std::unique_ptr<Pg> pg_;
  std::string pid_;
  std::string baseline_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> polls_{0};
  std::mutex mu_;
  std::vector<std::string> problems_;
};

class PoolOfOne : public E2eTest {
 protected:
  void SetUp() override {
    E2eTest::SetUp();
    if (skipped_) return;
    pool1_ = Env("SLUICE_TEST_PGBOUNCER_POOL1");
    if (pool1_.empty()) {
      skipped_ = true;
      GTEST_SKIP() << "SLUICE_TEST_PGBOUNCER_POOL1 not set (scripts/with-pgbouncer.sh sets it)";
    }
  }
  std::string pool1_;
};

// The spy is not blind: a client that leaves a named prepared statement, a
// plain SET and a LISTEN behind is seen, and a second client preparing the
// same name fails, on the one shared backend.
TEST_F(PoolOfOne, TheSpySeesASessionStatefulClient) {
  if (skipped_) return;
  SessionSpy spy(pool1_);
  spy.Start();
  spy.Stop();
  PGconn* stateful = PQconnectdb(pool1_.c_str());
  ASSERT_EQ(PQstatus(stateful), CONNECTION_OK) << PQerrorMessage(stateful);
  auto exec = [&](PGresult* res) {
    ExecStatusType st = PQresultStatus(res);
    std::string err = PQresultErrorMessage(res);
    PQclear(res);
    return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? std::string() : err;
  };
  ASSERT_EQ(exec(PQprepare(stateful, "sluice_named", "SELECT 1", 0, nullptr)), "");
  ASSERT_EQ(exec(PQexec(stateful, "SET work_mem = '7MB'")), "");
  ASSERT_EQ(exec(PQexec(stateful, "LISTEN sluice_spy_check")), "");

  std::string seen = spy.StateNow();
  EXPECT_NE(seen.find("prepared=sluice_named"), std::string::npos) << seen;
  EXPECT_NE(seen.find("work_mem=7168"), std::string::npos) << seen;
  EXPECT_NE(seen.find("listen=sluice_spy_check"), std::string::npos) << seen;
  EXPECT_NE(seen, spy.baseline());
  PGconn* other = PQconnectdb(pool1_.c_str());
  ASSERT_EQ(PQstatus(other), CONNECTION_OK) << PQerrorMessage(other);
  EXPECT_NE(exec(PQprepare(other, "sluice_named", "SELECT 2", 0, nullptr)), "")
      << "a second client could prepare the same name: the pool is not one connection";

  ASSERT_EQ(exec(PQexec(stateful, "DEALLOCATE ALL; RESET ALL; UNLISTEN *")), "");
  PQfinish(other);
  PQfinish(stateful);
  EXPECT_EQ(spy.StateNow(), spy.baseline());
}

// Two agents of two deployments and the spy share the one backend while two
// apps write: both mirrors end equal, the agents never leave session state on
// the backend, and the spy's backend is shown to be the agents' too.
TEST_F(PoolOfOne, TwoAgentsAndASpyShareOneServerConnection) {
  if (skipped_) return;
  catch_up_timeout_ = seconds(60);
  std::string other_deployment = deployment_ + "_b";
  struct Side {
    std::string db_path;
    std::string config;
    std::string schema;
    AgentProcess* agent = nullptr;
  };
  std::vector<Side> sides(2);
  for (int i = 0; i < 2; ++i) {
    Side& s = sides[i];
    s.db_path = dir_->file("webui" + std::to_string(i) + ".db");
    s.schema = i == 0 ? deployment_ : other_deployment;
    CreateOpenWebUiDb(s.db_path);
    s.config = WriteConfig(
        s.db_path, pool1_,
        [&](AgentConfig& c) {
          c.deployment = s.schema;
          c.schema = s.schema;
          c.node = "n" + std::to_string(i);
          c.lease_json = "{\"duration_ms\": 1000}";
        },
        "sluice" + std::to_string(i) + ".json");
  }
  // The first deployment runs as a pair: its standby's lease requests go
  // through the same pool, and it takes over after a SIGKILL below.
  std::string standby_config = WriteConfig(
      sides[0].db_path, pool1_,
      [&](AgentConfig& c) {
        c.deployment = sides[0].schema;
        c.schema = sides[0].schema;
        c.node = "n0-standby";
        c.lease_json = "{\"duration_ms\": 1000}";
      },
      "sluice0-standby.json");

  SessionSpy spy(pool1_);
  spy.Start();
  // Watches the spy's backend through a direct connection: the agents'
  // statements must show up on it (proof that the pool really is shared).
  std::atomic<bool> stop_watch{false};
  std::atomic<int64_t> agent_sightings{0};
  std::thread watch([&] {
    Pg direct(pg_url_);
    while (!stop_watch) {
      PgRows r;
      std::string err;
      if (direct.TryQuery("SELECT query FROM pg_stat_activity WHERE pid = $1::int", &r, &err,
                          {spy.pid()}) &&
          !r.rows.empty() && r.rows[0][0].value_or("").find("sluice") != std::string::npos &&
          r.rows[0][0].value_or("").find("pg_prepared_statements") == std::string::npos) {
        ++agent_sightings;
      }
      std::this_thread::sleep_for(milliseconds(2));
    }
  });

  for (Side& s : sides) ASSERT_EQ(Init(s.config).exit_code, 0);
  for (int i = 0; i < 2; ++i) {
    sides[i].agent = StartAgent(sides[i].config, "agent" + std::to_string(i));
  }
  ASSERT_TRUE(ExpectCaughtUp(sides[0].config, sides[0].agent));
  AgentProcess* standby = StartAgent(standby_config, "agent0-standby");
  std::vector<std::unique_ptr<RandomWriter>> writers;
  for (int i = 0; i < 2; ++i) {
    RandomWriter::Options o;
    o.min_changes = 3000;
    o.run_until_stopped = false;
    o.pause_us = 2000;
    o.max_txn_rows = 20;
    o.seed = 41 + i;
    writers.push_back(std::make_unique<RandomWriter>(sides[i].db_path, o));
    writers.back()->Start();
  }
  for (auto& w : writers) w->Join();
  for (Side& s : sides) EXPECT_TRUE(ExpectCaughtUp(s.config, s.agent));
  // SIGKILL the first deployment's leader; the app writes on; the standby,
  // whose every request shares the one server connection, takes over.
  sides[0].agent->KillHard();
  {
    RandomWriter::Options o;
    o.min_changes = 300;
    o.run_until_stopped = false;
    o.pause_us = 2000;
    o.max_txn_rows = 20;
    o.seed = 99;
    o.key_base = 1000000000;
    RandomWriter after(sides[0].db_path, o);
    after.LoadKeys();
    after.Start();
    after.Join();
    EXPECT_TRUE(after.errors().empty()) << after.errors()[0];
  }
  EXPECT_TRUE(ExpectCaughtUp(sides[0].config, standby));
  EXPECT_EQ(pg_->ScalarInt("SELECT max(epoch) FROM sync_metadata.applied_batches "
                           "WHERE deployment = $1",
                           {sides[0].schema}),
            2)
      << "the standby did not commit under a new epoch";
  sides[0].agent = standby;
  spy.Stop();
  stop_watch = true;
  watch.join();

  for (auto& w : writers) {
    EXPECT_TRUE(w->errors().empty()) << w->errors()[0];
    EXPECT_GE(w->changes(), 3000);
  }
  for (Side& s : sides) {
    EXPECT_TRUE(s.agent->Running()) << s.schema << ": the agent exited";
    Sqlite src(s.db_path);
    CompareReport report = CompareMirror(src, *pg_, s.schema);
    EXPECT_TRUE(report.ok()) << s.schema << ": " << report.Text();
    EXPECT_GT(report.rows_compared, 500);
    EXPECT_EQ(CheckBatchChain(*pg_, s.schema), "") << s.schema;
  }
  std::string problems;
  for (const std::string& p : spy.problems()) problems += "\n  " + p;
  EXPECT_TRUE(problems.empty()) << "baseline: " << spy.baseline() << problems;
  EXPECT_GT(spy.polls(), 100);
  EXPECT_GT(agent_sightings.load(), 10)
      << "the agents' statements never ran on the spy's backend: the pool was not shared";
  std::cerr << "pool of one: spy polled " << spy.polls() << " times; agent statements seen "
            << agent_sightings.load() << " times on backend " << spy.pid() << "\n";

  if (!HasFailure()) {
    PgRows ignored;
    std::string err;
    pg_->TryQuery("DROP SCHEMA IF EXISTS " + QuoteIdent(other_deployment) + " CASCADE", &ignored,
                  &err);
  }
}

}  // namespace
}  // namespace sluice::e2e
