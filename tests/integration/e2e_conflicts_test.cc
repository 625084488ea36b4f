// Issue #7's torture test: conflicts at the sink while the agent is killed.
// The app changes rows of chat and memory in its SQLite file (WAL) while an
// outside writer — a second PostgreSQL client that never sets sluice.writer —
// updates, hard-deletes and inserts the same rows in their mirrors, and the
// agent is SIGKILLed at random moments and restarted. Afterwards
// (conflict_audit.h): batches chain exactly once; every conflict_log row
// belongs to a committed batch, is the only one for its (row, batch), names
// writes that happened and is resolved by the table's policy; under
// source_wins no outside image is logged twice; every outside write that a
// later source change surely reached was logged; every row is the source's,
// or still holds the last outside write when no source change reached it
// since ("outside writes that sluice never touches again are not
// conflicts"); nothing parked. Then the app touches every row once more: each
// row still holding an outside write logs exactly one conflict and (under
// source_wins) the mirror equals the source. The torture runs three times:
// every table source_wins (the default), memory under target_wins (the
// conflicts config key), and through pgbouncer with a pool of one server
// connection that the outside writer shares with the agent. The last test
// kills the agent inside a multi-chunk batch that has met conflicts (fault
// point between-chunks): no log row survives, and after the restart each is
// logged once. SLUICE_CONFLICT_KILLS sets the least number of kills (default 5).
#include <cstdlib>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "tests/integration/conflict_audit.h"
#include "tests/integration/conflict_writers.h"
#include "tests/integration/e2e_support.h"

namespace sluice::e2e {
namespace {

int EnvInt(const char* name, int fallback) {
  std::string v = Env(name);
  return v.empty() ? fallback : std::atoi(v.c_str());
}

// The config's "conflicts" object for `strategies` (empty: the key is left
// out, every table source_wins).
std::string ConflictsJson(const Strategies& strategies) {
  if (strategies.empty()) return "";
  std::string tables;
  for (const auto& [table, strategy] : strategies) {
    tables += (tables.empty() ? "" : ", ") + JsonString(table) +
              ": {\"strategy\": " + JsonString(strategy) + "}";
  }
  return "{\"default_strategy\": \"source_wins\", \"table_strategies\": {" + tables + "}}";
}

class ConflictTorture : public E2eTest {
 protected:
  void SetUp() override {
    E2eTest::SetUp();
    catch_up_timeout_ = seconds(60);
  }

  // The torture tables only, `chunk_rows` rows per statement, a lease of
  // `lease_ms` (a restarted agent waits for its killed predecessor's lease),
  // the tables' strategies.
  std::string Config(const std::string& db_path, int lease_ms, int chunk_rows,
                     const Strategies& strategies = {}, const std::string& sink_url = "") {
    std::string path = WriteConfig(db_path, sink_url, [&](AgentConfig& c) {
      c.include = {"chat", "memory"};
      c.lease_json = "{\"duration_ms\": " + std::to_string(lease_ms) + "}";
      c.sink_extra = "\"chunk_rows\": " + std::to_string(chunk_rows);
    });
    std::string conflicts = ConflictsJson(strategies);
    if (!conflicts.empty()) {
      std::string text = ReadFile(path);
      WriteFile(path, "{\n  \"conflicts\": " + conflicts + "," + text.substr(1));
    }
    return path;
  }

  // Starts (or restarts) `agent` with the fault point `fault` armed.
  static void StartArmed(AgentProcess* agent, const std::string& fault) {
    ::setenv("SLUICE_FAULT", fault.c_str(), 1);
    agent->Start();
    ::unsetenv("SLUICE_FAULT");
  }

  // The app's file (WAL) with `rows` rows in each torture table.
  void MakeApp(int rows) {
    db_path_ = dir_->file("webui.db");
    CreateOpenWebUiDb(db_path_);
    app_ = std::make_unique<Sqlite>(db_path_);
    app_->Exec("PRAGMA journal_mode = WAL");
    changer_ = std::make_unique<AppChanger>(db_path_, timeline_, AppChanger::Options{});
    changer_->Seed(rows);
  }

  // Kills `agent` at random moments (while it starts, waits for its
  // predecessor's lease, streams) and restarts it, at least `min_kills`
  // times and until `enough` holds, calling `before_kill(n)` before kill n;
  // returns the number of kills.
  static int KillUntil(AgentProcess* agent, int min_kills, const std::function<bool()>& enough,
                       const std::function<void(int)>& before_kill) {
    std::mt19937 rng(std::random_device{}());
    std::uniform_int_distribution<int> pause_ms(0, 700);
    const Clock::time_point give_up = Clock::now() + seconds(120);
    int kills = 0;
    while (kills < min_kills || !enough()) {
      if (Clock::now() > give_up) {
        ADD_FAILURE() << "the writers did not do enough in 120 s";
        break;
      }
      std::this_thread::sleep_for(milliseconds(pause_ms(rng)));  // chaos schedule, not an assertion
      if (!agent->Running()) {
        ADD_FAILURE() << "the agent exited on its own (exit " << agent->last_exit().value_or(-1)
                      << ") after " << kills << " kills";
        break;
      }
      before_kill(kills);
      agent->KillHard();
      agent->Start();
      ++kills;
    }
    return kills;
  }

  void ExpectAudited(const ConflictAudit& audit, const char* when) {
    for (const std::string& p : audit.problems) ADD_FAILURE() << when << ": " << p;
  }

  // The mirrors of the source_wins tables equal the source.
  void ExpectSourceWinsMirrorsEqual(Sqlite& app, const Strategies& strategies) {
    CompareOptions options;
    for (const TortureTable& t : TortureTables()) {
      if (strategies.count(t.name) == 0) options.tables.push_back(t.name);
    }
    CompareReport report = CompareMirror(app, *pg_, deployment_, options);
    EXPECT_TRUE(report.ok()) << report.Text();
    EXPECT_GT(report.rows_compared, 0);
  }

  struct Torture {
    Strategies strategies;  // as in Config
    std::string sink_url;   // the agent's and the outside writer's; "" = the server
    int lease_ms = 300;
    // `sluice resync --table` (chat, then memory) before every other kill:
    // full reads (sweep, orphan pass) under the outside writer and the kills.
    bool full_reads = false;
  };
  // The outside writer and the kill loop, then the audit, then the touch round.
  void RunTorture(const Torture& run);

  std::string db_path_;
  std::unique_ptr<Sqlite> app_;
  Timeline timeline_;
  std::unique_ptr<AppChanger> changer_;
};

void ConflictTorture::RunTorture(const Torture& run) {
  const Strategies& strategies = run.strategies;
  const std::string& sink_url = run.sink_url;
  MakeApp(120);
  // Small chunks: most batches span several statements, so kills land between them.
  std::string config = Config(db_path_, run.lease_ms, 16, strategies, sink_url);
  ASSERT_EQ(Init(config).exit_code, 0);
  AgentProcess* agent = StartAgent(config);
  ASSERT_TRUE(ExpectCaughtUp(config, agent));

  auto synced_seqs = [&] {
    return pg_
        ->Query(
            "SELECT string_agg(table_name || ' ' || synced_seq, ', ' ORDER BY table_name) "
            "FROM sync_metadata.mirror_tables WHERE deployment = $1",
            {deployment_})
        .rows[0][0]
        .value_or("");
  };
  const std::string initial_sync = synced_seqs();
  OutsideWriter outside(sink_url.empty() ? pg_url_ : sink_url, deployment_, timeline_, {});
  if (run.full_reads) {
    // A row the app never has in each table: the orphan pass of its full read meets it.
    for (const TortureTable& t : TortureTables()) ASSERT_TRUE(outside.Insert(t, 900000));
  }
  changer_->Start();
  outside.Start();
  // Enough writes on both sides whatever the machine's speed (or a writer failed).
  std::map<std::string, int64_t> full_reads;  // requested, per table
  auto resync = [&](int kill) {
    if (!run.full_reads || kill % 2 != 0) return;
    const TortureTable& t = TortureTables()[static_cast<size_t>(kill / 2) % TortureTables().size()];
    CommandResult r = RunSluice({"resync", "--table", t.name, "--config", config});
    EXPECT_EQ(r.exit_code, 0) << r.Describe();
    ++full_reads[t.name];
  };
  const int kills = KillUntil(
      agent, EnvInt("SLUICE_CONFLICT_KILLS", 5),
      [&] {
        return (changer_->steps() >= 300 && outside.writes() >= 250) ||
               !changer_->error().empty() || !outside.error().empty();
      },
      resync);
  std::this_thread::sleep_for(milliseconds(300));  // one more stretch without kills
  changer_->Stop();
  outside.Stop();
  ASSERT_EQ(changer_->error(), "") << "the app's writes failed";
  ASSERT_EQ(outside.error(), "") << "the outside writes failed";
  ASSERT_TRUE(ExpectCaughtUp(config, agent));
  int64_t batches = 0;
  EXPECT_EQ(CheckBatchChain(*pg_, deployment_, &batches), "");

  SinkSnapshot sink = ReadSink(*pg_, deployment_, deployment_);
  std::map<RowId, SourceRow> source = ReadSource(*app_);
  ConflictAudit audit = AuditConflicts(sink, source, timeline_.Histories(), strategies, full_reads);
  ExpectAudited(audit, "after the kills");
  EXPECT_EQ(sink.parked, 0) << "rows parked";
  for (const char* kind :
       {"update_origin_differs", "delete_origin_differs", "update_deleted", "insert_exists"}) {
    EXPECT_GT(audit.kinds[kind], 0) << "no " << kind << " conflict was provoked";
  }
  EXPECT_GT(audit.covered, 20) << "too few outside writes were surely followed by a source change";
  EXPECT_GT(audit.accounted, 100) << "too few outside writes to account for";
  if (run.full_reads) {
    EXPECT_NE(synced_seqs(), initial_sync) << "no table was read whole again";
    EXPECT_GT(audit.orphans, 0) << "no full read met a row inserted outside only";
  }
  std::cerr << "conflict torture: " << kills << " kills, " << changer_->steps()
            << " app transactions, " << outside.writes() << " outside writes, " << batches
            << " batches, " << sink.log.size() << " conflicts (";
  for (const auto& [kind, n] : audit.kinds) std::cerr << kind << " " << n << ", ";
  std::cerr << audit.covered << " outside writes surely reached, " << audit.accounted
            << " accounted for, " << audit.orphans << " orphans), " << audit.marked
            << " rows still marked, " << sink.open_deletes.size() << " open outside deletes\n";

  // The touch round: each row still holding an outside write (or deleted
  // outside) meets exactly one more source change, and logs exactly one conflict.
  std::map<RowId, std::string> expected = TouchConflicts(sink, source);
  if (expected.empty()) {
    // Every outside write was met already (seen once in ten ASan runs with
    // full reads on a loaded machine): give the touch round rows to meet.
    outside.UpdateAll(TortureTables()[0]);
    sink = ReadSink(*pg_, deployment_, deployment_);
    expected = TouchConflicts(sink, source);
  }
  changer_->Touch(AbsentFromSource(sink, source));
  ASSERT_TRUE(ExpectCaughtUp(config, agent));
  const int64_t before = sink.log.empty() ? 0 : sink.log.back().id;
  SinkSnapshot touched = ReadSink(*pg_, deployment_, deployment_);
  std::map<RowId, std::string> logged;
  for (const ConflictLogRow& c : touched.log) {
    if (c.id <= before) continue;
    EXPECT_TRUE(logged.emplace(c.row, c.kind).second)
        << c.row.first << " " << c.row.second << ": two conflicts in the touch round";
  }
  EXPECT_EQ(logged, expected) << "the touch round's conflicts";
  EXPECT_GT(expected.size(), 0u);
  ExpectAudited(
      AuditConflicts(touched, ReadSource(*app_), timeline_.Histories(), strategies, full_reads),
      "after the touch round");
  EXPECT_EQ(CheckBatchChain(*pg_, deployment_), "");
  ExpectSourceWinsMirrorsEqual(*app_, strategies);
  for (const auto& [row, k] : touched.rows) {
    if (strategies.count(row.first) != 0) continue;
    EXPECT_FALSE(k.marked) << row.first << " " << row.second << " still marked";
  }
  EXPECT_EQ(touched.parked, 0);
}

TEST_F(ConflictTorture, OutsideWriterAndKillsEveryRowEndsAsItsPolicySays) {
  if (skipped_) return;
  RunTorture({});
}

// The same torture while tables are read whole again (`sluice resync
// --table` with the agent running): the full reads meet outside-changed rows
// in their upserts, skip them in the sweep, and the orphan pass tombstones
// the marked rows the source does not have, each logged once.
TEST_F(ConflictTorture, FullReadsUnderTheOutsideWriter) {
  if (skipped_) return;
  Torture run;
  run.full_reads = true;
  RunTorture(run);
}

// The same torture with memory under target_wins (the conflicts config key):
// its outside writes stay, each source change that meets one is logged.
TEST_F(ConflictTorture, TargetWinsKeepsEveryOutsideWriteOfItsTable) {
  if (skipped_) return;
  Torture run;
  run.strategies = {{"memory", "target_wins"}};
  RunTorture(run);
}

// The same torture through pgbouncer in transaction mode with a pool of ONE
// server connection, the outside writer a client of the same pool: each of
// its transactions runs on the backend the agent's last one ran on, so a
// sluice.writer that outlived the agent's transaction would make its writes
// sluice's own (unmarked, silently overwritten: unaccounted for).
TEST_F(ConflictTorture, OutsideWriterOnTheAgentsPooledBackend) {
  if (skipped_) return;
  std::string pool1 = Env("SLUICE_TEST_PGBOUNCER_POOL1");
  if (pool1.empty()) {
    GTEST_SKIP() << "SLUICE_TEST_PGBOUNCER_POOL1 not set (scripts/with-pgbouncer.sh sets it)";
  }
  Torture run;
  run.sink_url = pool1;
  run.lease_ms = 1000;
  RunTorture(run);
}

// Found by OutsideWriterOnTheAgentsPooledBackend with a writer that set
// sluice.writer: a client that names itself the deployment's writer (SET
// LOCAL sluice.writer, "no security boundary") on a marked row passes through
// on a fresh backend (current_setting('sluice.apply', true) is NULL there);
// on a backend where the agent once set sluice.apply transaction-locally the
// setting reads '' afterwards, and the cast to jsonb failed ("invalid input
// syntax for type json") until the SQL read it with nullif(..., '').
TEST_F(ConflictTorture, OnlySluiceWriterPassesThroughOnABackendTheAgentUsed) {
  if (skipped_) return;
  std::string pool1 = Env("SLUICE_TEST_PGBOUNCER_POOL1");
  if (pool1.empty()) {
    GTEST_SKIP() << "SLUICE_TEST_PGBOUNCER_POOL1 not set (scripts/with-pgbouncer.sh sets it)";
  }
  MakeApp(3);
  std::string config = Config(db_path_, 1000, 16, {}, pool1);
  ASSERT_EQ(Init(config).exit_code, 0);
  AgentProcess* agent = StartAgent(config);
  ASSERT_TRUE(ExpectCaughtUp(config, agent));
  OutsideWriter outside(pg_url_, deployment_, timeline_, {});
  ASSERT_EQ(outside.UpdateAll(TortureTables()[0]), 3);
  const std::string update = "BEGIN; SELECT set_config('sluice.writer', '" + deployment_ +
                             "', true); UPDATE " + PgTable(deployment_, "chat") +
                             " SET title = 'migrated' WHERE id = 'c00000'; COMMIT";
  PgRows ignored;
  std::string err;
  Pg fresh(pg_url_);
  EXPECT_TRUE(fresh.TryQuery(update, &ignored, &err)) << "on a fresh backend: " << err;
  Pg pooled(pool1);  // the backend the agent's transactions ran on
  EXPECT_TRUE(pooled.TryQuery(update, &ignored, &err)) << "on the agent's backend: " << err;
}

TEST_F(ConflictTorture, KilledInsideABatchThatMetConflictsLogsEachOnce) {
  if (skipped_) return;
  MakeApp(30);
  // Ten rows per statement: the 60 changed rows are one batch of six chunks.
  // The lease (and with it idle_in_transaction_session_timeout) outlasts the
  // look at the frozen agent's open transaction.
  std::string config = Config(db_path_, 4000, 10);
  ASSERT_EQ(Init(config).exit_code, 0);
  AgentProcess* agent = StartAgent(config);
  ASSERT_TRUE(ExpectCaughtUp(config, agent));
  ASSERT_EQ(agent->Stop(seconds(10)), 0);

  // Every row changed outside, then every row changed by the app.
  OutsideWriter outside(pg_url_, deployment_, timeline_, {});
  int64_t changed = 0;
  for (const TortureTable& t : TortureTables()) changed += outside.UpdateAll(t);
  ASSERT_EQ(changed, 60);
  changer_->Touch({});

  // Frozen after its first chunk: the conflicts met there are in its open
  // transaction (their rows locked), none committed.
  StartArmed(agent, "between-chunks:stop");
  ASSERT_TRUE(WaitUntil(
      [&] {
        return agent->Log().find("fault point between-chunks reached: SIGSTOP") !=
               std::string::npos;
      },
      seconds(30)))
      << "the agent never got between two chunks";
  Pg probe(pg_url_);
  probe.Query("BEGIN");
  int64_t unlocked = 0;
  for (const TortureTable& t : TortureTables()) {
    unlocked += probe.ScalarInt("SELECT count(*) FROM (SELECT 1 FROM " +
                                PgTable(deployment_, t.name) + " FOR UPDATE SKIP LOCKED) r");
  }
  probe.Query("ROLLBACK");
  std::cerr << "frozen between two chunks: " << 60 - unlocked << " of 60 rows written\n";
  EXPECT_GT(60 - unlocked, 0) << "the frozen batch had written no row";
  EXPECT_GT(unlocked, 0) << "the frozen batch had written every row";
  EXPECT_EQ(ReadSink(*pg_, deployment_, deployment_).log.size(), 0u);

  // Killed there: nothing of the batch, no log row, every row still marked.
  agent->KillHard();
  SinkSnapshot killed = ReadSink(*pg_, deployment_, deployment_);
  EXPECT_EQ(killed.log.size(), 0u);
  int64_t marked = 0;
  for (const auto& [row, k] : killed.rows) marked += k.marked ? 1 : 0;
  EXPECT_EQ(marked, 60);

  // Restarted: each conflict logged exactly once, the source's rows at the sink.
  agent->Start();
  ASSERT_TRUE(ExpectCaughtUp(config, agent));
  SinkSnapshot sink = ReadSink(*pg_, deployment_, deployment_);
  ConflictAudit audit = AuditConflicts(sink, ReadSource(*app_), timeline_.Histories(), {});
  ExpectAudited(audit, "after the restart");
  EXPECT_EQ(sink.log.size(), 60u);
  EXPECT_EQ(audit.kinds["update_origin_differs"], 60);
  EXPECT_EQ(audit.covered, 60);
  EXPECT_EQ(audit.marked, 0);
  EXPECT_EQ(sink.parked, 0);
  EXPECT_EQ(CheckBatchChain(*pg_, deployment_), "");
  ExpectSourceWinsMirrorsEqual(*app_, {});
}

}  // namespace
}  // namespace sluice::e2e
