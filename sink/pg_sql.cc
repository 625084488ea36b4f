// Statement text builders (see pg_sql.h).
#include "sink/pg_sql.h"

#include <algorithm>
#include <cstdint>

#include "sink/value_encoder.h"

namespace sluice {
namespace {

std::string JoinQuoted(const std::vector<std::string>& names) {
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += ", ";
    out += QuoteIdent(names[i]);
  }
  return out;
}

// 8 hex digits of FNV-1a: short, stable names for long identifiers.
std::string Hash8(std::string_view text) {
  uint32_t h = 2166136261u;
  for (unsigned char c : text) h = (h ^ c) * 16777619u;
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(8, '0');
  for (int i = 7; i >= 0; --i, h >>= 4) out[static_cast<size_t>(i)] = kHex[h & 15];
  return out;
}

// (e->>i)::type
std::string Element(size_t index, std::string_view type) {
  return "(e->>" + std::to_string(index) + ")::" + std::string(type);
}

}  // namespace

std::string QualifiedName(std::string_view schema, std::string_view table) {
  return QuoteIdent(schema) + "." + QuoteIdent(table);
}

Status CheckIdentifier(std::string_view name, std::string_view what) {
  if (name.empty()) return Status::InvalidArgument(std::string(what) + " has an empty name");
  if (!IsValidUtf8(name) || name.find('\0') != std::string_view::npos) {
    return Status::InvalidArgument(std::string(what) +
                                   " has a name that is not valid UTF-8 (or holds NUL)");
  }
  if (name.size() > kMaxIdentifierBytes) {
    return Status::InvalidArgument(std::string(what) + " name " + PreviewBytes(name) + " is " +
                                   std::to_string(name.size()) +
                                   " bytes long; PostgreSQL truncates names to 63 bytes, "
                                   "which could make two names collide");
  }
  return Status::Ok();
}

std::string CreateSchemaSql(std::string_view schema) {
  return "CREATE SCHEMA IF NOT EXISTS " + QuoteIdent(schema);
}

std::string CreateTableSql(std::string_view schema, std::string_view table,
                           const std::vector<SqlColumn>& columns,
                           const std::vector<std::string>& key) {
  std::string sql = "CREATE TABLE IF NOT EXISTS " + QualifiedName(schema, table) + " (";
  for (const SqlColumn& c : columns) sql += QuoteIdent(c.name) + " " + c.type + ", ";
  sql += QuoteIdent(kSeqColumn) + " bigint NOT NULL, ";
  sql += QuoteIdent(kDeletedAtColumn) + " timestamptz, ";
  sql += QuoteIdent(kUpdatedAtColumn) + " timestamptz NOT NULL DEFAULT now(), ";
  sql += QuoteIdent(kOutsideAtColumn) + " timestamptz, ";
  sql += QuoteIdent(kBaseColumn) + " jsonb, ";
  sql += "PRIMARY KEY (" + JoinQuoted(key) + "))";
  return sql;
}

std::string AddColumnsSql(std::string_view schema, std::string_view table,
                          const std::vector<SqlColumn>& columns) {
  std::string sql = "ALTER TABLE " + QualifiedName(schema, table);
  for (size_t i = 0; i < columns.size(); ++i) {
    sql += i == 0 ? " " : ", ";
    sql += "ADD COLUMN IF NOT EXISTS " + QuoteIdent(columns[i].name) + " " + columns[i].type;
  }
  return sql;
}

std::vector<SqlColumn> SluiceColumnsForAdoption() {
  return {{kSeqColumn, "bigint"},
          {kDeletedAtColumn, "timestamptz"},
          {kUpdatedAtColumn, "timestamptz NOT NULL DEFAULT now()"},
          {kOutsideAtColumn, "timestamptz"},
          {kBaseColumn, "jsonb"}};
}

std::string OutsideIndexName(std::string_view table) {
  return NameWithSuffix(table, "_sluice_outside");
}

std::vector<std::string> ConflictDetectionSql(std::string_view schema, std::string_view table,
                                              std::string_view deployment,
                                              const std::vector<std::string>& key) {
  const std::string q = QualifiedName(schema, table);
  const std::string dep = QuoteLiteral(deployment);
  std::string args = dep;
  for (const std::string& k : key) args += ", " + QuoteLiteral(k);
  const std::string writer = "current_setting('sluice.writer', true)";
  const std::string outside = QuoteIdent(kOutsideAtColumn);
  auto trigger = [&](std::string_view name, std::string_view when_event, std::string_view rows,
                     const std::string& condition, std::string_view function) {
    return "CREATE OR REPLACE TRIGGER " + std::string(name) + " " + std::string(when_event) +
           " ON " + q + " " + std::string(rows) + " WHEN (" + condition +
           ") EXECUTE FUNCTION sync_metadata." + std::string(function) + "(" + args + ")";
  };
  return {
      "ALTER TABLE " + q + " ALTER COLUMN " + outside + " SET DEFAULT clock_timestamp(), " +
          "ALTER COLUMN " + QuoteIdent(kSeqColumn) + " SET DEFAULT -1",
      "CREATE INDEX IF NOT EXISTS " + QuoteIdent(OutsideIndexName(table)) + " ON " + q + " (" +
          outside + ") WHERE " + outside + " IS NOT NULL",
      trigger(kConflictTriggers[0], "BEFORE UPDATE", "FOR EACH ROW",
              writer + " IS DISTINCT FROM " + dep, "sluice_outside_write"),
      trigger(kConflictTriggers[1], "BEFORE UPDATE", "FOR EACH ROW",
              "OLD." + outside + " IS NOT NULL AND " + writer + " = " + dep, "sluice_conflict"),
      trigger(kConflictTriggers[2], "BEFORE DELETE", "FOR EACH ROW",
              writer + " IS DISTINCT FROM " + dep, "sluice_outside_delete"),
      trigger(kConflictTriggers[3], "AFTER INSERT",
              "REFERENCING NEW TABLE AS sluice_new FOR EACH STATEMENT", writer + " = " + dep,
              "sluice_inserted"),
  };
}

std::string NameWithSuffix(std::string_view base, std::string_view suffix) {
  std::string name = std::string(base) + std::string(suffix);
  if (name.size() <= kMaxIdentifierBytes) return name;
  // Suffixes are sluice's own, a few bytes long.
  size_t keep = kMaxIdentifierBytes - suffix.size() - 9;  // "_" + 8 hex digits
  while (keep > 0 && (static_cast<unsigned char>(base[keep]) & 0xC0) == 0x80) --keep;
  return std::string(base.substr(0, keep)) + "_" + Hash8(base) + std::string(suffix);
}

std::string KeyIndexName(std::string_view table) { return NameWithSuffix(table, "_sluice_key"); }

std::string EvictIndexName(std::string_view table, std::string_view column) {
  std::string both = std::string(table) + '\0' + std::string(column);
  return NameWithSuffix(std::string(table) + "_" + std::string(column) + "_" + Hash8(both),
                        "_sluice_evict");
}

std::string CreateEvictIndexSql(std::string_view schema, std::string_view table,
                                std::string_view column) {
  return "CREATE INDEX IF NOT EXISTS " + QuoteIdent(EvictIndexName(table, column)) + " ON " +
         QualifiedName(schema, table) + " USING hash (" + QuoteIdent(column) + ") WHERE " +
         QuoteIdent(kDeletedAtColumn) + " IS NULL";
}

std::string AsideName(std::string_view name, std::string_view relid) {
  return NameWithSuffix(name, "__old_" + std::string(relid));
}

std::string RenameTableSql(std::string_view schema, std::string_view from, std::string_view to) {
  return "ALTER TABLE " + QualifiedName(schema, from) + " RENAME TO " + QuoteIdent(to);
}

std::string RenameIndexSql(std::string_view schema, std::string_view from, std::string_view to) {
  return "ALTER INDEX " + QualifiedName(schema, from) + " RENAME TO " + QuoteIdent(to);
}

std::string RenameColumnSql(std::string_view schema, std::string_view table, std::string_view from,
                            std::string_view to) {
  return "ALTER TABLE " + QualifiedName(schema, table) + " RENAME COLUMN " + QuoteIdent(from) +
         " TO " + QuoteIdent(to);
}

std::string CreateKeyIndexSql(std::string_view schema, std::string_view table,
                              const std::vector<std::string>& key) {
  return "CREATE UNIQUE INDEX IF NOT EXISTS " + QuoteIdent(KeyIndexName(table)) + " ON " +
         QualifiedName(schema, table) + " (" + JoinQuoted(key) + ")";
}

std::string CatalogColumnsSql() {
  // The cast type: the type without its typmod, but bpchar and varbit for
  // character(n) and bit(n) (format_type's "character" and "bit" are length 1:
  // a cast to them cuts 'abc' to 'a', or refuses '101').
  return "SELECT a.attname, format_type(a.atttypid, a.atttypmod), CASE a.atttypid "
         "WHEN 'bpchar'::regtype THEN 'bpchar' WHEN 'bit'::regtype THEN 'varbit' "
         "WHEN '_bpchar'::regtype THEN 'bpchar[]' WHEN '_bit'::regtype THEN 'varbit[]' "
         "ELSE format_type(a.atttypid, NULL) END "
         "FROM pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 "
         "AND NOT a.attisdropped ORDER BY a.attnum";
}

std::string TableIndexesSql() {
  return "SELECT c.oid::text, ic.relname::text, pg_relation_size(c.oid) / "
         "current_setting('block_size')::bigint, current_setting('block_size')::bigint "
         "FROM pg_class c "
         "LEFT JOIN pg_index i ON i.indrelid = c.oid LEFT JOIN pg_class ic ON ic.oid = "
         "i.indexrelid "
         "WHERE c.oid = to_regclass($1) ORDER BY 2";
}

std::string ConflictTriggersSql() {
  return "SELECT t.tgname::text, encode(t.tgargs, 'hex') FROM pg_trigger t "
         "JOIN pg_proc p ON p.oid = t.tgfoid "
         "JOIN pg_namespace n ON n.oid = p.pronamespace WHERE t.tgrelid = to_regclass($1) "
         "AND NOT t.tgisinternal AND n.nspname = 'sync_metadata' ORDER BY 1";
}

std::string KeyIndexExistsSql() {
  return "SELECT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = to_regclass($1) "
         "AND i.indisunique AND i.indisvalid AND i.indimmediate AND i.indpred IS NULL "
         "AND i.indexprs IS NULL "
         "AND (SELECT array_agg(a.attname::text ORDER BY a.attname::text) FROM pg_attribute a "
         "WHERE a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)) = "
         "(SELECT array_agg(k ORDER BY k) FROM jsonb_array_elements_text($2::jsonb) AS k))";
}

std::string UpsertSql(std::string_view qualified, const std::vector<SqlColumn>& columns,
                      const std::vector<size_t>& key) {
  std::string names, values, keys, sets;
  for (size_t i = 0; i < columns.size(); ++i) {
    names += QuoteIdent(columns[i].name) + ", ";
    values += Element(i, columns[i].type) + ", ";
  }
  for (size_t k = 0; k < key.size(); ++k) {
    if (k > 0) keys += ", ";
    keys += QuoteIdent(columns[key[k]].name);
  }
  for (size_t i = 0; i < columns.size(); ++i) {
    bool is_key = false;
    for (size_t k : key) is_key = is_key || k == i;
    if (is_key) continue;
    std::string q = QuoteIdent(columns[i].name);
    sets += q + " = EXCLUDED." + q + ", ";
  }
  const std::string seq = QuoteIdent(kSeqColumn);
  const std::string deleted = QuoteIdent(kDeletedAtColumn);
  const std::string updated = QuoteIdent(kUpdatedAtColumn);
  // _sluice_outside_at NULL: a row sluice inserts is not marked (its default marks outside ones).
  // _sluice_base: kExpectedRowMarker for a row the source updated (not in DO UPDATE's SET).
  return "INSERT INTO " + std::string(qualified) + " AS t (" + names + seq + ", " + deleted + ", " +
         updated + ", " + QuoteIdent(kOutsideAtColumn) + ", " + QuoteIdent(kBaseColumn) +
         ") SELECT " + values + Element(columns.size(), "bigint") +
         ", NULL, now(), NULL, CASE WHEN (e->>" + std::to_string(columns.size() + 1) +
         ") IS NOT NULL THEN " + QuoteLiteral(kExpectedRowMarker) +
         "::jsonb END FROM jsonb_array_elements($1::jsonb) AS e ON CONFLICT (" + keys +
         ") DO UPDATE SET " + sets + seq + " = EXCLUDED." + seq + ", " + deleted + " = NULL, " +
         updated + " = now()";
}

std::string CopySql(std::string_view qualified, const std::vector<SqlColumn>& columns) {
  std::string names;
  for (const SqlColumn& c : columns) names += QuoteIdent(c.name) + ", ";
  return "COPY " + std::string(qualified) + " (" + names + QuoteIdent(kSeqColumn) + ", " +
         QuoteIdent(kOutsideAtColumn) + ", " + QuoteIdent(kBaseColumn) + ") FROM STDIN";
}

std::string TableEmptySql(std::string_view qualified) {
  // COPY FROM refuses a table under row-level security for this role (0A000):
  // such a mirror keeps the upserts.
  const std::string q = std::string(qualified);
  return "SELECT NOT EXISTS (SELECT 1 FROM " + q + ") AND NOT row_security_active(" +
         QuoteLiteral(q) + "::regclass)";
}

std::string DeleteSql(std::string_view qualified, std::string_view table,
                      const std::vector<SqlColumn>& key_columns) {
  const std::string deleted = QuoteIdent(kDeletedAtColumn);
  // An outside hard DELETE of a row the source now deletes too: both agree,
  // the open outside_deletes entry is used up (a later insert is a new row).
  std::string row_key;
  for (size_t k = 0; k < key_columns.size(); ++k) {
    row_key += (k > 0 ? ", " : "") + Element(k, key_columns[k].type);
  }
  std::string sql =
      "WITH sluice_agreed AS (UPDATE sync_metadata.outside_deletes AS d SET consumed_at = now() "
      "FROM jsonb_array_elements($1::jsonb) AS e WHERE d.deployment = "
      "current_setting('sluice.writer') AND d.table_name = " +
      QuoteLiteral(table) + " AND d.consumed_at IS NULL AND d.row_key = jsonb_build_array(" +
      row_key + ")) UPDATE " + std::string(qualified) + " AS t SET " + deleted + " = now(), " +
      QuoteIdent(kSeqColumn) + " = " + Element(key_columns.size(), "bigint") + ", " +
      QuoteIdent(kUpdatedAtColumn) + " = now() FROM jsonb_array_elements($1::jsonb) AS e WHERE ";
  for (size_t k = 0; k < key_columns.size(); ++k) {
    sql +=
        "t." + QuoteIdent(key_columns[k].name) + " = " + Element(k, key_columns[k].type) + " AND ";
  }
  // Live rows, and tombstones an outside writer made (marked): sluice_conflict
  // finds both sides agree and clears the mark.
  sql += "(t." + deleted + " IS NULL OR t." + QuoteIdent(kOutsideAtColumn) + " IS NOT NULL)";
  return sql;
}

std::string EvictSql(std::string_view qualified, const std::vector<SqlColumn>& columns,
                     const std::vector<size_t>& key, const std::vector<size_t>& unique) {
  const std::string deleted = QuoteIdent(kDeletedAtColumn);
  std::string sql = "UPDATE " + std::string(qualified) + " AS t SET " + deleted + " = now(), " +
                    QuoteIdent(kUpdatedAtColumn) +
                    " = now() FROM jsonb_array_elements($1::jsonb) AS e WHERE ";
  for (size_t u : unique) {
    sql += "t." + QuoteIdent(columns[u].name) + " = " + Element(u, columns[u].type) + " AND ";
  }
  std::string target_key, row_key;
  for (size_t k = 0; k < key.size(); ++k) {
    if (k > 0) {
      target_key += ", ";
      row_key += ", ";
    }
    target_key += "t." + QuoteIdent(columns[key[k]].name);
    row_key += Element(key[k], columns[key[k]].type);
  }
  sql +=
      "ROW(" + target_key + ") IS DISTINCT FROM ROW(" + row_key + ") AND t." + deleted + " IS NULL";
  return sql;
}

std::string TombstoneAllSql(std::string_view qualified) {
  const std::string deleted = QuoteIdent(kDeletedAtColumn);
  return "UPDATE " + std::string(qualified) + " SET " + deleted + " = now(), " +
         QuoteIdent(kUpdatedAtColumn) + " = now() WHERE " + deleted + " IS NULL";
}

std::string TombstoneRangeSql(std::string_view qualified) {
  const std::string deleted = QuoteIdent(kDeletedAtColumn);
  return "UPDATE " + std::string(qualified) + " SET " + deleted + " = now(), " +
         QuoteIdent(kUpdatedAtColumn) +
         " = now() WHERE ctid >= ('(' || $1::bigint || ',0)')::tid " +
         "AND ctid < ('(' || $2::bigint || ',0)')::tid AND " + deleted + " IS NULL AND " +
         QuoteIdent(kOutsideAtColumn) + " IS NULL";
}

std::string OrphanSql(std::string_view qualified) {
  const std::string deleted = QuoteIdent(kDeletedAtColumn);
  const std::string seq = QuoteIdent(kSeqColumn);
  return "UPDATE " + std::string(qualified) + " SET " + deleted + " = now(), " + seq +
         " = $1::bigint, " + QuoteIdent(kUpdatedAtColumn) + " = now() WHERE " +
         QuoteIdent(kOutsideAtColumn) + " IS NOT NULL AND " + deleted + " IS NULL AND " + seq +
         " IS DISTINCT FROM $1::bigint";
}

std::vector<std::string> TombstoneSweepSql(std::string_view qualified, int64_t pages,
                                           int64_t pages_per_statement) {
  const std::string deleted = QuoteIdent(kDeletedAtColumn);
  const std::string head = "UPDATE " + std::string(qualified) + " SET " + deleted + " = now(), " +
                           QuoteIdent(kUpdatedAtColumn) + " = now() WHERE " + deleted +
                           " IS NULL AND ctid >= '(";
  const int64_t step = std::max<int64_t>(1, pages_per_statement);
  std::vector<std::string> out;
  int64_t from = 0;
  for (; from + step < pages; from += step) {
    out.push_back(head + std::to_string(from) + ",0)'::tid AND ctid < '(" +
                  std::to_string(from + step) + ",0)'::tid");
  }
  out.push_back(head + std::to_string(from) + ",0)'::tid");
  return out;
}

std::string LockForWriteSql(std::string_view qualified) {
  return "LOCK TABLE " + std::string(qualified) + " IN ROW EXCLUSIVE MODE";
}

std::string RelationPagesSql() {
  return "SELECT pg_relation_size(to_regclass($1)) / current_setting('block_size')::bigint, "
         "current_setting('block_size')::bigint";
}

std::string MirrorDdlSql() {
  return "SELECT sync_metadata.sluice_mirror_ddl($1, $2, $3, $4::jsonb)";
}

std::string DdlModeSql() {
  return "SELECT CASE WHEN n.oid IS NOT NULL AND NOT has_schema_privilege(n.oid, 'CREATE') AND "
         "coalesce(has_function_privilege(to_regprocedure("
         "'sync_metadata.sluice_mirror_ddl(text,name,text,jsonb)'), 'EXECUTE'), false) "
         "THEN 'delegated' ELSE 'direct' END FROM (SELECT to_regnamespace(quote_ident($1)) AS oid) "
         "n";
}

std::string AdvanceSql() {
  return "SELECT sync_metadata.sluice_advance($1, $2::uuid, $3::bigint, $4::bigint, $5::bigint, "
         "$6::bigint)";
}

std::string FenceSql() { return "SELECT sync_metadata.sluice_fence($1, $2::bigint)"; }

std::string WriterSettingsSql() {
  return "SELECT set_config('sluice.writer', $1, true), set_config('sluice.apply', $2, true)";
}

std::string ToastCompressionSql() {
  return "SELECT set_config('default_toast_compression', $1, true) FROM pg_catalog.pg_settings "
         "WHERE name = 'default_toast_compression' AND $1 = ANY (enumvals)";
}

std::string ConflictsSeenSql() {
  return "SELECT table_name, kind, coalesce(strategy, ''), status, count(*) FROM "
         "sync_metadata.conflict_log WHERE deployment = $1 AND seen_at = now() "
         "GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4";
}

std::string PendingConflictsSql() {
  return "SELECT count(*) FROM sync_metadata.conflict_log WHERE deployment = $1 AND "
         "status = 'pending'";
}

std::string LeaseTransactionSettingsSql() {
  return "SELECT set_config('idle_in_transaction_session_timeout', $1, true)";
}

std::string LostMirrorsSql() {
  return "SELECT m.table_name FROM sync_metadata.mirror_tables m "
         "LEFT JOIN pg_class c ON c.oid = to_regclass(quote_ident($2) || '.' || "
         "quote_ident(m.table_name)) "
         "WHERE m.deployment = $1 AND (jsonb_typeof($4::jsonb) <> 'array' OR m.table_name IN "
         "(SELECT jsonb_array_elements_text(CASE jsonb_typeof($4::jsonb) WHEN 'array' THEN "
         "$4::jsonb ELSE '[]' END))) AND (m.schema_name IS DISTINCT FROM $2 OR c.oid IS DISTINCT "
         "FROM m.relid OR c.relfilenode IS DISTINCT FROM m.relfilenode) "
         "UNION SELECT t FROM jsonb_array_elements_text($3::jsonb) AS t WHERE NOT EXISTS "
         "(SELECT 1 FROM sync_metadata.mirror_tables m WHERE m.deployment = $1 AND "
         "m.table_name = t) ORDER BY 1";
}

std::string RegisterMirrorsSql() {
  return "INSERT INTO sync_metadata.mirror_tables AS m (deployment, table_name, schema_name, "
         "relid, relfilenode, synced_seq, synced_at) "
         "SELECT $1, t, $2, c.oid, c.relfilenode, $4::bigint, now() "
         "FROM jsonb_array_elements_text($3::jsonb) AS t "
         "JOIN pg_class c ON c.oid = to_regclass(quote_ident($2) || '.' || quote_ident(t)) "
         "ON CONFLICT (deployment, table_name) DO UPDATE SET schema_name = EXCLUDED.schema_name, "
         "relid = EXCLUDED.relid, relfilenode = EXCLUDED.relfilenode, "
         "synced_seq = EXCLUDED.synced_seq, synced_at = EXCLUDED.synced_at";
}

std::string RenameMirrorSql() {
  return "UPDATE sync_metadata.mirror_tables SET table_name = $3 WHERE deployment = $1 AND "
         "table_name = $2 AND NOT EXISTS (SELECT 1 FROM sync_metadata.mirror_tables WHERE "
         "deployment = $1 AND table_name = $3)";
}

std::string ParkSql() {
  return "INSERT INTO sync_metadata.conflict_log (deployment, source_id, table_name, row_key, seq, "
         "kind, reason, source_data) SELECT $1, $2::uuid, e->>0, e->1, (e->>2)::bigint, "
         "'rejected', e->>3, e->4 FROM jsonb_array_elements($3::jsonb) AS e";
}

}  // namespace sluice
