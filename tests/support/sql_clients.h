// Plain SQLite and PostgreSQL clients for tests and benchmarks: what the app
// and an operator would do to the two databases, with errors thrown as
// std::runtime_error. No gtest here, so bench/ links the same code.
#pragma once

#include <libpq-fe.h>
#include <sqlite3.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace sluice::testing {

std::string QuoteIdent(const std::string& name);  // "name" with " doubled (SQL)
// "schema"."table"
std::string PgTable(const std::string& schema, const std::string& table);
std::string Preview(const std::string& bytes, size_t max = 80);  // printable, truncated
// A double with 17 significant digits; NaN and ±Infinity spelled as PostgreSQL does.
std::string Canon17(double v);
// The whole of `s` as a number (PostgreSQL's text output), else nullopt;
// ParseDouble takes "Infinity", "-Infinity" and "NaN" too.
std::optional<int64_t> ParseInt(const std::string& s);
std::optional<double> ParseDouble(const std::string& s);

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

// One prepared statement, reused across executions (the benchmark's app
// writer prepares once, like an app's ORM would).
class SqliteStatement {
 public:
  SqliteStatement(sqlite3* db, const std::string& sql);
  ~SqliteStatement();
  SqliteStatement(const SqliteStatement&) = delete;
  SqliteStatement& operator=(const SqliteStatement&) = delete;

  // Parameters are 1-based; values are copied (SQLITE_TRANSIENT).
  void Bind(int i, const SqlValue& v);
  void BindText(int i, const std::string& s);
  void BindInt(int i, int64_t v);
  void BindNull(int i);
  bool Step();   // true on a row, false when done; throws on error (after a reset)
  void Run();    // Step, then Reset
  void Reset();  // and clear the bindings
  SqlValue Column(int col);
  int64_t Int(int col) { return sqlite3_column_int64(stmt_, col); }
  bool IsNull(int col) { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
  sqlite3_stmt* handle() { return stmt_; }

 private:
  void Check(int rc);  // throws unless SQLITE_OK

  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
};

// One connection configured like the app's: busy_timeout 5000 (by default).
class Sqlite {
 public:
  explicit Sqlite(const std::string& path, int busy_timeout_ms = 5000, bool read_only = false);
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

// ---------------------------------------------------------------- PostgreSQL

struct PgRows {
  std::vector<std::string> names;
  std::vector<unsigned> types;  // type OIDs
  std::vector<std::vector<std::optional<std::string>>> rows;
  int Col(const std::string& name) const;  // -1 when missing
};

// A libpq connection (notices dropped); reconnects when it was lost.
class Pg {
 public:
  explicit Pg(const std::string& conninfo);
  ~Pg();
  Pg(const Pg&) = delete;
  Pg& operator=(const Pg&) = delete;

  // Without `params`, `sql` may hold several statements (simple protocol).
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
  PGconn* handle() { return conn_; }  // for COPY and LISTEN

 private:
  std::string conninfo_;
  PGconn* conn_ = nullptr;
};

}  // namespace sluice::testing
