// Schema reader: turns SQLite's catalog (PRAGMA table_xinfo / index_list /
// index_info / table_list) into TableShape, choosing the row identity as
// PostgreSQL's replica identity would. Generated columns (VIRTUAL and STORED)
// are ordinary columns here: their values are read and mirrored like any
// other, and a UNIQUE index on NOT NULL generated columns can be the identity.
// ChooseIdentity, CheckNames and CheckLimits are pure
// (unit-tested without a file); the rest reads through a SqliteDb the caller
// owns, on the caller's thread, inside the caller's transaction if any.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "capture/sqlite_db.h"
#include "capture/table_filter.h"
#include "capture/table_refusal.h"
#include "common/status.h"
#include "common/table_shape.h"

namespace sluice {

// The catalog facts identity choice depends on.
struct RawColumn {
  std::string name;
  std::string declared_type;
  bool not_null = false;
  int pk = 0;  // 1-based position in the PRIMARY KEY, 0 if not part of it
};
struct RawIndex {
  std::string name;
  bool unique = false;
  bool partial = false;
  std::vector<int> cids;  // table column numbers; -1 rowid, -2 expression
};
struct RawTable {
  std::string name;
  std::vector<RawColumn> columns;
  bool without_rowid = false;
  std::vector<RawIndex> indexes;
};

// Identity: the PRIMARY KEY; else the UNIQUE, non-partial index over plain NOT
// NULL columns with the fewest columns (ties: index name); else the rowid, as
// a synthetic first column kRowidColumn. Value stats are left at defaults.
// ChooseIdentity without TableShape::unique_keys.
TableShape ChooseIdentityOnly(const RawTable& raw);
TableShape ChooseIdentity(const RawTable& raw);

// Refuses what the sink cannot hold: names over 63 bytes, names whose first 63
// bytes collide (PostgreSQL truncates identifiers there), columns named
// _sluice_*. The message names every offender and suggests source.exclude.
Status CheckNames(const std::vector<TableShape>& tables);

// PostgreSQL's limit on columns per table, and how many of them sluice keeps
// for the mirror's own columns (_sluice_seq, _sluice_deleted_at,
// _sluice_updated_at, and one spare; a synthetic _sluice_rowid is a
// TableShape column already and counts as one of the table's).
inline constexpr size_t kSinkMaxColumns = 1600;
inline constexpr size_t kSinkReservedColumns = 4;
// PostgreSQL's INDEX_MAX_KEYS: the mirror's key is an index at the sink (and
// the trigger's key expression stays well within SQLite's expression depth).
inline constexpr size_t kSinkMaxKeyColumns = 32;

// Refuses tables the engines cannot hold or read whole: more columns than
// kSinkMaxColumns - kSinkReservedColumns, a select list (rowid included)
// wider than SQLite's result-column limit `sqlite_column_limit`, or a row
// identity of more than kSinkMaxKeyColumns columns. The message
// names every offender and suggests source.exclude (kInvalidArgument).
Status CheckLimits(const std::vector<TableShape>& tables, int sqlite_column_limit);

// Reads the catalog of table `name` in the main schema.
Result<RawTable> ReadRawTable(SqliteDb& db, const std::string& name);
// ReadRawTable + ChooseIdentity; kInvalidArgument if no rowid name is usable.
Result<TableShape> DescribeTable(SqliteDb& db, const std::string& name);
// Scans the table and fills every column's seen_kinds / text_all_json /
// integers_all_bool: one scan per ValueStatsGroups group (up to 285 columns
// each), all inside the caller's read transaction, so from one snapshot.
Status FillValueStats(SqliteDb& db, TableShape* shape);

// CheckNames and CheckLimits for one table.
Status CheckTable(const TableShape& table, int sqlite_column_limit);

// Every table of ListUserTables that `filter` matches, described, after
// CheckNames and CheckLimits: the shapes `init` may track, without stats.
// Without `refused`, any refusal fails the whole call (init refuses); with
// it, a table refused on its own (CheckTable, or no usable identity) is left
// out and listed there, and the others are returned (the running agent).
Result<std::vector<TableShape>> DescribeTables(SqliteDb& db, const TableFilter& filter,
                                               std::vector<TableRefusal>* refused = nullptr);

// Ordinary tables of the main schema, by name, without sqlite_* / _sluice_*
// and without virtual tables (warned about) and their shadow tables.
Result<std::vector<std::string>> ListUserTables(SqliteDb& db);

}  // namespace sluice
