// sluice_bench: end-to-end benchmark of the sluice agent against a real
// PostgreSQL. Drives the real binary (init / run) on SQLite files built from
// the Open WebUI fixture schema and measures, each with its conditions:
//   (a) catch-up throughput on a backlog vs PostgreSQL's own COPY ingest rate,
//       and the largest lag while the app writes at full speed;
//   (b) commit-to-visible latency at a steady 1,000 single-row txn/s (LISTEN/NOTIFY);
//   (c) trigger overhead on the app's own 1,000-row insert transactions;
//   (d) the agent's peak RSS (VmHWM) after (a).
// Usage: sluice_bench --sluice PATH [--conninfo STR] [--json OUT] [options]; see --help.
// bench/run.sh runs it inside pg_virtualenv. Not part of the test suite.
#include <fcntl.h>
#include <libpq-fe.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <csignal>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "bench/bench_paths.h"
#include "common/json_text.h"

extern char** environ;

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// ---------------------------------------------------------------- utilities

[[noreturn]] void Fail(const std::string& msg) { throw std::runtime_error(msg); }

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }
double Millis(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

int64_t UnixMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int64_t UnixNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string Fmt(const char* format, ...) __attribute__((format(printf, 1, 2)));
std::string Fmt(const char* format, ...) {
  va_list ap;
  va_start(ap, format);
  va_list ap2;
  va_copy(ap2, ap);
  int n = std::vsnprintf(nullptr, 0, format, ap);
  va_end(ap);
  std::string out(n > 0 ? static_cast<size_t>(n) : 0, '\0');
  std::vsnprintf(out.data(), out.size() + 1, format, ap2);
  va_end(ap2);
  return out;
}

void Log(const std::string& msg) {
  std::fprintf(stderr, "[bench] %s\n", msg.c_str());
  std::fflush(stderr);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) Fail("cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) Fail("cannot write " + path);
  out << text;
  if (!out.flush()) Fail("cannot write " + path);
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r')) s.pop_back();
  size_t i = 0;
  while (i < s.size() && s[i] == ' ') ++i;
  return s.substr(i);
}

std::string TailOf(const std::string& path, size_t max_bytes) {
  std::string all;
  try {
    all = ReadFile(path);
  } catch (const std::exception&) {
    return "";
  }
  if (all.size() > max_bytes) all = "..." + all.substr(all.size() - max_bytes);
  return all;
}

double Percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return NAN;
  // Nearest rank.
  size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(sorted.size())));
  if (rank == 0) rank = 1;
  return sorted[std::min(rank, sorted.size()) - 1];
}

double Median(std::vector<double> v) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

uint64_t SplitMix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// ---------------------------------------------------------------- JSON output

// A JSON value kept as already-serialised text; objects keep insertion order.
class Json {
 public:
  Json() : text_("null") {}
  static Json Raw(std::string t) {
    Json j;
    j.text_ = std::move(t);
    return j;
  }
  static Json Num(double v) {
    if (!std::isfinite(v)) return Json();
    return Raw(Fmt("%.6g", v));
  }
  static Json Int(int64_t v) { return Raw(std::to_string(v)); }
  static Json Bool(bool v) { return Raw(v ? "true" : "false"); }
  static Json Str(const std::string& s) { return Raw(sluice::JsonString(s)); }
  const std::string& text() const { return text_; }

 private:
  std::string text_;
};

class JsonObject {
 public:
  JsonObject& Set(const std::string& key, Json v) {
    for (auto& kv : fields_) {
      if (kv.first == key) {
        kv.second = std::move(v);
        return *this;
      }
    }
    fields_.emplace_back(key, std::move(v));
    return *this;
  }
  JsonObject& Set(const std::string& key, const JsonObject& o) { return Set(key, o.ToJson()); }
  Json ToJson(int indent = 0) const {
    std::string pad(static_cast<size_t>(indent + 2), ' ');
    std::string out = "{";
    bool first = true;
    for (const auto& kv : fields_) {
      out += first ? "\n" : ",\n";
      first = false;
      // Nested values carry their own line breaks (strings escape theirs): indent them.
      std::string value;
      for (char c : kv.second.text()) {
        value.push_back(c);
        if (c == '\n') value += pad;
      }
      out += pad + Json::Str(kv.first).text() + ": " + value;
    }
    out += first ? "}" : "\n" + std::string(static_cast<size_t>(indent), ' ') + "}";
    return Json::Raw(out);
  }

 private:
  std::vector<std::pair<std::string, Json>> fields_;
};

Json JsonArray(const std::vector<Json>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ", ";
    out += items[i].text();
  }
  return Json::Raw(out + "]");
}

// ---------------------------------------------------------------- SQLite

class Stmt {
 public:
  Stmt(sqlite3* db, const std::string& sql) : db_(db) {
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt_, nullptr) != SQLITE_OK) {
      Fail("sqlite prepare [" + sql + "]: " + sqlite3_errmsg(db));
    }
  }
  ~Stmt() { sqlite3_finalize(stmt_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  void BindText(int i, const std::string& s) {
    sqlite3_bind_text(stmt_, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
  }
  void BindInt(int i, int64_t v) { sqlite3_bind_int64(stmt_, i, v); }
  void BindNull(int i) { sqlite3_bind_null(stmt_, i); }
  // Returns true on a row, false when done.
  bool Step() {
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    std::string msg = sqlite3_errmsg(db_);
    sqlite3_reset(stmt_);
    Fail("sqlite step: " + msg);
  }
  void Run() {
    Step();
    Reset();
  }
  void Reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  sqlite3_stmt* get() { return stmt_; }
  int64_t Int(int col) { return sqlite3_column_int64(stmt_, col); }
  bool IsNull(int col) { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
};

class Sqlite {
 public:
  explicit Sqlite(const std::string& path, bool read_only = false) {
    int flags = read_only ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    if (sqlite3_open_v2(path.c_str(), &db_, flags, nullptr) != SQLITE_OK) {
      std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
      sqlite3_close(db_);
      Fail("open " + path + ": " + msg);
    }
    sqlite3_busy_timeout(db_, 10000);
  }
  ~Sqlite() { sqlite3_close_v2(db_); }
  Sqlite(const Sqlite&) = delete;
  Sqlite& operator=(const Sqlite&) = delete;

  void Exec(const std::string& sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
      std::string msg = err ? err : sqlite3_errmsg(db_);
      sqlite3_free(err);
      Fail("sqlite exec [" + sql.substr(0, 80) + "]: " + msg);
    }
  }
  int64_t QueryInt(const std::string& sql, int64_t if_none = 0) {
    Stmt s(db_, sql);
    if (!s.Step() || s.IsNull(0)) return if_none;
    return s.Int(0);
  }
  std::string QueryText(const std::string& sql) {
    Stmt s(db_, sql);
    if (!s.Step() || s.IsNull(0)) return "";
    return reinterpret_cast<const char*>(sqlite3_column_text(s.get(), 0));
  }
  sqlite3* get() { return db_; }

 private:
  sqlite3* db_ = nullptr;
};

// The app's connection settings: WAL (sluice init switches to it anyway) and
// the given synchronous level.
void AppPragmas(Sqlite& db, const std::string& synchronous) {
  db.Exec("PRAGMA journal_mode=WAL");
  db.Exec("PRAGMA synchronous=" + synchronous);
}

// Highest journal seq ever handed out (survives pruning): AUTOINCREMENT's counter.
int64_t JournalMaxSeq(Sqlite& db) {
  return db.QueryInt("SELECT seq FROM sqlite_sequence WHERE name='_sluice_journal'", 0);
}

// ---------------------------------------------------------------- PostgreSQL

class Pg {
 public:
  explicit Pg(const std::string& conninfo) {
    conn_ = PQconnectdb(conninfo.c_str());
    if (PQstatus(conn_) != CONNECTION_OK) {
      std::string msg = PQerrorMessage(conn_);
      PQfinish(conn_);
      conn_ = nullptr;
      Fail("connect to PostgreSQL: " + Trim(msg));
    }
    PQsetNoticeProcessor(
        conn_, [](void*, const char*) {}, nullptr);
  }
  ~Pg() {
    if (conn_) PQfinish(conn_);
  }
  Pg(const Pg&) = delete;
  Pg& operator=(const Pg&) = delete;

  void Exec(const std::string& sql) {
    PGresult* r = PQexec(conn_, sql.c_str());
    ExecStatusType st = PQresultStatus(r);
    std::string msg = PQresultErrorMessage(r);
    PQclear(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) Fail("pg [" + sql + "]: " + Trim(msg));
  }
  // Rows of text values (NULL as std::nullopt).
  std::vector<std::vector<std::optional<std::string>>> Query(
      const std::string& sql, const std::vector<std::string>& params = {}) {
    std::vector<const char*> values;
    for (const std::string& p : params) values.push_back(p.c_str());
    PGresult* r = PQexecParams(conn_, sql.c_str(), static_cast<int>(values.size()), nullptr,
                               values.data(), nullptr, nullptr, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
      std::string msg = PQresultErrorMessage(r);
      PQclear(r);
      Fail("pg [" + sql + "]: " + Trim(msg));
    }
    std::vector<std::vector<std::optional<std::string>>> rows(static_cast<size_t>(PQntuples(r)));
    for (int i = 0; i < PQntuples(r); ++i) {
      for (int j = 0; j < PQnfields(r); ++j) {
        if (PQgetisnull(r, i, j)) {
          rows[static_cast<size_t>(i)].push_back(std::nullopt);
        } else {
          rows[static_cast<size_t>(i)].push_back(std::string(PQgetvalue(r, i, j)));
        }
      }
    }
    PQclear(r);
    return rows;
  }
  std::string QueryText(const std::string& sql, const std::vector<std::string>& params = {}) {
    auto rows = Query(sql, params);
    if (rows.empty() || rows[0].empty() || !rows[0][0]) return "";
    return *rows[0][0];
  }
  PGconn* get() { return conn_; }

 private:
  PGconn* conn_ = nullptr;
};

std::string QuoteIdent(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    out.push_back(c);
    if (c == '"') out.push_back('"');
  }
  return out + "\"";
}

// The sink position for a deployment: -1 while there is none (initial sync not done).
int64_t AppliedSeq(Pg& pg, const std::string& deployment) {
  auto rows = pg.Query(
      "SELECT applied_seq FROM sync_metadata.source_position WHERE deployment = $1", {deployment});
  if (rows.empty() || !rows[0][0]) return -1;
  return std::stoll(*rows[0][0]);
}

// ---------------------------------------------------------------- processes

// utime+stime of one process, seconds; -1 if gone.
double ProcessCpuSeconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return -1;
  size_t close = line.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream rest(line.substr(close + 2));
  std::string field;
  std::vector<std::string> f;
  while (rest >> field) f.push_back(field);
  // After "pid (comm) ": state is field 3 → index 0; utime is field 14 → index 11.
  if (f.size() < 13) return -1;
  double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  return (std::stod(f[11]) + std::stod(f[12])) / ticks;
}

// CPU seconds of every process named `comm` that we can see (the local
// PostgreSQL server's processes, when PostgreSQL runs on this machine), by pid.
std::map<pid_t, double> CpuByPid(const std::string& comm) {
  std::map<pid_t, double> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    std::string name = entry.path().filename();
    if (name.empty() || !std::isdigit(static_cast<unsigned char>(name[0]))) continue;
    std::ifstream c(entry.path() / "comm");
    std::string got;
    if (!std::getline(c, got) || got != comm) continue;
    pid_t pid = static_cast<pid_t>(std::stol(name));
    double secs = ProcessCpuSeconds(pid);
    if (secs >= 0) out[pid] = secs;
  }
  return out;
}

// CPU used since `before` by the processes alive now (those that exited in
// between are not counted).
double CpuSince(const std::map<pid_t, double>& before, const std::string& comm) {
  double total = 0;
  for (const auto& [pid, secs] : CpuByPid(comm)) {
    auto it = before.find(pid);
    total += secs - (it == before.end() ? 0.0 : it->second);
  }
  return total;
}

std::string LoadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

// VmHWM of a process in KiB, -1 if unreadable.
int64_t VmHwmKib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6));
  }
  return -1;
}

pid_t Spawn(const std::vector<std::string>& argv, const std::string& out_path,
            const std::string& err_path) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_addopen(&fa, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  int rc = posix_spawn(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) Fail("spawn " + argv[0] + ": " + std::strerror(rc));
  return pid;
}

// Runs a command to completion; returns its stdout. Fails on a non-zero exit.
std::string RunCommand(const std::vector<std::string>& argv, const std::string& log_path) {
  std::string out_path = log_path + ".stdout";
  fs::remove(out_path);
  pid_t pid = Spawn(argv, out_path, log_path);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  std::string out = TailOf(out_path, 1 << 20);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::string cmd;
    for (const std::string& a : argv) cmd += a + " ";
    Fail("`" + cmd + "` failed (status " + std::to_string(status) + "):\n" + out +
         TailOf(log_path, 2000));
  }
  return out;
}

// A running `sluice run`.
class Agent {
 public:
  Agent(const std::string& sluice, const std::string& config, const std::string& log_path)
      : log_path_(log_path) {
    pid_ = Spawn({sluice, "run", "--config", config}, log_path, log_path);
  }
  ~Agent() {
    if (pid_ > 0) Stop(std::chrono::seconds(10));
  }
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  pid_t pid() const { return pid_; }
  const std::string& log_path() const { return log_path_; }

  // Fails (with the log tail) if the agent has exited.
  void CheckAlive() {
    if (pid_ <= 0) Fail("agent not running");
    int status = 0;
    pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      Fail("agent exited early (status " + std::to_string(status) + "); log tail:\n" +
           TailOf(log_path_, 3000));
    }
  }

  // SIGTERM, then SIGKILL after `grace`. Returns the exit status text.
  std::string Stop(Clock::duration grace) {
    if (pid_ <= 0) return "not running";
    kill(pid_, SIGTERM);
    auto deadline = Clock::now() + grace;
    int status = 0;
    while (true) {
      pid_t r = waitpid(pid_, &status, WNOHANG);
      if (r == pid_) break;
      if (Clock::now() > deadline) {
        kill(pid_, SIGKILL);
        waitpid(pid_, &status, 0);
        pid_ = -1;
        return "killed after SIGTERM grace";
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    pid_ = -1;
    if (WIFEXITED(status)) return "exit " + std::to_string(WEXITSTATUS(status));
    return "signal " + std::to_string(WTERMSIG(status));
  }

 private:
  std::string log_path_;
  pid_t pid_ = -1;
};

// ---------------------------------------------------------------- workload

// Open WebUI `message` rows: UUID ids, ~row_bytes of content, JSON data/meta,
// nanosecond created_at / updated_at. Ids are a pure function of the index, so
// the index can be read back from an id (last 12 hex digits).
class MessageGen {
 public:
  explicit MessageGen(size_t content_bytes) : content_bytes_(content_bytes) {
    static const char* kWords[] = {
        "the",    "model",  "answer",    "context", "token",    "vector",   "search", "prompt",
        "reply",  "user",   "assistant", "chat",    "function", "result",   "with",   "and",
        "for",    "this",   "that",      "query",   "document", "summary",  "table",  "python",
        "error",  "fix",    "deploy",    "server",  "request",  "latency",  "cache",  "stream",
        "json",   "schema", "index",     "batch",   "commit",   "journal",  "sqlite", "postgres",
        "agent",  "sync",   "mirror",    "row",     "column",   "key",      "value",  "update",
        "insert", "delete", "message",   "channel", "thread",   "reaction", "file",   "upload",
        "please", "thanks", "could",     "would",   "should",   "because",  "maybe",  "today",
    };
    uint64_t x = 42;
    while (pool_.size() < (1u << 16) + content_bytes_ + 64) {
      x = SplitMix(x);
      pool_ += kWords[x % (sizeof(kWords) / sizeof(kWords[0]))];
      pool_ += (x >> 20) % 11 == 0 ? ". " : " ";
    }
    for (int i = 0; i < 64; ++i) users_.push_back(Uuid(0x5500000000000000ULL + i, i));
    for (int i = 0; i < 16; ++i) channels_.push_back(Uuid(0xc400000000000000ULL + i, i));
  }

  static std::string Uuid(uint64_t seed, uint64_t low48) {
    uint64_t h = SplitMix(seed);
    return Fmt("%08" PRIx64 "-%04" PRIx64 "-4%03" PRIx64 "-%04" PRIx64 "-%012" PRIx64, h >> 32,
               (h >> 16) & 0xffff, h & 0xfff, 0x8000 | ((h >> 40) & 0x3fff),
               static_cast<uint64_t>(low48 & 0xffffffffffffULL));
  }
  std::string Id(uint64_t i) const { return Uuid(i * 7919 + 17, i); }
  static int64_t IndexOfId(const char* id) {
    size_t n = std::strlen(id);
    if (n < 12) return -1;
    return static_cast<int64_t>(std::strtoull(id + n - 12, nullptr, 16));
  }
  std::string Content(uint64_t i, uint64_t version) const {
    uint64_t off = SplitMix(i * 1315423911ULL + version) % (1u << 16);
    return pool_.substr(off, content_bytes_);
  }
  const std::string& User(uint64_t i) const { return users_[SplitMix(i) % users_.size()]; }
  const std::string& Channel(uint64_t i) const { return channels_[SplitMix(i + 1) % 16]; }

 private:
  size_t content_bytes_;
  std::string pool_;
  std::vector<std::string> users_, channels_;
};

// The "app": writes messages through its own SQLite connection.
class App {
 public:
  App(const std::string& path, const std::string& synchronous, const MessageGen* gen)
      : db_(path), gen_(gen) {
    AppPragmas(db_, synchronous);
    insert_ = std::make_unique<Stmt>(
        db_.get(),
        "INSERT INTO message (id, user_id, channel_id, content, data, meta, created_at, "
        "updated_at, parent_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)");
    update_ = std::make_unique<Stmt>(
        db_.get(), "UPDATE message SET content = ?1, updated_at = ?2 WHERE id = ?3");
    begin_ = std::make_unique<Stmt>(db_.get(), "BEGIN");
    commit_ = std::make_unique<Stmt>(db_.get(), "COMMIT");
  }

  void Insert(uint64_t i) {
    int64_t now = UnixNanos();
    Stmt& s = *insert_;
    s.BindText(1, gen_->Id(i));
    s.BindText(2, gen_->User(i));
    s.BindText(3, gen_->Channel(i));
    s.BindText(4, gen_->Content(i, 0));
    if (i % 10 < 3) {
      s.BindText(5, "{\"files\": []}");
    } else {
      s.BindNull(5);
    }
    s.BindText(6, "{}");
    s.BindInt(7, now);
    s.BindInt(8, now);
    if (i > 0 && i % 4 == 0) {
      s.BindText(9, gen_->Id(SplitMix(i) % i));
    } else {
      s.BindNull(9);
    }
    s.Run();
  }
  void Update(uint64_t i, uint64_t version) {
    Stmt& s = *update_;
    s.BindText(1, gen_->Content(i, version));
    s.BindInt(2, UnixNanos());
    s.BindText(3, gen_->Id(i));
    s.Run();
  }
  void Begin() { begin_->Run(); }
  void Commit() { commit_->Run(); }

  // One transaction of `rows` changes: inserts of new ids, plus update_pct% of
  // updates of rows inserted by earlier transactions (none in the first one).
  void MixedTxn(int rows, int update_pct) {
    int updates = next_ > 0 ? rows * update_pct / 100 : 0;
    uint64_t before = next_;
    Begin();
    for (int r = 0; r < rows - updates; ++r) Insert(next_++);
    for (int r = 0; r < updates; ++r) {
      ++version_;
      Update(SplitMix(version_ * 31 + 7) % before, version_);
    }
    Commit();
    inserted_ += static_cast<uint64_t>(rows - updates);
    updated_ += static_cast<uint64_t>(updates);
  }

  uint64_t next_index() const { return next_; }
  void set_next_index(uint64_t n) { next_ = n; }
  uint64_t inserted() const { return inserted_; }
  uint64_t updated() const { return updated_; }
  Sqlite& db() { return db_; }

 private:
  Sqlite db_;
  const MessageGen* gen_;
  std::unique_ptr<Stmt> insert_, update_, begin_, commit_;
  uint64_t next_ = 0, version_ = 0, inserted_ = 0, updated_ = 0;
};

// ---------------------------------------------------------------- options

struct Options {
  std::string sluice;
  std::string conninfo;  // empty: libpq's PG* variables
  std::string json_path;
  std::string workdir;  // parent of the temp dir
  std::string schema_sql = SLUICE_BENCH_SCHEMA_SQL;
  std::string synchronous = "NORMAL";
  std::string agent_log_level = "info";
  std::string phases = "a,b,c";
  int64_t changes = 1000000;
  int txn_rows = 1000;
  int update_pct = 20;
  size_t row_bytes = 200;
  double lag_seconds = 10;
  double latency_seconds = 10;
  int latency_rate = 1000;
  int trigger_txns = 100;
  int trigger_reps = 5;
  double catchup_timeout_s = 3600;
  bool keep = false;
  bool quick = false;
};

void Usage() {
  std::printf(
      "usage: sluice_bench --sluice PATH [options]\n"
      "  --conninfo STR        libpq conninfo of the sink (default: PG* environment)\n"
      "  --json FILE           write every figure as JSON to FILE\n"
      "  --quick               50,000 changes, 3 s lag and latency runs, 20x3 trigger txns\n"
      "  --changes N           backlog size for (a) (default 1000000)\n"
      "  --txn-rows N          rows per app transaction in (a) and (c) (default 1000)\n"
      "  --update-pct P        share of updates in the backlog (default 20)\n"
      "  --row-bytes N         message.content bytes (default 200)\n"
      "  --lag-seconds S       full-speed write run with the agent running (default 10)\n"
      "  --latency-seconds S   steady-rate latency run (default 10)\n"
      "  --latency-rate R      single-row transactions per second (default 1000)\n"
      "  --trigger-txns K      transactions per repetition in (c) (default 100)\n"
      "  --trigger-reps R      repetitions in (c) (default 5)\n"
      "  --synchronous LEVEL   app's PRAGMA synchronous (default NORMAL, Open WebUI's)\n"
      "  --agent-log-level L   agent.log_level in the config (default info)\n"
      "  --phases LIST         subset of a,b,c (default a,b,c; d comes with a)\n"
      "  --workdir DIR         where the temp dir goes (default $TMPDIR or /tmp)\n"
      "  --keep                keep the temp dir and the sink schemas\n");
}

Options ParseArgs(int argc, char** argv) {
  Options o;
  bool changes_set = false, lag_set = false, lat_set = false, tt_set = false, tr_set = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) Fail("missing value after " + a);
      return argv[++i];
    };
    if (a == "--sluice") {
      o.sluice = next();
    } else if (a == "--conninfo") {
      o.conninfo = next();
    } else if (a == "--json") {
      o.json_path = next();
    } else if (a == "--workdir") {
      o.workdir = next();
    } else if (a == "--schema-sql") {
      o.schema_sql = next();
    } else if (a == "--synchronous") {
      o.synchronous = next();
    } else if (a == "--agent-log-level") {
      o.agent_log_level = next();
    } else if (a == "--phases") {
      o.phases = next();
    } else if (a == "--changes") {
      o.changes = std::stoll(next());
      changes_set = true;
    } else if (a == "--txn-rows") {
      o.txn_rows = std::stoi(next());
    } else if (a == "--update-pct") {
      o.update_pct = std::stoi(next());
    } else if (a == "--row-bytes") {
      o.row_bytes = std::stoul(next());
    } else if (a == "--lag-seconds") {
      o.lag_seconds = std::stod(next());
      lag_set = true;
    } else if (a == "--latency-seconds") {
      o.latency_seconds = std::stod(next());
      lat_set = true;
    } else if (a == "--latency-rate") {
      o.latency_rate = std::stoi(next());
    } else if (a == "--trigger-txns") {
      o.trigger_txns = std::stoi(next());
      tt_set = true;
    } else if (a == "--trigger-reps") {
      o.trigger_reps = std::stoi(next());
      tr_set = true;
    } else if (a == "--catchup-timeout") {
      o.catchup_timeout_s = std::stod(next());
    } else if (a == "--keep") {
      o.keep = true;
    } else if (a == "--quick") {
      o.quick = true;
    } else if (a == "-h" || a == "--help") {
      Usage();
      std::exit(0);
    } else {
      Fail("unknown argument " + a + " (see --help)");
    }
  }
  if (o.quick) {
    if (!changes_set) o.changes = 50000;
    if (!lag_set) o.lag_seconds = 3;
    if (!lat_set) o.latency_seconds = 3;
    if (!tt_set) o.trigger_txns = 20;
    if (!tr_set) o.trigger_reps = 3;
  }
  if (o.sluice.empty()) Fail("--sluice PATH is required (see --help)");
  if (o.txn_rows <= 0 || o.changes < o.txn_rows) Fail("--changes must be >= --txn-rows > 0");
  if (o.update_pct < 0 || o.update_pct > 90) Fail("--update-pct must be within 0..90");
  if (o.latency_rate <= 0 || o.trigger_reps <= 0 || o.trigger_txns <= 0) Fail("bad count");
  if (o.workdir.empty()) {
    const char* t = std::getenv("TMPDIR");
    o.workdir = t && *t ? t : "/tmp";
  }
  return o;
}

// ---------------------------------------------------------------- environment

std::string FsType(const std::string& path) {
  struct statfs s {};
  if (statfs(path.c_str(), &s) != 0) return "unknown";
  switch (static_cast<unsigned long>(s.f_type)) {
    case 0x01021994UL:
      return "tmpfs";
    case 0xEF53UL:
      return "ext2/3/4";
    case 0x58465342UL:
      return "xfs";
    case 0x9123683EUL:
      return "btrfs";
    case 0x794c7630UL:
      return "overlayfs";
    case 0x2FC12FC1UL:
      return "zfs";
    default:
      return Fmt("0x%lx", static_cast<unsigned long>(s.f_type));
  }
}

std::string CpuModel() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      size_t c = line.find(':');
      return c == std::string::npos ? line : Trim(line.substr(c + 1));
    }
  }
  return "unknown";
}

// ---------------------------------------------------------------- the bench

class Bench {
 public:
  explicit Bench(Options o) : o_(std::move(o)) {}

  int Run() {
    char tmpl[4096];
    std::snprintf(tmpl, sizeof(tmpl), "%s/sluice-bench.XXXXXX", o_.workdir.c_str());
    if (mkdtemp(tmpl) == nullptr) Fail("mkdtemp in " + o_.workdir + ": " + std::strerror(errno));
    dir_ = tmpl;
    suffix_ = Fmt("%lld", static_cast<long long>(UnixMillis() % 100000000));
    schema_sql_ = ReadFile(o_.schema_sql);
    pg_ = std::make_unique<Pg>(o_.conninfo);
    Conditions();

    int failures = 0;
    auto phase = [&](const std::string& key, const std::function<void(JsonObject&)>& fn) {
      JsonObject obj;
      auto t0 = Clock::now();
      try {
        fn(obj);
      } catch (const std::exception& e) {
        ++failures;
        obj.Set("error", Json::Str(e.what()));
        summary_ += "\n  " + key + ": FAILED: " + e.what() + "\n";
        Log(key + " failed: " + e.what());
      }
      obj.Set("phase_wall_seconds", Json::Num(Seconds(Clock::now() - t0)));
      results_.Set(key, obj);
    };
    if (Wants('a')) phase("catchup", [&](JsonObject& j) { CatchUp(j); });
    if (Wants('b')) phase("latency", [&](JsonObject& j) { Latency(j); });
    if (Wants('c')) phase("trigger_overhead", [&](JsonObject& j) { TriggerOverhead(j); });
    Targets();
    conditions_.Set("loadavg_at_end", Json::Str(LoadAverage()));
    summary_ += "  load average at end: " + LoadAverage() + " (1/5/15 min)\n";

    JsonObject root;
    root.Set("tool", Json::Str("sluice_bench"));
    root.Set("generated_at_unix_ms", Json::Int(UnixMillis()));
    root.Set("mode", Json::Str(o_.quick ? "quick" : "full"));
    root.Set("conditions", conditions_);
    root.Set("results", results_);
    root.Set("targets", targets_);
    root.Set("failed_phases", Json::Int(failures));
    if (!o_.json_path.empty()) {
      std::string tmp = o_.json_path + ".tmp";
      WriteFile(tmp, root.ToJson().text() + "\n");
      fs::rename(tmp, o_.json_path);
    }
    std::printf("%s\n", summary_.c_str());
    if (!o_.json_path.empty()) std::printf("JSON: %s\n", o_.json_path.c_str());
    Cleanup();
    return failures == 0 ? 0 : 1;
  }

 private:
  struct Deployment {
    std::string name, dir, db, config, schema;
  };

  bool Wants(char p) const { return o_.phases.find(p) != std::string::npos; }

  void Conditions() {
    struct utsname u {};
    uname(&u);
    std::string pg_version = pg_->QueryText("SHOW server_version");
    std::string version_out;
    try {
      version_out = Trim(RunCommand({o_.sluice, "--version"}, dir_ + "/version.log"));
    } catch (const std::exception& e) {
      version_out = std::string("unknown: ") + e.what();
    }
    auto setting = [&](const char* name) {
      try {
        return pg_->QueryText(std::string("SELECT current_setting('") + name + "')");
      } catch (const std::exception&) {
        return std::string("unknown");
      }
    };
    std::string data_dir = setting("data_directory");
    pg_local_ = fs::exists(data_dir);
    unsigned cores = std::thread::hardware_concurrency();
    long online = sysconf(_SC_NPROCESSORS_ONLN);

    conditions_.Set("cpu_model", Json::Str(CpuModel()));
    conditions_.Set("cores_online", Json::Int(online));
    conditions_.Set("cores_usable", Json::Int(cores));
    conditions_.Set("kernel", Json::Str(std::string(u.sysname) + " " + u.release));
    conditions_.Set("sqlite_version", Json::Str(sqlite3_libversion()));
    conditions_.Set("postgresql_version", Json::Str(pg_version));
    conditions_.Set("libpq_version", Json::Int(PQlibVersion()));
    conditions_.Set("sluice_version", Json::Str(version_out));
    conditions_.Set("sluice_binary", Json::Str(fs::absolute(o_.sluice).string()));
    conditions_.Set("workdir", Json::Str(dir_));
    conditions_.Set("workdir_fs", Json::Str(FsType(dir_)));
    conditions_.Set("pg_data_directory_fs", Json::Str(pg_local_ ? FsType(data_dir) : "remote"));
    conditions_.Set("pg_local", Json::Bool(pg_local_));
    for (const char* s :
         {"fsync", "synchronous_commit", "shared_buffers", "max_wal_size", "wal_level"}) {
      conditions_.Set(std::string("pg_") + s, Json::Str(setting(s)));
    }
    conditions_.Set("app_journal_mode", Json::Str("wal"));
    conditions_.Set("app_synchronous", Json::Str(o_.synchronous));
    conditions_.Set("source_schema", Json::Str(o_.schema_sql));
    conditions_.Set("table", Json::Str("message"));
    conditions_.Set("content_bytes", Json::Int(static_cast<int64_t>(o_.row_bytes)));
    conditions_.Set("agent_log_level", Json::Str(o_.agent_log_level));
    conditions_.Set("loadavg_at_start", Json::Str(LoadAverage()));

    summary_ += "sluice bench (" + std::string(o_.quick ? "quick" : "full") + ")\n";
    summary_ +=
        Fmt("  machine: %s, %ld cores online (%u usable), %s %s\n  SQLite %s (app and agent, "
            "journal_mode=WAL, synchronous=%s); PostgreSQL %s (%s, fsync=%s, "
            "synchronous_commit=%s)\n  %s; workdir %s (%s)\n",
            CpuModel().c_str(), online, cores, u.sysname, u.release, sqlite3_libversion(),
            o_.synchronous.c_str(), pg_version.c_str(),
            pg_local_ ? ("local, data on " + FsType(data_dir)).c_str() : "remote",
            setting("fsync").c_str(), setting("synchronous_commit").c_str(), version_out.c_str(),
            dir_.c_str(), FsType(dir_).c_str());
    summary_ += "  load average at start: " + LoadAverage() + " (1/5/15 min)\n";
    summary_ += "  workload: Open WebUI `message` rows (UUID ids, " + std::to_string(o_.row_bytes) +
                "-byte content, JSON data/meta, nanosecond created_at/updated_at)\n";
  }

  Deployment NewDeployment(const std::string& tag, bool init) {
    Deployment d;
    d.name = "sluice_bench_" + suffix_ + "_" + tag;
    d.schema = d.name;
    d.dir = dir_ + "/" + tag;
    fs::create_directories(d.dir);
    d.db = d.dir + "/webui.db";
    d.config = d.dir + "/sluice.json";
    {
      Sqlite db(d.db);
      db.Exec(schema_sql_);
      db.Exec("PRAGMA journal_mode=WAL");
    }
    std::string url = Json::Str(o_.conninfo).text();
    WriteFile(d.config, "{\"deployment\": \"" + d.name + "\", \"node\": \"bench\", \"source\": " +
                            "{\"path\": " + Json::Str(d.db).text() +
                            "}, \"sink\": {\"url\": " + url + ", \"schema\": \"" + d.schema +
                            "\"}, \"agent\": {\"log_level\": \"" + o_.agent_log_level + "\"}}\n");
    schemas_.push_back(d.schema);
    if (init) {
      RunCommand({o_.sluice, "init", "--config", d.config}, d.dir + "/init.log");
    }
    return d;
  }

  // Waits until the sink position for `d` is at least `seq` (-1 < seq: initial
  // sync done when seq == 0). Returns false on timeout.
  bool WaitApplied(Pg& pg, Agent& agent, const Deployment& d, int64_t seq, double timeout_s,
                   const char* what, Clock::time_point* first_move = nullptr) {
    auto deadline = Clock::now() + std::chrono::duration<double>(timeout_s);
    auto next_progress = Clock::now() + std::chrono::seconds(5);
    const int64_t initial = AppliedSeq(pg, d.name);
    while (true) {
      int64_t a = AppliedSeq(pg, d.name);
      if (first_move != nullptr && a != initial && *first_move == Clock::time_point()) {
        *first_move = Clock::now();
      }
      if (a >= seq) return true;
      agent.CheckAlive();
      if (Clock::now() > deadline) return false;
      if (Clock::now() > next_progress) {
        Log(Fmt("%s: applied %lld of %lld", what, static_cast<long long>(a),
                static_cast<long long>(seq)));
        next_progress += std::chrono::seconds(5);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }

  // ---- (a) catch-up, COPY comparison, lag under full-speed writes, (d) RSS
  void CatchUp(JsonObject& j) {
    MessageGen gen(o_.row_bytes);
    Deployment d = NewDeployment("a", true);
    Pg pg(o_.conninfo);

    // Initial sync of the empty tables, then stop: the backlog is then streamed
    // from the journal, not loaded by the initial snapshot.
    {
      Agent agent(o_.sluice, d.config, d.dir + "/agent-initial.log");
      if (!WaitApplied(pg, agent, d, 0, 120, "initial sync")) Fail("initial sync timed out");
      std::string how = agent.Stop(std::chrono::seconds(30));
      if (how != "exit 0") Fail("agent stop after initial sync: " + how);
    }
    int64_t start_pos = AppliedSeq(pg, d.name);

    // The backlog, agent stopped.
    Log(Fmt("(a) app writes a backlog of %lld changes, agent stopped",
            static_cast<long long>(o_.changes)));
    App app(d.db, o_.synchronous, &gen);
    int64_t seq_before = JournalMaxSeq(app.db());
    int64_t txns = o_.changes / o_.txn_rows;
    auto w0 = Clock::now();
    for (int64_t t = 0; t < txns; ++t) app.MixedTxn(o_.txn_rows, o_.update_pct);
    double write_s = Seconds(Clock::now() - w0);
    int64_t target = JournalMaxSeq(app.db());
    int64_t journal_rows = target - seq_before;
    int64_t backlog = target - start_pos;
    int64_t distinct_rows = app.db().QueryInt("SELECT count(*) FROM message");
    int64_t db_bytes =
        static_cast<int64_t>(fs::file_size(d.db)) +
        (fs::exists(d.db + "-wal") ? static_cast<int64_t>(fs::file_size(d.db + "-wal")) : 0);

    // Catch-up: from spawning `sluice run` until the sink position reaches the
    // journal's max seq.
    Log(Fmt("(a) catch-up of %lld journal rows", static_cast<long long>(backlog)));
    auto pg_cpu0 = CpuByPid("postgres");
    auto c0 = Clock::now();
    Agent agent(o_.sluice, d.config, d.dir + "/agent.log");
    Clock::time_point first_move;
    bool done = WaitApplied(pg, agent, d, target, o_.catchup_timeout_s, "catch-up", &first_move);
    double catch_s = Seconds(Clock::now() - c0);
    double first_move_s = Seconds(first_move - c0);
    double agent_cpu = ProcessCpuSeconds(agent.pid());
    double pg_cpu = CpuSince(pg_cpu0, "postgres");
    int64_t hwm_after_catchup = VmHwmKib(agent.pid());
    if (!done) Fail(Fmt("catch-up did not finish within %.0f s", o_.catchup_timeout_s));
    double rate = static_cast<double>(backlog) / catch_s;

    // Sink check: same row count as the source.
    int64_t sink_rows = std::stoll(pg.QueryText("SELECT count(*) FROM " + QuoteIdent(d.schema) +
                                                ".message WHERE _sluice_deleted_at IS NULL"));

    JsonObject& cu = j;
    cu.Set("changes_requested", Json::Int(o_.changes));
    cu.Set("journal_rows", Json::Int(journal_rows));
    cu.Set("backlog_rows", Json::Int(backlog));
    cu.Set("txn_rows", Json::Int(o_.txn_rows));
    cu.Set("inserts", Json::Int(static_cast<int64_t>(app.inserted())));
    cu.Set("updates", Json::Int(static_cast<int64_t>(app.updated())));
    cu.Set("distinct_rows", Json::Int(distinct_rows));
    cu.Set("sqlite_file_bytes", Json::Int(db_bytes));
    cu.Set("app_backlog_write_seconds", Json::Num(write_s));
    cu.Set("app_backlog_write_rows_per_s", Json::Num(static_cast<double>(journal_rows) / write_s));
    cu.Set("seconds", Json::Num(catch_s));
    cu.Set("rows_per_s", Json::Num(rate));
    cu.Set("seconds_to_first_position_move", Json::Num(first_move_s));
    cu.Set("agent_cpu_seconds", Json::Num(agent_cpu));
    cu.Set("postgres_cpu_seconds", pg_local_ ? Json::Num(pg_cpu) : Json());
    cu.Set("sink_live_rows", Json::Int(sink_rows));
    cu.Set("sink_rows_match_source", Json::Bool(sink_rows == distinct_rows));
    summary_ += Fmt(
        "\n(a) catch-up: %.0f rows/s  (%lld journal rows: %llu inserts + %llu updates in "
        "%d-row txns, %lld distinct rows; %.2f s from `sluice run` to sink position = journal "
        "max seq %lld; first position move after %.2f s)\n      agent CPU %.2f s, postgres CPU "
        "%.2f s during catch-up; sink rows "
        "%lld vs source %lld (%s)\n      app wrote the backlog at %.0f rows/s (triggers on, "
        "agent stopped)\n",
        rate, static_cast<long long>(backlog), static_cast<unsigned long long>(app.inserted()),
        static_cast<unsigned long long>(app.updated()), o_.txn_rows,
        static_cast<long long>(distinct_rows), catch_s, static_cast<long long>(target),
        first_move_s, agent_cpu, pg_cpu, static_cast<long long>(sink_rows),
        static_cast<long long>(distinct_rows), sink_rows == distinct_rows ? "match" : "MISMATCH",
        static_cast<double>(journal_rows) / write_s);

    // The same rows through PostgreSQL's own COPY (the agent idles meanwhile).
    CopyBaseline(cu, pg, d, app.db(), rate);

    // Lag while the app writes at full speed with the agent running.
    LagUnderLoad(cu, pg, agent, d, app);

    // (d) peak RSS, read just before stopping the agent.
    int64_t hwm = VmHwmKib(agent.pid());
    std::string stop = agent.Stop(std::chrono::seconds(60));
    JsonObject rss;
    rss.Set("vm_hwm_kib", Json::Int(hwm));
    rss.Set("vm_hwm_mib", Json::Num(static_cast<double>(hwm) / 1024.0));
    rss.Set("vm_hwm_kib_after_catchup", Json::Int(hwm_after_catchup));
    rss.Set("workload", Json::Str(Fmt("catch-up of %lld rows, then the full-speed lag run",
                                      static_cast<long long>(backlog))));
    rss.Set("agent_stop", Json::Str(stop));
    results_.Set("agent_rss", rss);
    rss_mib_ = static_cast<double>(hwm) / 1024.0;
    summary_ += Fmt(
        "(d) agent peak RSS: %.1f MiB VmHWM (after catch-up of %lld rows: %.1f MiB; then the lag "
        "run); agent stop: %s\n",
        rss_mib_, static_cast<long long>(backlog), static_cast<double>(hwm_after_catchup) / 1024.0,
        stop.c_str());
  }

  void LagUnderLoad(JsonObject& cu, Pg& pg, Agent& agent, const Deployment& d, App& app) {
    Log(Fmt("(a) lag: app writes %d-row txns at full speed for %.0f s, agent running", o_.txn_rows,
            o_.lag_seconds));
    std::atomic<bool> stop{false};
    std::atomic<int64_t> app_rows{0};
    std::string app_error;
    std::thread writer([&] {
      try {
        while (!stop.load()) {
          app.MixedTxn(o_.txn_rows, o_.update_pct);
          app_rows += o_.txn_rows;
        }
      } catch (const std::exception& e) {
        app_error = e.what();
      }
    });

    Sqlite reader(d.db, true);
    std::vector<Json> samples;
    int64_t max_lag_rows = 0;
    double max_lag_ms = 0;
    std::vector<double> lag_rows_all;
    auto t0 = Clock::now();
    auto write_end = t0 + std::chrono::duration<double>(o_.lag_seconds);
    auto next = t0;
    bool writing = true;
    int64_t final_seq = -1;
    double drain_s = 0;
    Clock::time_point write_stopped;
    while (true) {
      next += std::chrono::milliseconds(50);
      std::this_thread::sleep_until(next);
      agent.CheckAlive();
      int64_t applied = AppliedSeq(pg, d.name);  // first: the lag is never underestimated
      reader.Exec("BEGIN");
      int64_t max_seq = JournalMaxSeq(reader);
      int64_t oldest_at = -1;
      {
        Stmt s(reader.get(), "SELECT at FROM _sluice_journal WHERE seq > ?1 ORDER BY seq LIMIT 1");
        s.BindInt(1, applied);
        if (s.Step()) oldest_at = s.Int(0);
      }
      reader.Exec("COMMIT");
      int64_t now_ms = UnixMillis();
      int64_t lag_rows = std::max<int64_t>(0, max_seq - applied);
      double lag_ms = oldest_at >= 0 ? static_cast<double>(now_ms - oldest_at) : 0.0;
      double t_ms = Millis(Clock::now() - t0);
      samples.push_back(JsonArray({Json::Num(t_ms), Json::Int(lag_rows), Json::Num(lag_ms)}));
      if (writing) {
        max_lag_rows = std::max(max_lag_rows, lag_rows);
        max_lag_ms = std::max(max_lag_ms, lag_ms);
        lag_rows_all.push_back(static_cast<double>(lag_rows));
        if (Clock::now() >= write_end) {
          stop = true;
          writer.join();
          write_stopped = Clock::now();
          writing = false;
          final_seq = JournalMaxSeq(reader);
          if (!app_error.empty()) Fail("app writer: " + app_error);
        }
      } else if (applied >= final_seq) {
        drain_s = Seconds(Clock::now() - write_stopped);
        break;
      } else if (Seconds(Clock::now() - write_stopped) > 600) {
        Fail("agent did not catch up within 600 s after the full-speed run");
      }
    }
    double write_s = Seconds(write_stopped - t0);
    std::sort(lag_rows_all.begin(), lag_rows_all.end());
    JsonObject lag;
    lag.Set("write_seconds", Json::Num(write_s));
    lag.Set("app_rows", Json::Int(app_rows.load()));
    lag.Set("app_rows_per_s", Json::Num(static_cast<double>(app_rows.load()) / write_s));
    lag.Set("txn_rows", Json::Int(o_.txn_rows));
    lag.Set("sample_interval_ms", Json::Int(50));
    lag.Set("samples_while_writing", Json::Int(static_cast<int64_t>(lag_rows_all.size())));
    lag.Set("max_lag_rows", Json::Int(max_lag_rows));
    lag.Set("p50_lag_rows", Json::Num(Percentile(lag_rows_all, 50)));
    lag.Set("max_lag_ms", Json::Num(max_lag_ms));
    lag.Set("drain_seconds_after_writes_stop", Json::Num(drain_s));
    lag.Set("samples_t_ms_rows_ms", JsonArray(samples));
    cu.Set("lag_under_full_speed_writes", lag);
    summary_ += Fmt(
        "    lag while the app writes at full speed (%d-row txns, %.0f rows/s for %.1f s, agent "
        "running, sampled every 50 ms): max %lld rows / %.0f ms (oldest unapplied journal row's "
        "`at`), p50 %.0f rows; drained %.2f s after the writes stopped\n",
        o_.txn_rows, static_cast<double>(app_rows.load()) / write_s, write_s,
        static_cast<long long>(max_lag_rows), max_lag_ms, Percentile(lag_rows_all, 50), drain_s);
  }

  static void CopyEscape(const char* s, size_t n, std::string* out) {
    for (size_t i = 0; i < n; ++i) {
      char c = s[i];
      switch (c) {
        case '\\':
          *out += "\\\\";
          break;
        case '\t':
          *out += "\\t";
          break;
        case '\n':
          *out += "\\n";
          break;
        case '\r':
          *out += "\\r";
          break;
        default:
          out->push_back(c);
      }
    }
  }

  void CopyBaseline(JsonObject& cu, Pg& pg, const Deployment& d, Sqlite& src, double catch_rate) {
    std::string copy_schema = d.schema + "_copy";
    schemas_.push_back(copy_schema);
    std::string qs = QuoteIdent(copy_schema);
    pg.Exec("DROP SCHEMA IF EXISTS " + qs + " CASCADE");
    pg.Exec("CREATE SCHEMA " + qs);
    pg.Exec("CREATE TABLE " + qs + ".message (LIKE " + QuoteIdent(d.schema) +
            ".message INCLUDING ALL)");
    auto cols = pg.Query(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = $1 "
        "AND table_name = 'message' ORDER BY ordinal_position",
        {copy_schema});
    std::vector<std::string> src_cols;
    {
      Stmt s(src.get(), "SELECT name FROM pragma_table_info('message') ORDER BY cid");
      while (s.Step())
        src_cols.push_back(reinterpret_cast<const char*>(sqlite3_column_text(s.get(), 0)));
    }
    // For each sink column: index of the SQLite column, or a sluice column filler.
    std::string select, col_list;
    std::vector<int> src_index;
    std::vector<std::string> filler;
    std::string types;
    for (const auto& c : cols) {
      const std::string& name = *c[0];
      const std::string& type = *c[1];
      types += (types.empty() ? "" : ", ") + name + " " + type;
      col_list += (col_list.empty() ? "" : ", ") + QuoteIdent(name);
      auto it = std::find(src_cols.begin(), src_cols.end(), name);
      if (it != src_cols.end()) {
        src_index.push_back(static_cast<int>(it - src_cols.begin()));
        filler.emplace_back();
      } else {
        src_index.push_back(-1);
        if (name == "_sluice_seq") {
          filler.push_back("#seq");
        } else if (type.find("timestamp") != std::string::npos) {
          filler.push_back(name == "_sluice_deleted_at" ? "\\N" : "2025-11-02 12:00:00.123456+00");
        } else if (type == "bigint" || type == "integer") {
          filler.push_back("0");
        } else {
          filler.push_back("\\N");
        }
      }
    }
    // Materialise the COPY text first, so the timing is PostgreSQL's ingest only.
    std::string sel = "SELECT ";
    for (size_t i = 0; i < src_cols.size(); ++i) sel += (i ? ", " : "") + QuoteIdent(src_cols[i]);
    sel += " FROM message";
    std::vector<std::string> chunks(1);
    int64_t rows = 0;
    size_t bytes = 0;
    {
      Stmt s(src.get(), sel);
      while (s.Step()) {
        std::string& out = chunks.back();
        for (size_t k = 0; k < src_index.size(); ++k) {
          if (k) out.push_back('\t');
          int si = src_index[k];
          if (si < 0) {
            out += filler[k] == "#seq" ? std::to_string(rows + 1) : filler[k];
          } else if (sqlite3_column_type(s.get(), si) == SQLITE_NULL) {
            out += "\\N";
          } else {
            const char* v = reinterpret_cast<const char*>(sqlite3_column_text(s.get(), si));
            CopyEscape(v, static_cast<size_t>(sqlite3_column_bytes(s.get(), si)), &out);
          }
        }
        out.push_back('\n');
        ++rows;
        if (out.size() >= (256u << 10)) {
          bytes += out.size();
          chunks.emplace_back();
        }
      }
    }
    bytes += chunks.back().size();
    Log(Fmt("(a) COPY baseline: %lld rows, %.1f MiB of COPY text", static_cast<long long>(rows),
            static_cast<double>(bytes) / 1048576.0));
    auto pg_cpu0 = CpuByPid("postgres");
    auto t0 = Clock::now();
    PGresult* r =
        PQexec(pg.get(), ("COPY " + qs + ".message (" + col_list + ") FROM STDIN").c_str());
    if (PQresultStatus(r) != PGRES_COPY_IN) {
      std::string msg = PQresultErrorMessage(r);
      PQclear(r);
      Fail("COPY: " + Trim(msg));
    }
    PQclear(r);
    for (const std::string& c : chunks) {
      if (c.empty()) continue;
      if (PQputCopyData(pg.get(), c.data(), static_cast<int>(c.size())) != 1) {
        Fail("PQputCopyData: " + Trim(PQerrorMessage(pg.get())));
      }
    }
    if (PQputCopyEnd(pg.get(), nullptr) != 1)
      Fail("PQputCopyEnd: " + Trim(PQerrorMessage(pg.get())));
    std::string err;
    while ((r = PQgetResult(pg.get())) != nullptr) {
      if (PQresultStatus(r) != PGRES_COMMAND_OK) err = PQresultErrorMessage(r);
      PQclear(r);
    }
    double copy_s = Seconds(Clock::now() - t0);
    double pg_cpu = CpuSince(pg_cpu0, "postgres");
    if (!err.empty()) Fail("COPY: " + Trim(err));
    double copy_rate = static_cast<double>(rows) / copy_s;
    double ratio = catch_rate / copy_rate;
    if (!o_.keep) pg.Exec("DROP SCHEMA IF EXISTS " + qs + " CASCADE");

    JsonObject cp;
    cp.Set("rows", Json::Int(rows));
    cp.Set("bytes", Json::Int(static_cast<int64_t>(bytes)));
    cp.Set("seconds", Json::Num(copy_s));
    cp.Set("rows_per_s", Json::Num(copy_rate));
    cp.Set("postgres_cpu_seconds", pg_local_ ? Json::Num(pg_cpu) : Json());
    cp.Set("table", Json::Str("fresh table LIKE the mirror INCLUDING ALL (same columns, types, "
                              "primary key; no triggers)"));
    cp.Set("columns", Json::Str(types));
    cp.Set("format", Json::Str("text, one COPY FROM STDIN, 256 KiB PQputCopyData chunks, "
                               "autocommit; text built before timing"));
    cu.Set("copy_baseline", cp);
    cu.Set("catchup_vs_copy_ratio", Json::Num(ratio));
    copy_ratio_ = ratio;
    summary_ += Fmt(
        "    PostgreSQL COPY of the same %lld rows (final state of `message`, %.1f MiB text, "
        "fresh table LIKE the mirror INCLUDING ALL): %.0f rows/s in %.2f s\n    catch-up / COPY "
        "= %.2f (catch-up counts journal rows incl. updates; COPY counts distinct rows)\n",
        static_cast<long long>(rows), static_cast<double>(bytes) / 1048576.0, copy_rate, copy_s,
        ratio);
  }

  // ---- (b) commit-to-visible latency
  void Latency(JsonObject& j) {
    MessageGen gen(o_.row_bytes);
    Deployment d = NewDeployment("b", true);
    Pg pg(o_.conninfo);
    Agent agent(o_.sluice, d.config, d.dir + "/agent.log");
    if (!WaitApplied(pg, agent, d, 0, 120, "initial sync")) Fail("initial sync timed out");

    std::string qs = QuoteIdent(d.schema);
    pg.Exec("CREATE FUNCTION " + qs +
            ".sluice_bench_notify() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN PERFORM "
            "pg_notify('sluice_bench', NEW.id::text); RETURN NULL; END$$");
    pg.Exec("CREATE TRIGGER sluice_bench_notify AFTER INSERT ON " + qs +
            ".message FOR EACH ROW EXECUTE FUNCTION " + qs + ".sluice_bench_notify()");
    // Fire even if the agent's session runs with session_replication_role = replica.
    pg.Exec("ALTER TABLE " + qs + ".message ENABLE ALWAYS TRIGGER sluice_bench_notify");

    Pg listener(o_.conninfo);
    listener.Exec("LISTEN sluice_bench");

    const int warmup = std::min(100, o_.latency_rate / 2);
    const int64_t n = warmup + static_cast<int64_t>(o_.latency_seconds * o_.latency_rate);
    std::vector<Clock::time_point> committed(static_cast<size_t>(n));
    std::vector<Clock::time_point> visible(static_cast<size_t>(n));
    std::vector<char> seen(static_cast<size_t>(n), 0);
    std::atomic<bool> stop_listen{false};
    std::atomic<int64_t> received{0}, duplicates{0}, foreign{0};
    std::string listen_error;

    std::thread listen_thread([&] {
      PGconn* c = listener.get();
      int sock = PQsocket(c);
      while (!stop_listen.load()) {
        pollfd p{sock, POLLIN, 0};
        int pr = poll(&p, 1, 20);
        if (pr < 0 && errno != EINTR) {
          listen_error = std::string("poll: ") + std::strerror(errno);
          return;
        }
        if (pr <= 0) continue;
        if (PQconsumeInput(c) != 1) {
          listen_error = "PQconsumeInput: " + Trim(PQerrorMessage(c));
          return;
        }
        PGnotify* nt;
        while ((nt = PQnotifies(c)) != nullptr) {
          auto now = Clock::now();
          int64_t idx = MessageGen::IndexOfId(nt->extra);
          if (idx >= 0 && idx < n) {
            if (seen[static_cast<size_t>(idx)]) {
              ++duplicates;
            } else {
              visible[static_cast<size_t>(idx)] = now;
              seen[static_cast<size_t>(idx)] = 1;
              ++received;
            }
          } else {
            ++foreign;
          }
          PQfreemem(nt);
        }
      }
    });

    Log(Fmt("(b) latency: %lld single-row txns at %d/s (first %d are warm-up)",
            static_cast<long long>(n), o_.latency_rate, warmup));
    App app(d.db, o_.synchronous, &gen);
    auto period = std::chrono::duration_cast<Clock::duration>(
        std::chrono::duration<double>(1.0 / o_.latency_rate));
    auto start = Clock::now() + std::chrono::milliseconds(20);
    double max_behind_ms = 0;
    int64_t late = 0;
    std::vector<double> commit_ms;
    commit_ms.reserve(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      auto deadline = start + period * i;
      std::this_thread::sleep_until(deadline);
      double behind = Millis(Clock::now() - deadline);
      max_behind_ms = std::max(max_behind_ms, behind);
      if (behind > 1.0) ++late;
      auto before = Clock::now();
      app.Insert(static_cast<uint64_t>(i));  // autocommit: one single-row transaction
      committed[static_cast<size_t>(i)] = Clock::now();
      commit_ms.push_back(Millis(committed[static_cast<size_t>(i)] - before));
      if ((i & 1023) == 0) agent.CheckAlive();
    }
    double paced_s = Seconds(Clock::now() - start);
    auto wait_until = Clock::now() + std::chrono::seconds(10);
    while (received.load() < n && Clock::now() < wait_until && listen_error.empty()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    stop_listen = true;
    listen_thread.join();
    if (!listen_error.empty()) Fail("listener: " + listen_error);
    agent.CheckAlive();
    std::string stop = agent.Stop(std::chrono::seconds(30));

    std::vector<double> lat;
    int64_t missing = 0;
    for (int64_t i = warmup; i < n; ++i) {
      if (!seen[static_cast<size_t>(i)]) {
        ++missing;
        continue;
      }
      lat.push_back(Millis(visible[static_cast<size_t>(i)] - committed[static_cast<size_t>(i)]));
    }
    std::sort(lat.begin(), lat.end());
    double mean = 0;
    for (double v : lat) mean += v;
    mean = lat.empty() ? NAN : mean / static_cast<double>(lat.size());

    JsonObject& r = j;
    r.Set("rate_per_s", Json::Int(o_.latency_rate));
    r.Set("transactions", Json::Int(n - warmup));
    r.Set("warmup_transactions", Json::Int(warmup));
    r.Set("rows_per_txn", Json::Int(1));
    r.Set("paced_seconds", Json::Num(paced_s));
    r.Set("count", Json::Int(static_cast<int64_t>(lat.size())));
    r.Set("missing", Json::Int(missing));
    r.Set("duplicate_notifications", Json::Int(duplicates.load()));
    r.Set("p50_ms", Json::Num(Percentile(lat, 50)));
    r.Set("p95_ms", Json::Num(Percentile(lat, 95)));
    r.Set("p99_ms", Json::Num(Percentile(lat, 99)));
    r.Set("max_ms", Json::Num(lat.empty() ? NAN : lat.back()));
    r.Set("mean_ms", Json::Num(mean));
    r.Set("min_ms", Json::Num(lat.empty() ? NAN : lat.front()));
    r.Set("app_max_behind_schedule_ms", Json::Num(max_behind_ms));
    r.Set("app_txns_late_over_1ms", Json::Int(late));
    std::sort(commit_ms.begin(), commit_ms.end());
    r.Set("app_insert_commit_p50_ms", Json::Num(Percentile(commit_ms, 50)));
    r.Set("app_insert_commit_p99_ms", Json::Num(Percentile(commit_ms, 99)));
    r.Set("app_insert_commit_max_ms", Json::Num(commit_ms.empty() ? NAN : commit_ms.back()));
    r.Set("method", Json::Str("steady_clock after sqlite3_step(COMMIT) returns -> arrival of "
                              "pg_notify from an AFTER INSERT trigger on the mirror table, "
                              "LISTEN on a separate libpq connection (poll + PQconsumeInput)"));
    r.Set("agent_stop", Json::Str(stop));
    p95_ms_ = Percentile(lat, 95);
    summary_ += Fmt(
        "\n(b) commit-to-visible latency at %d single-row txn/s for %.1f s (%lld txns after %d "
        "warm-up; via LISTEN/NOTIFY from an AFTER INSERT trigger on the mirror):\n      p50 "
        "%.2f ms, p95 %.2f ms, p99 %.2f ms, max %.2f ms, mean %.2f ms; received %zu, missing "
        "%lld; app max %.2f ms behind schedule\n      app's own INSERT+COMMIT: p50 %.3f ms, p99 "
        "%.3f ms, max %.2f ms\n",
        o_.latency_rate, paced_s, static_cast<long long>(n - warmup), warmup, Percentile(lat, 50),
        Percentile(lat, 95), Percentile(lat, 99), lat.empty() ? NAN : lat.back(), mean, lat.size(),
        static_cast<long long>(missing), max_behind_ms, Percentile(commit_ms, 50),
        Percentile(commit_ms, 99), commit_ms.empty() ? NAN : commit_ms.back());
  }

  // ---- (c) trigger overhead on the app's own writes
  void TriggerOverhead(JsonObject& j) {
    MessageGen gen(o_.row_bytes);
    Deployment with = NewDeployment("c_with", true);  // sluice init: triggers installed
    Deployment without = NewDeployment("c_without", false);
    int64_t triggers = 0;
    {
      Sqlite db(with.db);
      triggers = db.QueryInt(
          "SELECT count(*) FROM sqlite_master WHERE type='trigger' AND tbl_name='message'");
    }
    if (triggers == 0) Fail("sluice init installed no trigger on message");

    auto one = [&](const Deployment& d, int rep) {
      std::string path = d.dir + "/rep" + std::to_string(rep) + ".db";
      for (const char* ext : {"", "-wal", "-shm"}) fs::remove(path + ext);
      fs::copy_file(d.db, path);
      if (fs::exists(d.db + "-wal")) fs::copy_file(d.db + "-wal", path + "-wal");
      double secs = 0;
      {
        App app(path, o_.synchronous, &gen);
        auto t0 = Clock::now();
        for (int t = 0; t < o_.trigger_txns; ++t) app.MixedTxn(o_.txn_rows, 0);
        secs = Seconds(Clock::now() - t0);
      }
      for (const char* ext : {"", "-wal", "-shm"}) fs::remove(path + ext);
      return secs;
    };
    Log(Fmt("(c) trigger overhead: %d x %d txns of %d inserts, with / without triggers",
            o_.trigger_reps, o_.trigger_txns, o_.txn_rows));
    one(with, -1);  // warm-up of both: page cache, allocator
    one(without, -1);
    std::vector<double> tw, tn;
    for (int rep = 0; rep < o_.trigger_reps; ++rep) {
      // Alternate the order so that drift hits both sides alike.
      if (rep % 2 == 0) {
        tw.push_back(one(with, rep));
        tn.push_back(one(without, rep));
      } else {
        tn.push_back(one(without, rep));
        tw.push_back(one(with, rep));
      }
    }
    double mw = Median(tw), mn = Median(tn);
    double ratio = mw / mn;
    int64_t rows = static_cast<int64_t>(o_.trigger_txns) * o_.txn_rows;
    auto arr = [](const std::vector<double>& v) {
      std::vector<Json> out;
      for (double x : v) out.push_back(Json::Num(x));
      return JsonArray(out);
    };
    JsonObject& r = j;
    r.Set("transactions", Json::Int(o_.trigger_txns));
    r.Set("rows_per_txn", Json::Int(o_.txn_rows));
    r.Set("operation", Json::Str("INSERT INTO message (prepared, one row per statement)"));
    r.Set("repetitions", Json::Int(o_.trigger_reps));
    r.Set("journal_mode", Json::Str("wal"));
    r.Set("synchronous", Json::Str(o_.synchronous));
    r.Set("triggers_on_message", Json::Int(triggers));
    r.Set("with_triggers_seconds", arr(tw));
    r.Set("without_triggers_seconds", arr(tn));
    r.Set("with_triggers_median_s", Json::Num(mw));
    r.Set("without_triggers_median_s", Json::Num(mn));
    r.Set("with_triggers_us_per_row", Json::Num(mw * 1e6 / static_cast<double>(rows)));
    r.Set("without_triggers_us_per_row", Json::Num(mn * 1e6 / static_cast<double>(rows)));
    r.Set("ratio", Json::Num(ratio));
    trigger_ratio_ = ratio;
    summary_ +=
        Fmt("\n(c) trigger overhead: %d txns x %d-row INSERTs into message, WAL, synchronous=%s, "
            "median of %d reps (fresh file copy each):\n      with sluice triggers %.3f s (%.2f "
            "us/row), without %.3f s (%.2f us/row): ratio %.2fx\n",
            o_.trigger_txns, o_.txn_rows, o_.synchronous.c_str(), o_.trigger_reps, mw,
            mw * 1e6 / static_cast<double>(rows), mn, mn * 1e6 / static_cast<double>(rows), ratio);
  }

  void Targets() {
    summary_ += "\ntargets (from the issue):\n";
    auto target = [&](const char* key, const char* text, double value, double limit, bool ge,
                      const char* unit) {
      JsonObject t;
      t.Set("target", Json::Str(text));
      t.Set("value", Json::Num(value));
      t.Set("limit", Json::Num(limit));
      const char* verdict = "not measured";
      if (std::isfinite(value)) {
        bool met = ge ? value >= limit : value <= limit;
        verdict = met ? "met" : "NOT met";
        t.Set("met", Json::Bool(met));
      } else {
        t.Set("met", Json());
      }
      targets_.Set(key, t);
      summary_ += Fmt("  %-42s %10.3g%-4s %s\n", text, value, unit, verdict);
    };
    target("catchup_vs_copy", "catch-up >= 60% of COPY rate", copy_ratio_, 0.60, true, "");
    target("latency_p95_ms", "commit-to-visible p95 <= 5 ms", p95_ms_, 5.0, false, " ms");
    target("trigger_overhead", "trigger overhead <= 1.3x (1,000-row txns)", trigger_ratio_, 1.3,
           false, "x");
    target("agent_rss_mib", "agent peak RSS <= 32 MiB", rss_mib_, 32.0, false, " MiB");
  }

  void Cleanup() {
    if (o_.keep) {
      std::printf("kept %s and sink schemas:", dir_.c_str());
      for (const std::string& s : schemas_) std::printf(" %s", s.c_str());
      std::printf("\n");
      return;
    }
    for (const std::string& s : schemas_) {
      try {
        pg_->Exec("DROP SCHEMA IF EXISTS " + QuoteIdent(s) + " CASCADE");
      } catch (const std::exception&) {
      }
    }
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  Options o_;
  std::string dir_, suffix_, schema_sql_, summary_;
  std::unique_ptr<Pg> pg_;
  bool pg_local_ = false;
  JsonObject conditions_, results_, targets_;
  std::vector<std::string> schemas_;
  double copy_ratio_ = NAN, p95_ms_ = NAN, trigger_ratio_ = NAN, rss_mib_ = NAN;
};

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  try {
    Options o = ParseArgs(argc, argv);
    // The config file names the sink; keep environment overrides from redirecting the agent.
    for (const char* v : {"SLUICE_SINK_URL", "DATABASE_URL", "SLUICE_SINK_SCHEMA",
                          "SLUICE_DEPLOYMENT", "SLUICE_SOURCE_PATH", "SLUICE_LOG_LEVEL"}) {
      if (std::getenv(v) != nullptr) {
        Log(std::string("ignoring ") + v + " from the environment");
        unsetenv(v);
      }
    }
    Bench bench(std::move(o));
    return bench.Run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sluice_bench: %s\n", e.what());
    return 2;
  }
}
