// SqliteDb, Statement and Transaction: RAII over the SQLite C API.
#include "capture/sqlite_db.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace sluice {

Status SqliteStatus(sqlite3* db, int rc, std::string_view context) {
  int ext = db != nullptr ? sqlite3_extended_errcode(db) : rc;
  const char* msg = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  std::string m = fmt::format("{}: {} (sqlite code {})", context, msg, ext);
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Status::Busy(std::move(m));
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return Status::Corruption(std::move(m));
    default:
      return Status::Internal(std::move(m));
  }
}

// ---- Statement ----

Statement::~Statement() {
  if (stmt_ != nullptr) sqlite3_finalize(stmt_);
}

Statement::Statement(Statement&& other) noexcept : db_(other.db_), stmt_(other.stmt_) {
  other.stmt_ = nullptr;
}

Statement& Statement::operator=(Statement&& other) noexcept {
  if (this != &other) {
    if (stmt_ != nullptr) sqlite3_finalize(stmt_);
    db_ = other.db_;
    stmt_ = other.stmt_;
    other.stmt_ = nullptr;
  }
  return *this;
}

Status Statement::Bind(int index, const Value& v) {
  int rc = SQLITE_OK;
  switch (v.kind) {
    case Value::Kind::kNull:
      rc = sqlite3_bind_null(stmt_, index);
      break;
    case Value::Kind::kInteger:
      rc = sqlite3_bind_int64(stmt_, index, v.integer);
      break;
    case Value::Kind::kReal:
      rc = sqlite3_bind_double(stmt_, index, v.real);
      break;
    case Value::Kind::kText:
      rc = sqlite3_bind_text64(stmt_, index, v.bytes.data(), v.bytes.size(), SQLITE_TRANSIENT,
                               SQLITE_UTF8);
      break;
    case Value::Kind::kBlob:
      // A zero-length blob must stay a blob, not become NULL: pass a non-null pointer.
      rc = sqlite3_bind_blob64(stmt_, index, v.bytes.empty() ? "" : v.bytes.data(), v.bytes.size(),
                               SQLITE_TRANSIENT);
      break;
  }
  if (rc != SQLITE_OK) return SqliteStatus(db_, rc, "bind");
  return Status::Ok();
}

Status Statement::BindInt64(int index, int64_t v) { return Bind(index, Value::Integer(v)); }

Status Statement::BindText(int index, std::string_view v) {
  return Bind(index, Value::Text(std::string(v)));
}

Result<bool> Statement::Step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  Status st = SqliteStatus(db_, rc, fmt::format("step `{:.80}`", sqlite3_sql(stmt_)));
  sqlite3_reset(stmt_);
  return st;
}

Status Statement::Run() {
  ScopedReset reset(this);
  for (;;) {
    Result<bool> r = Step();
    if (!r.ok()) return r.status();
    if (!*r) return Status::Ok();
  }
}

void Statement::Reset() {
  if (stmt_ == nullptr) return;
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

int Statement::ColumnCount() const { return sqlite3_column_count(stmt_); }

Value Statement::ColumnValue(int i) const {
  switch (sqlite3_column_type(stmt_, i)) {
    case SQLITE_INTEGER:
      return Value::Integer(sqlite3_column_int64(stmt_, i));
    case SQLITE_FLOAT:
      return Value::Real(sqlite3_column_double(stmt_, i));
    case SQLITE_TEXT: {
      const unsigned char* p = sqlite3_column_text(stmt_, i);
      int n = sqlite3_column_bytes(stmt_, i);
      return Value::Text(std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(n)));
    }
    case SQLITE_BLOB: {
      const void* p = sqlite3_column_blob(stmt_, i);
      int n = sqlite3_column_bytes(stmt_, i);
      if (n == 0) return Value::Blob("");
      return Value::Blob(std::string(static_cast<const char*>(p), static_cast<size_t>(n)));
    }
    default:
      return Value::Null();
  }
}

int64_t Statement::ColumnInt64(int i) const { return sqlite3_column_int64(stmt_, i); }

std::string Statement::ColumnText(int i) const {
  const unsigned char* p = sqlite3_column_text(stmt_, i);
  int n = sqlite3_column_bytes(stmt_, i);
  if (p == nullptr) return std::string();
  return std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(n));
}

bool Statement::ColumnIsNull(int i) const { return sqlite3_column_type(stmt_, i) == SQLITE_NULL; }

// ---- SqliteDb ----

namespace {

Result<std::unique_ptr<SqliteDb>> Configure(std::unique_ptr<SqliteDb> db, int busy_timeout_ms) {
  sqlite3_extended_result_codes(db->handle(), 1);
  sqlite3_busy_timeout(db->handle(), busy_timeout_ms);
  // sluice never checkpoints: not automatically, not when it closes the last connection.
  sqlite3_db_config(db->handle(), SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr);
  SLUICE_RETURN_IF_ERROR(db->Exec("PRAGMA wal_autocheckpoint=0"));
  return db;
}

}  // namespace

Result<std::unique_ptr<SqliteDb>> SqliteDb::Open(const std::string& path, int busy_timeout_ms) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    return Status::InvalidArgument(fmt::format("source database {} does not exist", path));
  }
  if (!S_ISREG(st.st_mode)) {
    return Status::InvalidArgument(fmt::format("source database {} is not a regular file", path));
  }
  sqlite3* raw = nullptr;
  int rc =
      sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    Status s = SqliteStatus(raw, rc, fmt::format("open {}", path));
    sqlite3_close_v2(raw);
    return s;
  }
  return Configure(std::unique_ptr<SqliteDb>(new SqliteDb(raw, path, busy_timeout_ms)),
                   busy_timeout_ms);
}

Result<std::unique_ptr<SqliteDb>> SqliteDb::OpenMemory() {
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(":memory:", &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  if (rc != SQLITE_OK) {
    Status s = SqliteStatus(raw, rc, "open :memory:");
    sqlite3_close_v2(raw);
    return s;
  }
  return Configure(std::unique_ptr<SqliteDb>(new SqliteDb(raw, ":memory:", 0)), 0);
}

SqliteDb::~SqliteDb() { sqlite3_close_v2(db_); }

Status SqliteDb::Exec(std::string_view sql) {
  std::string text(sql);
  char* err = nullptr;
  int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &err);
  sqlite3_free(err);
  if (rc != SQLITE_OK) return Error(rc, fmt::format("`{:.120}`", text));
  return Status::Ok();
}

Result<Statement> SqliteDb::Prepare(std::string_view sql, bool persistent) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                              persistent ? SQLITE_PREPARE_PERSISTENT : 0, &stmt, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(stmt);
    return Error(rc, fmt::format("prepare `{:.120}`", sql));
  }
  return Statement(db_, stmt);
}

Result<int64_t> SqliteDb::QueryInt64(std::string_view sql) {
  Result<Statement> s = Prepare(sql);
  if (!s.ok()) return s.status();
  ScopedReset reset(&*s);
  Result<bool> row = s->Step();
  if (!row.ok()) return row.status();
  if (!*row) return Status::NotFound(fmt::format("no row from `{:.120}`", sql));
  return s->ColumnInt64(0);
}

Result<std::string> SqliteDb::QueryText(std::string_view sql) {
  Result<Statement> s = Prepare(sql);
  if (!s.ok()) return s.status();
  ScopedReset reset(&*s);
  Result<bool> row = s->Step();
  if (!row.ok()) return row.status();
  if (!*row) return Status::NotFound(fmt::format("no row from `{:.120}`", sql));
  return s->ColumnText(0);
}

Result<std::vector<std::string>> SqliteDb::QueryStrings(std::string_view sql,
                                                        const std::vector<Value>& params) {
  Result<Statement> s = Prepare(sql);
  if (!s.ok()) return s.status();
  ScopedReset reset(&*s);
  for (size_t i = 0; i < params.size(); ++i) {
    SLUICE_RETURN_IF_ERROR(s->Bind(static_cast<int>(i + 1), params[i]));
  }
  std::vector<std::string> out;
  for (;;) {
    Result<bool> row = s->Step();
    if (!row.ok()) return row.status();
    if (!*row) return out;
    out.push_back(s->ColumnText(0));
  }
}

// ---- Transaction ----

Transaction::~Transaction() { Rollback(); }

Status Transaction::Begin(Kind kind) {
  SLUICE_RETURN_IF_ERROR(
      db_->Exec(kind == Kind::kImmediate ? "BEGIN IMMEDIATE" : "BEGIN DEFERRED"));
  active_ = true;
  return Status::Ok();
}

Status Transaction::Commit() {
  if (!active_) return Status::Ok();
  Status s = db_->Exec("COMMIT");
  if (!s.ok()) {
    Rollback();
    return s;
  }
  active_ = false;
  return Status::Ok();
}

void Transaction::Rollback() {
  if (!active_) return;
  active_ = false;
  // The transaction may already be gone (SQLite rolls back on some errors).
  if (!sqlite3_get_autocommit(db_->handle())) (void)db_->Exec("ROLLBACK");
}

// ---- ownership ----

namespace {

// Gives `side` to uid/gid if it is a regular file with one link; a symlink,
// a hard link or anything else is not the app's -wal/-shm and is left alone.
// O_PATH | O_NOFOLLOW pins the inode without following a final symlink, so
// the check and the chown see the same file; and closing an O_PATH
// descriptor, unlike any other, leaves this process's POSIX locks on the file
// alone (closing a plain descriptor would drop the locks SQLite holds on the
// -shm, and another connection would then reset the shared memory under it).
Status FixOwner(const std::string& side, uid_t uid, gid_t gid) {
  int fd = ::open(side.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status::Ok();  // not there (yet): nothing to fix
    return Status::Internal(fmt::format("open {}: {}", side, std::strerror(errno)));
  }
  struct stat st;
  Status result = Status::Ok();
  if (::fstat(fd, &st) != 0) {
    result = Status::Internal(fmt::format("stat {}: {}", side, std::strerror(errno)));
  } else if (!S_ISREG(st.st_mode) || st.st_nlink != 1) {
    spdlog::warn(
        "capture: {} is not a regular file with one link (a symlink?): its owner is left "
        "alone",
        side);
  } else if ((st.st_uid != uid || st.st_gid != gid) &&
             ::fchownat(fd, "", uid, gid, AT_EMPTY_PATH) != 0) {
    result = Status::Internal(fmt::format("chown {}: {}", side, std::strerror(errno)));
  }
  ::close(fd);
  return result;
}

}  // namespace

Status FixWalOwnership(const std::string& path) {
  if (::geteuid() != 0) return Status::Ok();
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    return Status::Internal(fmt::format("stat {}: {}", path, std::strerror(errno)));
  }
  for (const char* suffix : {"-wal", "-shm"}) {
    SLUICE_RETURN_IF_ERROR(FixOwner(path + suffix, st.st_uid, st.st_gid));
  }
  return Status::Ok();
}

}  // namespace sluice
