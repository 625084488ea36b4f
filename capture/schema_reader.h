// Schema reader: turns SQLite's catalog (PRAGMA table_info / index_list /
// index_info / table_list) into TableShape, choosing the row identity as
// PostgreSQL's replica identity would. ChooseIdentity and CheckNames are pure
// (unit-tested without a file); the rest reads through a SqliteDb the caller
// owns, on the caller's thread, inside the caller's transaction if any.
#pragma once

#include <string>
#include <vector>

#include "capture/sqlite_db.h"
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

// Reads the catalog of table `name` in the main schema.
Result<RawTable> ReadRawTable(SqliteDb& db, const std::string& name);
// ReadRawTable + ChooseIdentity; kInvalidArgument if no rowid name is usable.
Result<TableShape> DescribeTable(SqliteDb& db, const std::string& name);
// Scans the table once and fills every column's seen_kinds / text_all_json /
// integers_all_bool.
Status FillValueStats(SqliteDb& db, TableShape* shape);

// Ordinary tables of the main schema, by name, without sqlite_* / _sluice_*
// and without virtual tables (warned about) and their shadow tables.
Result<std::vector<std::string>> ListUserTables(SqliteDb& db);

}  // namespace sluice
