// Table tracker. Triggers are compared by their stored CREATE text, which
// catches missing triggers (12-step rebuild), stale ones (identity changed)
// and ones carried along by ALTER TABLE ... RENAME (wrong table literal).
#include "capture/table_tracker.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <map>
#include <set>

#include "capture/schema_reader.h"
#include "capture/trigger_sql.h"

namespace sluice {
namespace {

// SQLite compares identifiers case-insensitively for ASCII letters.
std::string Fold(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

struct ExistingTrigger {
  std::string name;
  std::string table;
  std::string sql;
};

Result<std::vector<ExistingTrigger>> ReadSluiceTriggers(SqliteDb& db) {
  Result<Statement> s = db.Prepare(
      "SELECT name, tbl_name, sql FROM main.sqlite_master WHERE type = 'trigger' AND "
      "name LIKE '\\_sluice\\_%' ESCAPE '\\'");
  if (!s.ok()) return s.status();
  ScopedReset reset(&*s);
  std::vector<ExistingTrigger> out;
  for (;;) {
    Result<bool> row = s->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    out.push_back({s->ColumnText(0), s->ColumnText(1), s->ColumnText(2)});
  }
  return out;
}

struct TrackedRow {
  std::string identity;
  std::string columns;
};

Result<std::map<std::string, TrackedRow>> ReadTracked(SqliteDb& db) {
  Result<Statement> s = db.Prepare("SELECT name, identity, columns FROM main._sluice_tables");
  if (!s.ok()) return s.status();
  ScopedReset reset(&*s);
  std::map<std::string, TrackedRow> out;
  for (;;) {
    Result<bool> row = s->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    out[s->ColumnText(0)] = TrackedRow{s->ColumnText(1), s->ColumnText(2)};
  }
  return out;
}

// The rename columns came after the table itself: files marked by an older
// sluice lack them (and get them with their next mark).
Result<bool> FullReadsHaveRenames(SqliteDb& db) {
  Result<int64_t> n = db.QueryInt64(
      "SELECT count(*) FROM pragma_table_info('_sluice_full_reads', 'main') WHERE name IN "
      "('former_names', 'column_renames')");
  if (!n.ok()) return n.status();
  return *n == 2;
}

// Pairs as a flat NamesText (old, new, old, new, ...), and back.
std::string PairsText(const std::vector<std::pair<std::string, std::string>>& pairs) {
  std::vector<std::string> flat;
  for (const auto& [from, to] : pairs) {
    flat.push_back(from);
    flat.push_back(to);
  }
  return NamesText(flat);
}

std::vector<std::pair<std::string, std::string>> PairsOfText(std::string_view text) {
  std::vector<std::string> flat = ColumnNamesOfText(text);
  std::vector<std::pair<std::string, std::string>> pairs;
  for (size_t i = 0; i + 1 < flat.size(); i += 2) pairs.emplace_back(flat[i], flat[i + 1]);
  return pairs;
}

// Every table of the main schema, by exact name.
Result<std::set<std::string>> ReadTableNames(SqliteDb& db) {
  Result<Statement> s = db.Prepare("SELECT name FROM main.sqlite_master WHERE type = 'table'");
  if (!s.ok()) return s.status();
  ScopedReset reset(&*s);
  std::set<std::string> out;
  for (;;) {
    Result<bool> row = s->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    out.insert(s->ColumnText(0));
  }
  return out;
}

// One line per change, saying what becomes of the mirror.
void LogTracking(const TablePlan& t) {
  using Action = TablePlan::Action;
  switch (t.action) {
    case Action::kKeep:
      break;
    case Action::kTrack:
      if (t.renamed_from.empty()) {
        spdlog::info("capture: table \"{}\": now tracked", t.name);
      } else {
        spdlog::info("capture: table \"{}\": now tracked (renamed from \"{}\")", t.name,
                     t.renamed_from);
      }
      break;
    case Action::kRepair:
      spdlog::info("capture: table \"{}\": triggers reinstalled", t.name);
      break;
    case Action::kColumnsChanged:
      spdlog::info("capture: table \"{}\": columns changed", t.name);
      break;
    case Action::kUntrack:
      spdlog::warn(
          "capture: table \"{}\": no longer tracked (excluded by source.include/exclude); its "
          "mirror is left as it is",
          t.name);
      break;
    case Action::kDropped:
      if (t.renamed_to.empty()) {
        spdlog::warn(
            "capture: table \"{}\" was dropped in the source: every live row of its mirror "
            "becomes a tombstone (the mirror table is kept)",
            t.name);
      } else {
        spdlog::info(
            "capture: table \"{}\" renamed to \"{}\": its mirror follows (renamed at the "
            "sink, then read whole)",
            t.name, t.renamed_to);
      }
      break;
  }
  for (const auto& [from, to] : t.renamed_columns) {
    spdlog::info(
        "capture: table \"{}\": column \"{}\" renamed to \"{}\": the mirror column follows", t.name,
        from, to);
  }
  for (const std::string& c : t.dropped_columns) {
    spdlog::warn(
        "capture: table \"{}\": column \"{}\" dropped in the source: the mirror keeps it with the "
        "values it had; rows written from now on have NULL there",
        t.name, c);
  }
  for (const std::string& c : t.added_columns) {
    spdlog::info("capture: table \"{}\": column \"{}\" added", t.name, c);
  }
}

// Whether the table's mark gets its renames rewritten (else they are kept):
// a new table starts without any, a gone one needs none, and a rename adds one.
bool RenewsRenames(const TablePlan& t) {
  return t.action == TablePlan::Action::kTrack || t.action == TablePlan::Action::kDropped ||
         !t.renamed_from.empty() || !t.renamed_columns.empty();
}

// The mark for `t`: the renames still pending (in `pending`) under its old
// name (or its own, for column renames), then this plan's. Kept in order and
// not composed: the sink may have followed some of them already.
FullReadMark MarkWithRenames(const TablePlan& t, const std::vector<FullReadMark>& pending) {
  FullReadMark mark;
  mark.table = t.name;
  if (t.action == TablePlan::Action::kDropped) return mark;
  const std::string& before = t.renamed_from.empty() ? t.name : t.renamed_from;
  bool carries = !t.renamed_from.empty() || t.action != TablePlan::Action::kTrack;
  for (const FullReadMark& p : pending) {
    if (carries && p.table == before) {
      mark.former_names = p.former_names;
      mark.column_renames = p.column_renames;
    }
  }
  if (!t.renamed_from.empty()) mark.former_names.push_back(t.renamed_from);
  mark.column_renames.insert(mark.column_renames.end(), t.renamed_columns.begin(),
                             t.renamed_columns.end());
  return mark;
}

// The columns as recorded in _sluice_tables (empty if unreadable), and as
// the table has them now, for DiffColumns.
std::vector<ColumnFacts> RecordedFacts(const TrackedRow& row) {
  std::vector<std::string> keys = KeyNamesOfIdentityText(row.identity);
  std::vector<ColumnFacts> out;
  for (RecordedColumn& c : ColumnsOfText(row.columns)) {
    auto key = std::find(keys.begin(), keys.end(), c.name);
    int position = key == keys.end() ? 0 : static_cast<int>(key - keys.begin()) + 1;
    out.push_back({std::move(c.name), std::move(c.definition), position});
  }
  return out;
}

std::vector<ColumnFacts> CurrentFacts(const TableShape& shape) {
  std::vector<ColumnFacts> out;
  for (const ColumnShape& c : shape.columns) {
    out.push_back({c.name, ColumnDefinitionText(c), c.key_position});
  }
  return out;
}

// The tracked table each table was renamed from (by table name): the one its
// capture triggers are named after, whether or not a table of that name
// exists again (ALTER TABLE ... RENAME carries triggers, names unchanged; a
// trigger name is unique in the file, so one table at most claims a name).
std::map<std::string, std::string> RenamedFrom(const std::vector<TableShape>& shapes,
                                               const std::vector<ExistingTrigger>& triggers,
                                               const std::map<std::string, TrackedRow>& tracked) {
  std::map<std::string, std::string> out;
  for (const TableShape& shape : shapes) {
    for (const ExistingTrigger& e : triggers) {
      if (Fold(e.table) != Fold(shape.name)) continue;
      std::string was = TableOfTriggerName(e.name);
      if (was != shape.name && tracked.count(was) != 0) {
        out.emplace(shape.name, was);
        break;
      }
    }
  }
  return out;
}

}  // namespace

bool TrackingPlan::NeedsWrite() const {
  if (!cleanup.empty()) return true;
  for (const TablePlan& t : tables) {
    if (t.action != TablePlan::Action::kKeep || !t.drops.empty()) return true;
  }
  return false;
}

bool NeedsResync(TablePlan::Action action) {
  return action == TablePlan::Action::kTrack || action == TablePlan::Action::kRepair ||
         action == TablePlan::Action::kColumnsChanged;
}

ColumnDiff DiffColumns(const std::vector<ColumnFacts>& before,
                       const std::vector<ColumnFacts>& after, bool one_alter) {
  auto has = [](const std::vector<ColumnFacts>& columns, const std::string& name) {
    return std::any_of(columns.begin(), columns.end(),
                       [&](const ColumnFacts& c) { return c.name == name; });
  };
  ColumnDiff diff;
  if (one_alter && before.size() == after.size()) {
    std::vector<size_t> changed;
    for (size_t i = 0; i < before.size(); ++i) {
      if (before[i].name != after[i].name) changed.push_back(i);
    }
    if (changed.size() == 1) {
      const ColumnFacts& from = before[changed[0]];
      const ColumnFacts& to = after[changed[0]];
      if (!has(after, from.name) && !has(before, to.name) && from.definition == to.definition &&
          from.key_position == to.key_position) {
        diff.renamed.emplace_back(from.name, to.name);
        return diff;
      }
    }
  }
  for (const ColumnFacts& c : before) {
    if (!has(after, c.name)) diff.dropped.push_back(c.name);
  }
  for (const ColumnFacts& c : after) {
    if (!has(before, c.name)) diff.added.push_back(c.name);
  }
  return diff;
}

Result<std::string> NewUuid() {
  unsigned char b[16];
  std::FILE* f = std::fopen("/dev/urandom", "rb");
  if (f == nullptr) return Status::Internal("cannot open /dev/urandom");
  size_t n = std::fread(b, 1, sizeof b, f);
  std::fclose(f);
  if (n != sizeof b) return Status::Internal("short read from /dev/urandom");
  b[6] = static_cast<unsigned char>((b[6] & 0x0f) | 0x40);  // version 4
  b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);  // RFC 4122 variant
  std::string out;
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out.push_back('-');
    out += fmt::format("{:02x}", b[i]);
  }
  return out;
}

Status EnsureFullReadsTable(SqliteDb& db) {
  SLUICE_RETURN_IF_ERROR(db.Exec(
      "CREATE TABLE IF NOT EXISTS main._sluice_full_reads(name TEXT PRIMARY KEY, token INTEGER "
      "NOT NULL, former_names TEXT, column_renames TEXT)"));
  Result<bool> renames = FullReadsHaveRenames(db);
  if (!renames.ok()) return renames.status();
  if (*renames) return Status::Ok();
  SLUICE_RETURN_IF_ERROR(
      db.Exec("ALTER TABLE main._sluice_full_reads ADD COLUMN former_names TEXT"));
  return db.Exec("ALTER TABLE main._sluice_full_reads ADD COLUMN column_renames TEXT");
}

Status MarkFullRead(SqliteDb& db, const std::string& table) {
  SLUICE_RETURN_IF_ERROR(EnsureFullReadsTable(db));
  Result<Statement> s = db.Prepare(
      "INSERT INTO main._sluice_full_reads(name, token) VALUES (?1, 1) ON CONFLICT(name) DO "
      "UPDATE SET token = token + 1");
  if (!s.ok()) return s.status();
  SLUICE_RETURN_IF_ERROR(s->BindText(1, table));
  return s->Run();
}

Status MarkFullRead(SqliteDb& db, const FullReadMark& mark) {
  SLUICE_RETURN_IF_ERROR(EnsureFullReadsTable(db));
  Result<Statement> s = db.Prepare(
      "INSERT INTO main._sluice_full_reads(name, token, former_names, column_renames) VALUES "
      "(?1, 1, ?2, ?3) ON CONFLICT(name) DO UPDATE SET token = token + 1, former_names = "
      "excluded.former_names, column_renames = excluded.column_renames");
  if (!s.ok()) return s.status();
  SLUICE_RETURN_IF_ERROR(s->BindText(1, mark.table));
  SLUICE_RETURN_IF_ERROR(s->BindText(2, NamesText(mark.former_names)));
  SLUICE_RETURN_IF_ERROR(s->BindText(3, PairsText(mark.column_renames)));
  return s->Run();
}

Result<std::vector<FullReadMark>> ReadFullReadMarks(SqliteDb& db) {
  // Files prepared by an older sluice get the table with their next tracking change.
  Result<int64_t> present = db.QueryInt64(
      "SELECT count(*) FROM main.sqlite_master WHERE type = 'table' AND name = "
      "'_sluice_full_reads'");
  if (!present.ok()) return present.status();
  if (*present == 0) return std::vector<FullReadMark>{};
  Result<bool> renames = FullReadsHaveRenames(db);
  if (!renames.ok()) return renames.status();
  Result<Statement> s = db.Prepare(
      *renames ? "SELECT name, token, former_names, column_renames FROM main._sluice_full_reads "
                 "ORDER BY name"
               : "SELECT name, token, NULL, NULL FROM main._sluice_full_reads ORDER BY name");
  if (!s.ok()) return s.status();
  ScopedReset reset(&*s);
  std::vector<FullReadMark> out;
  for (;;) {
    Result<bool> row = s->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    FullReadMark m;
    m.table = s->ColumnText(0);
    m.token = s->ColumnInt64(1);
    m.former_names = ColumnNamesOfText(s->ColumnText(2));
    m.column_renames = PairsOfText(s->ColumnText(3));
    out.push_back(std::move(m));
  }
  return out;
}

Status ClearFullReads(SqliteDb& db, const std::vector<FullReadMark>& marks) {
  Result<Statement> s =
      db.Prepare("DELETE FROM main._sluice_full_reads WHERE name = ?1 AND token = ?2");
  if (!s.ok()) return s.status();
  for (const FullReadMark& m : marks) {
    SLUICE_RETURN_IF_ERROR(s->BindText(1, m.table));
    SLUICE_RETURN_IF_ERROR(s->BindInt64(2, m.token));
    SLUICE_RETURN_IF_ERROR(s->Run());
  }
  return Status::Ok();
}

Status EnsureCaptureTables(SqliteDb& db) {
  for (const std::string& ddl : CaptureTablesDdl()) SLUICE_RETURN_IF_ERROR(db.Exec(ddl));
  SLUICE_RETURN_IF_ERROR(EnsureFullReadsTable(db));
  SLUICE_RETURN_IF_ERROR(db.Exec(
      "INSERT OR IGNORE INTO main._sluice_meta(key, value) VALUES ('format_version', '1')"));
  Result<std::string> version =
      db.QueryText("SELECT value FROM main._sluice_meta WHERE key = 'format_version'");
  if (!version.ok()) return version.status();
  if (*version != "1") {
    return Status::InvalidArgument(fmt::format(
        "the file's sluice objects have format version {}; this sluice knows version 1", *version));
  }
  Result<std::string> id =
      db.QueryText("SELECT value FROM main._sluice_meta WHERE key = 'source_id'");
  if (id.ok()) return Status::Ok();
  if (id.status().code() != Status::Code::kNotFound) return id.status();
  Result<std::string> uuid = NewUuid();
  if (!uuid.ok()) return uuid.status();
  Result<Statement> ins =
      db.Prepare("INSERT INTO main._sluice_meta(key, value) VALUES ('source_id', ?1)");
  if (!ins.ok()) return ins.status();
  SLUICE_RETURN_IF_ERROR(ins->BindText(1, *uuid));
  return ins->Run();
}

Result<std::string> ReadSourceId(SqliteDb& db) {
  Result<int64_t> present = db.QueryInt64(
      "SELECT count(*) FROM main.sqlite_master WHERE type = 'table' AND name IN "
      "('_sluice_meta', '_sluice_tables', '_sluice_journal')");
  if (!present.ok()) return present.status();
  if (*present != 3) {
    return Status::InvalidArgument(fmt::format(
        "{} is not prepared for capture (no _sluice_meta/_sluice_journal): run `sluice init` "
        "first, or `sluice resync` if the deployment followed this file before an uninstall",
        db.path()));
  }
  Result<std::string> id =
      db.QueryText("SELECT value FROM main._sluice_meta WHERE key = 'source_id'");
  if (id.status().code() == Status::Code::kNotFound) {
    return Status::InvalidArgument(
        fmt::format("{} has no sluice source id: run `sluice init` first", db.path()));
  }
  return id;
}

Result<TrackingPlan> PlanTracking(SqliteDb& db, const TableFilter& filter, bool hold_refused,
                                  int64_t recorded_at) {
  Result<std::map<std::string, TrackedRow>> tracked = ReadTracked(db);
  if (!tracked.ok()) return tracked.status();
  Result<std::vector<ExistingTrigger>> triggers = ReadSluiceTriggers(db);
  if (!triggers.ok()) return triggers.status();
  TrackingPlan plan;
  // Refuses names and widths the sink cannot hold (CheckNames, CheckLimits).
  Result<std::vector<TableShape>> described =
      DescribeTables(db, filter, hold_refused ? &plan.refused : nullptr);
  if (!described.ok()) return described.status();
  std::vector<TableShape> shapes = std::move(*described);
  Result<std::set<std::string>> in_file = ReadTableNames(db);
  if (!in_file.ok()) return in_file.status();
  // Tracked tables no longer in the file under their name (exact, as the
  // mirrors are named): dropped, or renamed away.
  std::set<std::string> gone;
  for (const auto& [name, row] : *tracked) {
    if (in_file->count(name) == 0) gone.insert(name);
  }
  std::map<std::string, std::string> renamed_from = RenamedFrom(shapes, *triggers, *tracked);
  std::set<std::string> renamed_away;  // their old names: a table there now is a new one
  for (const auto& [name, was] : renamed_from) renamed_away.insert(was);
  // One statement since _sluice_tables last matched: only then can a changed
  // column name be a RENAME COLUMN (see DiffColumns).
  Result<int64_t> version = db.QueryInt64("PRAGMA main.schema_version");
  if (!version.ok()) return version.status();
  bool one_alter = recorded_at >= 0 && *version == recorded_at + 1;

  std::set<std::string> handled;  // folded table names whose triggers were examined
  std::set<std::string> held;     // refused tables: keep their triggers and row
  for (const TableRefusal& r : plan.refused) {
    handled.insert(Fold(r.table));
    held.insert(r.table);
  }
  for (TableShape& shape : shapes) {
    TablePlan t;
    t.name = shape.name;
    handled.insert(Fold(shape.name));
    std::vector<TriggerSql> expected = CaptureTriggers(shape);
    std::set<std::string> in_place;  // folded names of expected triggers present and current
    for (const ExistingTrigger& e : *triggers) {
      if (Fold(e.table) != Fold(shape.name)) continue;
      bool current = false;
      for (const TriggerSql& x : expected) {
        if (Fold(x.name) == Fold(e.name) && x.create == e.sql) current = true;
      }
      if (current) {
        in_place.insert(Fold(e.name));
      } else {
        t.drops.push_back(DropTriggerSql(e.name));
      }
    }
    if (auto r = renamed_from.find(shape.name); r != renamed_from.end()) t.renamed_from = r->second;
    bool created = false;
    for (const TriggerSql& x : expected) {
      if (in_place.count(Fold(x.name)) != 0) continue;
      t.statements.push_back(x.create);
      created = true;
    }
    std::string identity = IdentityText(shape);
    std::string columns = ColumnsText(shape);
    // A table that took the name of one renamed away is new, whatever its
    // name's _sluice_tables row says (that row is the renamed table's).
    auto row = renamed_away.count(shape.name) != 0 ? tracked->end() : tracked->find(shape.name);
    auto before = t.renamed_from.empty() ? row : tracked->find(t.renamed_from);
    if (before != tracked->end() && before->second.columns != columns) {
      std::vector<ColumnFacts> old_columns = RecordedFacts(before->second);
      if (!old_columns.empty()) {
        ColumnDiff diff = DiffColumns(old_columns, CurrentFacts(shape), one_alter);
        t.renamed_columns = std::move(diff.renamed);
        t.dropped_columns = std::move(diff.dropped);
        t.added_columns = std::move(diff.added);
      }
    }
    if (row == tracked->end()) {
      t.action = TablePlan::Action::kTrack;
    } else if (created) {
      t.action = TablePlan::Action::kRepair;
    } else if (row->second.identity != identity || row->second.columns != columns) {
      t.action = TablePlan::Action::kColumnsChanged;
    }
    if (t.action == TablePlan::Action::kKeep && !t.drops.empty()) {
      t.action = TablePlan::Action::kRepair;  // only stale extra triggers were dropped
    }
    if (t.action != TablePlan::Action::kKeep) {
      t.statements.push_back(fmt::format(
          "INSERT INTO main._sluice_tables(name, identity, columns) VALUES ({}, {}, {}) "
          "ON CONFLICT(name) DO UPDATE SET identity = excluded.identity, columns = "
          "excluded.columns",
          QuoteLiteral(shape.name), QuoteLiteral(identity), QuoteLiteral(columns)));
    }
    t.shape = std::move(shape);
    plan.tables.push_back(std::move(t));
  }

  for (const auto& [name, row] : *tracked) {
    bool still = held.count(name) != 0;
    for (const TablePlan& t : plan.tables) still = still || t.name == name;
    if (still) continue;
    TablePlan t;
    t.name = name;
    t.action = gone.count(name) != 0 ? TablePlan::Action::kDropped : TablePlan::Action::kUntrack;
    for (const TablePlan& other : plan.tables) {
      if (other.renamed_from == name) t.renamed_to = other.name;
    }
    t.statements.push_back(
        fmt::format("DELETE FROM main._sluice_tables WHERE name = {}", QuoteLiteral(name)));
    plan.tables.push_back(std::move(t));
  }
  // Triggers on tables sluice does not track (renamed away, excluded, untracked).
  for (const ExistingTrigger& e : *triggers) {
    if (handled.count(Fold(e.table)) == 0) plan.cleanup.push_back(DropTriggerSql(e.name));
  }
  return plan;
}

Status ApplyTracking(SqliteDb& db, const TrackingPlan& plan) {
  SLUICE_RETURN_IF_ERROR(EnsureFullReadsTable(db));
  // Read before any mark changes: a renamed table takes over its old name's renames.
  Result<std::vector<FullReadMark>> pending = ReadFullReadMarks(db);
  if (!pending.ok()) return pending.status();
  // Every drop before any create: a stale trigger may carry the name another
  // table's new trigger needs (ALTER TABLE ... RENAME keeps trigger names).
  for (const std::string& sql : plan.cleanup) SLUICE_RETURN_IF_ERROR(db.Exec(sql));
  for (const TablePlan& t : plan.tables) {
    for (const std::string& sql : t.drops) SLUICE_RETURN_IF_ERROR(db.Exec(sql));
  }
  for (const TablePlan& t : plan.tables) {
    for (const std::string& sql : t.statements) {
      Status s = db.Exec(sql);
      if (!s.ok()) return s.Wrap(fmt::format("track table \"{}\"", t.name));
    }
    // In the same transaction as the triggers: the full read this table needs
    // is decided durably, so a kill before the sink commit cannot lose it. For
    // a table gone from the file the mark stands for an empty full read: every
    // live row of its mirror becomes a tombstone.
    if (NeedsResync(t.action) || t.action == TablePlan::Action::kDropped) {
      Status s = RenewsRenames(t) ? MarkFullRead(db, MarkWithRenames(t, *pending))
                                  : MarkFullRead(db, t.name);
      if (!s.ok()) return s.Wrap(fmt::format("mark table \"{}\" for a full read", t.name));
    }
    LogTracking(t);
  }
  return Status::Ok();
}

}  // namespace sluice
