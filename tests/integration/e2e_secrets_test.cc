// Credentials never leave sluice (issue #8, "Connection security"): with the
// sink password in the config (a key=value string and a URI), it appears in
// none of the agent's log, `sluice status` (text and --json), /health,
// /metrics, the agent's /proc/PID/cmdline and environment, nor in the errors
// of init, status and run when the password is wrong.
#include <libpq-fe.h>

#include <csignal>
#include <string>
#include <vector>

#include "tests/integration/e2e_support.h"
#include "tests/support/http_client.h"

namespace sluice::e2e {
namespace {

// The value of `key=` in a key=value conninfo, or "".
std::string ConninfoValue(const std::string& conninfo, const std::string& key) {
  size_t at = conninfo.find(key + "=");
  if (at == std::string::npos) return "";
  at += key.size() + 1;
  size_t end = conninfo.find(' ', at);
  return conninfo.substr(at, end == std::string::npos ? std::string::npos : end - at);
}

class Secrets : public E2eTest {
 protected:
  void SetUp() override {
    E2eTest::SetUp();
    if (skipped_) return;
    role_ = deployment_ + "_host";
    pg_->Query("CREATE ROLE " + QuoteIdent(role_) + " LOGIN SUPERUSER PASSWORD '" + kRight + "'");
    PGconn* probe =
        PQconnectdb(WithCredentials(pg_url_, role_, "not-" + std::string(kRight)).c_str());
    bool refused = PQstatus(probe) != CONNECTION_OK;
    PQfinish(probe);
    if (!refused) {
      skipped_ = true;
      GTEST_SKIP() << "the test server does not check passwords (trust authentication)";
    }
    db_path_ = dir_->file("app.db");
    Sqlite db(db_path_);
    db.Exec("PRAGMA journal_mode=WAL");
    db.Exec("CREATE TABLE chat (id VARCHAR(255) NOT NULL PRIMARY KEY, title TEXT NOT NULL)");
    db.Exec("INSERT INTO chat VALUES ('c1', 'hello')");
  }
  void TearDown() override {
    E2eTest::TearDown();
    if (!role_.empty() && pg_ != nullptr) {
      // What the role created (the mirror schema, maybe the control plane
      // itself when this test ran first) stays, owned by the test's user.
      pg_->Query("REASSIGN OWNED BY " + QuoteIdent(role_) + " TO CURRENT_USER");
      pg_->Query("DROP OWNED BY " + QuoteIdent(role_));
      pg_->Query("DROP ROLE IF EXISTS " + QuoteIdent(role_));
    }
  }

  // The same server as a URI: postgresql://user:password@host:port/db.
  std::string Uri(const std::string& password) {
    std::string host = ConninfoValue(pg_url_, "host");
    std::string port = ConninfoValue(pg_url_, "port");
    std::string db = ConninfoValue(pg_url_, "dbname");
    std::string at = "postgresql://" + role_ + ":" + password + "@";
    if (db.empty()) db = "postgres";
    if (!host.empty() && host[0] == '/') {  // a socket directory goes in the query
      return at + "/" + db + "?host=" + host + (port.empty() ? "" : "&port=" + port);
    }
    return at + (host.empty() ? "localhost" : host) + (port.empty() ? "" : ":" + port) + "/" + db;
  }

  static constexpr const char* kRight = "Right-s3cret-9f2c";
  static constexpr const char* kWrong = "Wrong-s3cret-7a1d";
  std::string role_;
  std::string db_path_;
};

TEST_F(Secrets, ARunningAgentShowsItsPasswordNowhere) {
  if (skipped_) return;
  std::string config = WriteConfig(db_path_, WithCredentials(pg_url_, role_, kRight));
  ASSERT_EQ(Init(config).exit_code, 0);
  AgentProcess* agent = StartAgent(config);
  ASSERT_TRUE(ExpectCaughtUp(config, agent, seconds(30)));
  std::optional<HttpAddress> http = WaitHttpAddress(db_path_, deployment_, "a", *agent);
  ASSERT_TRUE(http.has_value()) << agent->Log();

  std::vector<std::pair<std::string, std::string>> seen;
  CommandResult text = RunSluice({"status", "--config", config});
  CommandResult json = RunSluice({"status", "--json", "--config", config});
  ASSERT_EQ(json.exit_code, 0) << json.Describe();
  seen.push_back({"status", text.out + text.err});
  seen.push_back({"status --json", json.out + json.err});
  for (const char* path : {"/health", "/metrics", "/readyz", "/leader"}) {
    std::optional<testing::HttpReply> r = testing::HttpGet(http->host, http->port, path);
    ASSERT_TRUE(r.has_value()) << path;
    seen.push_back({path, r->head + "\n" + r->body});
  }
  const std::string proc = "/proc/" + std::to_string(agent->pid());
  seen.push_back({"cmdline", ReadFile(proc + "/cmdline")});
  seen.push_back({"environ", ReadFile(proc + "/environ")});
  ASSERT_FALSE(seen.back().second.empty()) << "cannot read " << proc << "/environ";
  seen.push_back({"agent log", agent->Log()});
  for (const auto& [where, what] : seen) {
    EXPECT_EQ(what.find(kRight), std::string::npos) << "the password is in " << where;
  }
  agent->Signal(SIGTERM);
  EXPECT_EQ(agent->WaitExit(seconds(30)), 0);
  EXPECT_EQ(agent->Log().find(kRight), std::string::npos) << "the password is in the agent log";
}

TEST_F(Secrets, AWrongPasswordIsReportedWithoutIt) {
  if (skipped_) return;
  // Prepared through a good connection, so `run` gets as far as the sink.
  ASSERT_EQ(Init(WriteConfig(db_path_, WithCredentials(pg_url_, role_, kRight))).exit_code, 0);
  for (const std::string& url : {WithCredentials(pg_url_, role_, kWrong), Uri(kWrong)}) {
    SCOPED_TRACE(url);
    std::string config = WriteConfig(db_path_, url, nullptr, "wrong.json");
    for (std::vector<std::string> args : std::vector<std::vector<std::string>>{
             {"init"}, {"status"}, {"status", "--json"}, {"run"}, {"conflicts", "list"}}) {
      args.insert(args.end(), {"--config", config});
      CommandResult r = RunSluice(args, seconds(20));
      EXPECT_FALSE(r.timed_out) << r.Describe();
      EXPECT_NE(r.exit_code, 0) << r.Describe();
      EXPECT_TRUE(ContainsNoCase(r.out + r.err, "authentication failed")) << r.Describe();
      EXPECT_EQ((r.out + r.err).find(kWrong), std::string::npos) << r.Describe();
    }
  }
}

}  // namespace
}  // namespace sluice::e2e
