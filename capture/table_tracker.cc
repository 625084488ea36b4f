// Table tracker. Triggers are compared by their stored CREATE text, which
// catches missing triggers (12-step rebuild), stale ones (identity changed)
// and ones carried along by ALTER TABLE ... RENAME (wrong table literal).
#include "capture/table_tracker.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

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
  return db.Exec(
      "CREATE TABLE IF NOT EXISTS main._sluice_full_reads(name TEXT PRIMARY KEY, token INTEGER "
      "NOT NULL)");
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

Result<std::vector<FullReadMark>> ReadFullReadMarks(SqliteDb& db) {
  // Files prepared by an older sluice get the table with their next tracking change.
  Result<int64_t> present = db.QueryInt64(
      "SELECT count(*) FROM main.sqlite_master WHERE type = 'table' AND name = "
      "'_sluice_full_reads'");
  if (!present.ok()) return present.status();
  if (*present == 0) return std::vector<FullReadMark>{};
  Result<Statement> s = db.Prepare("SELECT name, token FROM main._sluice_full_reads ORDER BY name");
  if (!s.ok()) return s.status();
  ScopedReset reset(&*s);
  std::vector<FullReadMark> out;
  for (;;) {
    Result<bool> row = s->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    out.push_back({s->ColumnText(0), s->ColumnInt64(1)});
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

Result<TrackingPlan> PlanTracking(SqliteDb& db, const TableFilter& filter, bool hold_refused) {
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
    bool created = false;
    for (const TriggerSql& x : expected) {
      if (in_place.count(Fold(x.name)) != 0) continue;
      t.statements.push_back(x.create);
      created = true;
    }
    std::string identity = IdentityText(shape);
    std::string columns = ColumnsText(shape);
    auto row = tracked->find(shape.name);
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
    t.action = TablePlan::Action::kUntrack;
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
    // is decided durably, so a kill before the sink commit cannot lose it.
    if (NeedsResync(t.action)) {
      Status s = MarkFullRead(db, t.name);
      if (!s.ok()) return s.Wrap(fmt::format("mark table \"{}\" for a full read", t.name));
    }
    if (t.action != TablePlan::Action::kKeep) {
      spdlog::info("capture: table \"{}\": {}", t.name,
                   t.action == TablePlan::Action::kTrack            ? "now tracked"
                   : t.action == TablePlan::Action::kRepair         ? "triggers reinstalled"
                   : t.action == TablePlan::Action::kColumnsChanged ? "columns changed"
                                                                    : "no longer tracked");
    }
  }
  return Status::Ok();
}

}  // namespace sluice
