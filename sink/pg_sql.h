// PostgreSQL statement text: identifier quoting and the builders for every
// statement sink/ sends. Pure functions, any thread. Values never appear in the
// text: they travel as parameters ($n), rows as one jsonb array of arrays of
// strings/nulls, unpacked with jsonb_array_elements and cast per column.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/sql_quote.h"  // QuoteIdent
#include "common/status.h"
#include "common/table_shape.h"  // kMaxIdentifierBytes

namespace sluice {

// The control plane (sql/01-control-plane.sql) this binary needs at least:
// the version its last statement records in sync_metadata.schema_version.
inline constexpr int kControlPlaneVersion = 7;
// The version sql/03-host-isolation.sql records (component 'host-isolation').
inline constexpr int kHostIsolationVersion = 2;

// The sluice columns every mirror table carries.
inline constexpr const char* kSeqColumn = "_sluice_seq";
inline constexpr const char* kDeletedAtColumn = "_sluice_deleted_at";
inline constexpr const char* kUpdatedAtColumn = "_sluice_updated_at";
// Conflict detection (docs/design-conflicts.md): when an outside write last
// changed the row (NULL: the row is as sluice wrote it), and the image sluice
// had written before that, the merge base.
inline constexpr const char* kOutsideAtColumn = "_sluice_outside_at";
inline constexpr const char* kBaseColumn = "_sluice_base";
// In kBaseColumn of a row sluice's INSERT just created, for the length of the
// statement: "the source says this row existed" (sql/01-control-plane.sql,
// sluice_inserted; a base is otherwise an object, never a JSON string).
inline constexpr const char* kExpectedRowMarker = "\"update\"";
// The triggers each mirror carries for it (their arguments: deployment, then
// the key column names in key order).
inline constexpr const char* kConflictTriggers[] = {"sluice_outside", "sluice_conflict",
                                                    "sluice_outside_delete", "sluice_inserted"};

// "schema"."table"
std::string QualifiedName(std::string_view schema, std::string_view table);
// InvalidArgument unless `name` is 1..63 bytes of valid UTF-8 without NUL.
// `what` names it in the message ("table", "column \"x\" of table \"t\"").
Status CheckIdentifier(std::string_view name, std::string_view what);

// A column and a type: its definition in DDL, or in data statements the type
// the parameter text is cast to.
struct SqlColumn {
  std::string name;
  std::string type;
};

// --- DDL ---
std::string CreateSchemaSql(std::string_view schema);
// `key` are column names. Adds the sluice columns.
std::string CreateTableSql(std::string_view schema, std::string_view table,
                           const std::vector<SqlColumn>& columns,
                           const std::vector<std::string>& key);
// One ALTER TABLE adding each column IF NOT EXISTS.
std::string AddColumnsSql(std::string_view schema, std::string_view table,
                          const std::vector<SqlColumn>& columns);
// base + suffix, or, when that would exceed 63 bytes, base cut (at a UTF-8
// boundary) + "_" + 8 hex digits of a hash of the whole base + suffix, so that
// shortened names of long bases stay apart.
std::string NameWithSuffix(std::string_view base, std::string_view suffix);
// Name of the unique index sluice creates on an adopted table: "<table>_sluice_key",
// shortened with a hash when that would exceed 63 bytes.
std::string KeyIndexName(std::string_view table);
// Name of the index that serves EvictSql on `column`: "<table>_<column>_<hash>_sluice_evict"
// (the hash of table and column keeps "a_b"."c" and "a"."b_c" apart), shortened as above.
std::string EvictIndexName(std::string_view table, std::string_view column);
// A hash index (no size limit on the value, unlike a btree entry: a huge value
// never makes a row unstorable) on the live rows' `column`, for EvictSql.
std::string CreateEvictIndexSql(std::string_view schema, std::string_view table,
                                std::string_view column);
// Where a mirror whose key changed is kept: "<table>__old_<relid>" (relid: its
// pg_class oid, unique among live tables), shortened as above. Also used for
// its indexes, whose names must make room for the new mirror's.
std::string AsideName(std::string_view name, std::string_view relid);
std::string RenameTableSql(std::string_view schema, std::string_view from, std::string_view to);
std::string RenameIndexSql(std::string_view schema, std::string_view from, std::string_view to);
std::string RenameColumnSql(std::string_view schema, std::string_view table, std::string_view from,
                            std::string_view to);
std::string CreateKeyIndexSql(std::string_view schema, std::string_view table,
                              const std::vector<std::string>& key);
// The sluice columns' definitions for ALTER TABLE on an adopted table (no NOT
// NULL on _sluice_seq: existing rows have none), or on a mirror made before
// conflict detection (the two columns it lacks; without defaults, so adding
// them rewrites nothing: ConflictDetectionSql sets the defaults).
std::vector<SqlColumn> SluiceColumnsForAdoption();
// Name of the partial index on the marked rows: "<table>_sluice_outside", shortened as above.
std::string OutsideIndexName(std::string_view table);
// Statements that make a mirror detect outside writes (run after its columns
// exist; re-runnable): the defaults that mark an outside INSERT (and let it
// omit _sluice_seq), the index on marked rows, and the four triggers keyed on
// `deployment` (transaction-local setting sluice.writer), which call the
// functions of sql/01-control-plane.sql.
std::vector<std::string> ConflictDetectionSql(std::string_view schema, std::string_view table,
                                              std::string_view deployment,
                                              const std::vector<std::string>& key);

// --- catalog ---
// $1 = QualifiedName(schema, table). Rows: attname, format_type with typmod,
// format_type without typmod (the cast target), in column order. No rows when
// the table does not exist.
std::string CatalogColumnsSql();
// $1 = QualifiedName. Rows: the table's pg_class oid, then the name of one of its
// indexes (NULL when it has none). No rows when the table does not exist.
std::string TableIndexesSql();
// $1 = QualifiedName. Rows: the name of each trigger of the table that calls
// a function of sync_metadata (kConflictTriggers), and its arguments in hex
// (pg_trigger.tgargs: each argument followed by a NUL byte).
std::string ConflictTriggersSql();
// $1 = QualifiedName, $2 = JSON array of the key column names. One row, "t"
// when a valid, immediate, non-partial unique index covers exactly those columns.
std::string KeyIndexExistsSql();

// --- data (parameters documented per builder) ---
// $1: [[v0, ..., vN-1, seq(, 1)], ...] with each vi a string or null; the
// trailing 1 says the source updated a row it had before (Change::
// updates_existing): a row that INSERT creates then carries kExpectedRowMarker
// in kBaseColumn for the statement's sluice_inserted trigger, which reports
// update_missing and clears it. Rows that exist take the DO UPDATE and no marker.
std::string UpsertSql(std::string_view qualified, const std::vector<SqlColumn>& columns,
                      const std::vector<size_t>& key);
// $1: [[k0, ..., kM-1, seq], ...] key values in key order.
// COPY of new rows into a mirror (RowEncoder's COPY lines): the columns, then
// the seq, _sluice_outside_at and _sluice_base; the other columns take their
// defaults (deleted_at NULL, updated_at now()), as UpsertSql sets them.
std::string CopySql(std::string_view qualified, const std::vector<SqlColumn>& columns);
// One row: whether the table holds no row at all (live, tombstone, or another
// writer's) and no row-level security applies to this role there (COPY FROM
// refuses that): a full read into it may COPY.
std::string TableEmptySql(std::string_view qualified);
std::string DeleteSql(std::string_view qualified, std::string_view table,
                      const std::vector<SqlColumn>& key_columns);
// $1: the upserts' rows. Tombstones live rows that hold the same values in the
// UNIQUE columns `unique` as a row of $1 but another key: the source, which
// enforces that constraint, no longer has them (INSERT OR REPLACE evicted
// them without a delete trigger when recursive_triggers is off).
std::string EvictSql(std::string_view qualified, const std::vector<SqlColumn>& columns,
                     const std::vector<size_t>& key, const std::vector<size_t>& unique);
// No parameters: tombstones every live row (a full read re-upserts the survivors).
// One statement over the whole table; a full read sweeps with
// TombstoneRangeSql instead, a set-aside mirror with TombstoneSweepSql.
std::string TombstoneAllSql(std::string_view qualified);
// The same as statements without parameters (for DDL), each over
// `pages_per_statement` pages of a table of `pages` pages; the last one has no
// upper bound, so rows beyond the counted pages are tombstoned too.
std::vector<std::string> TombstoneSweepSql(std::string_view qualified, int64_t pages,
                                           int64_t pages_per_statement);
// $1: the snapshot seq of a batch that read the table whole (or dropped
// it). After its upserts: the live rows changed outside sluice that the
// snapshot did not carry (their _sluice_seq is another one; a row whose
// target was kept still took the source's seq) are the source's deletes, and
// meet sluice_conflict as such. Rows not changed outside were swept already.
std::string OrphanSql(std::string_view qualified);
// $1, $2: heap page numbers. Tombstones the live rows stored in pages
// [$1, $2) (a TID range scan, PostgreSQL 14+): a sweep over the pages
// RelationPagesSql counted tombstones the whole table in statements of
// bounded work. Row versions it writes beyond the counted pages are tombstones.
// Rows changed outside sluice are left to OrphanSql, which logs their conflicts.
std::string TombstoneRangeSql(std::string_view qualified);
// Keeps TRUNCATE, DROP and ALTER out until the transaction ends, before the
// table's pages are counted and swept.
std::string LockForWriteSql(std::string_view qualified);
// $1 = QualifiedName. One row: the number of heap pages of the table, the
// server's page size in bytes.
std::string RelationPagesSql();
// $1 deployment, $2 source uuid, $3 after, $4 to, $5 rows, $6 lease epoch (NULL: none).
// $1 = deployment, $2 = its mirror schema, $3 = table, $4 = a DdlStep's JSON
// (mirror_table.h): one schema change of the mirror done by sql/03's
// SECURITY DEFINER function.
std::string MirrorDdlSql();
// $1 = mirror schema. One row: "delegated" when the role may not create in
// the schema (which exists) and may run sluice_mirror_ddl to do it, else
// "direct" (see DdlMode).
std::string DdlModeSql();
std::string AdvanceSql();

// sluice_fence($1 deployment, $2 epoch): the last statement before every
// COMMIT of an apply or DDL transaction; SL002 when the epoch lost the lease.
std::string FenceSql();

// Transaction-local settings of every transaction that writes mirror rows:
// sluice.writer ($1, the deployment: the mirrors' triggers tell sluice's own
// writes from outside writes by it) and sluice.apply ($2, JSON: "mode"
// apply / resolve / retire, epoch, batch, source, and the conflict policy of
// the batch's tables, read by sync_metadata.sluice_conflict). Transaction-local,
// so they work through a transaction-mode pooler and never leak.
std::string WriterSettingsSql();

// $1 deployment. Rows: table_name, kind, strategy, status, count of the
// conflicts this transaction saw (seen_at = now()), before its COMMIT.
std::string ConflictsSeenSql();
// $1 deployment. One row: the number of pending (manual) conflicts.
std::string PendingConflictsSql();

// Transaction-local settings of an apply transaction under a lease:
// idle_in_transaction_session_timeout ($1, e.g. "5000ms"), so that the
// transaction of a frozen agent dies on its own within a lease.
std::string LeaseTransactionSettingsSql();
// $1: a method ("lz4", "pglz"): the transaction's default_toast_compression,
// when the server offers that method (a server built without lz4 keeps its own).
std::string ToastCompressionSql();
// --- mirror registry (sync_metadata.mirror_tables): which physical table
// (pg_class oid and relfilenode) holds each mirror since its last full read.
// A DROP / re-CREATE changes the oid, a TRUNCATE the relfilenode. ---
// $1 deployment, $2 schema, $3 JSON array of table names. Rows: names of the
// registered tables of the deployment whose mirror is no longer the one
// registered (dropped, recreated, truncated, or in another schema), plus the
// tables of $3 that were never registered (never read whole). Only tables
// among $4 (a JSON array of the names the source follows) are considered;
// $4 = null (not known yet) considers every registered table.
std::string LostMirrorsSql();
// $1 deployment, $2 schema, $3 JSON array of the table names read whole in
// this transaction, $4 the snapshot seq: registers their current oid and
// relfilenode. Run after the full reads' TombstoneAllSql, whose lock keeps a
// TRUNCATE out until the commit.
std::string RegisterMirrorsSql();

// $1 deployment, $2 old table name, $3 new table name: the registry row
// follows a mirror renamed with its source table (ALTER TABLE RENAME keeps oid
// and relfilenode). Does nothing if $3 has a row already (a stale one: the
// full read of $3 that follows registers it anew).
std::string RenameMirrorSql();

// $1 deployment, $2 source uuid, $3: [[table, row_key json, seq, reason, source_data json], ...]
std::string ParkSql();

}  // namespace sluice
