// SqliteDb and Statement: a thin RAII shell over one sqlite3 connection and its
// prepared statements. Every sluice connection disables checkpoints (sluice
// never checkpoints: the app owns them). Used by the installer and the
// JournalReader; a connection belongs to one thread at a time.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "common/value.h"

namespace sluice {

// Maps a SQLite result code to a Status: SQLITE_BUSY / SQLITE_LOCKED → kBusy,
// CORRUPT / NOTADB → kCorruption, anything else → kInternal. `db` may be null.
Status SqliteStatus(sqlite3* db, int rc, std::string_view context);

// A prepared statement. Move-only; finalized on destruction.
class Statement {
 public:
  Statement() = default;
  Statement(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  ~Statement();
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&& other) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  bool valid() const { return stmt_ != nullptr; }
  sqlite3_stmt* get() const { return stmt_; }

  Status Bind(int index, const Value& v);  // 1-based
  Status BindInt64(int index, int64_t v);
  Status BindText(int index, std::string_view v);

  // Steps once: true when a row is available, false when done.
  Result<bool> Step();
  // Steps to the end, discarding rows, then resets.
  Status Run();
  // Resets the statement and clears its bindings; safe to call at any time.
  void Reset();

  int ColumnCount() const;
  // The column exactly as stored (storage class from sqlite3_column_type).
  Value ColumnValue(int i) const;
  int64_t ColumnInt64(int i) const;
  std::string ColumnText(int i) const;  // bytes, NUL-safe
  bool ColumnIsNull(int i) const;

 private:
  sqlite3* db_ = nullptr;
  sqlite3_stmt* stmt_ = nullptr;
};

// Resets a statement when the scope ends: no statement stays active after use.
class ScopedReset {
 public:
  explicit ScopedReset(Statement* s) : s_(s) {}
  ~ScopedReset() { s_->Reset(); }
  ScopedReset(const ScopedReset&) = delete;
  ScopedReset& operator=(const ScopedReset&) = delete;

 private:
  Statement* s_;
};

class SqliteDb {
 public:
  // Opens an existing file read-write (never creates it: a missing file is
  // kInvalidArgument). Sets busy_timeout, wal_autocheckpoint=0 and disables
  // the checkpoint-on-close.
  static Result<std::unique_ptr<SqliteDb>> Open(const std::string& path, int busy_timeout_ms);
  // An in-memory database (tests and SQL validation).
  static Result<std::unique_ptr<SqliteDb>> OpenMemory();

  ~SqliteDb();
  SqliteDb(const SqliteDb&) = delete;
  SqliteDb& operator=(const SqliteDb&) = delete;

  sqlite3* handle() const { return db_; }
  const std::string& path() const { return path_; }
  int busy_timeout_ms() const { return busy_timeout_ms_; }
  // SQLITE_LIMIT_COLUMN of this connection: the widest result row (2,000 by default).
  int column_limit() const { return sqlite3_limit(db_, SQLITE_LIMIT_COLUMN, -1); }

  // Runs one or more statements without results.
  Status Exec(std::string_view sql);
  Result<Statement> Prepare(std::string_view sql, bool persistent = false);
  // First column of the first row; kNotFound if there is no row.
  Result<int64_t> QueryInt64(std::string_view sql);
  Result<std::string> QueryText(std::string_view sql);
  // The first column of every row as text, in order; `params` bind ?1, ?2, ...
  Result<std::vector<std::string>> QueryStrings(std::string_view sql,
                                                const std::vector<Value>& params = {});

  Status Error(int rc, std::string_view context) const { return SqliteStatus(db_, rc, context); }

 private:
  SqliteDb(sqlite3* db, std::string path, int busy_timeout_ms)
      : db_(db), path_(std::move(path)), busy_timeout_ms_(busy_timeout_ms) {}

  sqlite3* db_;
  std::string path_;
  int busy_timeout_ms_;
};

// A transaction that rolls back on destruction unless committed.
class Transaction {
 public:
  enum class Kind { kDeferred, kImmediate };
  explicit Transaction(SqliteDb* db) : db_(db) {}
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  Status Begin(Kind kind);
  Status Commit();
  void Rollback();
  bool active() const { return active_; }

 private:
  SqliteDb* db_;
  bool active_ = false;
};

// If this process runs as root, gives `path`-wal and `path`-shm to the owner
// of `path`, so the app can still open them. No-op otherwise. Only a regular
// file with one link is changed, through an O_PATH | O_NOFOLLOW descriptor
// (fstat + fchownat on it): anything else at those names is left alone with
// a warning, so a planted link cannot make root chown another file. Safe
// while this process has SQLite connections on the file (its locks stay).
Status FixWalOwnership(const std::string& path);

}  // namespace sluice
