// Issue #5 item 14: signals. SIGHUP reloads what can be reloaded (log level)
// and says what needs a restart; SIGTERM during a long multi-chunk batch exits
// within agent.stop_timeout_ms by rolling the batch back; a second SIGTERM or
// SIGINT stops at once. Nothing is lost and nothing is applied twice: after a
// restart every row arrives exactly once (a sink-side trigger counts writes).
#include <csignal>
#include <string>
#include <thread>

#include "tests/integration/e2e_support.h"
#include "tests/support/http_client.h"

namespace sluice::e2e {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int kRows = 3000;
constexpr int kChunkRows = 50;  // 60 chunks in the initial sync

class Signals : public E2eTest {
 protected:
  // A table of kRows rows, prepared by init; at the sink, every write to its
  // mirror is counted in <schema>.writes, and each upsert or COPY statement sleeps
  // 150 ms (removed by FastSink), so the initial sync takes about 9 s.
  std::string PrepareSlowSink(const std::string& agent_extra, const std::string& sink_url = "") {
    db_path_ = dir_->file("app.db");
    {
      Sqlite db(db_path_);
      db.Exec("PRAGMA journal_mode=WAL");
      db.Exec("CREATE TABLE item (id INTEGER PRIMARY KEY, v TEXT)");
      db.Exec("WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < " +
              std::to_string(kRows) + ") INSERT INTO item SELECT i, 'item ' || i FROM c");
    }
    std::string config = WriteConfig(db_path_, sink_url, [&](AgentConfig& c) {
      c.sink_extra = "\"chunk_rows\": " + std::to_string(kChunkRows);
      c.agent_extra = agent_extra;
    });
    EXPECT_EQ(Init(config).exit_code, 0);
    std::string s = QuoteIdent(deployment_);
    pg_->Query("CREATE TABLE " + s + ".writes (id bigint NOT NULL)");
    pg_->Query("CREATE FUNCTION " + s +
               ".count_write() RETURNS trigger LANGUAGE plpgsql AS $$ "
               "BEGIN INSERT INTO " +
               s + ".writes VALUES (NEW.id); RETURN NULL; END $$");
    pg_->Query("CREATE TRIGGER count_write AFTER INSERT OR UPDATE ON " + s +
               ".item FOR EACH ROW WHEN (NEW._sluice_deleted_at IS NULL) EXECUTE FUNCTION " + s +
               ".count_write()");
    pg_->Query("CREATE FUNCTION " + s +
               ".slow() RETURNS trigger LANGUAGE plpgsql AS $$ "
               "BEGIN PERFORM pg_sleep(0.15); RETURN NULL; END $$");
    pg_->Query("CREATE TRIGGER slow BEFORE INSERT ON " + s + ".item FOR EACH STATEMENT " +
               "EXECUTE FUNCTION " + s + ".slow()");
    return config;
  }

  void FastSink() { pg_->Query("DROP TRIGGER slow ON " + QuoteIdent(deployment_) + ".item"); }

  // Waits until the agent's apply transaction is inside the batch (its upsert,
  // or its COPY into the empty mirror, sleeps in the trigger), then a few
  // chunks further.
  void WaitMidBatch(AgentProcess* agent) {
    ASSERT_TRUE(WaitUntil(
        [&] {
          return !agent->Running() ||
                 pg_->ScalarInt(
                     "SELECT count(*) FROM pg_stat_activity WHERE wait_event = "
                     "'PgSleep' AND (query LIKE 'INSERT INTO " +
                     QuoteIdent(deployment_) + "%' OR query LIKE 'COPY " + QuoteIdent(deployment_) +
                     "%')") > 0;
        },
        seconds(60)));
    ASSERT_TRUE(agent->Running()) << agent->Log();
    std::this_thread::sleep_for(milliseconds(700));
  }

  int64_t Position() {
    auto v =
        pg_->Scalar("SELECT applied_seq FROM sync_metadata.source_position WHERE deployment = $1",
                    {deployment_});
    return v ? std::stoll(*v) : -2;
  }

  // After a restart with a fast sink: every row once, the batch chain intact.
  void ExpectEveryRowOnce(const std::string& config, AgentProcess* agent) {
    FastSink();
    agent->Start();
    ASSERT_TRUE(ExpectCaughtUp(config, agent, seconds(60)));
    std::string s = QuoteIdent(deployment_);
    EXPECT_EQ(pg_->ScalarInt("SELECT count(*) FROM " + s + ".writes"), kRows)
        << "rows written by committed transactions";
    EXPECT_EQ(pg_->ScalarInt("SELECT count(DISTINCT id) FROM " + s + ".writes"), kRows);
    Sqlite app(db_path_);
    CompareOptions only_item;
    only_item.tables = {"item"};
    ExpectMirrorEqual(app, only_item);
    EXPECT_EQ(CheckBatchChain(*pg_, deployment_), "");
  }

  // SIGTERM mid-batch with agent.stop_timeout_ms = 1000 against `sink_url`:
  // exit 0 within the deadline, nothing committed, every row once afterwards.
  void StopDeadlineRollsBack(const std::string& sink_url) {
    std::string config = PrepareSlowSink("\"stop_timeout_ms\": 1000", sink_url);
    AgentProcess* agent = StartAgent(config);
    WaitMidBatch(agent);
    if (HasFatalFailure()) return;
    auto t0 = Clock::now();
    agent->Signal(SIGTERM);
    std::optional<int> code = agent->WaitExit(seconds(30));
    double s = std::chrono::duration<double>(Clock::now() - t0).count();
    ASSERT_TRUE(code.has_value()) << "no exit 30 s after SIGTERM";
    EXPECT_EQ(*code, 0) << agent->Log();
    EXPECT_LT(s, 2.5) << "stop_timeout_ms is 1000; the batch needs about 9 s";
    EXPECT_EQ(Position(), -1) << "the batch must have been rolled back";
    EXPECT_EQ(pg_->ScalarInt("SELECT count(*) FROM " + QuoteIdent(deployment_) + ".writes"), 0);
    EXPECT_NE(agent->Log().find("rolled back"), std::string::npos) << agent->Log();
    ExpectEveryRowOnce(config, agent);
  }

  std::string db_path_;
};

// Issue #9 (here for this file's slow sink): while a slow initial sync runs,
// `sluice status` (JSON and text), /health and /metrics show its progress:
// rows done of the total, moving; tables done of total; a rate and the time
// left; once it committed, no progress is shown.
TEST_F(Signals, ProgressOfAnInitialSyncIsVisible) {
  if (skipped_) return;
  std::string config = PrepareSlowSink("");
  AgentProcess* agent = StartAgent(config);
  WaitMidBatch(agent);
  if (HasFatalFailure()) return;
  auto done_now = [&](std::string* raw) {
    CommandResult st = RunSluice({"status", "--config", config, "--json"});
    *raw = st.out;
    std::optional<std::string> v = JsonField(st.out, "rows_done");
    return v ? std::stoll(*v) : -1;
  };
  std::string first, second;
  int64_t a = -1;
  // The state file shows a batch's progress from its first second on.
  WaitUntil([&] { return (a = done_now(&first)) >= 0; }, seconds(5));
  std::this_thread::sleep_for(milliseconds(1500));
  int64_t b = done_now(&second);
  ASSERT_GE(a, 0) << "no progress in status --json:\n" << first;
  EXPECT_GT(b, a) << "the rows done did not move:\n" << first << "\n" << second;
  EXPECT_LT(b, kRows) << second;
  EXPECT_EQ(JsonField(second, "rows_total"), std::to_string(kRows)) << second;
  EXPECT_EQ(JsonField(second, "tables_total"), "1") << second;
  EXPECT_EQ(JsonField(second, "tables_done"), "0") << second;
  EXPECT_EQ(JsonField(second, "kind"), "initial sync") << second;
  EXPECT_NE(JsonField(second, "eta_s"), std::nullopt) << second;
  EXPECT_NE(second.find("\"table\":\"item\""), std::string::npos) << second;
  CommandResult text = RunSluice({"status", "--config", config});
  EXPECT_NE(text.out.find("initial sync:"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("item"), std::string::npos) << text.out;
  std::optional<HttpAddress> http = WaitHttpAddress(db_path_, deployment_, "a", *agent);
  ASSERT_TRUE(http.has_value());
  std::optional<testing::HttpReply> health = testing::HttpGet(http->host, http->port, "/health");
  ASSERT_TRUE(health.has_value());
  EXPECT_NE(health->body.find("\"rows_done\""), std::string::npos) << health->body;
  std::optional<testing::HttpReply> metrics = testing::HttpGet(http->host, http->port, "/metrics");
  ASSERT_TRUE(metrics.has_value());
  EXPECT_NE(metrics->body.find("sluice_sync_rows " + std::to_string(kRows)), std::string::npos)
      << metrics->body;
  FastSink();
  ASSERT_TRUE(ExpectCaughtUp(config, agent, seconds(60)));
  CommandResult after = RunSluice({"status", "--config", config, "--json"});
  EXPECT_NE(after.out.find("\"progress\":null"), std::string::npos) << after.out;
}

TEST_F(Signals, StopDeadlineRollsTheBatchBack) {
  if (skipped_) return;
  StopDeadlineRollsBack("");
}

// The same through pgbouncer in transaction mode: the cancel request goes to
// the pooler, which must pass it to the server running the batch.
TEST_F(Signals, StopDeadlineRollsTheBatchBackThroughThePooler) {
  if (skipped_) return;
  std::string bouncer = Env("SLUICE_TEST_PGBOUNCER");
  if (bouncer.empty()) {
    GTEST_SKIP() << "SLUICE_TEST_PGBOUNCER not set (scripts/with-pgbouncer.sh sets it)";
  }
  StopDeadlineRollsBack(bouncer);
}

TEST_F(Signals, SecondSignalStopsAtOnce) {
  if (skipped_) return;
  std::string config = PrepareSlowSink("");  // the default stop_timeout_ms, 30 s
  AgentProcess* agent = StartAgent(config);
  WaitMidBatch(agent);
  if (HasFatalFailure()) return;
  agent->Signal(SIGTERM);
  std::this_thread::sleep_for(milliseconds(300));
  ASSERT_TRUE(agent->Running()) << "the first SIGTERM waits for the batch (up to 30 s)";
  auto t0 = Clock::now();
  agent->Signal(SIGINT);
  std::optional<int> code = agent->WaitExit(seconds(30));
  double s = std::chrono::duration<double>(Clock::now() - t0).count();
  ASSERT_TRUE(code.has_value()) << "no exit 30 s after the second signal";
  EXPECT_EQ(*code, 0) << agent->Log();
  EXPECT_LT(s, 1.5) << "the second signal must stop at once";
  EXPECT_EQ(Position(), -1) << "the batch must have been rolled back";
  ExpectEveryRowOnce(config, agent);
}

TEST_F(Signals, StopDuringALongReadIsNotHeldUpByIt) {
  if (skipped_) return;
  // 1,500,000 narrow rows: the initial sync's SQLite read alone takes seconds
  // (here it is interrupted; the sink sees nothing of it).
  db_path_ = dir_->file("app.db");
  {
    Sqlite db(db_path_);
    db.Exec("PRAGMA journal_mode=WAL");
    db.Exec("CREATE TABLE item (id INTEGER PRIMARY KEY, v INTEGER)");
    db.Exec(
        "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 1500000) "
        "INSERT INTO item SELECT i, i FROM c");
  }
  std::string config = WriteConfig(
      db_path_, "", [&](AgentConfig& c) { c.agent_extra = "\"stop_timeout_ms\": 100"; });
  ASSERT_EQ(Init(config).exit_code, 0);
  AgentProcess* agent = StartAgent(config);
  ASSERT_TRUE(
      WaitUntil([&] { return agent->Log().find("-> reading") != std::string::npos; }, seconds(30)));
  auto t0 = Clock::now();
  agent->Signal(SIGTERM);
  std::optional<int> code = agent->WaitExit(seconds(60));
  double s = std::chrono::duration<double>(Clock::now() - t0).count();
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0) << agent->Log();
  EXPECT_LT(s, 0.8) << "stop_timeout_ms is 100: the read must be interrupted\n" << agent->Log();
  EXPECT_EQ(Position(), -1);
  EXPECT_EQ(pg_->ScalarInt("SELECT count(*) FROM " + PgTable(deployment_, "item")), 0);
  std::cerr << "stopped " << s << " s after SIGTERM\n";
}

TEST_F(Signals, SighupReloadsTheLogLevel) {
  if (skipped_) return;
  std::string db_path = dir_->file("app.db");
  {
    Sqlite db(db_path);
    db.Exec("PRAGMA journal_mode=WAL");
    db.Exec("CREATE TABLE item (id INTEGER PRIMARY KEY, v TEXT)");
    db.Exec("INSERT INTO item VALUES (1, 'one')");
  }
  std::string config = WriteConfig(db_path);
  ASSERT_EQ(Init(config).exit_code, 0);
  AgentProcess* agent = StartAgent(config);
  ASSERT_TRUE(ExpectCaughtUp(config, agent, seconds(30)));
  EXPECT_EQ(agent->Log().find(" debug "), std::string::npos) << "info level logs no debug line";

  WriteConfig(db_path, "", [](AgentConfig& c) {
    c.log_level = "debug";
    c.busy_timeout_ms = 4000;
  });
  agent->Signal(SIGHUP);
  ASSERT_TRUE(
      WaitUntil([&] { return agent->Log().find("reload") != std::string::npos; }, seconds(5)))
      << "no log line about the reload; running: " << agent->Running() << "\n"
      << agent->Log();
  ASSERT_TRUE(agent->Running()) << agent->Log();
  std::string log = agent->Log();
  EXPECT_NE(log.find("agent.log_level: info -> debug"), std::string::npos) << log;
  EXPECT_NE(log.find("source.busy_timeout_ms"), std::string::npos) << log;
  EXPECT_NE(log.find("restart"), std::string::npos) << log;
  {
    Sqlite db(db_path);
    db.Exec("INSERT INTO item VALUES (2, 'two')");
  }
  ASSERT_TRUE(ExpectCaughtUp(config, agent, seconds(30)));
  EXPECT_NE(agent->Log().find(" debug "), std::string::npos) << "debug lines after the reload";

  // A config that no longer parses is refused; the agent keeps running.
  WriteFile(config, "{ not json");
  agent->Signal(SIGHUP);
  ASSERT_TRUE(WaitUntil(
      [&] { return agent->Log().find("config reload failed") != std::string::npos; }, seconds(5)))
      << agent->Log();
  ASSERT_TRUE(agent->Running());
  agent->Signal(SIGTERM);
  EXPECT_EQ(agent->WaitExit(seconds(30)), 0);
}

}  // namespace
}  // namespace sluice::e2e
