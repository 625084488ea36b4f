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
#include "tests/integration/ledger_audit.h"

namespace sluice::e2e {
namespace {

int EnvInt(const char* name, int fallback) {
  std::string v = Env(name);
  return v.empty() ? fallback : std::atoi(v.c_str());
}

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
  app.Exec(LedgerWriter::kCreateTable);
  LedgerWriter ledger(db_path);
  for (int i = 0; i < 25; ++i) ledger.Write(app, 20);  // 500 rows for the initial sync
  std::set<std::string> initial;
  for (auto& r :
       app.Query("SELECT 'message|' || id FROM message UNION ALL SELECT 'prompt|' || id "
                 "FROM prompt UNION ALL SELECT 'tag|' || id || '|' || user_id FROM tag")) {
    initial.insert(r[0].bytes);
  }
  ASSERT_GT(initial.size(), 500u);

  // A restarted agent waits for its killed predecessor's lease to expire (it
  // cannot tell a dead holder from a live one): a short lease keeps that wait
  // shorter than the kill schedule, so the kills land while batches stream.
  std::string config = WriteConfig(db_path, "", [](AgentConfig& c) {
    c.lease_json = "{\"duration_ms\": " + std::to_string(EnvInt("SLUICE_KILL_LEASE_MS", 300)) + "}";
  });
  ASSERT_EQ(Init(config).exit_code, 0);
  // The sink-side counter: every committed write of a ledger row, per (id, seq).
  ASSERT_TRUE(pg_->TableExists(deployment_, "ledger")) << "init created no mirror of ledger";
  LedgerAudit audit(*pg_, deployment_);
  audit.Install();
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
  ExpectMirrorEqual(app, LedgerWriter::ParkedBadRows());

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
  LedgerAudit::Result once = audit.Check(app, ledger.rows());
  for (const std::string& p : once.problems) ADD_FAILURE() << p;
  EXPECT_GT(once.bad, 20);
  if (!HasFailure()) audit.Drop();

  std::cerr << "kill loop: " << kills << " kills, " << writer.changes() << " changes in "
            << writer.transactions() << " transactions, " << batches << " applied batches, "
            << tombstones_checked << " tombstones checked, " << once.good
            << " ledger rows applied once, " << once.bad << " parked once\n";
}

}  // namespace
}  // namespace sluice::e2e
