// Issue #7: the conflict policy is checked against the source's real tables.
// `sluice init` and `sluice run` refuse (exit 2, naming table and column) a
// policy that does not fit; SIGHUP takes over a changed policy that fits and
// keeps the running one, saying so, when the new one does not. And, through
// the real binary end to end: a row gone from the mirror without a trace meets
// the app's next UPDATE of it as update_missing; INSERTs and key changes never do.
#include <csignal>
#include <string>

#include "tests/integration/e2e_support.h"

namespace sluice::e2e {
namespace {

class ConflictConfig : public E2eTest {
 protected:
  // A small chat table as Open WebUI declares it, and a config whose
  // `conflicts` names policy.json beside it.
  std::string Prepare() {
    db_path_ = dir_->file("app.db");
    Sqlite db(db_path_);
    db.Exec("PRAGMA journal_mode=WAL");
    db.Exec(
        "CREATE TABLE chat (id VARCHAR(255) NOT NULL PRIMARY KEY, title TEXT NOT NULL, "
        "updated_at DATETIME NOT NULL, chat JSON, meta JSON DEFAULT '{}' NOT NULL)");
    db.Exec("INSERT INTO chat VALUES ('c1', 'hello', 1700000000, '{\"messages\": []}', '{}')");
    std::string config = WriteConfig(db_path_);
    std::string text = ReadFile(config);
    text.replace(0, 1, "{\n  \"conflicts\": {\"file\": \"policy.json\"},");
    WriteFile(config, text);
    return config;
  }
  void WritePolicy(const std::string& table_strategies) {
    WriteFile(dir_->file("policy.json"),
              R"({"conflict_resolution": {"default_compare_field": "updated_at",)"
              R"( "table_strategies": )" +
                  table_strategies + "}}");
  }

  std::string db_path_;
};

// The seed's column names: chat has no "messages" column (the history is in chat.chat).
const char* kBad =
    R"({"chat": {"strategy": "merge", "merge_rules": {"messages": "append", "title": "newest_wins"}}})";
const char* kGood =
    R"({"chat": {"strategy": "merge", "merge_rules": {"chat": "union", "title": "newest_wins"}}})";
const char* kOtherGood = R"({"chat": {"strategy": "newest_wins"}})";
const char* kNamed =
    "table_strategies.chat.merge_rules.messages: table \"chat\" has no column "
    "\"messages\"";

TEST_F(ConflictConfig, InitAndRunRefuseAPolicyThatDoesNotFit) {
  if (skipped_) return;
  std::string config = Prepare();
  WritePolicy(kBad);
  CommandResult init = RunSluice({"init", "--config", config}, seconds(30));
  EXPECT_EQ(init.exit_code, 2) << init.Describe();
  EXPECT_NE(init.err.find(kNamed), std::string::npos) << init.Describe();

  WritePolicy(kGood);
  ASSERT_EQ(Init(config).exit_code, 0);
  WritePolicy(kBad);
  CommandResult run = RunSluice({"run", "--config", config}, seconds(20));
  EXPECT_EQ(run.exit_code, 2) << run.Describe();
  EXPECT_NE(run.err.find(kNamed), std::string::npos) << run.Describe();
}

TEST_F(ConflictConfig, SighupTakesOverAFittingPolicyAndKeepsTheRunningOneOtherwise) {
  if (skipped_) return;
  std::string config = Prepare();
  WritePolicy(kGood);
  ASSERT_EQ(Init(config).exit_code, 0);
  AgentProcess* agent = StartAgent(config);
  ASSERT_TRUE(ExpectCaughtUp(config, agent, seconds(30)));

  // Writes the policy, sends SIGHUP, and waits for `line` in the agent's log.
  auto reload = [&](const char* policy, const char* line) {
    WritePolicy(policy);
    agent->Signal(SIGHUP);
    return WaitUntil([&] { return agent->Log().find(line) != std::string::npos; }, seconds(10));
  };
  ASSERT_TRUE(reload(kBad, "keeping the running policy")) << agent->Log();
  EXPECT_NE(agent->Log().find(kNamed), std::string::npos) << agent->Log();
  EXPECT_EQ(agent->Log().find("conflicts: policy reloaded"), std::string::npos) << agent->Log();
  ASSERT_TRUE(agent->Running()) << agent->Log();

  ASSERT_TRUE(reload(kOtherGood, "conflicts: policy reloaded")) << agent->Log();
  ASSERT_TRUE(agent->Running()) << agent->Log();
  {
    Sqlite db(db_path_);
    db.Exec("INSERT INTO chat VALUES ('c2', 'two', 1700000001, NULL, '{}')");
  }
  ASSERT_TRUE(ExpectCaughtUp(config, agent, seconds(30)));
  agent->Signal(SIGTERM);
  EXPECT_EQ(agent->WaitExit(seconds(30)), 0);
}

TEST_F(ConflictConfig, AppUpdateOfARowGoneAtTheSinkWithoutATraceIsUpdateMissing) {
  if (skipped_) return;
  std::string config = Prepare();
  WritePolicy(kOtherGood);
  {
    Sqlite db(db_path_);
    db.Exec("INSERT INTO chat VALUES ('c2', 'two', 1700000001, NULL, '{}')");
  }
  ASSERT_EQ(Init(config).exit_code, 0);
  AgentProcess* agent = StartAgent(config);
  ASSERT_TRUE(ExpectCaughtUp(config, agent, seconds(30)));
  const std::string chat = "\"" + deployment_ + "\".chat";
  // A restore or a maintenance job with the triggers off: no outside_deletes row.
  pg_->Query("BEGIN; SET LOCAL session_replication_role = replica; DELETE FROM " + chat +
             " WHERE id = 'c1'; COMMIT");
  {
    Sqlite db(db_path_);
    db.Exec("UPDATE chat SET title = 'again' WHERE id = 'c1'");
    db.Exec("INSERT INTO chat VALUES ('c3', 'three', 1700000002, NULL, '{}')");
    db.Exec("UPDATE chat SET title = 'three!' WHERE id = 'c3'");
    db.Exec("UPDATE chat SET id = 'c2b' WHERE id = 'c2'");  // a key change: c2b is a new row
  }
  ASSERT_TRUE(ExpectCaughtUp(config, agent, seconds(30)));
  EXPECT_EQ(pg_->Scalar("SELECT string_agg(id || '|' || title || '|' || (_sluice_deleted_at IS "
                        "NULL) || '|' || (_sluice_base IS NULL), ' ' ORDER BY id) FROM " +
                        chat)
                .value_or(""),
            "c1|again|true|true c2|two|false|true c2b|two|true|true c3|three!|true|true");
  EXPECT_EQ(pg_->Scalar("SELECT string_agg(row_key::text || '|' || kind || '|' || strategy || '|' "
                        "|| status, ' ') FROM sync_metadata.conflict_log WHERE deployment = '" +
                        deployment_ + "'")
                .value_or(""),
            R"(["c1"]|update_missing|newest_wins|resolved)");
  EXPECT_NE(agent->Log().find("update_missing"), std::string::npos) << agent->Log();
  agent->Signal(SIGTERM);
  EXPECT_EQ(agent->WaitExit(seconds(30)), 0);
}

}  // namespace
}  // namespace sluice::e2e
