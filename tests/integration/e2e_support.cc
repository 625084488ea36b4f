// End-to-end test support (see e2e_support.h).
#include "tests/integration/e2e_support.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>

#include "agent/agent_state_file.h"

extern char** environ;

namespace sluice::e2e {

namespace {}  // namespace

// Minimal reader for the flat JSON object `status --json` prints.
std::optional<std::string> JsonField(const std::string& raw, const std::string& key) {
  std::string pat = "\"" + key + "\"";
  size_t p = raw.find(pat);
  if (p == std::string::npos) return std::nullopt;
  p = raw.find(':', p + pat.size());
  if (p == std::string::npos) return std::nullopt;
  ++p;
  while (p < raw.size() && std::isspace(static_cast<unsigned char>(raw[p]))) ++p;
  if (p >= raw.size()) return std::nullopt;
  if (raw[p] == '"') {
    std::string out;
    for (++p; p < raw.size() && raw[p] != '"'; ++p) {
      if (raw[p] == '\\' && p + 1 < raw.size()) ++p;
      out.push_back(raw[p]);
    }
    return out;
  }
  size_t e = p;
  while (e < raw.size() && raw[e] != ',' && raw[e] != '}' &&
         !std::isspace(static_cast<unsigned char>(raw[e]))) {
    ++e;
  }
  return raw.substr(p, e - p);
}

// ---------------------------------------------------------------- basics

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? "" : v;
}

std::string SluiceBin() {
  std::string b = Env("SLUICE_BIN");
  if (b.empty()) throw std::runtime_error("SLUICE_BIN is not set (run through meson test)");
  return b;
}

std::string FixtureSchemaPath() {
  std::string f = Env("SLUICE_SCHEMA_FIXTURE");
  if (f.empty())
    throw std::runtime_error("SLUICE_SCHEMA_FIXTURE is not set (run through meson test)");
  return f;
}

bool ContainsNoCase(const std::string& haystack, const std::string& needle) {
  auto it = std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end(),
                        [](char a, char b) {
                          return std::tolower(static_cast<unsigned char>(a)) ==
                                 std::tolower(static_cast<unsigned char>(b));
                        });
  return it != haystack.end();
}

// ---------------------------------------------------------------- config

std::string AgentConfig::ToJson() const {
  auto list = [](const std::vector<std::string>& v) {
    std::string s = "[";
    for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + JsonString(v[i]);
    return s + "]";
  };
  std::string j = "{\n";
  j += "  \"deployment\": " + JsonString(deployment) + ",\n";
  j += "  \"node\": " + JsonString(node) + ",\n";
  j += "  \"source\": {\"path\": " + JsonString(db_path);
  if (!include.empty()) j += ", \"include\": " + list(include);
  if (!exclude.empty()) j += ", \"exclude\": " + list(exclude);
  j += ", \"busy_timeout_ms\": " + std::to_string(busy_timeout_ms) +
       (source_extra.empty() ? "" : ", " + source_extra) + "},\n";
  j += "  \"sink\": {\"url\": " + JsonString(sink_url) +
       ", \"schema\": " + JsonString(schema.empty() ? deployment : schema) +
       (sink_extra.empty() ? "" : ", " + sink_extra) + "},\n";
  if (!tables_json.empty()) j += "  \"tables\": " + tables_json + ",\n";
  if (!lease_json.empty()) j += "  \"lease\": " + lease_json + ",\n";
  j += "  \"http\": {\"listen\": " + JsonString(http_listen);
  if (http_max_connections > 0) {
    j += ", \"max_connections\": " + std::to_string(http_max_connections);
  }
  j += "},\n";
  j += "  \"agent\": {\"poll_interval_ms\": " + std::to_string(poll_interval_ms) +
       ", \"retry_min_ms\": " + std::to_string(retry_min_ms) +
       ", \"retry_max_ms\": " + std::to_string(retry_max_ms) +
       ", \"log_level\": " + JsonString(log_level) +
       (agent_extra.empty() ? "" : ", " + agent_extra) + "}\n";
  return j + "}\n";
}

std::string AgentConfig::Write(const std::string& path) const {
  WriteFile(path, ToJson());
  // The sink URL may hold the test server's password: sluice refuses such a
  // file when others can read it.
  std::filesystem::permissions(
      path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  return path;
}

// ---------------------------------------------------------------- processes

CommandResult RunSluice(const std::vector<std::string>& args, milliseconds timeout) {
  std::vector<std::string> argv = {SluiceBin()};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, timeout);
}

// ---------------------------------------------------------------- status

std::string WithCredentials(const std::string& conninfo, const std::string& user,
                            const std::string& password) {
  std::istringstream in(conninfo);
  std::string tok;
  std::string out;
  while (in >> tok) {
    if (tok.rfind("user=", 0) == 0 || tok.rfind("password=", 0) == 0) continue;
    out += tok + " ";
  }
  return out + "user=" + user + " password=" + password;
}

AgentStatus QueryStatus(const std::string& config_path) {
  AgentStatus s;
  CommandResult r = RunSluice({"status", "--json", "--config", config_path}, seconds(30));
  s.raw = r.out;
  if (r.exit_code != 0) {
    s.error = r.Describe();
    return s;
  }
  auto num = [&](const char* key, int64_t* out) {
    auto v = JsonField(r.out, key);
    if (!v) return false;
    auto n = ParseInt(*v);
    if (!n) return false;
    *out = *n;
    return true;
  };
  bool ok = num("sink_position", &s.sink_position) && num("journal_max_seq", &s.journal_max_seq) &&
            num("backlog_rows", &s.backlog_rows) && num("parked_rows", &s.parked_rows);
  auto dep = JsonField(r.out, "deployment");
  auto src = JsonField(r.out, "source_id");
  auto lag = JsonField(r.out, "lag_seconds");
  auto done = JsonField(r.out, "initial_sync_done");
  if (!ok || !dep || !src || !lag || !done || !ParseDouble(*lag)) {
    s.error = "unparseable status --json output: " + r.out + r.err;
    return s;
  }
  s.deployment = *dep;
  s.source_id = *src;
  s.lag_seconds = *ParseDouble(*lag);
  s.initial_sync_done = *done == "true";
  auto full = JsonField(r.out, "pending_full_reads");
  if (full && ParseInt(*full)) s.pending_full_reads = *ParseInt(*full);
  s.ok = true;
  return s;
}

AgentStatus WaitCaughtUp(const std::string& config_path, AgentProcess* agent,
                         milliseconds timeout) {
  AgentStatus last;
  WaitUntil(
      [&] {
        if (agent != nullptr && !agent->Running()) {
          last.error = "the agent exited (" + std::to_string(agent->last_exit().value_or(-1)) + ")";
          return true;
        }
        last = QueryStatus(config_path);
        return last.CaughtUp();
      },
      timeout);
  return last;
}

// ---------------------------------------------------------------- HTTP

std::optional<HttpAddress> WaitHttpAddress(const std::string& db_path,
                                           const std::string& deployment, const std::string& node,
                                           AgentProcess& agent, milliseconds timeout) {
  std::string path = StateFilePath(db_path, deployment, node);
  std::optional<HttpAddress> found;
  WaitUntil(
      [&] {
        if (!agent.Running()) return true;
        // The file is replaced by rename: a read sees a whole record or none.
        Result<std::optional<AgentStateRecord>> r = ReadAgentState(path);
        if (!r.ok() || !r->has_value()) return false;
        const AgentStateRecord& rec = **r;
        size_t colon = rec.http.rfind(':');
        if (rec.pid != agent.pid() || colon == std::string::npos) return false;
        std::optional<int64_t> port = ParseInt(rec.http.substr(colon + 1));
        if (!port || *port <= 0) return false;
        std::string host = rec.http.substr(0, colon);
        if (host.size() >= 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
        found = HttpAddress{host, static_cast<int>(*port)};
        return true;
      },
      timeout);
  return found;
}

// ---------------------------------------------------------------- SQLite

void CreateOpenWebUiDb(const std::string& path) {
  std::string schema = ReadFile(FixtureSchemaPath());
  if (schema.empty()) throw std::runtime_error("cannot read the fixture " + FixtureSchemaPath());
  Sqlite db(path);
  db.Exec(schema);
}

std::vector<std::string> AppTables(Sqlite& db) {
  std::vector<std::string> out;
  for (auto& row :
       db.Query("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE "
                "'sqlite\\_%' ESCAPE '\\' AND name NOT LIKE '\\_sluice\\_%' ESCAPE '\\' "
                "ORDER BY name")) {
    out.push_back(row[0].bytes);
  }
  return out;
}

std::string DumpAppTables(Sqlite& db) {
  std::string out;
  for (const std::string& t : AppTables(db)) {
    out += "TABLE " + t + ": " +
           db.ScalarText("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?",
                         {SqlValue::Text(t)}) +
           "\n";
    std::vector<std::string> cols;
    for (auto& c : db.Query("SELECT name FROM pragma_table_info(?)", {SqlValue::Text(t)})) {
      cols.push_back(c[0].bytes);
    }
    std::string expr;
    for (const std::string& c : cols) {
      expr += (expr.empty() ? "" : " || ',' || ") + std::string("quote(") + QuoteIdent(c) + ")";
    }
    if (expr.empty()) continue;
    std::vector<std::string> lines;
    for (auto& r : db.Query("SELECT " + expr + " FROM " + QuoteIdent(t)))
      lines.push_back(r[0].bytes);
    std::sort(lines.begin(), lines.end());
    for (auto& l : lines) out += "  " + l + "\n";
  }
  return out;
}

// ---------------------------------------------------------------- fixture

void E2eTest::SetUp() {
  dir_ = std::make_unique<sluice::testing::TempDir>();
  pg_url_ = sluice::testing::PgConninfoOrSkip();
  if (pg_url_.empty()) {
    skipped_ = true;
    if (!IsSkipped()) GTEST_FAIL() << "no PostgreSQL test server";
    return;
  }
  deployment_ = sluice::testing::UniqueName("e2e");
  pg_ = std::make_unique<Pg>(pg_url_);
}

void E2eTest::TearDown() {
  for (auto& a : agents_) a->KillHard();
  if (HasFailure()) {
    std::cerr << "\n===== agent logs (deployment " << deployment_ << ") =====\n"
              << AgentLogs() << "\n";
  } else if (pg_ != nullptr) {
    PgRows ignored;
    std::string err;
    pg_->TryQuery("DROP SCHEMA IF EXISTS " + QuoteIdent(deployment_) + " CASCADE", &ignored, &err);
  }
  agents_.clear();
}

AgentConfig E2eTest::BaseConfig(const std::string& db_path, const std::string& sink_url) {
  AgentConfig c;
  c.deployment = deployment_;
  c.db_path = db_path;
  c.sink_url = sink_url.empty() ? pg_url_ : sink_url;
  c.schema = deployment_;
  return c;
}

std::string E2eTest::WriteConfig(const std::string& db_path, const std::string& sink_url,
                                 const std::function<void(AgentConfig&)>& tweak,
                                 const std::string& file_name) {
  AgentConfig c = BaseConfig(db_path, sink_url);
  if (tweak) tweak(c);
  return c.Write(dir_->file(file_name));
}

AgentProcess* E2eTest::StartAgent(const std::string& config_path, const std::string& name) {
  std::string log = dir_->file(name + "-" + std::to_string(agents_.size()) + ".log");
  agents_.push_back(std::make_unique<AgentProcess>(SluiceBin(), config_path, log));
  agents_.back()->Start();
  return agents_.back().get();
}

CommandResult E2eTest::Init(const std::string& config_path) {
  CommandResult r = RunSluice({"init", "--config", config_path}, seconds(120));
  EXPECT_EQ(r.exit_code, 0) << "sluice init failed: " << r.Describe();
  return r;
}

std::string E2eTest::AgentLogs() {
  std::string out;
  for (auto& a : agents_) {
    out += "----- " + a->log_path() + " (last 200 lines) -----\n" + TailLines(a->Log(), 200) + "\n";
  }
  return out;
}

void E2eTest::ExpectMirrorEqual(Sqlite& src, const CompareOptions& options) {
  CompareReport report = CompareMirror(src, *pg_, deployment_, options);
  std::cerr << "mirror check: " << report.tables << " table(s), " << report.rows_compared
            << " row(s) equal, " << report.rows_parked << " parked, " << report.problems.size()
            << " problem(s)\n";
  EXPECT_TRUE(report.ok()) << "mirror differs from the source: " << report.Text();
  EXPECT_GT(report.rows_compared + report.rows_parked, 0) << "nothing was compared";
}

bool E2eTest::ExpectCaughtUp(const std::string& config_path, AgentProcess* agent,
                             milliseconds timeout) {
  if (timeout.count() == 0) timeout = catch_up_timeout_;
  AgentStatus s = WaitCaughtUp(config_path, agent, timeout);
  if (s.CaughtUp()) return true;
  ADD_FAILURE() << "the agent did not catch up within " << timeout.count()
                << " ms; last status: " << (s.ok ? s.raw : s.error);
  return false;
}

void SyncedE2eTest::SetUp() {
  E2eTest::SetUp();
  catch_up_timeout_ = seconds(30);
}

void SyncedE2eTest::StartSynced(const std::string& ddl, bool fault_after_track) {
  db_path_ = dir_->file("app.db");
  app_ = std::make_unique<Sqlite>(db_path_);
  app_->Exec("BEGIN;" + ddl + "COMMIT;");
  config_ = WriteConfig(db_path_);
  ASSERT_EQ(Init(config_).exit_code, 0);
  if (fault_after_track) ::setenv("SLUICE_FAULT", "after-track-commit", 1);
  agent_ = StartAgent(config_);
  if (fault_after_track) ::unsetenv("SLUICE_FAULT");
  ASSERT_TRUE(ExpectCaughtUp(config_, agent_));
  ExpectMirrorEqual(*app_);
}

void SyncedE2eTest::ExpectSynced() {
  ASSERT_TRUE(ExpectCaughtUp(config_, agent_));
  EXPECT_TRUE(WaitUntil([&] { return CompareMirror(*app_, *pg_, deployment_).ok(); }, seconds(30)))
      << "the mirror did not come back";
  ExpectMirrorEqual(*app_);
}

void SyncedE2eTest::ExpectNothingParked() {
  EXPECT_EQ(pg_->ScalarInt("SELECT count(*) FROM sync_metadata.conflict_log WHERE deployment = $1",
                           {deployment_}),
            0);
}

std::vector<std::string> WriteRandomChanges(const std::string& db_path,
                                            RandomWriter::Options options, bool load_keys) {
  options.run_until_stopped = false;
  RandomWriter writer(db_path, options);
  if (load_keys) writer.LoadKeys();
  writer.Start();
  writer.Join();
  return writer.errors();
}

}  // namespace sluice::e2e
