// Issue test 2: nothing lost, nothing applied twice. A writer makes >= 20,000
// changes on three Open WebUI tables while the agent is SIGKILLed at random
// moments (>= 20 times) and restarted; afterwards the mirror equals the source,
// deleted rows are tombstones, and applied_batches chain without overlap.
// "Applied twice" is made visible, not just harmless: an insert-only table
// `ledger` carries a trigger at the sink that counts every write of a row per
// (id, seq) in a side table (rolled back with its transaction, so it counts
// committed applies only); every ledger row must be written exactly once, and
// the ledger rows the sink must refuse (invalid UTF-8) are each parked in
// conflict_log exactly once. SLUICE_KILL_ITERATIONS / SLUICE_KILL_MIN_CHANGES
// shrink the run (scripts/test.sh does so under ASan).
#include <cstdlib>
#include <random>
#include <set>
#include <string>

#include "tests/integration/e2e_support.h"

namespace sluice::e2e {
namespace {

int EnvInt(const char* name, int fallback) {
  std::string v = Env(name);
  return v.empty() ? fallback : std::atoi(v.c_str());
}

// Inserts into `ledger` (insert-only) from its own connection, 1..20 rows per
// transaction; every 37th row holds invalid UTF-8, which the sink must park.
class LedgerWriter {
 public:
  explicit LedgerWriter(std::string db_path) : db_path_(std::move(db_path)) {}
  ~LedgerWriter() { Stop(); }
  static bool Bad(int64_t id) { return id % 37 == 0; }
  void Write(Sqlite& db, int rows) {
    db.Exec("BEGIN");
    for (int i = 0; i < rows; ++i) {
      int64_t id = ++next_id_;
      db.Query(
          "INSERT INTO ledger (id, note) VALUES (?, ?)",
          {SqlValue::Int(id), SqlValue::Text(Bad(id) ? std::string("bad \xff ") + std::to_string(id)
                                                     : "entry " + std::to_string(id))});
    }
    db.Exec("COMMIT");
  }
  void Start() {
    thread_ = std::thread([this] {
      try {
        Sqlite db(db_path_);
        std::mt19937 rng(5);
        while (!stop_) {
          Write(db, 1 + static_cast<int>(rng() % 20));
          std::this_thread::sleep_for(milliseconds(5));  // pacing only
        }
      } catch (const std::exception& e) {
        error_ = e.what();
      }
    });
  }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  int64_t rows() const { return next_id_; }
  const std::string& error() const { return error_; }

 private:
  std::string db_path_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> next_id_{0};
  std::string error_;
};

class KillLoop : public E2eTest {};

TEST_F(KillLoop, NothingLostNothingAppliedTwice) {
  if (skipped_) return;
  std::string db_path = dir_->file("webui.db");
  CreateOpenWebUiDb(db_path);

  // Rows that exist before the agent's initial sync: when the writer deletes
  // one of them later, the sink had it, so it must end as a tombstone.
  RandomWriter::Options seed_opts;
  seed_opts.min_changes = 3000;
  seed_opts.seed = 11;
  std::vector<std::string> seed_errors = WriteRandomChanges(db_path, seed_opts);
  ASSERT_TRUE(seed_errors.empty()) << seed_errors[0];
  Sqlite app(db_path);
  app.Exec("CREATE TABLE ledger (id INTEGER PRIMARY KEY, note TEXT NOT NULL)");
  LedgerWriter ledger(db_path);
  for (int i = 0; i < 25; ++i) ledger.Write(app, 20);  // 500 rows for the initial sync
  std::set<std::string> initial;
  for (auto& r :
       app.Query("SELECT 'message|' || id FROM message UNION ALL SELECT 'prompt|' || id "
                 "FROM prompt UNION ALL SELECT 'tag|' || id || '|' || user_id FROM tag")) {
    initial.insert(r[0].bytes);
  }
  ASSERT_GT(initial.size(), 500u);

  std::string config = WriteConfig(db_path);
  ASSERT_EQ(Init(config).exit_code, 0);
  // The sink-side counter: every committed write of a ledger row, per (id, seq).
  const std::string audit = deployment_ + "_audit";
  const std::string applied = PgTable(audit, "applied");
  ASSERT_TRUE(pg_->TableExists(deployment_, "ledger")) << "init created no mirror of ledger";
  pg_->Query("CREATE SCHEMA " + QuoteIdent(audit));
  pg_->Query("CREATE TABLE " + applied +
             " (id bigint, seq bigint, n int NOT NULL, PRIMARY KEY (id, seq))");
  pg_->Query("CREATE FUNCTION " + PgTable(audit, "count_applied") +
             "() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO " + applied +
             " AS a VALUES (NEW.id, NEW._sluice_seq, 1) ON CONFLICT (id, seq) DO UPDATE SET n = "
             "a.n + 1; RETURN NULL; END $$");
  pg_->Query("CREATE TRIGGER count_applied AFTER INSERT OR UPDATE ON " +
             PgTable(deployment_, "ledger") + " FOR EACH ROW EXECUTE FUNCTION " +
             PgTable(audit, "count_applied") + "()");
  AgentProcess* agent = StartAgent(config);
  ASSERT_TRUE(ExpectCaughtUp(config, agent));

  const int kKills = EnvInt("SLUICE_KILL_ITERATIONS", 24);
  const int64_t kMinChanges = EnvInt("SLUICE_KILL_MIN_CHANGES", 20000);
  RandomWriter::Options opts;
  opts.min_changes = kMinChanges;
  opts.run_until_stopped = true;
  opts.pause_us = 3000;
  opts.seed = 22;
  opts.key_base = 10000000;
  RandomWriter writer(db_path, opts);
  writer.LoadKeys();
  writer.Start();
  ledger.Start();

  std::mt19937 rng(std::random_device{}());
  std::uniform_int_distribution<int> pct(0, 99);
  int kills = 0;
  int64_t changes_at_first_kill = -1;
  int64_t changes_at_last_kill = -1;
  for (int i = 0; i < kKills; ++i) {
    // Random moment: sometimes right after start (opening, connecting,
    // loading the position), mostly while batches stream.
    int delay_ms = pct(rng) < 30 ? pct(rng) : 100 + pct(rng) * 6;
    std::this_thread::sleep_for(milliseconds(delay_ms));  // chaos schedule, not an assertion
    if (!agent->Running()) {
      ADD_FAILURE() << "the agent exited on its own (exit " << agent->last_exit().value_or(-1)
                    << ") before kill #" << i + 1;
      break;
    }
    agent->KillHard();
    ++kills;
    if (changes_at_first_kill < 0) changes_at_first_kill = writer.changes();
    changes_at_last_kill = writer.changes();
    agent->Start();
  }
  // Let the writer reach its minimum, then stop it.
  writer.Stop();
  ledger.Stop();
  ASSERT_TRUE(writer.errors().empty()) << "the app's writes failed: " << writer.errors()[0];
  ASSERT_EQ(ledger.error(), "") << "the app's ledger writes failed";
  EXPECT_EQ(writer.busy_errors(), 0);
  EXPECT_EQ(kills, kKills);
  EXPECT_GE(writer.changes(), kMinChanges);
  EXPECT_GT(changes_at_last_kill, changes_at_first_kill)
      << "the writer was not writing while the agent was being killed";

  ASSERT_TRUE(ExpectCaughtUp(config, agent, seconds(180)));
  CompareOptions compare;
  compare.is_parked = [](const std::string& table, const SourceRowRef& row) {
    const SqlValue* id = row.Get("id");  // checked against conflict_log below
    return table == "ledger" && id != nullptr && LedgerWriter::Bad(id->i);
  };
  ExpectMirrorEqual(app, compare);

  // Every row deleted (or moved to another key) that the sink had is a tombstone.
  int64_t tombstones_checked = 0;
  for (const char* table : {"message", "tag", "prompt"}) {
    for (const auto& key : writer.DeletedKeys(table)) {
      std::string k =
          std::string(table) + "|" + key[0].second + (key.size() > 1 ? "|" + key[1].second : "");
      if (initial.count(k) == 0) continue;
      std::optional<bool> tomb = SinkRowTombstoned(*pg_, deployment_, table, key);
      ++tombstones_checked;
      EXPECT_TRUE(tomb.has_value() && *tomb)
          << k << " was deleted in the source; the sink has " << (tomb ? "a live row" : "no row");
      if (HasFailure() && tombstones_checked > 20) break;
    }
  }
  EXPECT_GT(tombstones_checked, 50) << "too few deletions of initial rows to check tombstones";

  int64_t batches = 0;
  EXPECT_EQ(CheckBatchChain(*pg_, deployment_, &batches), "");
  EXPECT_GT(batches, kills / 2);

  // Exactly once, counted at the sink: each good ledger row written once (by
  // the initial sync or by one streamed batch), each bad one parked once.
  std::set<int64_t> good, bad;
  for (auto& r : app.Query("SELECT id FROM ledger")) {
    (LedgerWriter::Bad(r[0].i) ? bad : good).insert(r[0].i);
  }
  ASSERT_EQ(static_cast<int64_t>(good.size() + bad.size()), ledger.rows());
  PgRows twice = pg_->Query("SELECT id, string_agg(seq || ' x' || n, ', ') FROM " + applied +
                            " GROUP BY id HAVING sum(n) <> 1 ORDER BY id LIMIT 10");
  for (auto& r : twice.rows) {
    ADD_FAILURE() << "ledger row " << r[0].value_or("?") << " was applied more than once (seq x "
                  << "times): " << r[1].value_or("?");
  }
  std::set<int64_t> counted;
  for (auto& r : pg_->Query("SELECT id FROM " + applied).rows) counted.insert(std::stoll(*r[0]));
  EXPECT_EQ(counted, good) << "the rows written at the sink are not the good ledger rows";
  PgRows dup = pg_->Query(
      "SELECT table_name, row_key::text, seq, count(*) FROM sync_metadata.conflict_log WHERE "
      "deployment = $1 GROUP BY 1, 2, 3 HAVING count(*) > 1 LIMIT 10",
      {deployment_});
  for (auto& r : dup.rows) {
    ADD_FAILURE() << "conflict_log holds " << r[3].value_or("?") << " copies of " << *r[0] << " "
                  << r[1].value_or("") << " seq " << r[2].value_or("");
  }
  std::multiset<int64_t> parked;
  for (auto& r : pg_->Query("SELECT table_name, source_data->>'id' FROM "
                            "sync_metadata.conflict_log WHERE deployment = $1",
                            {deployment_})
                     .rows) {
    EXPECT_EQ(r[0], std::optional<std::string>("ledger")) << "an unexpected parked row";
    if (r[1]) parked.insert(std::stoll(*r[1]));
  }
  EXPECT_EQ(parked, std::multiset<int64_t>(bad.begin(), bad.end()))
      << "each invalid ledger row must be parked exactly once";
  EXPECT_GT(bad.size(), 20u);
  PgRows ignored;
  std::string err;
  if (!HasFailure()) pg_->TryQuery("DROP SCHEMA " + QuoteIdent(audit) + " CASCADE", &ignored, &err);

  std::cerr << "kill loop: " << kills << " kills, " << writer.changes() << " changes in "
            << writer.transactions() << " transactions, " << batches << " applied batches, "
            << tombstones_checked << " tombstones checked, " << good.size()
            << " ledger rows applied once, " << bad.size() << " parked once\n";
}

}  // namespace
}  // namespace sluice::e2e
