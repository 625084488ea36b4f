// SQL text the JournalReader and the installer use to read rows: the select
// list in TableShape column order, key lookups, full scans and the value-stats
// scans. Pure string building; any thread. A select list has one result
// column per TableShape column: CheckLimits (schema_reader.h) keeps that
// within SQLite's limit.
#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "common/table_shape.h"

namespace sluice {

// Every column of `shape` in order (the rowid alias first for kRowid tables).
std::string SelectList(const TableShape& shape);
// SELECT <all> FROM "T"
std::string FullScanSql(const TableShape& shape);
// SELECT <all> FROM "T" WHERE "k1" IS ?1 AND ... (or WHERE rowid = ?1).
std::string LookupSql(const TableShape& shape);
// SELECT <all> FROM "T" WHERE <key expression> = ?1: matches a key by its
// encoded text (a scan), for REAL keys whose printf form does not round trip.
std::string LookupByEncodedKeySql(const TableShape& shape);
// One scan giving, per column i in [first, first + count), 7 result columns:
// has null, integer, real, text, blob (0/1 or NULL on an empty table), all
// text is JSON, all integers are 0/1 (0/1 or NULL on an empty table).
std::string ValueStatsSql(const TableShape& shape, size_t first, size_t count);
inline constexpr int kStatsPerColumn = 7;
// Splits the columns into (first, count) groups whose ValueStatsSql stays
// within SQLite's result-column limit `column_limit` (SQLITE_LIMIT_COLUMN,
// 2,000 by default: 285 columns a query). None for a table without columns.
std::vector<std::pair<size_t, size_t>> ValueStatsGroups(const TableShape& shape, int column_limit);

}  // namespace sluice
