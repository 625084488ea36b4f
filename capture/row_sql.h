// SQL text the JournalReader and the installer use to read rows: the select
// list in TableShape column order, key lookups, full scans and the value-stats
// scan. Pure string building; any thread.
#pragma once

#include <string>

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
// One scan giving, per column i, 7 result columns: has null, integer, real,
// text, blob (0/1 or NULL on an empty table), all text is JSON, all integers
// are 0/1 (0/1 or NULL on an empty table).
std::string ValueStatsSql(const TableShape& shape);
inline constexpr int kStatsPerColumn = 7;

}  // namespace sluice
