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
  // More members of "sink" / "agent" as JSON text, e.g. "\"chunk_rows\": 50".
  std::string sink_extra;
  std::string agent_extra;

  std::string ToJson() const;
  // Writes ToJson() to `path` and returns `path`.
  std::string Write(const std::string& path) const;
};

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

// ---------------------------------------------------------------- SQLite

// Creates a new SQLite file (rollback journal, as Open WebUI without
// DATABASE_ENABLE_SQLITE_WAL) loaded with the Open WebUI fixture schema.
void CreateOpenWebUiDb(const std::string& path);

// Names of the app's tables (not sqlite_*, not _sluice_*), sorted.
std::vector<std::string> AppTables(Sqlite& db);
// Every row of every app table (quote()d, sorted) plus its schema SQL: equal
// dumps mean the app's data was not touched.
std::string DumpAppTables(Sqlite& db);

// ---------------------------------------------------------------- comparator

struct SourceRowRef {
  const std::vector<std::string>* names;
  const SqlRow* values;
  const SqlValue* Get(const std::string& column) const;
};

struct CompareOptions {
  std::vector<std::string> tables;  // empty: every app table of the source
  // When set, a source row that is missing or different at the sink is
  // accepted if this returns true (the row was parked in conflict_log).
  std::function<bool(const std::string& table, const SourceRowRef& row)> is_parked;
};

struct CompareReport {
  std::vector<std::string> problems;
  int64_t rows_compared = 0;
  int64_t rows_parked = 0;
  int tables = 0;
  bool ok() const { return problems.empty(); }
  std::string Text() const;
};

// Checks that every source row equals its live mirror row (matched by the
// sink's key, values compared by the sink column's type), that no other
// mirror row is live, and that the sink key is the row identity the design
// prescribes (primary key, else a UNIQUE index on NOT NULL columns, else rowid).
CompareReport CompareMirror(Sqlite& src, Pg& pg, const std::string& schema,
                            const CompareOptions& options = {});

// Key columns of a mirror table (its primary key, else first unique index).
std::vector<std::string> SinkKeyColumns(Pg& pg, const std::string& schema,
                                        const std::string& table);

// True when the mirror has a row with the given key (key column → value as
// PostgreSQL text) that is tombstoned (_sluice_deleted_at IS NOT NULL).
// nullopt when no such row exists at all.
std::optional<bool> SinkRowTombstoned(Pg& pg, const std::string& schema, const std::string& table,
                                      const std::vector<std::pair<std::string, std::string>>& key);

// The applied_batches ranges for a deployment chain without gap or overlap and
// end at the position; returns "" when they do, else a description.
std::string CheckBatchChain(Pg& pg, const std::string& deployment, int64_t* batches = nullptr);

// The data type (format_type) of a mirror column, "" when missing.
std::string SinkColumnType(Pg& pg, const std::string& schema, const std::string& table,
                           const std::string& column);

// ---------------------------------------------------------------- app writer

// Writes random changes to Open WebUI tables `message` (TEXT key), `tag`
// (composite key) and `prompt` (INTEGER PRIMARY KEY + UNIQUE command) through
// its own connection, as the app would: inserts, updates, deletes, key changes,
// in transactions of 1..max_txn_rows statements. Runs on its own thread.
class RandomWriter {
 public:
  struct Options {
    std::vector<std::string> tables = {"message", "tag", "prompt"};
    int max_txn_rows = 50;
    int pause_us = 0;               // sleep between transactions (pacing only)
    int64_t min_changes = 0;        // keep going until at least this many...
    bool run_until_stopped = true;  // ...and until Stop() (else stop at min_changes)
    uint32_t seed = 1;
    int64_t key_base = 0;  // offset for generated keys (several writers, one file)
  };
  RandomWriter(std::string db_path, Options options);
  ~RandomWriter();

  // Loads the current keys of the tables (call before Start when rows exist).
  void LoadKeys();
  void Start();
  void Stop();  // asks to stop and joins
  void Join();
  int64_t changes() const { return changes_.load(); }
  int64_t transactions() const { return transactions_.load(); }
  int64_t busy_errors() const { return busy_errors_.load(); }
  std::vector<std::string> errors();
  // Keys deleted (or moved away from) as "table\x1f<col>=<value>...", for
  // checks of tombstones; each entry is the PostgreSQL text of the key columns.
  std::vector<std::vector<std::pair<std::string, std::string>>> DeletedKeys(
      const std::string& table);

 private:
  void Run();
  bool OneTransaction(Sqlite& db);
  std::string db_path_;
  Options options_;
  std::thread thread_;
  std::atomic<bool> stop_{false};

  std::atomic<int64_t> changes_{0};
  std::atomic<int64_t> transactions_{0};
  std::atomic<int64_t> busy_errors_{0};
  std::mutex mu_;
  std::vector<std::string> errors_;
  std::mt19937 rng_;
  int64_t counter_ = 0;
  // Live keys per table (the writer is the only writer of these rows).
  std::vector<std::string> message_ids_;
  std::vector<std::pair<std::string, std::string>> tag_keys_;
  std::vector<int64_t> prompt_ids_;
  std::map<std::string, std::vector<std::vector<std::pair<std::string, std::string>>>> deleted_;
};

// Runs a RandomWriter to completion (until options.min_changes, whatever
// run_until_stopped says), loading the file's current keys first if asked;
// returns its errors.
std::vector<std::string> WriteRandomChanges(const std::string& db_path,
                                            RandomWriter::Options options, bool load_keys = false);

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

}  // namespace sluice::e2e
