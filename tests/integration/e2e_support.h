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

#include "common/json_text.h"
#include "tests/test_support.h"

// JsonString (a JSON string literal) comes from common/json_text.h.
namespace sluice::e2e {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

// ---------------------------------------------------------------- basics

// Polls `pred` every 20 ms until it returns true (→ true) or `timeout` passes
// (→ false, after one last evaluation).
bool WaitUntil(const std::function<bool()>& pred, milliseconds timeout);

std::string Env(const char* name);              // "" when unset
std::string SluiceBin();                        // $SLUICE_BIN (throws when unset)
std::string FixtureSchemaPath();                // $SLUICE_SCHEMA_FIXTURE
std::string ReadFile(const std::string& path);  // "" when missing
void WriteFile(const std::string& path, const std::string& content);
std::string QuoteIdent(const std::string& name);  // "name" with " doubled (SQL)
std::string Hex(const std::string& bytes);
std::string Preview(const std::string& bytes, size_t max = 80);  // printable, truncated
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

struct CommandResult {
  int exit_code = -1;  // exit status, or 128+signal, or -1 on timeout
  bool timed_out = false;
  std::string out;
  std::string err;
  double seconds = 0;
  std::string Describe() const;  // for failure messages
};

// Runs `sluice <args...>` to completion (killed with SIGKILL after `timeout`).
CommandResult RunSluice(const std::vector<std::string>& args, milliseconds timeout = seconds(60));
// Runs any command (argv[0] resolved through PATH).
CommandResult RunCommand(const std::vector<std::string>& argv, milliseconds timeout = seconds(60));

// `sluice run --config FILE` as a child process; stdout and stderr appended to
// `log_path` (each start writes a marker line first). Killed with SIGKILL when
// destroyed if still running.
class AgentProcess {
 public:
  AgentProcess(std::string config_path, std::string log_path);
  ~AgentProcess();
  AgentProcess(const AgentProcess&) = delete;
  AgentProcess& operator=(const AgentProcess&) = delete;

  void Start();
  bool Running();  // reaps the child if it exited
  pid_t pid() const { return pid_; }
  void Signal(int sig);
  // Waits for the child to exit; returns its exit code (128+signal when
  // killed) or nullopt on timeout.
  std::optional<int> WaitExit(milliseconds timeout);
  void KillHard();  // SIGKILL and reap
  int starts() const { return starts_; }
  const std::string& log_path() const { return log_path_; }
  std::string Log() const { return ReadFile(log_path_); }
  std::optional<int> last_exit() const { return last_exit_; }

 private:
  std::string config_path_;
  std::string log_path_;
  pid_t pid_ = -1;
  int starts_ = 0;
  std::optional<int> last_exit_;
};

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
  bool CaughtUp() const {
    return ok && initial_sync_done && sink_position == journal_max_seq && backlog_rows == 0;
  }
};

AgentStatus QueryStatus(const std::string& config_path);

// Polls `sluice status --json` until the sink position equals the journal's
// max seq with no backlog. Fails fast when `agent` (if given) has exited.
// Returns the last status seen; check .CaughtUp().
AgentStatus WaitCaughtUp(const std::string& config_path, AgentProcess* agent,
                         milliseconds timeout = seconds(60));

// ---------------------------------------------------------------- SQLite

struct SqlValue {
  int type = SQLITE_NULL;  // SQLITE_INTEGER, SQLITE_FLOAT, SQLITE_TEXT, SQLITE_BLOB, SQLITE_NULL
  int64_t i = 0;
  double r = 0;
  std::string bytes;

  static SqlValue Null() { return {}; }
  static SqlValue Int(int64_t v) {
    SqlValue x;
    x.type = SQLITE_INTEGER;
    x.i = v;
    return x;
  }
  static SqlValue Real(double v) {
    SqlValue x;
    x.type = SQLITE_FLOAT;
    x.r = v;
    return x;
  }
  static SqlValue Text(std::string v) {
    SqlValue x;
    x.type = SQLITE_TEXT;
    x.bytes = std::move(v);
    return x;
  }
  static SqlValue Blob(std::string v) {
    SqlValue x;
    x.type = SQLITE_BLOB;
    x.bytes = std::move(v);
    return x;
  }
  std::string Describe() const;
};

using SqlRow = std::vector<SqlValue>;

// One connection configured like the app's: busy_timeout 5000 (by default).
class Sqlite {
 public:
  explicit Sqlite(const std::string& path, int busy_timeout_ms = 5000);
  ~Sqlite();
  Sqlite(const Sqlite&) = delete;
  Sqlite& operator=(const Sqlite&) = delete;

  sqlite3* handle() { return db_; }
  void Exec(const std::string& sql);  // one or more statements; throws on error
  // Returns the SQLite result code; *err gets the message.
  int TryExec(const std::string& sql, std::string* err = nullptr);
  // One statement with bound parameters; throws on error. Returns rows.
  std::vector<SqlRow> Query(const std::string& sql, const std::vector<SqlValue>& params = {},
                            std::vector<std::string>* column_names = nullptr);
  // Like Query but returns the result code instead of throwing.
  int TryRun(const std::string& sql, const std::vector<SqlValue>& params, std::string* err);
  int64_t ScalarInt(const std::string& sql, const std::vector<SqlValue>& params = {});
  std::string ScalarText(const std::string& sql, const std::vector<SqlValue>& params = {});
  int Changes() { return sqlite3_changes(db_); }

 private:
  sqlite3* db_ = nullptr;
  std::string path_;
};

// Creates a new SQLite file (rollback journal, as Open WebUI without
// DATABASE_ENABLE_SQLITE_WAL) loaded with the Open WebUI fixture schema.
void CreateOpenWebUiDb(const std::string& path);

// Names of the app's tables (not sqlite_*, not _sluice_*), sorted.
std::vector<std::string> AppTables(Sqlite& db);
// Every row of every app table (quote()d, sorted) plus its schema SQL: equal
// dumps mean the app's data was not touched.
std::string DumpAppTables(Sqlite& db);

// ---------------------------------------------------------------- PostgreSQL

struct PgRows {
  std::vector<std::string> names;
  std::vector<unsigned> types;  // type OIDs
  std::vector<std::vector<std::optional<std::string>>> rows;
  int Col(const std::string& name) const;  // -1 when missing
};

class Pg {
 public:
  explicit Pg(const std::string& conninfo);
  ~Pg();
  Pg(const Pg&) = delete;
  Pg& operator=(const Pg&) = delete;

  PgRows Query(const std::string& sql, const std::vector<std::optional<std::string>>& params = {});
  // Like Query, but returns false (with *err) instead of throwing.
  bool TryQuery(const std::string& sql, PgRows* out, std::string* err,
                const std::vector<std::optional<std::string>>& params = {});
  std::optional<std::string> Scalar(const std::string& sql,
                                    const std::vector<std::optional<std::string>>& params = {});
  int64_t ScalarInt(const std::string& sql,
                    const std::vector<std::optional<std::string>>& params = {});
  bool TableExists(const std::string& schema, const std::string& table);
  void Reconnect();

 private:
  std::string conninfo_;
  PGconn* conn_ = nullptr;
};

// "schema"."table"
std::string PgTable(const std::string& schema, const std::string& table);

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
