// Issue 5 item 12: stalls are visible. A spool directory that cannot hold a
// batch, a column with the reserved prefix added while the agent runs, and a
// failure that repeats forever are logged at warn/error (at growing
// intervals, with a count), and `sluice status` shows the agent's state, its
// last error and since when, from the state file the agent rewrites, even
// when the sink is unreachable for status too. `init` checks the spool
// directory; a batch the spool cannot hold still arrives; a reserved column
// stops only its own table.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <regex>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "tests/integration/e2e_support.h"

namespace sluice::e2e {
namespace {

class StallsVisible : public E2eTest {
 protected:
  // A config whose source has "spool_dir": spool_dir.
  std::string ConfigWithSpool(const std::string& db_path, const std::string& spool_dir,
                              const std::string& file_name) {
    return WriteConfig(
        db_path, "",
        [&](AgentConfig& c) { c.source_extra = "\"spool_dir\": " + JsonString(spool_dir); },
        file_name);
  }

  // `status --json` output (whatever the exit code) and the exit code.
  std::pair<std::string, int> StatusJson(const std::string& config) {
    CommandResult r = RunSluice({"status", "--json", "--config", config}, seconds(30));
    return {r.out, r.exit_code};
  }

  // A trigger `name` (and its function, in the deployment schema) on the mirror
  // table `table` that fails every INSERT with `message` and SQLSTATE condition
  // `errcode`: a sink error of the kind the test needs.
  void RefuseInserts(const std::string& table, const std::string& name, const std::string& message,
                     const std::string& errcode) {
    const std::string function = QuoteIdent(deployment_) + "." + QuoteIdent(name) + "()";
    pg_->Query("CREATE FUNCTION " + function +
               " RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RAISE EXCEPTION '" + message +
               "' USING ERRCODE = '" + errcode + "'; END$$");
    pg_->Query("CREATE TRIGGER " + QuoteIdent(name) + " BEFORE INSERT ON " + table +
               " FOR EACH ROW EXECUTE FUNCTION " + function);
  }

  // The log lines of `agent` at `level` ("warning", "error") that contain `text`.
  static std::vector<std::string> LogLines(AgentProcess* agent, const std::string& level,
                                           const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(agent->Log());
    std::string line;
    while (std::getline(in, line)) {
      if (line.find(" " + level + " ") != std::string::npos &&
          line.find(text) != std::string::npos) {
        out.push_back(line);
      }
    }
    return out;
  }
};

TEST_F(StallsVisible, InitRefusesASpoolDirectoryItCannotUse) {
  if (skipped_) return;
  std::string db_path = dir_->file("webui.db");
  CreateOpenWebUiDb(db_path);
  std::string missing = dir_->file("no-such-dir");
  CommandResult r = RunSluice({"init", "--config", ConfigWithSpool(db_path, missing, "m.json")});
  EXPECT_EQ(r.exit_code, 2) << r.Describe();
  EXPECT_TRUE(ContainsNoCase(r.err, "source.spool_dir")) << r.Describe();
  EXPECT_TRUE(ContainsNoCase(r.err, missing)) << r.Describe();

  std::string file = dir_->file("a-file");
  WriteFile(file, "x");
  r = RunSluice({"init", "--config", ConfigWithSpool(db_path, file, "f.json")});
  EXPECT_EQ(r.exit_code, 2) << r.Describe();
  EXPECT_TRUE(ContainsNoCase(r.err, "source.spool_dir")) << r.Describe();
  EXPECT_TRUE(ContainsNoCase(r.err, "not a directory")) << r.Describe();

  // The refusal came before anything in the file changed.
  Sqlite app(db_path);
  EXPECT_EQ(app.ScalarInt("SELECT count(*) FROM sqlite_master WHERE name LIKE '_sluice_%'"), 0);
}

TEST_F(StallsVisible, BatchLargerThanTheSpoolCanHoldStillArrivesAndIsReported) {
  if (skipped_) return;
  std::string db_path = dir_->file("app.db");
  {
    Sqlite app(db_path);
    app.Exec("PRAGMA journal_mode=WAL; CREATE TABLE big(id INTEGER PRIMARY KEY, body TEXT)");
    app.Exec("BEGIN");
    for (int i = 0; i < 700; ++i) {  // 7 MB: more than the 4 MiB kept in memory
      app.Exec("INSERT INTO big VALUES (" + std::to_string(i) + ", printf('%.*c', 10000, 'x'))");
    }
    app.Exec("COMMIT");
  }
  std::string spool = dir_->file("spool");
  ASSERT_EQ(::mkdir(spool.c_str(), 0755), 0);
  Init(ConfigWithSpool(db_path, spool, "sluice.json"));
  // After init, the directory becomes a file: every spill fails.
  ASSERT_EQ(::rmdir(spool.c_str()), 0);
  WriteFile(spool, "not a directory");
  std::string config = dir_->file("sluice.json");
  AgentProcess* agent = StartAgent(config);
  ASSERT_TRUE(ExpectCaughtUp(config, agent, seconds(30)));
  EXPECT_EQ(pg_->ScalarInt("SELECT count(*) FROM " + PgTable(deployment_, "big")), 700);
  std::vector<std::string> errors = LogLines(agent, "error", "spool");
  ASSERT_FALSE(errors.empty()) << agent->Log();
  EXPECT_NE(errors[0].find(spool), std::string::npos) << errors[0];
  auto [json, code] = StatusJson(config);
  EXPECT_EQ(code, 0) << json;
  auto last = JsonField(json, "last_error");
  ASSERT_TRUE(last.has_value()) << json;
  EXPECT_TRUE(ContainsNoCase(*last, "spool")) << json;
}

TEST_F(StallsVisible, ReservedColumnAddedAtRunTimeStopsOnlyItsTable) {
  if (skipped_) return;
  std::string db_path = dir_->file("app.db");
  Sqlite app(db_path);
  app.Exec("PRAGMA journal_mode=WAL");
  app.Exec("CREATE TABLE a(id INTEGER PRIMARY KEY, v TEXT)");
  app.Exec("CREATE TABLE b(id INTEGER PRIMARY KEY, v TEXT)");
  app.Exec("INSERT INTO a VALUES (1, 'a1'); INSERT INTO b VALUES (1, 'b1')");
  std::string config = WriteConfig(db_path);
  Init(config);
  AgentProcess* agent = StartAgent(config);
  ASSERT_TRUE(ExpectCaughtUp(config, agent));

  app.Exec("ALTER TABLE b ADD COLUMN _sluice_x TEXT");
  app.Exec("INSERT INTO b VALUES (2, 'b2', 'x'); UPDATE b SET v = 'b1 again' WHERE id = 1");
  app.Exec("INSERT INTO a VALUES (2, 'a2')");
  const std::string a = PgTable(deployment_, "a");
  const std::string b = PgTable(deployment_, "b");
  EXPECT_TRUE(
      WaitUntil([&] { return pg_->ScalarInt("SELECT count(*) FROM " + a) == 2; }, seconds(15)))
      << "table a stopped too\n"
      << agent->Log();
  EXPECT_EQ(pg_->ScalarInt("SELECT count(*) FROM " + b), 1);
  ASSERT_TRUE(WaitUntil([&] { return !LogLines(agent, "error", "\"b\"").empty(); }, seconds(10)))
      << agent->Log();
  EXPECT_NE(LogLines(agent, "error", "\"b\"")[0].find("_sluice_x"), std::string::npos);
  auto [json, code] = StatusJson(config);
  EXPECT_EQ(code, 0) << json;
  EXPECT_NE(json.find("\"stopped_tables\":[{\"table\":\"b\""), std::string::npos) << json;

  // Dropping the column again resumes b with what it missed meanwhile.
  app.Exec("ALTER TABLE b DROP COLUMN _sluice_x");
  app.Exec("INSERT INTO a VALUES (3, 'a3')");
  EXPECT_TRUE(WaitUntil(
      [&] {
        return pg_->ScalarInt("SELECT count(*) FROM " + b + " WHERE _sluice_deleted_at IS NULL") ==
               2;
      },
      seconds(15)))
      << agent->Log();
  EXPECT_EQ(pg_->Scalar("SELECT v FROM " + b + " WHERE id = 1").value_or(""), "b1 again");
  ASSERT_TRUE(ExpectCaughtUp(config, agent));
  ExpectMirrorEqual(app);
  std::tie(json, code) = StatusJson(config);
  EXPECT_NE(json.find("\"stopped_tables\":[]"), std::string::npos) << json;
}

TEST_F(StallsVisible, RepeatedFailureEscalatesAndStatusShowsItWithoutTheSink) {
  if (skipped_) return;
  std::string db_path = dir_->file("webui.db");
  CreateOpenWebUiDb(db_path);
  Init(WriteConfig(db_path));
  // Nothing listens on port 9 of the loopback: every connect is refused.
  std::string config = WriteConfig(
      db_path, pg_url_ + " host=127.0.0.1 port=9", [](AgentConfig& c) { c.retry_max_ms = 200; },
      "down.json");
  AgentProcess* agent = StartAgent(config);
  // Two streams report the outage, each on its own schedule: the loop's
  // retries, and the lease requests on their own connection (a standby's only
  // contact with the sink).
  const std::string loop = "-> backoff: cannot reach PostgreSQL";
  const std::string lease = "leader lease request failed: cannot reach PostgreSQL";
  // Repeats are reported after 200 ms, then 400, 800, ... ms: four error lines
  // (about 3 s) show the spacing grow. A slow machine gets longer; the checks
  // below say what is missing if the agent never got there.
  WaitUntil([&] { return !agent->Running() || LogLines(agent, "error", loop).size() >= 4; },
            seconds(15));
  ASSERT_TRUE(agent->Running()) << agent->Log();

  // The first failure at warn, the repeats at error with a growing count,
  // reported less and less often; never at info.
  EXPECT_EQ(LogLines(agent, "warning", loop).size(), 1u) << agent->Log();
  EXPECT_EQ(LogLines(agent, "warning", lease).size(), 1u) << agent->Log();
  EXPECT_TRUE(LogLines(agent, "info", "cannot reach PostgreSQL").empty()) << agent->Log();
  std::vector<std::string> errors = LogLines(agent, "error", loop);
  ASSERT_GE(errors.size(), 3u) << agent->Log();
  std::vector<int> counts;
  for (const std::string& line : errors) {
    std::smatch m;
    ASSERT_TRUE(std::regex_search(line, m, std::regex("failure ([0-9]+) in a row"))) << line;
    counts.push_back(std::stoi(m[1]));
  }
  for (size_t i = 1; i < counts.size(); ++i) EXPECT_GT(counts[i], counts[i - 1]);
  EXPECT_GT(counts.back() - counts[counts.size() - 2], counts[1] - counts[0]) << agent->Log();

  // status cannot reach the sink either, but shows what the agent knows. The
  // agent flips between backoff (200 ms) and a retry (a refused connect): a
  // status read may land on the retry, so it is read until it lands on the
  // backoff.
  std::string json;
  int code = 0;
  WaitUntil(
      [&] {
        std::tie(json, code) = StatusJson(config);
        return JsonField(json, "agent_state").value_or("") == "backoff";
      },
      seconds(5));
  EXPECT_EQ(code, 1) << json;
  EXPECT_EQ(JsonField(json, "agent_state").value_or(""), "backoff") << json;
  EXPECT_EQ(JsonField(json, "agent_running").value_or(""), "true") << json;
  EXPECT_TRUE(ContainsNoCase(JsonField(json, "last_error").value_or(""), "cannot reach")) << json;
  EXPECT_GE(std::stoi(JsonField(json, "agent_failures").value_or("0")), counts.back()) << json;
  EXPECT_TRUE(JsonField(json, "agent_since").has_value()) << json;
  CommandResult text;
  WaitUntil(
      [&] {
        text = RunSluice({"status", "--config", config});
        return ContainsNoCase(text.out, "backoff");
      },
      seconds(5));
  EXPECT_TRUE(ContainsNoCase(text.out, "agent:")) << text.Describe();
  EXPECT_TRUE(ContainsNoCase(text.out, "backoff")) << text.Describe();

  // A killed agent leaves its last word, flagged as not running.
  agent->KillHard();
  std::tie(json, code) = StatusJson(config);
  EXPECT_EQ(JsonField(json, "agent_running").value_or(""), "false") << json;
}

// A batch the sink keeps refusing with an error worth retrying (here a
// trigger on the mirror that raises lock_not_available) is retried with the
// same escalating log, and status names it; once the cause goes, it arrives.
TEST_F(StallsVisible, PermanentlyFailingBatchEscalatesAndRecovers) {
  if (skipped_) return;
  std::string db_path = dir_->file("app.db");
  Sqlite app(db_path);
  app.Exec("PRAGMA journal_mode=WAL; CREATE TABLE a(id INTEGER PRIMARY KEY, v TEXT)");
  std::string config = WriteConfig(db_path, "", [](AgentConfig& c) { c.retry_max_ms = 200; });
  Init(config);
  AgentProcess* agent = StartAgent(config);
  ASSERT_TRUE(ExpectCaughtUp(config, agent));
  const std::string a = PgTable(deployment_, "a");
  RefuseInserts(a, "refuse", "mirror busy", "lock_not_available");
  app.Exec("INSERT INTO a VALUES (1, 'one')");
  ASSERT_TRUE(
      WaitUntil([&] { return LogLines(agent, "error", "mirror busy").size() >= 2; }, seconds(15)))
      << agent->Log();
  EXPECT_EQ(LogLines(agent, "warning", "mirror busy").size(), 1u) << agent->Log();
  EXPECT_TRUE(LogLines(agent, "info", "mirror busy").empty()) << agent->Log();
  auto [json, code] = StatusJson(config);
  EXPECT_EQ(code, 0) << json;
  EXPECT_EQ(JsonField(json, "agent_state").value_or(""), "backoff") << json;
  EXPECT_TRUE(ContainsNoCase(JsonField(json, "last_error").value_or(""), "mirror busy")) << json;

  pg_->Query("DROP TRIGGER refuse ON " + a);
  ASSERT_TRUE(ExpectCaughtUp(config, agent));
  EXPECT_EQ(pg_->ScalarInt("SELECT count(*) FROM " + a), 1);
  EXPECT_FALSE(LogLines(agent, "info", "making progress again").empty()) << agent->Log();
  std::tie(json, code) = StatusJson(config);
  EXPECT_EQ(JsonField(json, "agent_state").value_or(""), "streaming") << json;
  EXPECT_EQ(JsonField(json, "agent_failures").value_or(""), "0") << json;
}

// A sink error retrying cannot cure (permission denied, SQLSTATE 42501,
// raised here by a trigger since the test role is a superuser) stops the
// agent with exit 1 and the message, instead of retrying forever.
TEST_F(StallsVisible, SinkErrorThatRetryingCannotCureStopsTheAgent) {
  if (skipped_) return;
  std::string db_path = dir_->file("app.db");
  Sqlite app(db_path);
  app.Exec("PRAGMA journal_mode=WAL; CREATE TABLE a(id INTEGER PRIMARY KEY, v TEXT)");
  std::string config = WriteConfig(db_path);
  Init(config);
  AgentProcess* agent = StartAgent(config);
  ASSERT_TRUE(ExpectCaughtUp(config, agent));
  const std::string a = PgTable(deployment_, "a");
  RefuseInserts(a, "deny", "no writes for you", "insufficient_privilege");
  app.Exec("INSERT INTO a VALUES (1, 'one')");
  std::optional<int> exit = agent->WaitExit(seconds(15));
  ASSERT_TRUE(exit.has_value()) << "the agent kept retrying\n" << agent->Log();
  EXPECT_EQ(*exit, 1) << agent->Log();
  EXPECT_FALSE(LogLines(agent, "error", "no writes for you").empty()) << agent->Log();
  auto [json, code] = StatusJson(config);
  EXPECT_EQ(JsonField(json, "agent_state").value_or(""), "stopped") << json;
  EXPECT_EQ(JsonField(json, "agent_running").value_or(""), "false") << json;
  EXPECT_TRUE(ContainsNoCase(JsonField(json, "last_error").value_or(""), "no writes for you"))
      << json;
}

// The CLI's own sink calls have a deadline too: a sink that accepts the TCP
// connection and never answers (a listener that never accepts: the kernel
// completes the handshake) fails `status` and `init` within
// sink.query_timeout_ms, instead of hanging.
TEST_F(StallsVisible, CliSinkCallsHaveADeadline) {
  if (skipped_) return;
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(fd, 16), 0);
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  std::string db_path = dir_->file("webui.db");
  CreateOpenWebUiDb(db_path);
  std::string url = pg_url_ + " host=127.0.0.1 port=" + std::to_string(ntohs(addr.sin_port));
  std::string config = WriteConfig(
      db_path, url, [](AgentConfig& c) { c.sink_extra = "\"query_timeout_ms\": 1000"; });
  for (const char* command : {"status", "init"}) {
    CommandResult r = RunSluice({command, "--config", config}, seconds(20));
    EXPECT_FALSE(r.timed_out) << command << " hung\n" << r.Describe();
    EXPECT_EQ(r.exit_code, 1) << r.Describe();
    EXPECT_LT(r.seconds, 6.0) << r.Describe();
    EXPECT_TRUE(ContainsNoCase(r.err, "timeout")) << r.Describe();
  }
  ::close(fd);
}

// (Mirror DDL that retrying cannot cure, e.g. a unique index on an adopted table
// holding duplicates: e2e_sink_errors AdoptedTableWithDuplicateKeysStopsInitAndRunAlike.)

}  // namespace
}  // namespace sluice::e2e
