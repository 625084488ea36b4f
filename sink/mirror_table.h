// MirrorTable: the sink table that receives one source table's rows, planned
// from its TableShape, the per-column type overrides and, when the table
// already exists at the sink (created by an earlier run or adopted from the
// app's own PostgreSQL migrations), the columns found there. Pure; any thread.
// Used by SinkAdmin::EnsureMirror and by BatchApplier's catalog step.
#pragma once

#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
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

// One call of sync_metadata.sluice_mirror_ddl(deployment, schema, table,
// step): pg_sql's MirrorDdlSql with these as $3 and $4.
struct DdlStep {
  std::string table;
  std::string step;  // a JSON object, {"op": ..., ...}
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
  // The same changes as steps of sync_metadata.sluice_mirror_ddl (sql/03),
  // for an agent whose role does not own the mirror schema (a host role):
  // one JSON object each.
  std::vector<DdlStep> steps;
  // Set when `ddl` holds what only the schema's owner may do (adopting a
  // table sluice did not create, setting a mirror aside): what, in words.
  std::string owner_only;
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

// How the agent's role changes mirror tables: by running `ddl` (it may
// create in the mirror schema: an administrator, `sluice init` as the
// owner), or through sluice_mirror_ddl's `steps` (a host role).
enum class DdlMode { kDirect, kDelegated };

// A statement with its text parameters (nullopt: NULL).
struct DdlStatement {
  std::string sql;
  std::vector<std::optional<std::string>> params;
};

// What carries out a plan's `ddl` / `steps` (a MirrorTable's or MovePlan's)
// under `mode`: the statements as they are, or one MirrorDdlSql call per step
// for `deployment` and its mirror `schema`. InvalidArgument under kDelegated when `owner_only` is
// set (it names what the mirror `qualified` needs and who can do it).
Result<std::vector<DdlStatement>> DdlStatements(DdlMode mode, const std::string& deployment,
                                                const std::string& schema,
                                                const std::string& qualified,
                                                const std::vector<std::string>& ddl,
                                                const std::vector<DdlStep>& steps,
                                                const std::string& owner_only);

// {"op":op, "k1":"v1", ...}: a DdlStep's step whose fields are strings.
std::string DdlStepJson(
    std::string_view op,
    std::initializer_list<std::pair<std::string_view, std::string_view>> fields);

// The overrides for `table` in SinkOptions::column_types form, or null.
const std::map<std::string, std::string>* OverridesFor(
    const std::map<std::string, std::map<std::string, std::string>>& column_types,
    const std::string& table);

}  // namespace sluice
