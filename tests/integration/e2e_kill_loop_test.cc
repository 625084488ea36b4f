// Issue test 2: nothing lost, nothing applied twice. A writer makes >= 20,000
// changes on three Open WebUI tables while the agent is SIGKILLed at random
// moments (>= 20 times) and restarted; afterwards the mirror equals the source,
// deleted rows are tombstones, and applied_batches chain without overlap.
#include <random>
#include <set>
#include <string>

#include "tests/integration/e2e_support.h"

namespace sluice::e2e {
namespace {

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
  std::set<std::string> initial;
  for (auto& r :
       app.Query("SELECT 'message|' || id FROM message UNION ALL SELECT 'prompt|' || id "
                 "FROM prompt UNION ALL SELECT 'tag|' || id || '|' || user_id FROM tag")) {
    initial.insert(r[0].bytes);
  }
  ASSERT_GT(initial.size(), 500u);

  std::string config = WriteConfig(db_path);
  ASSERT_EQ(Init(config).exit_code, 0);
  AgentProcess* agent = StartAgent(config);
  ASSERT_TRUE(ExpectCaughtUp(config, agent));

  RandomWriter::Options opts;
  opts.min_changes = 20000;
  opts.run_until_stopped = true;
  opts.pause_us = 3000;
  opts.seed = 22;
  opts.key_base = 10000000;
  RandomWriter writer(db_path, opts);
  writer.LoadKeys();
  writer.Start();

  std::mt19937 rng(std::random_device{}());
  std::uniform_int_distribution<int> pct(0, 99);
  const int kKills = 24;
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
  ASSERT_TRUE(writer.errors().empty()) << "the app's writes failed: " << writer.errors()[0];
  EXPECT_EQ(writer.busy_errors(), 0);
  EXPECT_GE(kills, 20);
  EXPECT_GE(writer.changes(), 20000);
  EXPECT_GT(changes_at_last_kill, changes_at_first_kill)
      << "the writer was not writing while the agent was being killed";

  ASSERT_TRUE(ExpectCaughtUp(config, agent, seconds(180)));
  ExpectMirrorEqual(app);

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
  std::cerr << "kill loop: " << kills << " kills, " << writer.changes() << " changes in "
            << writer.transactions() << " transactions, " << batches << " applied batches, "
            << tombstones_checked << " tombstones checked\n";
}

}  // namespace
}  // namespace sluice::e2e
