// Issue tests 1 and 9: an Open WebUI database round trip through the real
// binary (init, run, inserts/updates/deletes/key changes, status, SIGTERM),
// directly and through pgbouncer in transaction mode.
#include <signal.h>

#include <string>
#include <vector>

#include "tests/integration/e2e_support.h"

namespace sluice::e2e {
namespace {

using Key = std::vector<std::pair<std::string, std::string>>;

void SeedOpenWebUiRows(Sqlite& db) {
  db.Exec("BEGIN");
  for (int i = 1; i <= 3; ++i) {
    std::string id = "u" + std::to_string(i);
    db.Query(
        "INSERT INTO user (id, name, email, role, profile_image_url, api_key, created_at, "
        "updated_at, last_active_at, settings, info, oauth_sub, username, bio, gender, "
        "date_of_birth) VALUES (?, ?, ?, 'user', '/static/favicon.png', ?, ?, ?, ?, ?, NULL, NULL, "
        "?, ?, NULL, '1990-01-0' || ?)",
        {SqlValue::Text(id), SqlValue::Text(i == 2 ? "Zoë \"Z\" O'Brien 🚀" : "User " + id),
         SqlValue::Text(id + "@example.com"),
         i == 1 ? SqlValue::Text("sk-abc" + id) : SqlValue::Null(), SqlValue::Int(1730000000 + i),
         SqlValue::Int(1730000100 + i), SqlValue::Int(1730000200 + i),
         SqlValue::Text("{\"ui\": {\"theme\": \"dark\", \"n\": " + std::to_string(i) + "}}"),
         SqlValue::Text("user" + std::to_string(i)), SqlValue::Text("bio ✓ " + id),
         SqlValue::Int(i)});
    db.Query("INSERT INTO auth (id, email, password, active) VALUES (?, ?, ?, 1)",
             {SqlValue::Text(id), SqlValue::Text(id + "@example.com"),
              SqlValue::Text("$2b$12$hash" + id)});
  }
  for (int i = 1; i <= 3; ++i) {
    std::string id = "c" + std::to_string(i);
    std::string chat = "{\"title\": \"Chat " + id +
                       "\", \"models\": [\"llama3\"], \"history\": {\"currentId\": \"m" +
                       std::to_string(i) + "\", \"messages\": {\"m1\": {\"role\": \"user\", " +
                       "\"content\": \"héllo \\\"there\\\" \\u00e9 😀\", \"timestamp\": " +
                       "1730000000, \"done\": true, \"x\": null, \"f\": 1.5e-3}}}, \"tags\": []}";
    db.Query(
        "INSERT INTO chat (id, user_id, title, share_id, archived, created_at, updated_at, chat, "
        "pinned, meta, folder_id) VALUES (?, 'u1', ?, ?, 0, ?, ?, ?, ?, ?, NULL)",
        {SqlValue::Text(id), SqlValue::Text("Chat " + id),
         i == 2 ? SqlValue::Text("share-2") : SqlValue::Null(), SqlValue::Int(1730000000 + i),
         SqlValue::Int(1730000500 + i), SqlValue::Text(chat),
         i == 3 ? SqlValue::Null() : SqlValue::Int(i % 2),
         SqlValue::Text("{\"tags\": [\"work\"]}")});
  }
  for (int i = 1; i <= 3; ++i) {
    int64_t ns = 1730000000123456789LL + i;
    db.Query(
        "INSERT INTO message (id, user_id, channel_id, content, data, meta, created_at, "
        "updated_at, parent_id) VALUES (?, 'u1', 'ch1', ?, NULL, '{}', ?, ?, NULL)",
        {SqlValue::Text("m" + std::to_string(i)), SqlValue::Text("message " + std::to_string(i)),
         SqlValue::Int(ns), SqlValue::Int(ns + 1)});
  }
  db.Exec(
      "INSERT INTO tag (id, name, user_id, meta) VALUES ('work', 'Work', 'u1', NULL), "
      "('work', 'Work', 'u2', '{\"color\": \"red\"}'), ('fun', 'Fun', 'u1', NULL);"
      "INSERT INTO config (id, data, version, updated_at) VALUES (1, "
      "'{\"version\": 0, \"ui\": {\"default_locale\": \"\"}}', 0, NULL);"
      "INSERT INTO prompt (id, command, user_id, title, content, timestamp, access_control) "
      "VALUES (1, '/summarize', 'u1', 'Summarize', 'Summarize {{CLIPBOARD}}', 1730000000, NULL), "
      "(2, '/translate', 'u2', 'Translate', 'Translate to ''French''', 1730000001, "
      "'{\"read\": {\"group_ids\": []}}');"
      "INSERT INTO folder (id, parent_id, user_id, name, items, meta, is_expanded, created_at, "
      "updated_at, data) VALUES ('f1', NULL, 'u1', 'Folder', '[]', NULL, 1, 1730000000, "
      "1730000000, NULL);");
  db.Exec("COMMIT");
}

class RoundTrip : public E2eTest {
 protected:
  void RunFlow(const std::string& sink_url);
};

void RoundTrip::RunFlow(const std::string& sink_url) {
  std::string db_path = dir_->file("webui.db");
  CreateOpenWebUiDb(db_path);
  Sqlite app(db_path);
  SeedOpenWebUiRows(app);
  ASSERT_EQ(app.ScalarText("PRAGMA journal_mode"), "delete");
  std::string config = WriteConfig(db_path, sink_url, [](AgentConfig& c) {
    c.tables_json = "{\"chat\": {\"columns\": {\"created_at\": \"bigint\"}}}";
  });

  // init switches the file to WAL and says so; a second init is fine.
  CommandResult first = Init(config);
  ASSERT_EQ(first.exit_code, 0);
  EXPECT_TRUE(ContainsNoCase(first.out + first.err, "WAL"))
      << "init did not say it switched to WAL: " << first.Describe();
  EXPECT_EQ(Sqlite(db_path).ScalarText("PRAGMA journal_mode"), "wal")
      << "the file is not in WAL mode after init";
  for (const std::string& t : AppTables(app)) {
    for (const char* suffix : {"_ai", "_au", "_ad"}) {
      EXPECT_EQ(
          app.ScalarInt("SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name = ?",
                        {SqlValue::Text("_sluice_" + t + suffix)}),
          1)
          << "trigger _sluice_" << t << suffix << " missing after init";
    }
  }
  int64_t triggers = app.ScalarInt("SELECT count(*) FROM sqlite_master WHERE type = 'trigger'");
  CommandResult second = Init(config);
  ASSERT_EQ(second.exit_code, 0);
  EXPECT_EQ(app.ScalarInt("SELECT count(*) FROM sqlite_master WHERE type = 'trigger'"), triggers);

  AgentProcess* agent = StartAgent(config);
  ASSERT_TRUE(ExpectCaughtUp(config, agent));
  ExpectMirrorEqual(app);

  // The mapped types of the contract.
  struct Expect {
    const char* table;
    const char* column;
    const char* type;
  };
  for (const Expect& e : std::vector<Expect>{{"message", "created_at", "bigint"},
                                             {"user", "created_at", "bigint"},
                                             {"chat", "created_at", "bigint"},
                                             {"chat", "updated_at", "bigint"},
                                             {"chat", "chat", "jsonb"},
                                             {"chat", "pinned", "boolean"},
                                             {"chat", "title", "text"},
                                             {"config", "data", "jsonb"},
                                             {"config", "updated_at", "text"},
                                             {"folder", "is_expanded", "boolean"},
                                             {"prompt", "id", "bigint"},
                                             {"message", "_sluice_seq", "bigint"}}) {
    EXPECT_EQ(SinkColumnType(*pg_, deployment_, e.table, e.column), e.type)
        << e.table << "." << e.column;
  }
  EXPECT_EQ(SinkColumnType(*pg_, deployment_, "message", "_sluice_deleted_at"),
            "timestamp with time zone");
  EXPECT_EQ(SinkKeyColumns(*pg_, deployment_, "tag"), (std::vector<std::string>{"id", "user_id"}));

  // Inserts, updates, deletes, key changes, one multi-row transaction.
  std::string big_chat = "{\"history\": {\"messages\": [";
  for (int i = 0; i < 2000; ++i) {
    big_chat += (i ? ", " : "") + std::string("{\"id\": \"x") + std::to_string(i) +
                "\", \"content\": \"lorem ipsum dolor sit amet ünïcode ✓ " + std::to_string(i) +
                "\", \"ts\": " + std::to_string(1730000000000000000LL + i) + "}";
  }
  big_chat += "]}}";
  app.Query(
      "INSERT INTO user (id, name, email, role, profile_image_url, created_at, updated_at, "
      "last_active_at) VALUES ('u4', 'Four', 'u4@example.com', 'admin', '', 1, 2, 3)");
  app.Query(
      "INSERT INTO chat (id, user_id, title, archived, created_at, updated_at, chat, pinned, meta) "
      "VALUES ('c4', 'u4', 'Big', 0, 1730009999, 1730009999, ?, 1, '{}')",
      {SqlValue::Text(big_chat)});
  app.Exec(
      "UPDATE chat SET title = 'Renamed ✓', chat = json_set(chat, '$.title', 'Renamed'), "
      "updated_at = 1730001111 WHERE id = 'c2';"
      "UPDATE config SET data = '{\"version\": 1}', version = 1, updated_at = CURRENT_TIMESTAMP "
      "WHERE id = 1;"
      "UPDATE message SET content = 'edited', updated_at = 1730000000999999999 WHERE id = 'm1';"
      "DELETE FROM user WHERE id = 'u3';"
      "DELETE FROM tag WHERE id = 'fun' AND user_id = 'u1';"
      "DELETE FROM message WHERE id = 'm2';"
      "UPDATE tag SET user_id = 'u9' WHERE id = 'work' AND user_id = 'u2';"
      "UPDATE prompt SET id = 101 WHERE id = 1;"
      "UPDATE chat SET id = 'c1-renamed' WHERE id = 'c1';");
  app.Exec("BEGIN");
  for (int i = 0; i < 30; ++i) {
    app.Query(
        "INSERT INTO message (id, user_id, content, created_at) VALUES (?, 'u1', ?, ?)",
        {SqlValue::Text("batch-" + std::to_string(i)), SqlValue::Text("row " + std::to_string(i)),
         SqlValue::Int(1730000000000000000LL + i)});
  }
  app.Exec(
      "UPDATE message SET content = content || ' (updated)' WHERE id LIKE 'batch-%';"
      "DELETE FROM message WHERE id IN ('batch-3', 'batch-7');"
      "INSERT INTO message (id, content) VALUES ('ephemeral', 'gone before commit');"
      "DELETE FROM message WHERE id = 'ephemeral';");
  app.Exec("COMMIT");

  ASSERT_TRUE(ExpectCaughtUp(config, agent));
  ExpectMirrorEqual(app);
  std::vector<std::pair<std::string, Key>> deleted = {
      {"user", {{"id", "u3"}}},    {"tag", {{"id", "fun"}, {"user_id", "u1"}}},
      {"message", {{"id", "m2"}}}, {"tag", {{"id", "work"}, {"user_id", "u2"}}},
      {"prompt", {{"id", "1"}}},   {"chat", {{"id", "c1"}}},
  };
  for (auto& [table, key] : deleted) {
    std::optional<bool> tomb = SinkRowTombstoned(*pg_, deployment_, table, key);
    EXPECT_TRUE(tomb.has_value() && *tomb)
        << table << " " << key[0].second << ": deleted in the source, expected a tombstone, got "
        << (tomb ? "a live row" : "no row");
  }

  AgentStatus st = QueryStatus(config);
  ASSERT_TRUE(st.ok) << st.error;
  EXPECT_EQ(st.deployment, deployment_);
  EXPECT_EQ(st.backlog_rows, 0);
  EXPECT_TRUE(st.initial_sync_done);
  EXPECT_EQ(st.parked_rows, 0);
  EXPECT_EQ(st.sink_position, st.journal_max_seq);
  EXPECT_GT(st.journal_max_seq, 0);
  EXPECT_FALSE(st.source_id.empty());
  EXPECT_EQ(
      pg_->Scalar("SELECT source_id::text FROM sync_metadata.source_position WHERE deployment = $1",
                  {deployment_}),
      st.source_id);

  // SIGTERM: clean exit 0 within a few seconds.
  agent->Signal(SIGTERM);
  std::optional<int> code = agent->WaitExit(seconds(5));
  ASSERT_TRUE(code.has_value()) << "the agent did not exit within 5 s of SIGTERM";
  EXPECT_EQ(*code, 0);

  // init again after a run, then a restart picks up what was written meanwhile.
  ASSERT_EQ(Init(config).exit_code, 0);
  app.Exec(
      "INSERT INTO tag (id, name, user_id) VALUES ('after', 'After restart', 'u1');"
      "UPDATE user SET name = 'Four (renamed)' WHERE id = 'u4';");
  agent = StartAgent(config, "agent-restarted");
  ASSERT_TRUE(ExpectCaughtUp(config, agent));
  ExpectMirrorEqual(app);
  agent->Signal(SIGTERM);
  code = agent->WaitExit(seconds(5));
  ASSERT_TRUE(code.has_value()) << "the agent did not exit within 5 s of SIGTERM";
  EXPECT_EQ(*code, 0);
  std::string chain = CheckBatchChain(*pg_, deployment_);
  EXPECT_EQ(chain, "");
}

TEST_F(RoundTrip, OpenWebUiSchema) {
  if (skipped_) return;
  RunFlow(pg_url_);
}

TEST_F(RoundTrip, ThroughPgbouncerTransactionMode) {
  if (skipped_) return;
  std::string bouncer = Env("SLUICE_TEST_PGBOUNCER");
  if (bouncer.empty())
    GTEST_SKIP() << "SLUICE_TEST_PGBOUNCER not set (scripts/with-pgbouncer.sh sets it)";
  RunFlow(bouncer);
}

}  // namespace
}  // namespace sluice::e2e
