// The two writers of the conflict torture test (issue #7) and the timeline they
// share: the app changing rows of two Open WebUI tables (chat, memory) in its
// SQLite file, and an outside writer — a second PostgreSQL client, as the
// Supabase dashboard or another service would be — updating, hard-deleting
// and inserting the same rows in their mirrors without ever setting
// sluice.writer. Every write that took effect is recorded with two ticks of
// one shared counter, read before it started and after it committed, so a
// check can tell when one write surely came before another. Every write puts
// a value no other write uses into the row's text column ("app-17", "out-18",
// "ins-19"), so any image at the sink names the write that made it.
// Each writer runs on its own thread and owns its connection; read the
// timeline (Histories) only after both stopped.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tests/support/sql_clients.h"

namespace sluice::e2e {

using testing::Pg;
using testing::Sqlite;

// A table both writers change: TEXT key column `id`, the text column each
// write sets to its unique value, and `updated_at` (the source's write number).
struct TortureTable {
  std::string name;         // "chat"
  std::string key_prefix;   // "c": keys are c00000, c00001, ...
  std::string text_column;  // "title"
  // The other NOT NULL columns and the literals both writers insert there.
  std::string other_columns;
  std::string other_values;
};
// chat (title) and memory (content).
const std::vector<TortureTable>& TortureTables();
std::string TortureKey(const TortureTable& t, int64_t index);

using RowId = std::pair<std::string, std::string>;  // (table, key)

struct TimedWrite {
  int64_t begin = 0;  // the shared tick read before the write started
  int64_t end = 0;    // ... and after it committed
  // source: 'u' insert or update, 'd' delete; outside: 'u' update, 'd' hard
  // delete, 'i' insert.
  char op = 'u';
  std::string value;  // the text column's new value; "" for a delete
  // Outside writes: the row sluice had written is now different (an update or
  // insert), or was live when deleted (the delete of a row sluice never wrote
  // live, an outside insert or a tombstone, leaves nothing to meet).
  bool provokes = false;
  // Outside updates and deletes: the row as they found it (locked), and for
  // a delete the value of the image sluice had written (the merge base).
  std::string prev_value;
  bool prev_marked = false;
  std::string base_value;
  bool SurelyBefore(const TimedWrite& later) const { return end < later.begin; }
};

struct RowHistory {
  std::vector<TimedWrite> source;   // in commit order (one app thread)
  std::vector<TimedWrite> outside;  // in commit order (one outside thread)
};

class Timeline {
 public:
  Timeline();
  int64_t Tick() { return ++tick_; }
  // A number no other write uses (for the values).
  int64_t NextValue() { return ++value_; }
  void AddSource(const RowId& row, TimedWrite w);
  void AddOutside(const RowId& row, TimedWrite w);
  std::map<RowId, RowHistory> Histories() const;
  // Keys [0, frontier) are those the app has used; it takes new ones at the
  // frontier, where the outside writer inserts ahead of it.
  std::atomic<int64_t>& frontier(const std::string& table) { return frontier_.at(table); }

 private:
  std::atomic<int64_t> tick_{0};
  std::atomic<int64_t> value_{0};
  std::map<std::string, std::atomic<int64_t>> frontier_;
  mutable std::mutex mu_;
  std::map<RowId, RowHistory> rows_;
};

// A writer on a thread of its own: Step() until Stop(), pausing `pause_us`
// between steps; the first exception ends it and is kept. A derived class
// calls Stop() in its destructor (Step uses its members).
class WriterThread {
 public:
  virtual ~WriterThread();
  WriterThread(const WriterThread&) = delete;
  WriterThread& operator=(const WriterThread&) = delete;
  void Start();
  void Stop();
  int64_t steps() const { return steps_; }
  std::string error();  // the first failure; "" when none

 protected:
  explicit WriterThread(int pause_us) : pause_us_(pause_us) {}
  virtual void Step() = 0;  // one transaction; throws on failure

 private:
  int pause_us_;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> steps_{0};
  std::mutex mu_;
  std::string error_;
  std::thread thread_;
};

// The app: transactions of 1..max_ops changes on random rows of the two
// tables (update or delete a live row, insert a missing one, take a new key).
class AppChanger : public WriterThread {
 public:
  struct Options {
    int pause_us = 3000;  // between transactions (pacing only)
    int max_ops = 4;
    int new_key_pct = 12;  // of changes: a key at the frontier
    int delete_pct = 15;   // of changes to live rows
    uint32_t seed = 1;
  };
  AppChanger(const std::string& db_path, Timeline& timeline, Options options);
  ~AppChanger() override;

  // `rows` rows per table in one transaction (keys 0..rows-1), before Start.
  void Seed(int rows);
  // One transaction that updates every live row and inserts `absent` (keys
  // the source does not have), while stopped.
  void Touch(const std::vector<RowId>& absent);

 private:
  struct Op {
    const TortureTable* table;
    int64_t index;
    char op;
  };
  void Step() override;
  void Commit(const std::vector<Op>& ops);  // one transaction; records the writes

  Timeline& timeline_;
  Options options_;
  std::unique_ptr<Sqlite> db_;
  std::mt19937 rng_;
  std::map<std::string, std::set<int64_t>> live_;  // key indexes live in the source
};

// The outside writer: single-statement transactions on the mirrors (schema
// `schema`) of the two tables, as a person in the dashboard makes them.
class OutsideWriter : public WriterThread {
 public:
  struct Options {
    int pause_us = 4000;
    int update_pct = 60;
    int delete_pct = 25;  // the rest: inserts just ahead of the app's frontier
    int ahead = 15;
    uint32_t seed = 2;
  };
  OutsideWriter(const std::string& conninfo, std::string schema, Timeline& timeline,
                Options options);
  ~OutsideWriter() override;

  // Updates every live mirror row of `table`, one statement per row; returns
  // how many it changed.
  int64_t UpdateAll(const TortureTable& table);
  // Inserts the row of key `index` (each key at most once); false when the
  // mirror has it. While stopped.
  bool Insert(const TortureTable& t, int64_t index);
  int64_t writes() const { return writes_; }  // that took effect

 private:
  void Step() override;
  bool Update(const TortureTable& t, const std::string& key);
  bool Delete(const TortureTable& t, const std::string& key);
  std::string Mirror(const TortureTable& t) const;

  std::string schema_;
  Timeline& timeline_;
  Options options_;
  std::unique_ptr<Pg> pg_;
  std::mt19937 rng_;
  std::set<RowId> inserted_;
  std::atomic<int64_t> writes_{0};
};

}  // namespace sluice::e2e
