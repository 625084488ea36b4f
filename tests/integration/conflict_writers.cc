// The conflict torture's app and outside writers (see conflict_writers.h).
#include "tests/integration/conflict_writers.h"

#include <chrono>
#include <cstdio>
#include <exception>

namespace sluice::e2e {

using testing::PgRows;
using testing::PgTable;
using testing::QuoteIdent;
using testing::SqlValue;

const std::vector<TortureTable>& TortureTables() {
  static const std::vector<TortureTable> tables = {
      {"chat", "c", "title", "user_id, archived, created_at, chat, meta",
       "'u1', '0', '0', '{}', '{}'"},
      {"memory", "m", "content", "user_id, created_at", "'u1', '0'"},
  };
  return tables;
}

std::string TortureKey(const TortureTable& t, int64_t index) {
  char digits[24];
  std::snprintf(digits, sizeof digits, "%05lld", static_cast<long long>(index));
  return t.key_prefix + digits;
}

// ---------------------------------------------------------------- Timeline

Timeline::Timeline() {
  for (const TortureTable& t : TortureTables()) frontier_[t.name] = 0;
}

void Timeline::AddSource(const RowId& row, TimedWrite w) {
  std::lock_guard<std::mutex> lock(mu_);
  rows_[row].source.push_back(std::move(w));
}

void Timeline::AddOutside(const RowId& row, TimedWrite w) {
  std::lock_guard<std::mutex> lock(mu_);
  rows_[row].outside.push_back(std::move(w));
}

std::map<RowId, RowHistory> Timeline::Histories() const {
  std::lock_guard<std::mutex> lock(mu_);
  return rows_;
}

// ---------------------------------------------------------------- WriterThread

WriterThread::~WriterThread() { Stop(); }

void WriterThread::Start() {
  thread_ = std::thread([this] {
    while (!stop_) {
      try {
        Step();
      } catch (const std::exception& e) {
        std::lock_guard<std::mutex> lock(mu_);
        error_ = e.what();
        return;
      }
      ++steps_;
      std::this_thread::sleep_for(std::chrono::microseconds(pause_us_));  // pacing only
    }
  });
}

void WriterThread::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

std::string WriterThread::error() {
  std::lock_guard<std::mutex> lock(mu_);
  return error_;
}

// ---------------------------------------------------------------- AppChanger

AppChanger::AppChanger(const std::string& db_path, Timeline& timeline, Options options)
    : WriterThread(options.pause_us),
      timeline_(timeline),
      options_(options),
      db_(std::make_unique<Sqlite>(db_path)),
      rng_(options.seed) {}

AppChanger::~AppChanger() { Stop(); }

void AppChanger::Seed(int rows) {
  std::vector<Op> ops;
  for (const TortureTable& t : TortureTables()) {
    for (int i = 0; i < rows; ++i) ops.push_back({&t, i, 'u'});
    timeline_.frontier(t.name) = rows;
  }
  Commit(ops);
}

void AppChanger::Touch(const std::vector<RowId>& absent) {
  std::vector<Op> ops;
  for (const TortureTable& t : TortureTables()) {
    for (int64_t i : live_[t.name]) ops.push_back({&t, i, 'u'});
    for (const RowId& row : absent) {
      if (row.first != t.name) continue;
      int64_t index = std::stoll(row.second.substr(t.key_prefix.size()));
      ops.push_back({&t, index, 'u'});
    }
  }
  Commit(ops);
}

void AppChanger::Step() {
  const std::vector<TortureTable>& tables = TortureTables();
  std::uniform_int_distribution<int> pct(0, 99);
  int n = std::uniform_int_distribution<int>(1, options_.max_ops)(rng_);
  std::vector<Op> ops;
  std::map<std::string, std::set<int64_t>> live = live_;  // as the transaction leaves it
  for (int k = 0; k < n; ++k) {
    const TortureTable& t = tables[static_cast<size_t>(pct(rng_)) % tables.size()];
    std::atomic<int64_t>& frontier = timeline_.frontier(t.name);
    int64_t index = pct(rng_) < options_.new_key_pct
                        ? frontier.fetch_add(1)
                        : std::uniform_int_distribution<int64_t>(0, frontier - 1)(rng_);
    std::set<int64_t>& keys = live[t.name];
    char op = keys.count(index) != 0 && pct(rng_) < options_.delete_pct ? 'd' : 'u';
    if (op == 'd') {
      keys.erase(index);
    } else {
      keys.insert(index);
    }
    ops.push_back({&t, index, op});
  }
  Commit(ops);
}

void AppChanger::Commit(const std::vector<Op>& ops) {
  struct Done {
    RowId row;
    TimedWrite w;
  };
  std::vector<Done> done;
  int64_t begin = timeline_.Tick();
  db_->Exec("BEGIN IMMEDIATE");
  for (const Op& o : ops) {
    const TortureTable& t = *o.table;
    std::string key = TortureKey(t, o.index);
    TimedWrite w;
    w.op = o.op;
    std::set<int64_t>& keys = live_[t.name];
    if (o.op == 'd') {
      db_->Query("DELETE FROM " + QuoteIdent(t.name) + " WHERE id = ?1", {SqlValue::Text(key)});
      keys.erase(o.index);
    } else {
      int64_t n = timeline_.NextValue();
      w.value = "app-" + std::to_string(n);
      std::vector<SqlValue> params = {SqlValue::Text(key), SqlValue::Text(w.value),
                                      SqlValue::Int(n)};
      if (keys.count(o.index) != 0) {
        db_->Query("UPDATE " + QuoteIdent(t.name) + " SET " + QuoteIdent(t.text_column) +
                       " = ?2, updated_at = ?3 WHERE id = ?1",
                   params);
      } else {
        db_->Query("INSERT INTO " + QuoteIdent(t.name) + " (id, " + QuoteIdent(t.text_column) +
                       ", updated_at, " + t.other_columns + ") VALUES (?1, ?2, ?3, " +
                       t.other_values + ")",
                   params);
        keys.insert(o.index);
      }
    }
    done.push_back({{t.name, key}, std::move(w)});
  }
  db_->Exec("COMMIT");
  int64_t end = timeline_.Tick();
  for (Done& d : done) {
    d.w.begin = begin;
    d.w.end = end;
    timeline_.AddSource(d.row, std::move(d.w));
  }
}

// ---------------------------------------------------------------- OutsideWriter

OutsideWriter::OutsideWriter(const std::string& conninfo, std::string schema, Timeline& timeline,
                             Options options)
    : WriterThread(options.pause_us),
      schema_(std::move(schema)),
      timeline_(timeline),
      options_(options),
      pg_(std::make_unique<Pg>(conninfo)),
      rng_(options.seed) {}

OutsideWriter::~OutsideWriter() { Stop(); }

std::string OutsideWriter::Mirror(const TortureTable& t) const { return PgTable(schema_, t.name); }

int64_t OutsideWriter::UpdateAll(const TortureTable& table) {
  int64_t changed = 0;
  PgRows keys = pg_->Query("SELECT id FROM " + Mirror(table) +
                           " WHERE _sluice_deleted_at IS NULL ORDER BY id");
  for (const auto& row : keys.rows) changed += Update(table, row[0].value_or("")) ? 1 : 0;
  return changed;
}

void OutsideWriter::Step() {
  const std::vector<TortureTable>& tables = TortureTables();
  std::uniform_int_distribution<int> pct(0, 99);
  const TortureTable& t = tables[static_cast<size_t>(pct(rng_)) % tables.size()];
  int64_t frontier = timeline_.frontier(t.name);
  int p = pct(rng_);
  if (p >= options_.update_pct + options_.delete_pct) {
    Insert(t, frontier + std::uniform_int_distribution<int64_t>(0, options_.ahead - 1)(rng_));
    return;
  }
  std::string key = TortureKey(t, std::uniform_int_distribution<int64_t>(0, frontier - 1)(rng_));
  if (p < options_.update_pct) {
    Update(t, key);
  } else {
    Delete(t, key);
  }
}

// Each write is one transaction; it took effect when it found its row.
bool OutsideWriter::Update(const TortureTable& t, const std::string& key) {
  TimedWrite w;
  w.op = 'u';
  w.value = "out-" + std::to_string(timeline_.NextValue());
  w.provokes = true;
  w.begin = timeline_.Tick();
  // The row as the update finds it, locked: whether the outside write before
  // this one was still in place (no source change had met it).
  pg_->Query("BEGIN");
  PgRows old =
      pg_->Query("SELECT " + QuoteIdent(t.text_column) + ", _sluice_outside_at IS NOT NULL FROM " +
                     Mirror(t) + " WHERE id = $1 AND _sluice_deleted_at IS NULL FOR UPDATE",
                 {key});
  if (old.rows.empty()) {
    pg_->Query("ROLLBACK");
    return false;
  }
  pg_->Query("UPDATE " + Mirror(t) + " SET " + QuoteIdent(t.text_column) + " = $2 WHERE id = $1",
             {key, w.value});
  pg_->Query("COMMIT");
  w.end = timeline_.Tick();
  w.prev_value = old.rows[0][0].value_or("");
  w.prev_marked = old.rows[0][1].value_or("") == "t";
  timeline_.AddOutside({t.name, key}, std::move(w));
  ++writes_;
  return true;
}

bool OutsideWriter::Delete(const TortureTable& t, const std::string& key) {
  TimedWrite w;
  w.op = 'd';
  w.begin = timeline_.Tick();
  // Whether sluice had written the row live (unmarked and live, or marked by
  // an outside write over a live image of sluice's), and that image's value.
  const std::string col = QuoteIdent(t.text_column);
  PgRows r = pg_->Query(
      "DELETE FROM " + Mirror(t) + " WHERE id = $1 RETURNING " + col +
          ", _sluice_outside_at IS NOT NULL, CASE WHEN _sluice_outside_at IS NULL THEN "
          "_sluice_deleted_at IS NULL ELSE coalesce(_sluice_base -> '_sluice_deleted_at' = "
          "'null'::jsonb, false) END, CASE WHEN _sluice_outside_at IS NULL THEN " +
          col + " ELSE _sluice_base ->> $2 END",
      {key, t.text_column});
  w.end = timeline_.Tick();
  if (r.rows.empty()) return false;
  w.prev_value = r.rows[0][0].value_or("");
  w.prev_marked = r.rows[0][1].value_or("") == "t";
  w.provokes = r.rows[0][2].value_or("") == "t";
  w.base_value = r.rows[0][3].value_or("");
  timeline_.AddOutside({t.name, key}, std::move(w));
  ++writes_;
  return true;
}

bool OutsideWriter::Insert(const TortureTable& t, int64_t index) {
  RowId row{t.name, TortureKey(t, index)};
  if (!inserted_.insert(row).second) return false;  // each key at most once
  TimedWrite w;
  w.op = 'i';
  w.value = "ins-" + std::to_string(timeline_.NextValue());
  w.provokes = true;
  w.begin = timeline_.Tick();
  PgRows r = pg_->Query("INSERT INTO " + Mirror(t) + " (id, " + QuoteIdent(t.text_column) +
                            ", updated_at, " + t.other_columns + ") VALUES ($1, $2, '0', " +
                            t.other_values + ") ON CONFLICT DO NOTHING RETURNING 1",
                        {row.second, w.value});
  w.end = timeline_.Tick();
  if (r.rows.empty()) return false;
  timeline_.AddOutside(row, std::move(w));
  ++writes_;
  return true;
}

}  // namespace sluice::e2e
