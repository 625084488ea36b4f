// Mirror table planning (see mirror_table.h).
#include "sink/mirror_table.h"

#include <algorithm>
#include <initializer_list>
#include <string_view>
#include <utility>

#include "sink/pg_sql.h"
#include "sink/value_encoder.h"

namespace sluice {
namespace {

// Override types go into DDL as written: allow type syntax only, so that a
// config value cannot smuggle a second statement or a comment in.
Status CheckTypeText(const std::string& type, const std::string& column) {
  bool ok =
      !type.empty() && type.find("--") == std::string::npos && type.find("/*") == std::string::npos;
  for (char c : type) {
    bool allowed = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   c == ' ' || c == '_' || c == '(' || c == ')' || c == ',' || c == '[' ||
                   c == ']' || c == '.';
    ok = ok && allowed;
  }
  if (!ok) {
    return Status::InvalidArgument("type override for column \"" + column + "\" (" +
                                   PreviewBytes(type) + ") is not a plain PostgreSQL type name");
  }
  return Status::Ok();
}

// {"name":..,"type":..} for each column, as a JSON array.
std::string ColumnsJson(const std::vector<SqlColumn>& columns) {
  std::string out = "[";
  for (const SqlColumn& c : columns) {
    if (out.size() > 1) out += ",";
    out += "{\"name\":";
    AppendJsonString(&out, c.name);
    out += ",\"type\":";
    AppendJsonString(&out, c.type);
    out += "}";
  }
  return out + "]";
}

bool HasSluiceColumns(const std::vector<ExistingColumn>& columns) {
  for (const ExistingColumn& e : columns) {
    if (e.name == kSeqColumn) return true;
  }
  return false;
}

// EvictSql matches on every column of a UNIQUE key: an index on the first one
// narrows it to a few rows. Hash, so that no value is too large to index;
// skipped for types that may have no hash operator class.
void AppendEvictIndexes(MirrorTable& t, const TableShape& shape, const ExistingTable& existing) {
  for (const std::vector<size_t>& unique : shape.unique_keys) {
    if (unique.empty() || unique[0] >= t.columns.size()) continue;
    const MirrorColumn& c = t.columns[unique[0]];
    if (c.kind == TargetKind::kOther) continue;
    std::string name = EvictIndexName(t.table, c.name);
    bool present = false;
    for (const std::string& n : existing.index_names) present = present || n == name;
    std::string sql = CreateEvictIndexSql(t.schema, t.table, c.name);
    bool planned = false;
    for (const std::string& d : t.ddl) planned = planned || d == sql;
    if (present || planned) continue;
    t.ddl.push_back(std::move(sql));
    t.steps.push_back({t.table, DdlStepJson("evict_index", {{"column", c.name}, {"index", name}})});
  }
}

}  // namespace

std::string DdlStepJson(
    std::string_view op,
    std::initializer_list<std::pair<std::string_view, std::string_view>> fields) {
  std::string out = "{\"op\":";
  AppendJsonString(&out, op);
  for (const auto& [k, v] : fields) {
    out += ",";
    AppendJsonString(&out, k);
    out += ":";
    AppendJsonString(&out, v);
  }
  return out + "}";
}

Result<std::vector<DdlStatement>> DdlStatements(DdlMode mode, const std::string& deployment,
                                                const std::string& schema,
                                                const std::string& qualified,
                                                const std::vector<std::string>& ddl,
                                                const std::vector<DdlStep>& steps,
                                                const std::string& owner_only) {
  std::vector<DdlStatement> out;
  if (mode == DdlMode::kDirect) {
    for (const std::string& sql : ddl) out.push_back({sql, {}});
    return out;
  }
  if (!owner_only.empty()) {
    return Status::InvalidArgument(
        "mirror " + qualified + " needs " + owner_only +
        ", which only the owner of its schema may do (the agent's role changes mirrors through "
        "sync_metadata.sluice_mirror_ddl): an administrator runs `sluice admin bootstrap` with "
        "this config");
  }
  for (const DdlStep& s : steps) {
    out.push_back({MirrorDdlSql(), {deployment, schema, s.table, s.step}});
  }
  return out;
}

const std::map<std::string, std::string>* OverridesFor(
    const std::map<std::string, std::map<std::string, std::string>>& column_types,
    const std::string& table) {
  auto it = column_types.find(table);
  return it == column_types.end() ? nullptr : &it->second;
}

namespace {

// The conflict triggers and their index, unless all of them are there.
void AppendConflictDetection(MirrorTable& t, const std::string& deployment,
                             const std::vector<std::string>& key_names,
                             const ExistingTable& existing, bool columns_added) {
  // Arguments of another deployment or key (the config's deployment changed,
  // a key column was renamed) would misjudge every write: made again.
  std::string args = deployment + '\0';
  for (const std::string& k : key_names) args += k + '\0';
  bool complete = !columns_added;
  for (const char* name : kConflictTriggers) {
    auto it = existing.triggers.find(name);
    complete = complete && it != existing.triggers.end() && it->second == args;
  }
  if (complete) return;
  for (std::string& sql : ConflictDetectionSql(t.schema, t.table, deployment, key_names)) {
    t.ddl.push_back(std::move(sql));
  }
  std::string step = "{\"op\":\"conflict_detection\",\"index\":";
  AppendJsonString(&step, OutsideIndexName(t.table));
  t.steps.push_back({t.table, step + ",\"key\":" + JsonStringArray(key_names) + "}"});
}

}  // namespace

Result<MirrorTable> PlanMirror(const std::string& schema, const std::string& deployment,
                               const TableShape& shape,
                               const std::map<std::string, std::string>* overrides,
                               const ExistingTable& table) {
  // A mirror whose key changed is set aside; the new one is planned from scratch.
  const bool set_aside =
      !table.columns.empty() && !table.key_index_exists && HasSluiceColumns(table.columns);
  static const ExistingTable kNone;
  const ExistingTable& found_table = set_aside ? kNone : table;
  const std::vector<ExistingColumn>& existing = found_table.columns;
  SLUICE_RETURN_IF_ERROR(CheckIdentifier(schema, "schema"));
  SLUICE_RETURN_IF_ERROR(CheckIdentifier(shape.name, "table"));
  const std::string where = "table \"" + shape.name + "\"";
  MirrorTable t;
  t.schema = schema;
  t.table = shape.name;
  t.qualified = QualifiedName(schema, shape.name);
  t.key = shape.KeyColumns();
  if (t.key.empty()) return Status::InvalidArgument(where + " has no key columns");

  for (const ColumnShape& c : shape.columns) {
    SLUICE_RETURN_IF_ERROR(CheckIdentifier(c.name, "column of " + where));
    if (IsReservedName(c.name) && !shape.IsSyntheticRowid(c)) {
      return Status::InvalidArgument(where + " has a column named \"" + c.name +
                                     "\", which sluice reserves for itself");
    }
    MirrorColumn m;
    m.name = c.name;
    const ExistingColumn* found = nullptr;
    for (const ExistingColumn& e : existing) {
      if (e.name == c.name) found = &e;
    }
    if (found != nullptr) {
      m.pg_type = found->type;
      m.cast_type = found->base_type.empty() ? found->type : found->base_type;
      m.exists = true;
    } else {
      m.pg_type = MapColumnType(c);
      if (overrides != nullptr) {
        auto it = overrides->find(c.name);
        if (it != overrides->end()) {
          SLUICE_RETURN_IF_ERROR(CheckTypeText(it->second, c.name).Wrap(where));
          m.pg_type = it->second;
        }
      }
      m.cast_type = m.pg_type;
    }
    m.kind = KindOfPgType(m.cast_type);
    t.columns.push_back(std::move(m));
  }

  std::vector<std::string> key_names;
  for (size_t k : t.key) key_names.push_back(t.columns[k].name);

  if (set_aside) {
    t.set_aside_as = AsideName(shape.name, table.relid);
    // In statements of about 1 MiB of heap each: none outgrows a statement_timeout.
    for (std::string& sql : TombstoneSweepSql(t.qualified, table.pages,
                                              (1 << 20) / std::max<int64_t>(1, table.page_bytes))) {
      t.ddl.push_back(std::move(sql));
    }
    for (const std::string& index : table.index_names) {
      t.ddl.push_back(RenameIndexSql(schema, index, AsideName(index, table.relid)));
    }
    t.ddl.push_back(RenameTableSql(schema, shape.name, t.set_aside_as));
    t.owner_only = "setting aside a mirror whose key changed";
  }
  if (existing.empty()) {
    std::vector<SqlColumn> cols;
    for (const MirrorColumn& m : t.columns) cols.push_back({m.name, m.pg_type});
    t.ddl.push_back(CreateTableSql(schema, shape.name, cols, key_names));
    t.steps.push_back({t.table, "{\"op\":\"create_table\",\"columns\":" + ColumnsJson(cols) +
                                    ",\"key\":" + JsonStringArray(key_names) + "}"});
    AppendEvictIndexes(t, shape, found_table);
    AppendConflictDetection(t, deployment, key_names, found_table, true);
    return t;
  }

  std::vector<SqlColumn> missing;
  for (const MirrorColumn& m : t.columns) {
    if (!m.exists) missing.push_back({m.name, m.pg_type});
  }
  if (!missing.empty()) {
    t.steps.push_back(
        {t.table, "{\"op\":\"add_columns\",\"columns\":" + ColumnsJson(missing) + "}"});
  }
  for (const SqlColumn& s : SluiceColumnsForAdoption()) {
    bool present = false;
    for (const ExistingColumn& e : existing) present = present || e.name == s.name;
    if (!present) {
      missing.push_back(s);
      t.owner_only = "adopting a table sluice did not create";
    }
  }
  if (!missing.empty()) t.ddl.push_back(AddColumnsSql(schema, shape.name, missing));
  if (!found_table.key_index_exists) {
    t.ddl.push_back(CreateKeyIndexSql(schema, shape.name, key_names));
    t.owner_only = "a unique index on the key of a table sluice did not create";
  }
  AppendEvictIndexes(t, shape, found_table);
  bool sluice_columns_added = false;
  for (const SqlColumn& m : missing) {
    sluice_columns_added = sluice_columns_added || IsReservedName(m.name);
  }
  AppendConflictDetection(t, deployment, key_names, found_table, sluice_columns_added);
  return t;
}

}  // namespace sluice
