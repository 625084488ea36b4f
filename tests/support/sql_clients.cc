// SQLite and PostgreSQL test clients (see sql_clients.h).
#include "tests/support/sql_clients.h"

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string_view>

#include "common/hex.h"

namespace sluice::testing {

std::string Canon17(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

std::optional<double> ParseDouble(const std::string& s) {
  if (s.empty()) return std::nullopt;
  const char* begin = s.c_str();
  char* end = nullptr;
  errno = 0;
  double v = std::strtod(begin, &end);
  if (end != begin + s.size()) return std::nullopt;
  return v;
}

std::optional<int64_t> ParseInt(const std::string& s) {
  int64_t v = 0;
  auto res = std::from_chars(s.data(), s.data() + s.size(), v);
  if (res.ec != std::errc() || res.ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

std::string QuoteIdent(const std::string& name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  return out + "\"";
}

std::string PgTable(const std::string& schema, const std::string& table) {
  return QuoteIdent(schema) + "." + QuoteIdent(table);
}

std::string Preview(const std::string& bytes, size_t max) {
  std::string out;
  for (size_t i = 0; i < bytes.size() && i < max; ++i) {
    unsigned char c = static_cast<unsigned char>(bytes[i]);
    if (c >= 0x20 && c < 0x7f) {
      out.push_back(static_cast<char>(c));
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  if (bytes.size() > max) out += "...(" + std::to_string(bytes.size()) + " bytes)";
  return out;
}

// ---------------------------------------------------------------- SQLite

std::string SqlValue::Describe() const {
  switch (type) {
    case SQLITE_NULL:
      return "NULL";
    case SQLITE_INTEGER:
      return "INTEGER " + std::to_string(i);
    case SQLITE_FLOAT:
      return "REAL " + Canon17(r);
    case SQLITE_TEXT:
      return "TEXT '" + Preview(bytes) + "'";
    case SQLITE_BLOB:
      return "BLOB x'" + Hex(std::string_view(bytes).substr(0, 40)) +
             (bytes.size() > 40 ? "...'" : "'");
  }
  return "?";
}

Sqlite::Sqlite(const std::string& path, int busy_timeout_ms, bool read_only) : path_(path) {
  int flags = read_only ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  int rc = sqlite3_open_v2(path.c_str(), &db_, flags, nullptr);
  if (rc != SQLITE_OK) {
    std::string m = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    db_ = nullptr;
    throw std::runtime_error("open " + path + ": " + m);
  }
  sqlite3_busy_timeout(db_, busy_timeout_ms);
}

Sqlite::~Sqlite() { sqlite3_close_v2(db_); }

void Sqlite::Exec(const std::string& sql) {
  std::string err;
  int rc = TryExec(sql, &err);
  if (rc != SQLITE_OK) {
    throw std::runtime_error("sqlite " + path_ + ": " + err + " (rc " + std::to_string(rc) +
                             ") in: " + sql.substr(0, 300));
  }
}

int Sqlite::TryExec(const std::string& sql, std::string* err) {
  char* msg = nullptr;
  int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &msg);
  if (rc != SQLITE_OK && err != nullptr) *err = msg ? msg : sqlite3_errstr(rc);
  sqlite3_free(msg);
  return rc;
}

namespace {

int BindOne(sqlite3_stmt* st, int idx, const SqlValue& p) {
  switch (p.type) {
    case SQLITE_INTEGER:
      return sqlite3_bind_int64(st, idx, p.i);
    case SQLITE_FLOAT:
      return sqlite3_bind_double(st, idx, p.r);
    case SQLITE_TEXT:
      return sqlite3_bind_text64(st, idx, p.bytes.data(), p.bytes.size(), SQLITE_TRANSIENT,
                                 SQLITE_UTF8);
    case SQLITE_BLOB:
      return sqlite3_bind_blob64(st, idx, p.bytes.data(), p.bytes.size(), SQLITE_TRANSIENT);
    default:
      return sqlite3_bind_null(st, idx);
  }
}

int Bind(sqlite3_stmt* st, const std::vector<SqlValue>& params) {
  for (size_t i = 0; i < params.size(); ++i) {
    int rc = BindOne(st, static_cast<int>(i) + 1, params[i]);
    if (rc != SQLITE_OK) return rc;
  }
  return SQLITE_OK;
}

SqlValue ColumnValue(sqlite3_stmt* st, int i) {
  switch (sqlite3_column_type(st, i)) {
    case SQLITE_INTEGER:
      return SqlValue::Int(sqlite3_column_int64(st, i));
    case SQLITE_FLOAT:
      return SqlValue::Real(sqlite3_column_double(st, i));
    case SQLITE_TEXT: {
      const char* p = reinterpret_cast<const char*>(sqlite3_column_text(st, i));
      int n = sqlite3_column_bytes(st, i);
      return SqlValue::Text(std::string(p, static_cast<size_t>(n)));
    }
    case SQLITE_BLOB: {
      const char* p = static_cast<const char*>(sqlite3_column_blob(st, i));
      int n = sqlite3_column_bytes(st, i);
      return SqlValue::Blob(p == nullptr ? std::string() : std::string(p, static_cast<size_t>(n)));
    }
    default:
      return SqlValue::Null();
  }
}

}  // namespace

SqliteStatement::SqliteStatement(sqlite3* db, const std::string& sql) : db_(db) {
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt_, nullptr) != SQLITE_OK) {
    throw std::runtime_error("sqlite prepare: " + std::string(sqlite3_errmsg(db)) +
                             " in: " + sql.substr(0, 300));
  }
}

SqliteStatement::~SqliteStatement() { sqlite3_finalize(stmt_); }

void SqliteStatement::Bind(int i, const SqlValue& v) { Check(BindOne(stmt_, i, v)); }

void SqliteStatement::BindText(int i, const std::string& s) {
  Check(sqlite3_bind_text64(stmt_, i, s.data(), s.size(), SQLITE_TRANSIENT, SQLITE_UTF8));
}

void SqliteStatement::BindInt(int i, int64_t v) { Check(sqlite3_bind_int64(stmt_, i, v)); }

void SqliteStatement::BindNull(int i) { Check(sqlite3_bind_null(stmt_, i)); }

void SqliteStatement::Check(int rc) {
  if (rc != SQLITE_OK) throw std::runtime_error("sqlite bind: " + std::string(sqlite3_errmsg(db_)));
}

bool SqliteStatement::Step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  std::string msg = sqlite3_errmsg(db_);
  sqlite3_reset(stmt_);
  throw std::runtime_error("sqlite step: " + msg + " (rc " + std::to_string(rc) + ")");
}

void SqliteStatement::Run() {
  Step();
  Reset();
}

void SqliteStatement::Reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

SqlValue SqliteStatement::Column(int col) { return ColumnValue(stmt_, col); }

int Sqlite::TryRun(const std::string& sql, const std::vector<SqlValue>& params, std::string* err) {
  sqlite3_stmt* st = nullptr;
  int rc = sqlite3_prepare_v2(db_, sql.c_str(), -1, &st, nullptr);
  if (rc == SQLITE_OK) rc = Bind(st, params);
  if (rc == SQLITE_OK) {
    do {
      rc = sqlite3_step(st);
    } while (rc == SQLITE_ROW);
    if (rc == SQLITE_DONE) rc = SQLITE_OK;
  }
  if (rc != SQLITE_OK && err != nullptr) *err = sqlite3_errmsg(db_);
  sqlite3_finalize(st);
  return rc;
}

std::vector<SqlRow> Sqlite::Query(const std::string& sql, const std::vector<SqlValue>& params,
                                  std::vector<std::string>* column_names) {
  sqlite3_stmt* st = nullptr;
  int rc = sqlite3_prepare_v2(db_, sql.c_str(), -1, &st, nullptr);
  if (rc == SQLITE_OK) rc = Bind(st, params);
  std::vector<SqlRow> rows;
  if (rc == SQLITE_OK) {
    int n = sqlite3_column_count(st);
    if (column_names != nullptr) {
      column_names->clear();
      for (int i = 0; i < n; ++i) column_names->push_back(sqlite3_column_name(st, i));
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
      SqlRow row;
      row.reserve(static_cast<size_t>(n));
      for (int i = 0; i < n; ++i) row.push_back(ColumnValue(st, i));
      rows.push_back(std::move(row));
    }
    if (rc == SQLITE_DONE) rc = SQLITE_OK;
  }
  std::string msg = sqlite3_errmsg(db_);
  sqlite3_finalize(st);
  if (rc != SQLITE_OK) {
    throw std::runtime_error("sqlite " + path_ + ": " + msg + " (rc " + std::to_string(rc) +
                             ") in: " + sql.substr(0, 300));
  }
  return rows;
}

int64_t Sqlite::ScalarInt(const std::string& sql, const std::vector<SqlValue>& params) {
  auto rows = Query(sql, params);
  if (rows.empty() || rows[0].empty()) throw std::runtime_error("no row from: " + sql);
  const SqlValue& v = rows[0][0];
  if (v.type == SQLITE_INTEGER) return v.i;
  if (v.type == SQLITE_NULL) return 0;
  throw std::runtime_error("not an integer from " + sql + ": " + v.Describe());
}

std::string Sqlite::ScalarText(const std::string& sql, const std::vector<SqlValue>& params) {
  auto rows = Query(sql, params);
  if (rows.empty() || rows[0].empty()) return "";
  const SqlValue& v = rows[0][0];
  if (v.type == SQLITE_INTEGER) return std::to_string(v.i);
  return v.bytes;
}

// ---------------------------------------------------------------- PostgreSQL

int PgRows::Col(const std::string& name) const {
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] == name) return static_cast<int>(i);
  }
  return -1;
}

Pg::Pg(const std::string& conninfo) : conninfo_(conninfo) { Reconnect(); }

Pg::~Pg() {
  if (conn_ != nullptr) PQfinish(conn_);
}

void Pg::Reconnect() {
  if (conn_ != nullptr) PQfinish(conn_);
  conn_ = PQconnectdb(conninfo_.c_str());
  if (PQstatus(conn_) != CONNECTION_OK) {
    std::string m = PQerrorMessage(conn_);
    PQfinish(conn_);
    conn_ = nullptr;
    throw std::runtime_error("connect to PostgreSQL: " + m);
  }
  PQsetNoticeProcessor(
      conn_, [](void*, const char*) {}, nullptr);
}

bool Pg::TryQuery(const std::string& sql, PgRows* out, std::string* err,
                  const std::vector<std::optional<std::string>>& params) {
  if (conn_ == nullptr || PQstatus(conn_) != CONNECTION_OK) {
    try {
      Reconnect();
    } catch (const std::exception& e) {
      *err = e.what();
      return false;
    }
  }
  std::vector<const char*> values;
  std::vector<int> lengths;
  for (const auto& p : params) {
    values.push_back(p ? p->c_str() : nullptr);
    lengths.push_back(p ? static_cast<int>(p->size()) : 0);
  }
  // Without parameters, the simple protocol: `sql` may hold several
  // statements (the result is the last one's).
  PGresult* res = params.empty() ? PQexec(conn_, sql.c_str())
                                 : PQexecParams(conn_, sql.c_str(), static_cast<int>(params.size()),
                                                nullptr, values.data(), lengths.data(), nullptr, 0);
  ExecStatusType st = PQresultStatus(res);
  if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
    *err = PQresultErrorMessage(res);
    if (err->empty()) *err = PQerrorMessage(conn_);
    PQclear(res);
    return false;
  }
  PgRows rows;
  int nf = PQnfields(res);
  for (int i = 0; i < nf; ++i) {
    rows.names.push_back(PQfname(res, i));
    rows.types.push_back(PQftype(res, i));
  }
  int nt = PQntuples(res);
  rows.rows.reserve(static_cast<size_t>(nt));
  for (int r = 0; r < nt; ++r) {
    std::vector<std::optional<std::string>> row;
    row.reserve(static_cast<size_t>(nf));
    for (int c = 0; c < nf; ++c) {
      if (PQgetisnull(res, r, c)) {
        row.emplace_back(std::nullopt);
      } else {
        row.emplace_back(
            std::string(PQgetvalue(res, r, c), static_cast<size_t>(PQgetlength(res, r, c))));
      }
    }
    rows.rows.push_back(std::move(row));
  }
  PQclear(res);
  *out = std::move(rows);
  return true;
}

PgRows Pg::Query(const std::string& sql, const std::vector<std::optional<std::string>>& params) {
  PgRows rows;
  std::string err;
  if (!TryQuery(sql, &rows, &err, params)) {
    throw std::runtime_error("PostgreSQL: " + err + " in: " + sql.substr(0, 300));
  }
  return rows;
}

std::optional<std::string> Pg::Scalar(const std::string& sql,
                                      const std::vector<std::optional<std::string>>& params) {
  PgRows r = Query(sql, params);
  if (r.rows.empty() || r.rows[0].empty()) return std::nullopt;
  return r.rows[0][0];
}

int64_t Pg::ScalarInt(const std::string& sql,
                      const std::vector<std::optional<std::string>>& params) {
  auto v = Scalar(sql, params);
  if (!v) throw std::runtime_error("NULL or no row from: " + sql);
  int64_t n = 0;
  auto res = std::from_chars(v->data(), v->data() + v->size(), n);
  if (res.ec != std::errc() || res.ptr != v->data() + v->size())
    throw std::runtime_error("not an integer (" + *v + ") from: " + sql);
  return n;
}

bool Pg::TableExists(const std::string& schema, const std::string& table) {
  return Scalar(
             "SELECT count(*) FROM pg_catalog.pg_tables WHERE schemaname = $1 AND tablename = $2",
             {schema, table})
             .value_or("0") != "0";
}

}  // namespace sluice::testing
