// The app side of the benchmark: Open WebUI `message` rows generated from an
// index (so an id tells its index back), an app connection that writes them
// in transactions through prepared statements, as an ORM would, and a steady
// writer that does so at a fixed rate on a thread of its own.
#pragma once

#include <atomic>
#include <cinttypes>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bench/basics.h"
#include "tests/support/sql_clients.h"

namespace sluice::bench {

using sluice::testing::Sqlite;
using sluice::testing::SqliteStatement;

constexpr int kBusyTimeoutMs = 10000;  // the bench's app and readers wait this long on a lock

uint64_t SplitMix(uint64_t x);

// The app's connection settings: WAL (sluice init switches to it anyway) and
// the given synchronous level.
void AppPragmas(Sqlite& db, const std::string& synchronous);

// Highest journal seq ever handed out (survives pruning): AUTOINCREMENT's counter.
int64_t JournalMaxSeq(Sqlite& db);

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
      : db_(path, kBusyTimeoutMs), gen_(gen) {
    AppPragmas(db_, synchronous);
    insert_ = std::make_unique<SqliteStatement>(
        db_.handle(),
        "INSERT INTO message (id, user_id, channel_id, content, data, meta, created_at, "
        "updated_at, parent_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)");
    update_ = std::make_unique<SqliteStatement>(
        db_.handle(), "UPDATE message SET content = ?1, updated_at = ?2 WHERE id = ?3");
    begin_ = std::make_unique<SqliteStatement>(db_.handle(), "BEGIN");
    commit_ = std::make_unique<SqliteStatement>(db_.handle(), "COMMIT");
  }

  void Insert(uint64_t i) {
    int64_t now = UnixNanos();
    SqliteStatement& s = *insert_;
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
    SqliteStatement& s = *update_;
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
  std::unique_ptr<SqliteStatement> insert_, update_, begin_, commit_;
  uint64_t next_ = 0, version_ = 0, inserted_ = 0, updated_ = 0;
};

// The app at a steady pace (the failover phase's load): `rate` autocommit
// transactions per second on its own thread, four inserts of new messages to
// one update of an earlier one's content (an edit, a streamed reply). Start
// and Stop from one thread; the counters may be read from any.
class SteadyWriter {
 public:
  SteadyWriter(const std::string& db, const std::string& synchronous, size_t row_bytes, int rate)
      : gen_(row_bytes), app_(db, synchronous, &gen_), rate_(rate) {}
  ~SteadyWriter() { Stop(); }
  SteadyWriter(const SteadyWriter&) = delete;
  SteadyWriter& operator=(const SteadyWriter&) = delete;

  void Start();
  void Stop();           // joins the thread
  void CheckOk() const;  // fails if the app got an error (e.g. SQLITE_BUSY)
  int64_t transactions() const { return txns_.load(); }
  double max_behind_ms() const { return max_behind_ms_.load(); }

 private:
  void Loop();

  MessageGen gen_;
  App app_;
  int rate_;
  std::thread thread_;
  std::atomic<bool> stop_{false}, failed_{false};
  std::atomic<int64_t> txns_{0};
  std::atomic<double> max_behind_ms_{0};
  std::string error_;  // written before failed_ is set
};

}  // namespace sluice::bench
