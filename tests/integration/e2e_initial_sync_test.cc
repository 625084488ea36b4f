// Issue test 5: initial sync of an existing database with >= 100,000 rows while
// the app keeps writing, and kill -9 of the agent during that initial sync.
#include <string>

#include "tests/integration/e2e_support.h"

namespace sluice::e2e {
namespace {

constexpr int kRows = 100000;

void Populate(const std::string& db_path) {
  CreateOpenWebUiDb(db_path);
  Sqlite db(db_path);
  db.Exec("BEGIN");
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(
                db.handle(),
                "INSERT INTO message (id, user_id, channel_id, content, data, meta, "
                "created_at, updated_at, parent_id) VALUES (?, ?, 'chan', ?, ?, '{}', ?, ?, NULL)",
                -1, &st, nullptr),
            SQLITE_OK);
  for (int i = 0; i < kRows; ++i) {
    std::string id = "pre-" + std::to_string(i);
    std::string user = "user-" + std::to_string(i % 50);
    std::string content = "existing message " + std::to_string(i) + " — with ünïcode and 'quotes'";
    std::string data = "{\"i\": " + std::to_string(i) + ", \"tags\": [\"a\", \"b\"], \"r\": 0.5}";
    int64_t ns = 1700000000000000000LL + static_cast<int64_t>(i) * 1000003;
    sqlite3_bind_text(st, 1, id.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, user.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, content.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 4, data.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 5, ns);
    sqlite3_bind_int64(st, 6, ns + 1);
    ASSERT_EQ(sqlite3_step(st), SQLITE_DONE);
    sqlite3_reset(st);
  }
  sqlite3_finalize(st);
  db.Exec("COMMIT");
  ASSERT_EQ(db.ScalarInt("SELECT count(*) FROM message"), kRows);
}

int64_t Position(Pg& pg, const std::string& deployment) {
  auto v = pg.Scalar("SELECT applied_seq FROM sync_metadata.source_position WHERE deployment = $1",
                     {deployment});
  return v ? std::stoll(*v) : -2;
}

class InitialSync : public E2eTest {};

TEST_F(InitialSync, LargeDatabaseWhileAppWrites) {
  if (skipped_) return;
  std::string db_path = dir_->file("webui.db");
  Populate(db_path);
  if (HasFatalFailure()) return;
  std::string config = WriteConfig(db_path);
  ASSERT_EQ(Init(config).exit_code, 0);
  ASSERT_EQ(Position(*pg_, deployment_), -1) << "init must not mark the initial sync done";

  RandomWriter::Options opts;
  opts.min_changes = 5000;
  opts.run_until_stopped = true;
  opts.pause_us = 1000;
  opts.seed = 55;
  RandomWriter writer(db_path, opts);
  writer.LoadKeys();
  writer.Start();
  ASSERT_TRUE(WaitUntil([&] { return writer.changes() > 0; }, seconds(10)));
  AgentProcess* agent = StartAgent(config);
  int64_t changes_at_start = writer.changes();
  ASSERT_TRUE(WaitUntil([&] { return Position(*pg_, deployment_) >= 0 || !agent->Running(); },
                        seconds(120)))
      << "the initial sync did not finish in 120 s";
  ASSERT_TRUE(agent->Running()) << "the agent exited during the initial sync";
  int64_t changes_at_sync = writer.changes();
  EXPECT_GT(changes_at_sync, changes_at_start) << "the app did not write during the initial sync";
  writer.Stop();
  ASSERT_TRUE(writer.errors().empty()) << writer.errors()[0];
  EXPECT_EQ(writer.busy_errors(), 0);

  ASSERT_TRUE(ExpectCaughtUp(config, agent, seconds(120)));
  Sqlite app(db_path);
  ExpectMirrorEqual(app);
  EXPECT_EQ(CheckBatchChain(*pg_, deployment_), "");
}

TEST_F(InitialSync, KilledDuringInitialSync) {
  if (skipped_) return;
  std::string db_path = dir_->file("webui.db");
  Populate(db_path);
  if (HasFatalFailure()) return;
  std::string config = WriteConfig(db_path);
  ASSERT_EQ(Init(config).exit_code, 0);

  RandomWriter::Options opts;
  opts.min_changes = 3000;
  opts.run_until_stopped = true;
  opts.pause_us = 1000;
  opts.seed = 66;
  RandomWriter writer(db_path, opts);
  writer.LoadKeys();
  writer.Start();

  AgentProcess* agent = StartAgent(config);
  int kills_during_sync = 0;
  for (int delay_ms : {400, 250, 700, 150, 1000}) {
    std::this_thread::sleep_for(milliseconds(delay_ms));  // chaos schedule, not an assertion
    ASSERT_TRUE(agent->Running()) << "the agent exited on its own";
    agent->KillHard();
    if (Position(*pg_, deployment_) >= 0) break;  // too late: the initial sync had finished
    ++kills_during_sync;
    agent->Start();
  }
  EXPECT_GE(kills_during_sync, 1) << "the initial sync of " << kRows
                                  << " rows finished before the first kill (after 400 ms)";
  if (!agent->Running()) agent->Start();
  ASSERT_TRUE(WaitUntil([&] { return writer.changes() >= opts.min_changes; }, seconds(60)));
  writer.Stop();
  ASSERT_TRUE(writer.errors().empty()) << writer.errors()[0];

  ASSERT_TRUE(ExpectCaughtUp(config, agent, seconds(120)));
  Sqlite app(db_path);
  ExpectMirrorEqual(app);
  EXPECT_EQ(CheckBatchChain(*pg_, deployment_), "");
  std::cerr << "killed " << kills_during_sync << " time(s) during the initial sync\n";
}

}  // namespace
}  // namespace sluice::e2e
