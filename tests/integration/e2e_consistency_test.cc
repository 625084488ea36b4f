// Issue tests 3 and 4: prefix consistency (a multi-row app transaction never
// appears half-applied at the sink) and a PostgreSQL restart mid-stream.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include "tests/integration/e2e_support.h"

namespace sluice::e2e {
namespace {

// The app on its own connection and thread: calls `txn` (one transaction)
// until stopped, pausing `pause` between calls; the first error ends it.
class AppLoop {
 public:
  AppLoop(std::string db_path, std::chrono::microseconds pause,
          std::function<void(Sqlite&, int64_t n)> txn)
      : thread_([this, db_path, pause, txn] {
          try {
            Sqlite db(db_path);
            while (!stop_) {
              txn(db, txns_ + 1);
              ++txns_;
              std::this_thread::sleep_for(pause);  // pacing only
            }
          } catch (const std::exception& e) {
            error_ = e.what();
            failed_ = true;
          }
        }) {}
  ~AppLoop() { Stop(); }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  int64_t txns() const { return txns_; }
  bool failed() const { return failed_; }
  const std::string& error() const { return error_; }  // after Stop()

 private:
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> txns_{0};
  std::atomic<bool> failed_{false};
  std::string error_;
  std::thread thread_;  // last: starts after the members it uses
};

class Consistency : public E2eTest {
 protected:
  // init, run, first catch-up of `db_path` with a fast poll; *config gets the path.
  AgentProcess* StartStreaming(const std::string& db_path, std::string* config) {
    *config = WriteConfig(db_path, "", [](AgentConfig& c) { c.poll_interval_ms = 20; });
    if (Init(*config).exit_code != 0) return nullptr;
    AgentProcess* agent = StartAgent(*config);
    return ExpectCaughtUp(*config, agent) ? agent : nullptr;
  }
};

TEST_F(Consistency, MultiRowTransactionsNeverHalfApplied) {
  if (skipped_) return;
  std::string db_path = dir_->file("bank.db");
  const int kAccounts = 50;
  const int64_t kTotal = kAccounts * 1000;
  {
    Sqlite db(db_path);
    db.Exec("CREATE TABLE acct (id INTEGER PRIMARY KEY, bal INTEGER NOT NULL, note TEXT)");
    db.Exec("BEGIN");
    for (int i = 1; i <= kAccounts; ++i) {
      db.Query("INSERT INTO acct (id, bal, note) VALUES (?, 1000, 'opened')", {SqlValue::Int(i)});
    }
    db.Exec("COMMIT");
  }
  std::string config;
  AgentProcess* agent = StartStreaming(db_path, &config);
  ASSERT_NE(agent, nullptr);

  // The app: moves money between 2..6 accounts per transaction, closes
  // accounts (delete, balance moved) and opens new ones (insert, funded from
  // another): the sum over live rows is constant after every commit.
  std::mt19937 rng(7);
  int64_t next_id = kAccounts + 1;
  AppLoop app_loop(db_path, std::chrono::microseconds(300), [&](Sqlite& db, int64_t) {
    std::vector<int64_t> ids;
    for (auto& r : db.Query("SELECT id FROM acct")) ids.push_back(r[0].i);
    std::shuffle(ids.begin(), ids.end(), rng);
    int kind = static_cast<int>(rng() % 10);
    db.Exec("BEGIN");
    if (kind < 8 || ids.size() < 10) {
      size_t n = 2 + rng() % 5;
      int64_t moved = 0;
      for (size_t i = 1; i < n && i < ids.size(); ++i) {
        int64_t amount = static_cast<int64_t>(rng() % 50);
        db.Query("UPDATE acct SET bal = bal + ?, note = 'in' WHERE id = ?",
                 {SqlValue::Int(amount), SqlValue::Int(ids[i])});
        moved += amount;
      }
      db.Query("UPDATE acct SET bal = bal - ?, note = 'out' WHERE id = ?",
               {SqlValue::Int(moved), SqlValue::Int(ids[0])});
    } else if (kind == 8) {
      db.Query("UPDATE acct SET bal = bal + (SELECT bal FROM acct WHERE id = ?) WHERE id = ?",
               {SqlValue::Int(ids[0]), SqlValue::Int(ids[1])});
      db.Query("DELETE FROM acct WHERE id = ?", {SqlValue::Int(ids[0])});
    } else {
      db.Query("UPDATE acct SET bal = bal - 100 WHERE id = ?", {SqlValue::Int(ids[0])});
      db.Query("INSERT INTO acct (id, bal, note) VALUES (?, 100, 'new')",
               {SqlValue::Int(next_id++)});
    }
    db.Exec("COMMIT");
  });

  // The checker: one SELECT per poll, the total must always be the constant.
  std::string sql =
      "SELECT sum(bal), count(*), (SELECT applied_seq FROM sync_metadata.source_position "
      "WHERE deployment = $1) FROM " +
      PgTable(deployment_, "acct") + " WHERE _sluice_deleted_at IS NULL";
  int polls = 0;
  std::set<std::string> positions;
  std::vector<std::string> violations;
  auto end = Clock::now() + seconds(6);
  while (Clock::now() < end && !app_loop.failed()) {
    PgRows r = pg_->Query(sql, {deployment_});
    ++polls;
    std::string sum = r.rows[0][0].value_or("NULL");
    positions.insert(r.rows[0][2].value_or("NULL"));
    if (sum != std::to_string(kTotal) && violations.size() < 20) {
      violations.push_back("sum " + sum + " over " + r.rows[0][1].value_or("?") +
                           " live rows at position " + r.rows[0][2].value_or("?"));
    }
  }
  app_loop.Stop();
  ASSERT_EQ(app_loop.error(), "");
  std::ostringstream v;
  for (auto& s : violations) v << "\n  " << s;
  EXPECT_TRUE(violations.empty()) << "the sink showed a half-applied transaction (total must be "
                                  << kTotal << "):" << v.str();
  EXPECT_GT(app_loop.txns(), 500);
  EXPECT_GT(polls, 100);
  EXPECT_GE(positions.size(), 10u) << "the checker saw too few sink commits to prove anything";

  ASSERT_TRUE(ExpectCaughtUp(config, agent));
  Sqlite check(db_path);
  ExpectMirrorEqual(check);
  EXPECT_EQ(pg_->ScalarInt("SELECT sum(bal) FROM " + PgTable(deployment_, "acct") +
                           " WHERE _sluice_deleted_at IS NULL"),
            kTotal);
  std::cerr << "prefix consistency: " << app_loop.txns() << " app transactions, " << polls
            << " sink polls, " << positions.size() << " distinct positions seen\n";
}

// App transactions far larger than one apply chunk (sink/batch_applier.cc
// cuts at 2,000 changes or 1 MiB): each rewrites all 5,000 rows of `gen` to
// generation g (5,000 updates, 1.2 MB), inserts 2,500 rows of `bulk` tagged g
// and deletes the 2,500 tagged g-3. A reader at the sink polling in a loop
// must always see one generation across `gen`, whole groups of 2,500 in
// `bulk`, and `bulk`'s newest group equal to `gen`'s generation: never a
// chunk of a transaction without the rest.
TEST_F(Consistency, TransactionsLargerThanOneApplyChunkNeverHalfApplied) {
  if (skipped_) return;
  std::string db_path = dir_->file("big.db");
  const int kGen = 5000;
  const int kBulk = 2500;
  const std::string pad(240, 'p');
  {
    Sqlite db(db_path);
    db.Exec(
        "CREATE TABLE gen (id INTEGER PRIMARY KEY, g INTEGER NOT NULL, pad TEXT);"
        "CREATE TABLE bulk (id INTEGER PRIMARY KEY, g INTEGER NOT NULL, pad TEXT);"
        "BEGIN");
    for (int i = 1; i <= kGen; ++i) {
      db.Query("INSERT INTO gen VALUES (?, 0, ?)", {SqlValue::Int(i), SqlValue::Text(pad)});
    }
    for (int i = 1; i <= kBulk; ++i) {
      db.Query("INSERT INTO bulk VALUES (?, 0, ?)", {SqlValue::Int(i), SqlValue::Text(pad)});
    }
    db.Exec("COMMIT");
  }
  std::string config;
  AgentProcess* agent = StartStreaming(db_path, &config);
  ASSERT_NE(agent, nullptr);

  AppLoop app_loop(db_path, std::chrono::microseconds(30000), [&](Sqlite& db, int64_t g) {
    db.Exec("BEGIN");
    db.Query("UPDATE gen SET g = ?, pad = ?",
             {SqlValue::Int(g), SqlValue::Text(pad + std::to_string(g))});
    db.Query(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
        "INSERT INTO bulk (id, g, pad) SELECT ? * 100000 + i, ?, ? FROM n",
        {SqlValue::Int(kBulk), SqlValue::Int(g), SqlValue::Int(g), SqlValue::Text(pad)});
    db.Query("DELETE FROM bulk WHERE g = ?", {SqlValue::Int(g - 3)});
    db.Exec("COMMIT");
  });

  // One statement per poll (one snapshot of the sink).
  const std::string live = " WHERE _sluice_deleted_at IS NULL";
  const std::string sql =
      "SELECT (SELECT min(g) || '/' || max(g) || '/' || count(*) FROM " +
      PgTable(deployment_, "gen") + live +
      "), (SELECT coalesce(string_agg(g || 'x' || c, ','), '') FROM (SELECT g, count(*) c FROM " +
      PgTable(deployment_, "bulk") + live + " GROUP BY g HAVING count(*) <> " +
      std::to_string(kBulk) + ") x), (SELECT max(g) FROM " + PgTable(deployment_, "bulk") + live +
      "), (SELECT applied_seq FROM sync_metadata.source_position WHERE deployment = $1)";
  int polls = 0;
  std::set<std::string> positions;
  std::set<std::string> generations;
  std::vector<std::string> violations;
  auto end = Clock::now() + seconds(6);
  while (Clock::now() < end && !app_loop.failed()) {
    PgRows r = pg_->Query(sql, {deployment_});
    ++polls;
    std::string gen = r.rows[0][0].value_or("NULL");
    std::string broken_groups = r.rows[0][1].value_or("NULL");
    std::string bulk_max = r.rows[0][2].value_or("NULL");
    positions.insert(r.rows[0][3].value_or("NULL"));
    std::string g = gen.substr(0, gen.find('/'));
    generations.insert(g);
    std::string whole = g + "/" + g + "/" + std::to_string(kGen);
    if ((gen != whole || !broken_groups.empty() || bulk_max != g) && violations.size() < 20) {
      violations.push_back("gen min/max/count " + gen + ", bulk groups not of " +
                           std::to_string(kBulk) + ": [" + broken_groups + "], bulk newest " +
                           bulk_max + ", position " + r.rows[0][3].value_or("?"));
    }
    std::this_thread::sleep_for(milliseconds(5));
  }
  app_loop.Stop();
  ASSERT_EQ(app_loop.error(), "");
  std::ostringstream v;
  for (auto& s : violations) v << "\n  " << s;
  EXPECT_TRUE(violations.empty()) << "the sink showed part of an app transaction:" << v.str();
  EXPECT_GE(app_loop.txns(), 10);
  EXPECT_GE(generations.size(), 3u) << "the reader saw too few app transactions arrive";
  ASSERT_TRUE(ExpectCaughtUp(config, agent));
  Sqlite check(db_path);
  ExpectMirrorEqual(check);
  std::cerr << "large transactions: " << app_loop.txns() << " app transactions of "
            << kGen + 2 * kBulk << " changes, " << polls << " sink polls, " << generations.size()
            << " generations and " << positions.size() << " positions seen\n";
}

// The cluster serving `conninfo` (by port) as {version, name}; empty if unknown.
std::pair<std::string, std::string> FindCluster(const std::string& conninfo) {
  std::string port;
  std::istringstream in(conninfo);
  std::string tok;
  while (in >> tok) {
    if (tok.rfind("port=", 0) == 0) port = tok.substr(5);
  }
  if (port.empty()) port = Env("PGPORT");
  CommandResult r = RunCommand({"pg_lsclusters", "--no-header"}, seconds(20));
  if (r.exit_code != 0) return {};
  std::istringstream lines(r.out);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream f(line);
    std::string ver, name, p, status;
    f >> ver >> name >> p >> status;
    if (p == port && status == "online") return {ver, name};
  }
  return {};
}

TEST_F(Consistency, PostgresRestartedMidStream) {
  if (skipped_) return;
  if (::geteuid() != 0) GTEST_SKIP() << "restarting the test cluster needs root (pg_ctlcluster)";
  auto [version, cluster] = FindCluster(pg_url_);
  if (version.empty()) GTEST_SKIP() << "no pg_lsclusters cluster serves " << pg_url_;

  std::string db_path = dir_->file("webui.db");
  CreateOpenWebUiDb(db_path);
  std::string config = WriteConfig(db_path, "", [](AgentConfig& c) { c.retry_max_ms = 2000; });
  ASSERT_EQ(Init(config).exit_code, 0);
  AgentProcess* agent = StartAgent(config);
  ASSERT_TRUE(ExpectCaughtUp(config, agent));

  RandomWriter::Options opts;
  opts.min_changes = 4000;
  opts.run_until_stopped = true;
  opts.pause_us = 2000;
  opts.seed = 33;
  RandomWriter writer(db_path, opts);
  writer.Start();
  int64_t pos_before = 0;
  ASSERT_TRUE(WaitUntil(
      [&] {
        pos_before = pg_->ScalarInt(
            "SELECT applied_seq FROM sync_metadata.source_position WHERE deployment = $1",
            {deployment_});
        return pos_before > 0 && writer.changes() > 1000;
      },
      seconds(60)))
      << "no progress before the restart";
  std::string started = pg_->Scalar("SELECT pg_postmaster_start_time()::text").value_or("");
  int64_t changes_at_restart = writer.changes();
  CommandResult restart =
      RunCommand({"pg_ctlcluster", version, cluster, "restart", "-m", "fast"}, seconds(120));
  ASSERT_EQ(restart.exit_code, 0) << restart.Describe();
  ASSERT_TRUE(WaitUntil(
      [&] {
        try {
          pg_->Reconnect();
          return true;
        } catch (const std::exception&) {
          return false;
        }
      },
      seconds(30)));
  EXPECT_NE(pg_->Scalar("SELECT pg_postmaster_start_time()::text").value_or(""), started)
      << "the server was not restarted";
  // Keep writing a while after the restart, then stop.
  ASSERT_TRUE(WaitUntil([&] { return writer.changes() > changes_at_restart + 3000; }, seconds(60)));
  writer.Stop();
  ASSERT_TRUE(writer.errors().empty()) << writer.errors()[0];

  ASSERT_TRUE(ExpectCaughtUp(config, agent, seconds(120)));
  EXPECT_TRUE(agent->Running()) << "the agent exited instead of reconnecting";
  Sqlite app(db_path);
  ExpectMirrorEqual(app);
  EXPECT_EQ(CheckBatchChain(*pg_, deployment_), "");
  EXPECT_TRUE(ContainsNoCase(agent->Log(), "backoff"))
      << "the agent log shows no reconnect backoff although the server restarted";
}

}  // namespace
}  // namespace sluice::e2e

namespace sluice::e2e {
namespace {

// DESIGN "pitfalls": the SQLite file restored from a backup puts the sink's
// position ahead of the journal; the agent must notice and resynchronise, not
// skip the changes whose seq numbers the sink believes it already has.
TEST_F(Consistency, RestoredFromBackupIsDetectedAndResynchronised) {
  if (skipped_) return;
  std::string db_path = dir_->file("webui.db");
  std::string backup = dir_->file("backup.db");
  CreateOpenWebUiDb(db_path);
  std::string config = WriteConfig(db_path);
  ASSERT_EQ(Init(config).exit_code, 0);
  RandomWriter::Options opts;
  opts.min_changes = 500;
  opts.seed = 77;
  std::vector<std::string> errors = WriteRandomChanges(db_path, opts);
  ASSERT_TRUE(errors.empty()) << errors[0];
  AgentProcess* agent = StartAgent(config);
  ASSERT_TRUE(ExpectCaughtUp(config, agent));
  {
    Sqlite db(db_path);
    db.Query("VACUUM INTO ?", {SqlValue::Text(backup)});
  }
  opts.seed = 78;
  opts.key_base = 5000000;
  errors = WriteRandomChanges(db_path, opts, /*load_keys=*/true);
  ASSERT_TRUE(errors.empty()) << errors[0];
  AgentStatus synced = WaitCaughtUp(config, agent);
  ASSERT_TRUE(synced.CaughtUp()) << synced.raw << synced.error;
  agent->Signal(SIGTERM);
  ASSERT_TRUE(agent->WaitExit(seconds(10)).has_value());

  // Restore the backup, then the app writes a little (seq numbers the sink
  // has already seen for other changes).
  for (const char* suffix : {"-wal", "-shm"}) std::filesystem::remove(db_path + suffix);
  std::filesystem::copy_file(backup, db_path, std::filesystem::copy_options::overwrite_existing);
  Sqlite app(db_path);
  app.Exec("PRAGMA journal_mode = WAL");
  int64_t restored_max =
      app.ScalarInt("SELECT seq FROM sqlite_sequence WHERE name = '_sluice_journal'");
  ASSERT_LT(restored_max, synced.sink_position);
  app.Exec(
      "INSERT INTO tag (id, name, user_id) VALUES ('after-restore', 'written after the restore', "
      "'u1');"
      "UPDATE message SET content = 'edited after the restore' WHERE id = (SELECT min(id) FROM "
      "message);");

  agent = StartAgent(config, "agent-after-restore");
  AgentStatus st = WaitCaughtUp(config, agent, seconds(60));
  EXPECT_TRUE(st.CaughtUp()) << "no catch-up after the restore: " << st.raw << st.error;
  EXPECT_TRUE(agent->Running()) << "the agent exited after the restore";
  ExpectMirrorEqual(app);
}

}  // namespace
}  // namespace sluice::e2e
