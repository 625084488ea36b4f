// MirrorTable: the sink table that receives one source table's rows, planned
// from its TableShape, the per-column type overrides and, when the table
// already exists at the sink (created by an earlier run or adopted from the
// app's own PostgreSQL migrations), the columns found there. Pure; any thread.
// Used by SinkAdmin::EnsureMirror and by BatchApplier's catalog step.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "common/status.h"
#include "common/table_shape.h"
#include "sink/type_mapping.h"

namespace sluice {

// At most this many tables' DDL per transaction (sluice init, and the agent
// when tables appear): creating a table takes about ten locks (table, key and
// evict indexes, TOAST table and index, types) held until the commit, and
// PostgreSQL's shared lock table holds only max_locks_per_transaction (64) x
// (max_connections + background slots) of them for every session together:
// thousands of tables in one transaction fail with "out of shared memory".
inline constexpr size_t kDdlTablesPerTransaction = 20;

// One row of pg_sql's CatalogColumnsSql().
struct ExistingColumn {
  std::string name;
  std::string type;       // format_type with typmod, e.g. "character varying(255)"
  std::string base_type;  // format_type without typmod, e.g. "character varying"
};

// What the sink's catalog says about a mirror table.
struct ExistingTable {
  std::vector<ExistingColumn> columns;   // empty: the table does not exist
  bool key_index_exists = false;         // a unique index covers exactly the key columns
  std::vector<std::string> index_names;  // every index on it (pg_sql's TableIndexesSql)
  std::string relid;                     // its pg_class oid, decimal
  int64_t pages = 0;                     // heap pages, and their size, when read
  int64_t page_bytes = 8192;
  // Its conflict triggers that exist (pg_sql's ConflictTriggersSql): name ->
  // arguments as PostgreSQL stores them (each followed by a NUL byte).
  std::map<std::string, std::string> triggers;
};

struct MirrorColumn {
  std::string name;
  std::string pg_type;    // as created, or as found at the sink
  std::string cast_type;  // what parameter text is cast to (no typmod, so that the
                          // column's own assignment rules apply: too long → error)
  TargetKind kind = TargetKind::kText;
  bool exists = false;  // already at the sink
};

struct MirrorTable {
  std::string schema;
  std::string table;
  std::string qualified;              // "schema"."table"
  std::vector<MirrorColumn> columns;  // in TableShape::columns order
  std::vector<size_t> key;            // indices into columns, in key order
  // Statements that create or extend the table; empty when it is ready.
  std::vector<std::string> ddl;
  // Set when the table at the sink is a mirror whose key is not the shape's
  // (the app dropped the table and created it again with another key): `ddl`
  // then tombstones its rows, renames it (and its indexes) to this name and
  // creates the new mirror, which needs a full read.
  std::string set_aside_as;
};

// `deployment`: whose agent's writes the conflict triggers tell from outside
// writes (every mirror detects them; see pg_sql's ConflictDetectionSql).
// `overrides`: column -> PostgreSQL type for this table (may be null).
// `existing`: the table at the sink (no columns when it does not exist).
// A table that exists without sluice's columns is adopted: columns and a
// unique index on the key are added. One that already has them is an earlier
// mirror: if no unique index covers exactly the key, the key changed and the
// table is set aside (see MirrorTable::set_aside_as), never deleted.
// Every UNIQUE key of the shape gets an index for EvictSql (on its first
// column) unless `existing` has it.
// InvalidArgument for names PostgreSQL cannot hold faithfully, a table without
// key, a source column named like a sluice column, or an unsafe override.
Result<MirrorTable> PlanMirror(const std::string& schema, const std::string& deployment,
                               const TableShape& shape,
                               const std::map<std::string, std::string>* overrides,
                               const ExistingTable& existing);

// The overrides for `table` in SinkOptions::column_types form, or null.
const std::map<std::string, std::string>* OverridesFor(
    const std::map<std::string, std::map<std::string, std::string>>& column_types,
    const std::string& table);

}  // namespace sluice
