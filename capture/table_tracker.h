// Table tracker: reconciles the file's sluice objects with its current schema.
// PlanTracking compares the tables matching the filter with _sluice_tables and
// the _sluice_* triggers present; ApplyTracking runs the plan's DDL. Shared by
// InstallCapture and JournalReader::CheckSchema; runs on the caller's thread
// inside the caller's transaction (BEGIN IMMEDIATE to apply).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "capture/sqlite_db.h"
#include "capture/table_filter.h"
#include "capture/table_refusal.h"
#include "common/change.h"
#include "common/status.h"
#include "common/table_shape.h"

namespace sluice {

struct TablePlan {
  enum class Action {
    kKeep,            // tracked, triggers and recorded columns current
    kTrack,           // not tracked yet: install triggers, record
    kRepair,          // triggers missing or stale (table rebuilt/renamed): reinstall
    kColumnsChanged,  // triggers fine, columns or identity moved: record
    kUntrack,         // still in the file but no longer matching the filter: forget
    kDropped,         // gone from the file (dropped or renamed away): forget, and
                      // mark it so that its mirror's live rows become tombstones
  };
  std::string name;
  TableShape shape;  // current shape without value stats (empty for kUntrack, kDropped)
  Action action = Action::kKeep;
  // Renames, found from what SQLite's ALTER TABLE leaves behind: a table whose
  // triggers are those of another tracked table was renamed from it (then
  // that table's plan has renamed_to if no table has its name again, else the
  // table of that name is a new one, kTrack); columns are compared with the
  // ones recorded in _sluice_tables (see DiffColumns).
  std::string renamed_from;
  std::string renamed_to;
  std::vector<std::pair<std::string, std::string>> renamed_columns;  // old -> new
  std::vector<std::string> dropped_columns;
  std::vector<std::string> added_columns;
  // False for kUntrack and kDropped: no shape, no triggers.
  bool tracked() const { return action != Action::kUntrack && action != Action::kDropped; }
  std::vector<std::string> drops;       // stale _sluice_* triggers on this table
  std::vector<std::string> statements;  // then: trigger creation, _sluice_tables row
};

struct TrackingPlan {
  std::vector<TablePlan> tables;
  std::vector<std::string> cleanup;  // drops of orphaned _sluice_* triggers
  // Tables held back (PlanTracking with `refused`): not in `tables`, yet
  // neither untracked nor stripped of their triggers.
  std::vector<TableRefusal> refused;
  bool NeedsWrite() const;
};

// True for actions after which the table's sink copy needs a full read.
bool NeedsResync(TablePlan::Action action);

// How a table's columns moved from `before` to `after` (in table order).
// SQLite keeps no trace of which ALTER ran, so a rename is inferred only when
// nothing else explains the change: `one_alter` (the schema version moved by
// exactly one statement since `before` was recorded), as many columns before
// as after, exactly one position whose name changed (RENAME COLUMN renames
// one, in place) to one that was not there before, with the same definition
// (declared type, NOT NULL) and key position. Anything else is names that
// left (dropped) and new ones (added): DROP a + ADD b with b where a was is
// never a rename, and a rename taken for drop + add loses nothing (the
// mirror keeps the old column with its values). Pure.
struct ColumnFacts {
  std::string name;
  std::string definition;  // ColumnDefinitionText
  int key_position = 0;    // 1-based position in the row identity; 0 = not a key column
};
struct ColumnDiff {
  std::vector<std::pair<std::string, std::string>> renamed;  // old -> new
  std::vector<std::string> dropped;
  std::vector<std::string> added;
};
ColumnDiff DiffColumns(const std::vector<ColumnFacts>& before,
                       const std::vector<ColumnFacts>& after, bool one_alter);

// Creates _sluice_meta, _sluice_tables and _sluice_journal if missing and
// mints the source id once. Needs a write transaction.
Status EnsureCaptureTables(SqliteDb& db);
// The source id, or kInvalidArgument ("run `sluice init` first") if missing.
Result<std::string> ReadSourceId(SqliteDb& db);

// kInvalidArgument when a table to track has a name the sink cannot hold;
// with hold_refused, such a table is listed in plan.refused instead and the
// others are planned as usual (the running agent, one table's problem).
// `recorded_at`: the schema version at which _sluice_tables was last known
// to match the file (-1 unknown): column renames are inferred only when the
// schema version is exactly one past it (see DiffColumns).
// A table holding capture triggers named after another tracked table was
// renamed from it (ALTER TABLE ... RENAME carries triggers), even when a new
// table has taken the old name since: that one is then a new table.
Result<TrackingPlan> PlanTracking(SqliteDb& db, const TableFilter& filter,
                                  bool hold_refused = false, int64_t recorded_at = -1);
Status ApplyTracking(SqliteDb& db, const TrackingPlan& plan);

// Durable "read this table whole" marks (_sluice_full_reads): set in the same
// SQLite transaction that starts or repairs tracking (and by `sluice resync`),
// cleared only after the sink commit of a batch that read the table whole, and
// only if no newer mark was set meanwhile (the token moved).
// A mark may carry renames (FullReadMark::former_names, column_renames).
Status EnsureFullReadsTable(SqliteDb& db);  // needs a write transaction
// Sets or renews the mark; renames already recorded with it are kept.
Status MarkFullRead(SqliteDb& db, const std::string& table);
// Sets or renews the mark for `mark.table` with exactly `mark`'s renames.
Status MarkFullRead(SqliteDb& db, const FullReadMark& mark);
Result<std::vector<FullReadMark>> ReadFullReadMarks(SqliteDb& db);
Status ClearFullReads(SqliteDb& db, const std::vector<FullReadMark>& marks);

// A random UUID v4 in canonical text form, from /dev/urandom.
Result<std::string> NewUuid();

}  // namespace sluice
