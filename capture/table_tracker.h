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
  // triggers are those of a tracked table now gone was renamed from it (then
  // that table's plan has renamed_to); columns are compared with the ones
  // recorded in _sluice_tables (see DiffColumns).
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

// How a table's columns moved from `before` to `after` (names in table
// order). A column keeps its position when renamed (RENAME COLUMN) and loses
// it when dropped; ADD COLUMN appends. So: with as many columns before as
// after, each position whose name changed to one that was not there before is
// a rename; otherwise names that left were dropped and new ones added. Pure.
struct ColumnDiff {
  std::vector<std::pair<std::string, std::string>> renamed;  // old -> new
  std::vector<std::string> dropped;
  std::vector<std::string> added;
};
ColumnDiff DiffColumns(const std::vector<std::string>& before,
                       const std::vector<std::string>& after);

// Creates _sluice_meta, _sluice_tables and _sluice_journal if missing and
// mints the source id once. Needs a write transaction.
Status EnsureCaptureTables(SqliteDb& db);
// The source id, or kInvalidArgument ("run `sluice init` first") if missing.
Result<std::string> ReadSourceId(SqliteDb& db);

// kInvalidArgument when a table to track has a name the sink cannot hold;
// with hold_refused, such a table is listed in plan.refused instead and the
// others are planned as usual (the running agent, one table's problem).
Result<TrackingPlan> PlanTracking(SqliteDb& db, const TableFilter& filter,
                                  bool hold_refused = false);
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
