// JournalReader over one SQLite connection. Each public call opens and closes
// its own transaction; statements are reset as soon as they are used, so
// nothing pins a WAL snapshot between calls.
#include "capture/journal_reader.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <map>
#include <optional>
#include <set>

#include "capture/key_codec.h"
#include "capture/row_sql.h"
#include "capture/schema_reader.h"
#include "capture/sqlite_db.h"
#include "capture/table_filter.h"
#include "capture/table_tracker.h"
#include "common/fault_point.h"

namespace sluice {
namespace {

constexpr int kPruneChunk = 2000;
// Interrupt() is seen within this many SQLite VM steps (microseconds).
constexpr int kInterruptCheckSteps = 1000;

// Carries value stats over from `old` for columns that kept name and type.
void CarryStats(const TableShape& old, TableShape* shape) {
  for (ColumnShape& c : shape->columns) {
    for (const ColumnShape& o : old.columns) {
      if (o.name == c.name && o.declared_type == c.declared_type) {
        c.seen_kinds = o.seen_kinds;
        c.text_all_json = o.text_all_json;
        c.integers_all_bool = o.integers_all_bool;
      }
    }
  }
}

class SqliteJournalReader final : public JournalReader {
 public:
  SqliteJournalReader(CaptureOptions options, std::unique_ptr<SqliteDb> db, std::string source_id,
                      std::vector<std::string> recorded, struct stat file)
      : options_(std::move(options)),
        filter_(options_.include, options_.exclude),
        db_(std::move(db)),
        source_id_(std::move(source_id)),
        recorded_(std::move(recorded)),
        file_(file) {
    // sqlite3_interrupt alone misses a statement started just after it, and
    // a read runs thousands of short ones: the handler sees the flag in each.
    sqlite3_progress_handler(
        db_->handle(), kInterruptCheckSteps,
        [](void* flag) { return static_cast<std::atomic<bool>*>(flag)->load() ? 1 : 0; },
        &interrupted_);
  }

  void Interrupt() override {
    interrupted_.store(true);
    sqlite3_interrupt(db_->handle());
  }

  Status CheckFile() override {
    struct stat now;
    if (::stat(options_.path.c_str(), &now) != 0) {
      return Status::NotFound(fmt::format("source file {} is gone ({}): deleted, or being replaced",
                                          options_.path, std::strerror(errno)));
    }
    if (now.st_dev != file_.st_dev || now.st_ino != file_.st_ino) {
      return Status::NotFound(fmt::format(
          "source file {} was replaced by another file (inode {} -> {}), e.g. a restore by mv",
          options_.path, static_cast<uint64_t>(file_.st_ino), static_cast<uint64_t>(now.st_ino)));
    }
    return Status::Ok();
  }

  void ExpectMark(int64_t seq, std::string mark) override {
    expected_seq_ = seq;
    expected_mark_ = std::move(mark);
  }

  const std::string& source_id() const override { return source_id_; }

  std::vector<std::string> TrackedTables() const override {
    std::vector<std::string> names;
    for (const auto& [name, shape] : shapes_) names.push_back(name);
    return names;
  }

  std::vector<std::string> RecordedTables() const override { return recorded_; }

  std::vector<TableRefusal> RefusedTables() const override {
    std::vector<TableRefusal> out;
    for (const auto& [name, reason] : refused_) out.push_back({name, reason});
    return out;
  }

  Result<bool> Changed() override {
    Result<int64_t> v = db_->QueryInt64("PRAGMA main.data_version");
    if (!v.ok()) return v.status();
    bool changed = !have_data_version_ || *v != data_version_;
    have_data_version_ = true;
    data_version_ = *v;
    return changed;
  }

  Result<std::vector<std::string>> CheckSchema() override;
  Status ReadBatch(int64_t after_seq, const std::vector<std::string>& full_tables,
                   Batch* out) override;
  Status Prune(int64_t position) override;
  Result<JournalStats> Stats(int64_t position) override;
  void NoteCommitted(const std::vector<FullReadMark>& marks) override {
    for (const FullReadMark& m : marks) {
      if (std::find(committed_.begin(), committed_.end(), m) == committed_.end()) {
        committed_.push_back(m);
      }
    }
  }

 private:
  // Prepared statements for one table, valid while shapes_ is unchanged.
  struct TableStatements {
    Statement lookup;
    Statement by_encoded_key;
  };

  Result<int64_t> SchemaVersion() { return db_->QueryInt64("PRAGMA main.schema_version"); }
  // True when the main schema has a table named exactly `name`.
  Result<bool> TableInFile(const std::string& name);
  // Re-describes the tracked tables (read-only) inside the caller's transaction.
  Status RefreshShapes(int64_t schema_version);
  void SetShapes(std::map<std::string, TableShape> shapes, int64_t schema_version);
  Result<TableStatements*> StatementsFor(const TableShape& shape);
  Status LookupKey(const TableShape& shape, uint32_t table_index, int64_t seq,
                   const std::string& encoded, std::vector<Value> key, bool updates_existing,
                   ChangeSpool* spool);
  Status ReadFull(const TableShape& shape, uint32_t table_index, int64_t seq, ChangeSpool* spool);

  CaptureOptions options_;
  TableFilter filter_;
  std::atomic<bool> interrupted_{false};  // before db_: the progress handler reads it
  std::unique_ptr<SqliteDb> db_;
  std::string source_id_;
  std::vector<std::string> recorded_;  // _sluice_tables names at Open

  bool have_data_version_ = false;
  int64_t data_version_ = 0;
  int64_t checked_schema_version_ = -1;  // schema version CheckSchema last reconciled
  int64_t shapes_schema_version_ = -1;   // schema version shapes_ describe
  std::map<std::string, TableShape> shapes_;
  std::map<std::string, std::string> refused_;  // held-back table -> why (CheckSchema)
  std::map<std::string, std::unique_ptr<TableStatements>> statements_;
  std::vector<FullReadMark> committed_;  // covered by a sink commit, not yet cleared in the file
  std::optional<int64_t>
      synchronous_;            // the connection's PRAGMA synchronous, read at a first Prune
  struct stat file_;           // the file as opened: a replacement has another inode
  int64_t expected_seq_ = -1;  // the sink's position, with...
  std::string expected_mark_;  // ...its fingerprint of the journal row there

  // Fingerprint of journal row `seq`: FNV-1a 64 of (tbl, op, key, at), hex; "" if none.
  Result<std::string> MarkAt(int64_t seq);
};

Result<bool> SqliteJournalReader::TableInFile(const std::string& name) {
  Result<Statement> s =
      db_->Prepare("SELECT count(*) FROM main.sqlite_master WHERE type = 'table' AND name = ?1");
  if (!s.ok()) return s.status();
  ScopedReset reset(&*s);
  SLUICE_RETURN_IF_ERROR(s->BindText(1, name));
  Result<bool> row = s->Step();
  if (!row.ok()) return row.status();
  return *row && s->ColumnInt64(0) != 0;
}

Result<std::string> SqliteJournalReader::MarkAt(int64_t seq) {
  Result<Statement> s =
      db_->Prepare("SELECT tbl, op, key, at FROM main._sluice_journal WHERE seq = ?1");
  if (!s.ok()) return s.status();
  ScopedReset reset(&*s);
  SLUICE_RETURN_IF_ERROR(s->BindInt64(1, seq));
  Result<bool> row = s->Step();
  if (!row.ok()) return row.status();
  if (!*row) return std::string();
  uint64_t h = 14695981039346656037ull;
  auto mix = [&h](std::string_view bytes) {
    for (unsigned char c : bytes) {
      h ^= c;
      h *= 1099511628211ull;
    }
    h ^= 0x1f;  // field separator
    h *= 1099511628211ull;
  };
  mix(s->ColumnText(0));
  mix(s->ColumnText(1));
  mix(s->ColumnText(2));
  mix(std::to_string(s->ColumnInt64(3)));
  return fmt::format("{:016x}", h);
}

void SqliteJournalReader::SetShapes(std::map<std::string, TableShape> shapes,
                                    int64_t schema_version) {
  for (auto& [name, shape] : shapes) {
    auto old = shapes_.find(name);
    if (old != shapes_.end()) CarryStats(old->second, &shape);
  }
  shapes_ = std::move(shapes);
  shapes_schema_version_ = schema_version;
  statements_.clear();
}

Status SqliteJournalReader::RefreshShapes(int64_t schema_version) {
  Result<std::vector<std::string>> names = db_->QueryStrings(
      "SELECT t.name FROM main._sluice_tables t JOIN main.sqlite_master m ON m.type = 'table' "
      "AND m.name = t.name");
  if (!names.ok()) return names.status();
  std::map<std::string, TableShape> shapes;
  for (const std::string& name : *names) {
    if (refused_.count(name) != 0) continue;
    Result<TableShape> shape = DescribeTable(*db_, name);
    if (!shape.ok()) return shape.status().Wrap(fmt::format("describe \"{}\"", name));
    // Changed since CheckSchema: the next CheckSchema holds it back (and
    // marks it); until then it is not read.
    if (!CheckTable(*shape, db_->column_limit()).ok()) continue;
    shapes.emplace(name, std::move(*shape));
  }
  SetShapes(std::move(shapes), schema_version);
  return Status::Ok();
}

Result<std::vector<std::string>> SqliteJournalReader::CheckSchema() {
  Result<int64_t> version = SchemaVersion();
  if (!version.ok()) return version.status();
  if (*version == checked_schema_version_) return std::vector<std::string>{};

  Result<TrackingPlan> plan = Status::Internal("unset");
  {
    Transaction txn(db_.get());
    SLUICE_RETURN_IF_ERROR(txn.Begin(Transaction::Kind::kDeferred));
    plan = PlanTracking(*db_, filter_, /*hold_refused=*/true, checked_schema_version_);
    if (!plan.ok()) return plan.status().Wrap("check schema");
    version = SchemaVersion();
    if (!version.ok()) return version.status();
    SLUICE_RETURN_IF_ERROR(txn.Commit());
  }
  if (plan->NeedsWrite()) {
    // Plan again under the write lock: the schema may have moved meanwhile.
    Transaction txn(db_.get());
    SLUICE_RETURN_IF_ERROR(txn.Begin(Transaction::Kind::kImmediate));
    plan = PlanTracking(*db_, filter_, /*hold_refused=*/true, checked_schema_version_);
    if (!plan.ok()) return plan.status().Wrap("check schema");
    // Marks a sink commit covered go first: the renames ApplyTracking carries
    // over to a renamed table's mark must be those the sink has not followed.
    if (!committed_.empty()) {
      Status cleared = ClearFullReads(*db_, committed_);
      if (!cleared.ok()) return cleared.Wrap("clear full-read marks");
    }
    SLUICE_RETURN_IF_ERROR(ApplyTracking(*db_, *plan));
    version = SchemaVersion();
    if (!version.ok()) return version.status();
    SLUICE_RETURN_IF_ERROR(txn.Commit());
    committed_.clear();
    FaultPoint("after-track-commit");
    SLUICE_RETURN_IF_ERROR(FixWalOwnership(options_.path));
  }

  std::vector<std::string> resync;
  std::vector<std::string> rowid_tables;
  std::map<std::string, TableShape> shapes;
  for (TablePlan& t : plan->tables) {
    if (!t.tracked()) continue;
    if (NeedsResync(t.action)) resync.push_back(t.name);  // marked by ApplyTracking
    // VACUUM moves schema_version and may renumber the rowids of tables
    // without an INTEGER PRIMARY KEY: tables keyed by rowid are read whole
    // again whenever the schema version moved (none in Open WebUI's schema).
    if (!NeedsResync(t.action) && t.shape.identity == TableShape::Identity::kRowid) {
      rowid_tables.push_back(t.name);
    }
    shapes.emplace(t.name, std::move(t.shape));
  }
  SetShapes(std::move(shapes), *version);
  refused_.clear();
  for (const TableRefusal& r : plan->refused) refused_.emplace(r.table, r.reason);
  if (!rowid_tables.empty() || !refused_.empty()) {
    // A held-back table's journal rows are skipped (and pruned) meanwhile:
    // the durable mark has it read whole once it is fixed, whatever the fix.
    Transaction txn(db_.get());
    SLUICE_RETURN_IF_ERROR(txn.Begin(Transaction::Kind::kImmediate));
    for (const std::string& name : rowid_tables) SLUICE_RETURN_IF_ERROR(MarkFullRead(*db_, name));
    for (const auto& [name, reason] : refused_) SLUICE_RETURN_IF_ERROR(MarkFullRead(*db_, name));
    SLUICE_RETURN_IF_ERROR(txn.Commit());
    resync.insert(resync.end(), rowid_tables.begin(), rowid_tables.end());
  }
  {
    // Value stats for every table that will be read whole, including ones
    // marked before a restart (the marks outlive the process; stats do not).
    Transaction txn(db_.get());
    SLUICE_RETURN_IF_ERROR(txn.Begin(Transaction::Kind::kDeferred));
    Result<std::vector<FullReadMark>> marks = ReadFullReadMarks(*db_);
    if (!marks.ok()) return marks.status().Wrap("read full-read marks");
    for (const FullReadMark& m : *marks) {
      bool done = std::find(committed_.begin(), committed_.end(), m) != committed_.end();
      if (!done && shapes_.count(m.table) != 0 &&
          std::find(resync.begin(), resync.end(), m.table) == resync.end()) {
        resync.push_back(m.table);
      }
    }
    for (const std::string& name : resync) {
      Status s = FillValueStats(*db_, &shapes_[name]);
      if (!s.ok()) return s.Wrap(fmt::format("scan table \"{}\"", name));
    }
    SLUICE_RETURN_IF_ERROR(txn.Commit());
  }
  checked_schema_version_ = *version;
  return resync;
}

Result<SqliteJournalReader::TableStatements*> SqliteJournalReader::StatementsFor(
    const TableShape& shape) {
  auto it = statements_.find(shape.name);
  if (it != statements_.end()) return it->second.get();
  auto st = std::make_unique<TableStatements>();
  Result<Statement> lookup = db_->Prepare(LookupSql(shape), /*persistent=*/true);
  if (!lookup.ok()) return lookup.status();
  st->lookup = std::move(*lookup);
  TableStatements* raw = st.get();
  statements_.emplace(shape.name, std::move(st));
  return raw;
}

Status SqliteJournalReader::LookupKey(const TableShape& shape, uint32_t table_index, int64_t seq,
                                      const std::string& encoded, std::vector<Value> key,
                                      bool updates_existing, ChangeSpool* spool) {
  Result<TableStatements*> st = StatementsFor(shape);
  if (!st.ok()) return st.status();
  Change change;
  change.table = table_index;
  change.seq = seq;
  auto read_row = [&](Statement* s) -> Result<bool> {
    ScopedReset reset(s);
    Result<bool> row = s->Step();
    if (!row.ok() || !*row) return row;
    change.kind = Change::Kind::kUpsert;
    change.updates_existing = updates_existing;
    change.values.reserve(shape.columns.size());
    for (size_t i = 0; i < shape.columns.size(); ++i) {
      change.values.push_back(s->ColumnValue(static_cast<int>(i)));
    }
    return true;
  };

  Statement* lookup = &(*st)->lookup;
  for (size_t i = 0; i < key.size(); ++i) {
    SLUICE_RETURN_IF_ERROR(lookup->Bind(static_cast<int>(i + 1), key[i]));
  }
  Result<bool> found = read_row(lookup);
  if (!found.ok()) return found.status();
  if (!*found && KeyHasReal(key)) {
    // SQLite's %!.17g does not round-trip every double: match the journal's text.
    Statement* by_key = &(*st)->by_encoded_key;
    if (!by_key->valid()) {
      Result<Statement> p = db_->Prepare(LookupByEncodedKeySql(shape), /*persistent=*/true);
      if (!p.ok()) return p.status();
      *by_key = std::move(*p);
    }
    SLUICE_RETURN_IF_ERROR(by_key->BindText(1, encoded));
    found = read_row(by_key);
    if (!found.ok()) return found.status();
  }
  if (!*found) {
    change.kind = Change::Kind::kDelete;
    change.values = std::move(key);
  }
  return spool->Append(change);
}

Status SqliteJournalReader::ReadFull(const TableShape& shape, uint32_t table_index, int64_t seq,
                                     ChangeSpool* spool) {
  Result<Statement> scan = db_->Prepare(FullScanSql(shape));
  if (!scan.ok()) return scan.status();
  ScopedReset reset(&*scan);
  Change change;
  change.kind = Change::Kind::kUpsert;
  change.table = table_index;
  change.seq = seq;
  for (;;) {
    Result<bool> row = scan->Step();
    if (!row.ok()) return row.status();
    if (!*row) return Status::Ok();
    change.values.clear();
    for (size_t i = 0; i < shape.columns.size(); ++i) {
      change.values.push_back(scan->ColumnValue(static_cast<int>(i)));
    }
    SLUICE_RETURN_IF_ERROR(spool->Append(change));
  }
}

Status SqliteJournalReader::ReadBatch(int64_t after_seq,
                                      const std::vector<std::string>& full_tables, Batch* out) {
  out->source_id = source_id_;
  out->after_seq = after_seq;
  out->snapshot_seq = after_seq;
  out->tables.clear();
  out->tracked_tables = TrackedTables();
  out->full_tables.clear();
  out->dropped_tables.clear();
  out->full_read_marks.clear();
  out->journal_rows = 0;
  out->changes = ChangeSpool(options_.spool_memory_limit, options_.spool_dir);

  Transaction txn(db_.get());
  SLUICE_RETURN_IF_ERROR(txn.Begin(Transaction::Kind::kDeferred));
  // The first SELECT fixes the snapshot every later read in this call sees.
  Result<int64_t> issued = db_->QueryInt64(
      "SELECT coalesce((SELECT seq FROM main.sqlite_sequence WHERE name = '_sluice_journal'), 0)");
  if (!issued.ok()) return issued.status().Wrap("read batch");
  Result<int64_t> max_seq =
      db_->QueryInt64("SELECT coalesce(max(seq), 0) FROM main._sluice_journal");
  if (!max_seq.ok()) return max_seq.status().Wrap("read batch");
  const int64_t snapshot_seq = std::max(*issued, *max_seq);
  Result<int64_t> version = SchemaVersion();
  if (!version.ok()) return version.status();
  if (*version != shapes_schema_version_) SLUICE_RETURN_IF_ERROR(RefreshShapes(*version));

  // A full resync (every tracked table read whole) needs no journal continuity.
  bool full_resync = std::all_of(shapes_.begin(), shapes_.end(), [&](const auto& entry) {
    return std::find(full_tables.begin(), full_tables.end(), entry.first) != full_tables.end();
  });
  if (!full_resync) SLUICE_RETURN_IF_ERROR(CheckNotBehind(*issued, after_seq));
  if (!full_resync && after_seq > 0 && after_seq == expected_seq_ && !expected_mark_.empty()) {
    Result<std::string> mark = MarkAt(after_seq);
    if (!mark.ok()) return mark.status().Wrap("read batch");
    if (*mark != expected_mark_) {
      return Status::Corruption(fmt::format(
          "the journal row at the sink position {} is not the one the sink applied (fingerprint "
          "{} at the sink, {} in the file): the SQLite file was restored from a backup or "
          "replaced; a full resync is needed",
          after_seq, expected_mark_, mark->empty() ? "none" : *mark));
    }
  }

  std::map<std::string, uint32_t> index;
  auto table_index = [&](const TableShape& shape) {
    auto [it, inserted] = index.emplace(shape.name, static_cast<uint32_t>(out->tables.size()));
    if (inserted) out->tables.push_back(shape);
    return it->second;
  };
  std::vector<std::string> wanted = full_tables;
  {
    Result<std::vector<FullReadMark>> marks = ReadFullReadMarks(*db_);
    if (!marks.ok()) return marks.status().Wrap("read full-read marks");
    for (FullReadMark& m : *marks) {
      if (std::find(committed_.begin(), committed_.end(), m) != committed_.end()) continue;
      if (refused_.count(m.table) != 0) continue;  // kept until the table is read
      wanted.push_back(m.table);
      out->full_read_marks.push_back(std::move(m));  // cleared once this batch commits
    }
  }
  std::set<std::string> full;
  for (const std::string& name : wanted) {
    if (shapes_.count(name) == 0) {
      // A table gone from the file (dropped or renamed away) is read whole as
      // empty: its mirror's live rows become tombstones. One excluded by the
      // filter is still there: its mirror is left alone.
      Result<bool> present = TableInFile(name);
      if (!present.ok()) return present.status().Wrap("read batch");
      if (!*present) {
        if (std::find(out->dropped_tables.begin(), out->dropped_tables.end(), name) ==
            out->dropped_tables.end()) {
          out->dropped_tables.push_back(name);
        }
      } else {
        spdlog::warn("capture: full read of \"{}\" skipped: the table is not tracked", name);
      }
      continue;
    }
    if (full.insert(name).second) out->full_tables.push_back(table_index(shapes_.at(name)));
  }
  out->table_renames.clear();
  out->column_renames.clear();
  for (const FullReadMark& m : out->full_read_marks) {
    if (full.count(m.table) == 0) continue;
    if (!m.former_names.empty()) out->table_renames.push_back({m.former_names, m.table});
    for (const auto& [from, to] : m.column_renames)
      out->column_renames.push_back({m.table, from, to});
  }

  {
    Result<Statement> journal = db_->Prepare(
        "SELECT tbl, key, last, n, first_op = 1 AND NOT EXISTS (SELECT 1 FROM "
        "main._sluice_journal j WHERE j.seq = g.first - 1 AND j.seq > ?1 AND j.tbl = g.tbl AND "
        "j.op = 'D') "
        "FROM (SELECT tbl, key, max(seq) AS last, count(*) AS n, min(seq) AS first, "
        "min(seq * 4 + CASE op WHEN 'I' THEN 0 WHEN 'U' THEN 1 ELSE 2 END) % 4 AS first_op "
        "FROM main._sluice_journal WHERE seq > ?1 AND seq <= ?2 GROUP BY tbl, key) AS g "
        "ORDER BY last");
    if (!journal.ok()) return journal.status();
    ScopedReset reset(&*journal);
    SLUICE_RETURN_IF_ERROR(journal->BindInt64(1, after_seq));
    SLUICE_RETURN_IF_ERROR(journal->BindInt64(2, snapshot_seq));
    for (;;) {
      Result<bool> row = journal->Step();
      if (!row.ok()) return row.status().Wrap("read journal");
      if (!*row) break;
      out->journal_rows += journal->ColumnInt64(3);
      std::string tbl = journal->ColumnText(0);
      if (full.count(tbl) != 0) continue;
      auto shape = shapes_.find(tbl);
      if (shape == shapes_.end()) continue;  // untracked since
      std::string encoded = journal->ColumnText(1);
      Result<std::vector<Value>> key = DecodeKey(encoded);
      if (!key.ok()) return key.status().Wrap(fmt::format("journal row of \"{}\"", tbl));
      if (key->size() != shape->second.KeyColumns().size()) {
        // Written under an older identity; CheckSchema flagged the table for a full read.
        spdlog::warn("capture: journal key '{}' of \"{}\" does not fit its identity; skipped",
                     encoded, tbl);
        continue;
      }
      // The first entry an UPDATE of this very key, not the new key of a key
      // change (the capture trigger journals the old key's delete just before,
      // in the same transaction, so inside the read). Any delete of the table
      // just before counts as one: a missed report, never a false one.
      bool updates_existing = journal->ColumnInt64(4) != 0;
      Status s = LookupKey(shape->second, table_index(shape->second), journal->ColumnInt64(2),
                           encoded, std::move(*key), updates_existing, &out->changes);
      if (!s.ok()) return s.Wrap(fmt::format("look up \"{}\" key '{}'", tbl, encoded));
    }
  }
  for (const std::string& name : full) {
    const TableShape& shape = shapes_.at(name);
    Status s = ReadFull(shape, index.at(name), snapshot_seq, &out->changes);
    if (!s.ok()) return s.Wrap(fmt::format("read table \"{}\"", name));
  }
  Result<std::string> snapshot_mark = MarkAt(snapshot_seq);
  if (!snapshot_mark.ok()) return snapshot_mark.status().Wrap("read batch");
  SLUICE_RETURN_IF_ERROR(txn.Commit());
  out->snapshot_seq = snapshot_seq;
  out->snapshot_mark = std::move(*snapshot_mark);
  return Status::Ok();
}

constexpr int kPruneBusyMs = 20;

Status SqliteJournalReader::Prune(int64_t position) {
  Result<Statement> del = db_->Prepare(
      "DELETE FROM main._sluice_journal WHERE seq IN (SELECT seq FROM main._sluice_journal "
      "WHERE seq < ?1 ORDER BY seq LIMIT " +
      std::to_string(kPruneChunk) + ")");
  if (!del.ok()) return del.status();
  // Pruning is housekeeping: when the app is writing, give way at once (wait
  // at most kPruneBusyMs for the write lock) and prune on a later call, rather
  // than queueing behind the app for the full busy timeout.
  sqlite3_busy_timeout(db_->handle(), kPruneBusyMs);
  // Nor need a prune reach the disk before it lets go of the write lock: a
  // commit without fsync holds the lock for far less than a disk flush (with
  // one, about 1% of a busy app's commits waited ~18 ms in SQLite's busy
  // handler). A prune lost on power loss is only done again; the app's next
  // synchronous commit flushes it anyway.
  // The level to go back to is this connection's own and only a prune
  // changes it (and restores it): read once.
  if (!synchronous_) {
    Result<int64_t> level = db_->QueryInt64("PRAGMA synchronous");
    if (!level.ok()) return level.status().Wrap("prune journal");
    synchronous_ = *level;
  }
  SLUICE_RETURN_IF_ERROR(db_->Exec("PRAGMA synchronous = NORMAL"));
  struct RestoreSettings {
    SqliteDb* db;
    int64_t synchronous;
    ~RestoreSettings() {
      sqlite3_busy_timeout(db->handle(), db->busy_timeout_ms());
      (void)db->Exec("PRAGMA synchronous = " + std::to_string(synchronous));
    }
  } restore{db_.get(), *synchronous_};
  if (!committed_.empty()) {
    Transaction txn(db_.get());
    SLUICE_RETURN_IF_ERROR(txn.Begin(Transaction::Kind::kImmediate));
    Status s = ClearFullReads(*db_, committed_);
    if (!s.ok()) return s.Wrap("clear full-read marks");
    SLUICE_RETURN_IF_ERROR(txn.Commit());
    committed_.clear();
  }
  for (;;) {
    // One short write transaction per chunk: the app waits a few ms at most.
    Transaction txn(db_.get());
    SLUICE_RETURN_IF_ERROR(txn.Begin(Transaction::Kind::kImmediate));
    SLUICE_RETURN_IF_ERROR(del->BindInt64(1, position));
    Status s = del->Run();
    if (!s.ok()) return s.Wrap("prune journal");
    int deleted = sqlite3_changes(db_->handle());
    SLUICE_RETURN_IF_ERROR(txn.Commit());
    if (deleted < kPruneChunk) return Status::Ok();
  }
}

Result<JournalStats> SqliteJournalReader::Stats(int64_t position) {
  Result<Statement> s = db_->Prepare(
      "SELECT coalesce((SELECT seq FROM main.sqlite_sequence WHERE name = '_sluice_journal'), 0), "
      "count(*), min(at) FROM main._sluice_journal WHERE seq > ?1");
  if (!s.ok()) return s.status();
  ScopedReset reset(&*s);
  SLUICE_RETURN_IF_ERROR(s->BindInt64(1, position));
  Result<bool> row = s->Step();
  if (!row.ok()) return row.status();
  JournalStats stats;
  if (*row) {
    stats.max_seq = s->ColumnInt64(0);
    stats.pending_rows = s->ColumnInt64(1);
    stats.oldest_pending_at_ms = s->ColumnIsNull(2) ? 0 : static_cast<double>(s->ColumnInt64(2));
  }
  Result<std::vector<FullReadMark>> marks = ReadFullReadMarks(*db_);
  if (!marks.ok()) return marks.status().Wrap("read full-read marks");
  stats.pending_full_reads = static_cast<int64_t>(marks->size());
  return stats;
}

}  // namespace

Status CheckNotBehind(int64_t journal_max_seq, int64_t position) {
  if (journal_max_seq >= position) return Status::Ok();
  return Status::Corruption(
      fmt::format("journal seq {} is behind the sink position {}: the SQLite file was restored "
                  "from a backup or lost commits; a full resync is needed",
                  journal_max_seq, position));
}

Result<std::unique_ptr<JournalReader>> JournalReader::Open(const CaptureOptions& options) {
  // The inode, taken before the open: if the path is renamed over in between,
  // the first CheckFile reports a replacement and the caller reopens. Harmless.
  struct stat file;
  if (::stat(options.path.c_str(), &file) != 0) {
    return Status::InvalidArgument(fmt::format("source database {} does not exist", options.path));
  }
  Result<std::unique_ptr<SqliteDb>> db = SqliteDb::Open(options.path, options.busy_timeout_ms);
  if (!db.ok()) return db.status();
  Result<std::string> mode = (*db)->QueryText("PRAGMA main.journal_mode");
  if (!mode.ok()) return mode.status();
  if (*mode != "wal") {
    return Status::InvalidArgument(fmt::format(
        "{} is in journal mode {}, not WAL: run `sluice init` first", options.path, *mode));
  }
  Result<std::string> id = ReadSourceId(**db);
  if (!id.ok()) return id.status();
  // Read only: a reader may be a standby's, which must not write to the file.
  Result<std::vector<std::string>> recorded =
      (*db)->QueryStrings("SELECT name FROM main._sluice_tables ORDER BY name");
  if (!recorded.ok()) return recorded.status().Wrap("read the tracked tables");
  SLUICE_RETURN_IF_ERROR(FixWalOwnership(options.path));
  return std::unique_ptr<JournalReader>(
      new SqliteJournalReader(options, std::move(*db), std::move(*id), std::move(*recorded), file));
}

}  // namespace sluice
