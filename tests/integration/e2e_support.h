// End-to-end test support: drives the real `sluice` binary as child processes,
// writes to real SQLite files the way the app does (WAL, busy_timeout 5000),
// and inspects PostgreSQL with libpq. Every helper throws std::runtime_error on
// an unexpected failure (gtest reports it as a test failure); helpers used from
// writer threads record errors instead (see RandomWriter).
#pragma once

#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <sqlite3.h>
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/hex.h"
#include "common/json_text.h"
#include "tests/integration/mirror_compare.h"
#include "tests/integration/random_writer.h"
#include "tests/support/processes.h"
#include "tests/support/sql_clients.h"
#include "tests/test_support.h"

// JsonString (a JSON string literal) comes from common/json_text.h.
namespace sluice::e2e {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

// The plain clients and processes (tests/support), shared with bench/.
using testing::AgentProcess;
using testing::Canon17;
using testing::CommandResult;
using testing::ParseDouble;
using testing::ParseInt;
using testing::Pg;
using testing::PgRows;
using testing::PgTable;
using testing::Preview;
using testing::QuoteIdent;
using testing::ReadFile;
using testing::RunCommand;
using testing::Sqlite;
using testing::SqlRow;
using testing::SqlValue;
using testing::TailLines;
using testing::WaitUntil;
using testing::WriteFile;

// ---------------------------------------------------------------- basics

std::string Env(const char* name);  // "" when unset
std::string SluiceBin();            // $SLUICE_BIN (throws when unset)
std::string FixtureSchemaPath();    // $SLUICE_SCHEMA_FIXTURE
bool ContainsNoCase(const std::string& haystack, const std::string& needle);

// ---------------------------------------------------------------- config

struct AgentConfig {
  std::string deployment;
  std::string node = "a";
  std::string db_path;
  std::string sink_url;
  std::string schema;  // defaults to deployment
  std::vector<std::string> include;
  std::vector<std::string> exclude;
  std::string tables_json;  // the "tables" object as JSON text; empty = omitted
  int busy_timeout_ms = 5000;
  int poll_interval_ms = 50;
  int retry_min_ms = 50;
  int retry_max_ms = 1000;
  std::string log_level = "info";
  // More members of "source" / "sink" / "agent" as JSON text, e.g.
  // "\"chunk_rows\": 50".
  std::string source_extra;
  std::string sink_extra;
  std::string agent_extra;
  // "http.listen": an ephemeral port by default, so agents of parallel tests
  // never collide (the bound address is in the agent's state file).
  std::string http_listen = "127.0.0.1:0";
  int http_max_connections = 0;  // "http.max_connections"; 0 = omitted (the agent's default)
  // The "lease" object as JSON text, e.g. "{\"duration_ms\": 1000}"; empty = omitted.
  std::string lease_json;

  std::string ToJson() const;
  // Writes ToJson() to `path` and returns `path`.
  std::string Write(const std::string& path) const;
};

// `conninfo` (key=value form, no quoted values) with its user and password
// replaced by these.
std::string WithCredentials(const std::string& conninfo, const std::string& user,
                            const std::string& password);

// ---------------------------------------------------------------- processes

// Runs `sluice <args...>` to completion (killed with SIGKILL after `timeout`).
CommandResult RunSluice(const std::vector<std::string>& args, milliseconds timeout = seconds(60));

// ---------------------------------------------------------------- status

struct AgentStatus {
  bool ok = false;  // the command exited 0 and printed parseable JSON
  std::string raw;
  std::string error;
  std::string deployment;
  std::string source_id;
  int64_t sink_position = 0;
  int64_t journal_max_seq = 0;
  int64_t backlog_rows = 0;
  double lag_seconds = 0;
  int64_t parked_rows = 0;
  bool initial_sync_done = false;
  int64_t pending_full_reads = 0;  // tables marked to be read whole, not yet committed
  bool CaughtUp() const {
    return ok && initial_sync_done && sink_position == journal_max_seq && backlog_rows == 0 &&
           pending_full_reads == 0;
  }
};

AgentStatus QueryStatus(const std::string& config_path);
// The value of `key` in `status --json` output (first occurrence, unquoted), or nullopt.
std::optional<std::string> JsonField(const std::string& raw, const std::string& key);

// Polls `sluice status --json` until the sink position equals the journal's
// max seq with no backlog. Fails fast when `agent` (if given) has exited.
// Returns the last status seen; check .CaughtUp().
AgentStatus WaitCaughtUp(const std::string& config_path, AgentProcess* agent,
                         milliseconds timeout = seconds(60));

// ---------------------------------------------------------------- HTTP

// Where an agent's HTTP endpoints listen, as its state file says.
struct HttpAddress {
  std::string host;  // an IP literal, without brackets
  int port = 0;
  // "127.0.0.1:41234" (IPv4; what a Prometheus target or a curl URL takes).
  std::string Text() const { return host + ":" + std::to_string(port); }
};

// Waits until the state file of node `node` of `deployment` on `db_path` was written by
// the running `agent` (its pid) with the address its HTTP server bound (port 0 in the
// config: the kernel's pick). nullopt on timeout or when the agent exited.
std::optional<HttpAddress> WaitHttpAddress(const std::string& db_path,
                                           const std::string& deployment, const std::string& node,
                                           AgentProcess& agent, milliseconds timeout = seconds(30));

// ---------------------------------------------------------------- SQLite

// Creates a new SQLite file (rollback journal, as Open WebUI without
// DATABASE_ENABLE_SQLITE_WAL) loaded with the Open WebUI fixture schema.
void CreateOpenWebUiDb(const std::string& path);

// Names of the app's tables (not sqlite_*, not _sluice_*), sorted.
std::vector<std::string> AppTables(Sqlite& db);
// Every row of every app table (quote()d, sorted) plus its schema SQL: equal
// dumps mean the app's data was not touched.
std::string DumpAppTables(Sqlite& db);

// ---------------------------------------------------------------- fixture

// Base fixture: a temp dir, a unique deployment, the PostgreSQL conninfo (or
// skip), agent processes whose logs are printed when the test fails, and the
// mirror schema dropped after a passing test.
class E2eTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  // Makes a config for `db_path` pointing at `sink_url` (default: the test
  // server) and writes it to the temp dir; returns its path.
  std::string WriteConfig(const std::string& db_path, const std::string& sink_url = "",
                          const std::function<void(AgentConfig&)>& tweak = nullptr,
                          const std::string& file_name = "sluice.json");
  AgentConfig BaseConfig(const std::string& db_path, const std::string& sink_url = "");
  AgentProcess* StartAgent(const std::string& config_path, const std::string& name = "agent");
  // Runs `sluice init` and asserts success (via gtest); returns the result.
  CommandResult Init(const std::string& config_path);
  // Asserts the mirror equals the source, printing problems and agent logs.
  void ExpectMirrorEqual(Sqlite& src, const CompareOptions& options = {});
  // Waits for catch-up; on timeout, records a failure with the status.
  // timeout 0 = catch_up_timeout_.
  bool ExpectCaughtUp(const std::string& config_path, AgentProcess* agent,
                      milliseconds timeout = milliseconds(0));
  std::string AgentLogs();  // every agent log, for failure messages

  std::unique_ptr<sluice::testing::TempDir> dir_;
  std::string pg_url_;
  std::string deployment_;
  std::unique_ptr<Pg> pg_;
  std::vector<std::unique_ptr<AgentProcess>> agents_;
  bool skipped_ = false;
  milliseconds catch_up_timeout_ = seconds(90);  // small-data tests lower it
};

// One app file synced by one running agent, for tests of what the mirror does
// when the source or the sink changes under it (small data: catch-up within 30 s).
class SyncedE2eTest : public E2eTest {
 protected:
  void SetUp() override;
  // Creates the file with `ddl` (tables and rows, run in one transaction),
  // runs init, starts the agent (SIGKILLed by the fault point right after its
  // first SQLite commit that changes tracking when `fault_after_track`), waits
  // until it caught up and asserts the mirror equals the source.
  void StartSynced(const std::string& ddl, bool fault_after_track = false);
  // Caught up, and every source table equals its mirror (waits for a resync
  // the last batch scheduled), asserted.
  void ExpectSynced();
  // No row of the deployment is parked in conflict_log.
  void ExpectNothingParked();

  std::string db_path_;
  std::unique_ptr<Sqlite> app_;
  std::string config_;
  AgentProcess* agent_ = nullptr;
};

}  // namespace sluice::e2e
