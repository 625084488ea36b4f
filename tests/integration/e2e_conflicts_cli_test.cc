// `sluice conflicts list|resolve` through the real binary: the text table and
// --json lines with their filters, resolve each way with what it prints, the
// exit codes (twice, unknown id, bad usage, bad --row, a batch holding the
// position row), and who resolved it (--by, else the OS user), on entries from
// a mirror made by hand (tests/sink/conflict_mirror.h); then resolves while
// `sluice run` applies the app's changes to the same rows.
#include <pwd.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "sql/control_plane_sql.h"
#include "tests/integration/e2e_support.h"
#include "tests/sink/conflict_mirror.h"

namespace sluice::e2e {
namespace {

class ConflictsCli : public E2eTest {
 protected:
  void SetUp() override {
    E2eTest::SetUp();
    if (skipped_) return;
    config_ = WriteConfig(dir_->file("app.db"));
    pg_->Query(std::string(kControlPlaneSql));  // what `sluice init` installs
    mirror_ = std::make_unique<testing::HandMadeConflictMirror>(pg_url_, deployment_);
    mirror_->Create("chat");
  }

  CommandResult Sluice(std::vector<std::string> args) {
    args.insert(args.begin() + 2, {"--config", config_});
    return RunSluice(args);
  }

  std::vector<std::string> Lines(const std::string& out) {
    std::vector<std::string> lines;
    size_t start = 0;
    while (start < out.size()) {
      size_t end = out.find('\n', start);
      if (end == std::string::npos) end = out.size();
      lines.push_back(out.substr(start, end - start));
      start = end + 1;
    }
    return lines;
  }

  std::string config_;
  std::unique_ptr<testing::HandMadeConflictMirror> mirror_;
};

TEST_F(ConflictsCli, ListFiltersJsonAndResolveEachWayWithExitCodes) {
  if (skipped_) return;
  std::vector<int64_t> id;
  for (const char* key : {"a", "b", "c", "d"}) id.push_back(mirror_->Pending(key));
  auto sid = [&](size_t i) { return std::to_string(id[i]); };

  CommandResult json = Sluice({"conflicts", "list", "--json"});
  ASSERT_EQ(json.exit_code, 0) << json.Describe();
  std::vector<std::string> lines = Lines(json.out);
  ASSERT_EQ(lines.size(), 4u) << json.out;
  EXPECT_EQ(lines[0].rfind("{\"id\":" + sid(0) +
                               ",\"table\":\"chat\",\"key\":[\"a\"],\"kind\":\"update_origin_"
                               "differs\",\"strategy\":\"manual\",\"status\":\"pending\",",
                           0),
            0u)
      << lines[0];
  for (const char* field : {"\"seq\":10,", "\"epoch\":3,", "\"batch\":10,", "\"created_at\":\"20",
                            "\"resolved_by\":null,", "\"resolved_at\":null}"}) {
    EXPECT_NE(lines[0].find(field), std::string::npos) << field << " in " << lines[0];
  }
  EXPECT_EQ(lines[0].find("\"source\":"), std::string::npos);  // only with --images

  CommandResult text = Sluice({"conflicts", "list"});
  ASSERT_EQ(text.exit_code, 0) << text.Describe();
  lines = Lines(text.out);
  ASSERT_EQ(lines.size(), 5u) << text.out;
  EXPECT_EQ(lines[0].rfind("ID", 0), 0u) << lines[0];
  for (const char* col : {"TABLE", "KEY", "KIND", "STRATEGY", "STATUS", "SEQ", "EPOCH", "BATCH",
                          "CREATED", "RESOLVED"}) {
    EXPECT_NE(lines[0].find(col), std::string::npos) << col;
  }
  for (const std::string& cell :
       {sid(0) + " ", std::string(" chat "), std::string(" [\"a\"] "),
        std::string(" update_origin_differs "), std::string(" manual "), std::string(" pending "),
        std::string(" 10 "), std::string(" 3 ")}) {
    EXPECT_NE(lines[1].find(cell), std::string::npos) << cell << " in " << lines[1];
  }

  // resolve: each way, what it prints.
  CommandResult src = Sluice({"conflicts", "resolve", sid(0), "--take", "source", "--by", "alice"});
  ASSERT_EQ(src.exit_code, 0) << src.Describe();
  EXPECT_EQ(src.out, "conflict " + sid(0) + " (chat [\"a\"]): took source, resolved by alice\n");
  CommandResult merged =
      Sluice({"conflicts", "resolve", sid(2), "--take", "merged", "--by", "carol"});
  ASSERT_EQ(merged.exit_code, 0) << merged.Describe();
  EXPECT_EQ(merged.out, "conflict " + sid(2) + " (chat [\"c\"]): took merged, resolved by carol\n");
  CommandResult row = Sluice({"conflicts", "resolve", sid(3), "--take", "merged", "--row",
                              R"({"title": "by hand"})", "--by", "dave"});
  ASSERT_EQ(row.exit_code, 0) << row.Describe();
  EXPECT_EQ(mirror_->Cell("chat", "d", "title"), "by hand");
  // No --by: the OS user.
  CommandResult target = Sluice({"conflicts", "resolve", sid(1), "--take", "target"});
  ASSERT_EQ(target.exit_code, 0) << target.Describe();
  const passwd* pw = ::getpwuid(::geteuid());
  ASSERT_NE(pw, nullptr);
  EXPECT_EQ(target.out, "conflict " + sid(1) + " (chat [\"b\"]): took target, resolved by " +
                            std::string(pw->pw_name) + "\n");
  EXPECT_EQ(mirror_->Cell("chat", "a", "title") + "/" + mirror_->Cell("chat", "b", "title"),
            "source/outside");

  // Twice: exit 1, says by whom and when.
  CommandResult twice = Sluice({"conflicts", "resolve", sid(0), "--take", "target", "--by", "bob"});
  EXPECT_EQ(twice.exit_code, 1) << twice.Describe();
  EXPECT_NE(twice.err.find("conflict " + sid(0) + " is resolved (by alice, at 20"),
            std::string::npos)
      << twice.err;
  EXPECT_NE(twice.err.find("not pending"), std::string::npos) << twice.err;
  EXPECT_EQ(mirror_->Cell("chat", "a", "title"), "source");

  CommandResult unknown = Sluice({"conflicts", "resolve", "999999999", "--take", "source"});
  EXPECT_EQ(unknown.exit_code, 1) << unknown.Describe();
  EXPECT_NE(unknown.err.find("conflict 999999999 does not exist in deployment " + deployment_),
            std::string::npos)
      << unknown.err;

  // Filters and --images.
  CommandResult resolved =
      Sluice({"conflicts", "list", "--status", "resolved", "--json", "--images"});
  ASSERT_EQ(resolved.exit_code, 0) << resolved.Describe();
  lines = Lines(resolved.out);
  ASSERT_EQ(lines.size(), 4u) << resolved.out;
  EXPECT_NE(lines[0].find("\"resolved_by\":\"alice\",\"resolved_at\":\"20"), std::string::npos)
      << lines[0];
  for (const char* field : {"\"source\":{", "\"target\":{", "\"base\":{", "\"resolved\":{"}) {
    EXPECT_NE(lines[0].find(field), std::string::npos) << field << " in " << lines[0];
  }
  EXPECT_NE(lines[3].find("\"resolved\":{\"id\": \"d\""), std::string::npos) << lines[3];
  CommandResult none = Sluice({"conflicts", "list", "--status", "pending"});
  ASSERT_EQ(none.exit_code, 0) << none.Describe();
  EXPECT_EQ(none.out, "no conflicts in deployment " + deployment_ + " with status pending\n");
  CommandResult other = Sluice({"conflicts", "list", "--table", "note", "--json"});
  ASSERT_EQ(other.exit_code, 0) << other.Describe();
  EXPECT_EQ(other.out, "");
}

TEST_F(ConflictsCli, BadUsageBadRowAndABatchInFlight) {
  if (skipped_) return;
  std::string id = std::to_string(mirror_->Pending("a"));
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"conflicts", "resolve", id, "--take", "theirs"},
           {"conflicts", "resolve", id},
           {"conflicts", "resolve", "x", "--take", "source"},
           {"conflicts", "list", "--status", "open"},
           {"conflicts", "resolve", id, "--take", "target", "--row", "{}"},
           {"conflicts", "resolve", id, "--take", "merged", "--row", R"({"nope": 1})"},
           {"conflicts", "resolve", id, "--take", "merged", "--row", R"({"id": "z"})"},
           {"conflicts", "resolve", id, "--take", "merged", "--row", "[1]"}}) {
    CommandResult r = Sluice(args);
    EXPECT_EQ(r.exit_code, 2) << r.Describe();
  }
  EXPECT_EQ(mirror_->One("SELECT status FROM sync_metadata.conflict_log WHERE id = " + id),
            "pending");

  // A batch in flight holds the position row (sluice_advance): --wait, then exit 1.
  pg_->Query("BEGIN");
  pg_->Query("SELECT 1 FROM sync_metadata.source_position WHERE deployment = '" + deployment_ +
             "' FOR UPDATE");
  CommandResult busy = Sluice({"conflicts", "resolve", id, "--take", "source", "--wait", "0.3"});
  pg_->Query("ROLLBACK");
  EXPECT_EQ(busy.exit_code, 1) << busy.Describe();
  EXPECT_NE(busy.err.find("the agent is applying a batch; try again"), std::string::npos)
      << busy.err;
  EXPECT_EQ(mirror_->One("SELECT status FROM sync_metadata.conflict_log WHERE id = " + id),
            "pending");
  CommandResult now = Sluice({"conflicts", "resolve", id, "--take", "source", "--wait", "5"});
  EXPECT_EQ(now.exit_code, 0) << now.Describe();
}

// A stale pending entry through the binary: pending at seq 10, then an
// outside writer puts the row back to its base, so the next source change
// (seq 20) is written clean, past the entry. --take source would roll the row
// back to seq 10's image: exit 1, the row unchanged; --take target closes it,
// the row still clean. (A policy change from manual closes the entry in SQL.)
TEST_F(ConflictsCli, StaleEntryRefusesTakeSource) {
  if (skipped_) return;
  std::string id = std::to_string(mirror_->Pending("a"));
  pg_->Query("UPDATE " + PgTable(deployment_, "chat") +
             " SET title = 'base', chat = '{\"messages\": [{\"id\": \"m1\", \"content\": "
             "\"text\"}, {\"id\": \"m2\", \"content\": \"text\"}]}', meta = '{\"tags\": "
             "[\"tx\"]}', updated_at = 1000 WHERE id = 'a'");
  mirror_->Apply("chat", R"({"default": {"strategy": "manual"}})",
                 {testing::HandMadeConflictMirror::Row("a", "source 2", "1245", "xs", 4000, 20)},
                 "[]", 20);
  ASSERT_EQ(mirror_->One("SELECT string_agg(status || ':' || strategy || ':' || seq, ',' ORDER "
                         "BY id) FROM sync_metadata.conflict_log WHERE deployment = '" +
                         deployment_ + "'"),
            "pending:manual:10");
  const std::string row =
      "title || '/' || _sluice_seq || '/' || (_sluice_outside_at IS NULL)::text || '/' || "
      "(_sluice_base IS NULL)::text";
  CommandResult src = Sluice({"conflicts", "resolve", id, "--take", "source", "--by", "alice"});
  EXPECT_EQ(src.exit_code, 1) << src.Describe();
  EXPECT_NE(src.err.find("conflict " + id +
                         " is stale: the source moved on (row now at seq 20, the entry holds seq "
                         "10); the row already holds a newer source version"),
            std::string::npos)
      << src.err;
  EXPECT_EQ(mirror_->Cell("chat", "a", row), "source 2/20/true/true");
  EXPECT_EQ(mirror_->One("SELECT status FROM sync_metadata.conflict_log WHERE id = " + id),
            "pending");
  CommandResult target = Sluice({"conflicts", "resolve", id, "--take", "target", "--by", "bob"});
  EXPECT_EQ(target.exit_code, 0) << target.Describe();
  EXPECT_EQ(mirror_->Cell("chat", "a", row), "source 2/20/true/true");
  EXPECT_EQ(mirror_->One("SELECT status || '/' || resolved_by || '/' || (resolved_data ->> "
                         "'title') FROM sync_metadata.conflict_log WHERE id = " +
                         id),
            "resolved/bob/source 2");
}

// A resolve killed before its COMMIT (here: SIGKILL while it waits for the
// mirror row an outside writer holds, after it took the position row and
// the entry) changes nothing: the entry stays pending, the row as it was,
// and a batch that waited for the position row goes on once PostgreSQL ends
// the dead client's transaction.
TEST_F(ConflictsCli, KilledBeforeCommitChangesNothing) {
  if (skipped_) return;
  std::string id = std::to_string(mirror_->Pending("a"));
  Pg holder(pg_url_);
  holder.Query("BEGIN");
  holder.Query("UPDATE " + PgTable(deployment_, "chat") + " SET archived = 5 WHERE id = 'a'");
  testing::ChildProcess resolve(
      {SluiceBin(), "conflicts", "resolve", "--config", config_, id, "--take", "source"},
      dir_->file("resolve.log"), "resolve");
  resolve.Start();
  auto waiting = [&] {
    return pg_->ScalarInt(
               "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND "
               "query LIKE '%FOR UPDATE OF t%'") == 1;
  };
  ASSERT_TRUE(WaitUntil(waiting, seconds(10))) << resolve.Log();
  // It holds the position row: a batch could not start now.
  PgRows ignored;
  std::string err;
  Pg batch(pg_url_);
  batch.Query("BEGIN");
  EXPECT_FALSE(batch.TryQuery("SELECT 1 FROM sync_metadata.source_position WHERE deployment = '" +
                                  deployment_ + "' FOR UPDATE NOWAIT",
                              &ignored, &err));
  EXPECT_NE(err.find("could not obtain lock"), std::string::npos) << err;
  batch.Query("ROLLBACK");
  resolve.KillHard();
  holder.Query("ROLLBACK");
  // The dead client's backend ends its transaction; then a batch gets the row.
  batch.Query("SET lock_timeout = '10s'");
  batch.Query("BEGIN");
  batch.Query("SELECT 1 FROM sync_metadata.source_position WHERE deployment = '" + deployment_ +
              "' FOR UPDATE");
  batch.Query("COMMIT");
  EXPECT_EQ(mirror_->One("SELECT status FROM sync_metadata.conflict_log WHERE id = " + id),
            "pending");
  EXPECT_EQ(mirror_->Cell("chat", "a", "title || '/' || archived"), "outside/0");
  CommandResult again = Sluice({"conflicts", "resolve", id, "--take", "source", "--by", "alice"});
  EXPECT_EQ(again.exit_code, 0) << again.Describe();
  EXPECT_EQ(mirror_->Cell("chat", "a", "title"), "source");
}

// `sluice run` with the manual policy for chat (the config's inline
// `conflicts`) applies the app's changes to three rows edited outside while
// they are resolved: k1 takes the source, k2 keeps the target, k3 takes the
// merge (title from the source, meta from the outside: one side each).
TEST_F(E2eTest, ConflictsResolveWhileTheAgentAppliesBatches) {
  if (skipped_) return;
  const std::string db = dir_->file("app.db");
  CreateOpenWebUiDb(db);
  const std::string config_path = WriteConfig(db);
  std::string text = ReadFile(config_path);
  text.replace(0, 1,
               "{\n  \"conflicts\": {\"table_strategies\": {\"chat\": {\"strategy\": "
               "\"manual\"}}},");
  WriteFile(config_path, text);
  Init(config_path);
  Sqlite app(db);
  app.Exec(
      "INSERT INTO chat (id, user_id, title, archived, created_at, updated_at, chat, meta) "
      "SELECT 'k' || value, 'u', 'one', 0, '2024-01-01 00:00:00', '2024-01-01 00:00:00', '{}', "
      "'{}' FROM json_each('[1, 2, 3]')");
  AgentProcess* agent = StartAgent(config_path);
  ASSERT_TRUE(WaitCaughtUp(config_path, agent, seconds(30)).CaughtUp());

  const std::string chat = PgTable(deployment_, "chat");
  auto cell = [&](const std::string& id, const std::string& expr) {
    return pg_->Scalar("SELECT " + expr + " FROM " + chat + " WHERE id = $1", {id})
        .value_or("NULL");
  };
  auto log = [&](const std::string& id) {
    return pg_
        ->Scalar(
            "SELECT string_agg(status || ':' || coalesce(resolved_by, '-') || ':' || "
            "(source_data ->> 'title'), ',' ORDER BY id) FROM sync_metadata.conflict_log WHERE "
            "deployment = $1 AND table_name = 'chat' AND row_key = jsonb_build_array($2::text)",
            {deployment_, id})
        .value_or("none");
  };
  auto resolve = [&](const std::string& id, const std::string& take, const std::string& by) {
    return RunSluice(
        {"conflicts", "resolve", "--config", config_path,
         pg_->Scalar("SELECT id FROM sync_metadata.conflict_log WHERE deployment = $1 AND "
                     "row_key = jsonb_build_array($2::text) AND status = 'pending'",
                     {deployment_, id})
             .value_or("0"),
         "--take", take, "--by", by});
  };
  // Someone edits the rows in the dashboard; then the app changes them too.
  pg_->Query("UPDATE " + chat + " SET title = 'outside ' || id WHERE id IN ('k1', 'k2')");
  pg_->Query("UPDATE " + chat + " SET meta = '{\"tags\": [\"o\"]}' WHERE id = 'k3'");
  app.Exec("UPDATE chat SET title = 'src 0'");
  ASSERT_TRUE(WaitCaughtUp(config_path, agent, seconds(30)).CaughtUp());
  ASSERT_EQ(log("k1") + " " + log("k2") + " " + log("k3"),
            "pending:-:src 0 pending:-:src 0 pending:-:src 0");
  EXPECT_EQ(cell("k1", "title"), "outside k1");
  // status tells the operator what waits for them.
  CommandResult status = RunSluice({"status", "--config", config_path, "--json"});
  ASSERT_EQ(status.exit_code, 0) << status.Describe();
  EXPECT_NE(status.out.find("\"conflicts_pending\":3,"), std::string::npos) << status.out;
  status = RunSluice({"status", "--config", config_path});
  EXPECT_NE(status.out.find("conflicts:       3 pending (sluice conflicts list --status pending)"),
            std::string::npos)
      << status.out;

  // The app keeps changing k1 and k2 (a batch every few ms) while they are resolved.
  std::atomic<bool> stop{false};
  std::atomic<int> changes{0};
  std::thread writer([&] {
    Sqlite w(db);
    while (!stop) {
      int i = ++changes;
      w.Exec("UPDATE chat SET title = 'src " + std::to_string(i) + "' WHERE id IN ('k1', 'k2')");
      std::this_thread::sleep_for(milliseconds(10));
    }
  });
  while (changes < 20) std::this_thread::sleep_for(milliseconds(5));
  CommandResult r1 = resolve("k1", "source", "alice");
  CommandResult r2 = resolve("k2", "target", "bob");
  CommandResult r3 = resolve("k3", "merged", "carol");
  int during = changes;
  std::this_thread::sleep_for(milliseconds(200));
  stop = true;
  writer.join();
  ASSERT_EQ(r1.exit_code, 0) << r1.Describe();
  ASSERT_EQ(r2.exit_code, 0) << r2.Describe();
  ASSERT_EQ(r3.exit_code, 0) << r3.Describe();
  EXPECT_GT(changes, during) << "the app changed the rows after the resolves too";
  EXPECT_EQ(cell("k3", "title || '/' || meta::text"), "src 0/{\"tags\": [\"o\"]}");
  app.Exec("UPDATE chat SET title = 'final'");
  ASSERT_TRUE(WaitCaughtUp(config_path, agent, seconds(30)).CaughtUp());

  // k1 took the source: clean, every later change applied, one log row.
  EXPECT_EQ(cell("k1", "title || '/' || (_sluice_outside_at IS NULL)::text"), "final/true");
  std::string k1 = log("k1");
  EXPECT_EQ(k1.rfind("resolved:alice:src ", 0), 0u) << k1;
  EXPECT_EQ(k1.find(','), std::string::npos) << k1;
  // k2 kept the outside edit, k3 the merge: both still differ from the
  // source, so the later source changes are a new pending entry holding the
  // newest source image, the row as resolved.
  EXPECT_EQ(cell("k2", "title || '/' || (_sluice_outside_at IS NOT NULL)::text"),
            "outside k2/true");
  std::string k2 = log("k2");
  EXPECT_EQ(k2.rfind("resolved:bob:src ", 0), 0u) << k2;
  EXPECT_NE(k2.find(",pending:-:final"), std::string::npos) << k2;
  EXPECT_EQ(cell("k3", "title || '/' || meta::text"), "src 0/{\"tags\": [\"o\"]}");
  EXPECT_EQ(log("k3"), "resolved:carol:src 0,pending:-:final");
  EXPECT_EQ(agent->Stop(seconds(10)), 0);
}

}  // namespace
}  // namespace sluice::e2e
