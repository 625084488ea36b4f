// Schema reader: catalog queries use the pragma table-valued functions with
// bound parameters, so no table name is ever spliced into SQL here.
#include "capture/schema_reader.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <map>

#include "capture/row_sql.h"
#include "capture/table_filter.h"
#include "capture/trigger_sql.h"
#include "common/value.h"

namespace sluice {
namespace {

// Adds a "too long" / "collides" complaint for each offender among `names`.
void CheckNameSet(const std::vector<std::string>& names, const std::string& where,
                  std::vector<std::string>* problems) {
  std::map<std::string, std::string> prefixes;
  for (const std::string& n : names) {
    if (n.size() > kMaxIdentifierBytes) {
      problems->push_back(fmt::format("{}\"{}\" is {} bytes long (PostgreSQL keeps {})", where, n,
                                      n.size(), kMaxIdentifierBytes));
    }
    std::string prefix = n.substr(0, kMaxIdentifierBytes);
    auto [it, inserted] = prefixes.emplace(prefix, n);
    if (!inserted) {
      problems->push_back(fmt::format("{}\"{}\" and \"{}\" have the same first {} bytes", where,
                                      it->second, n, kMaxIdentifierBytes));
    }
  }
}

}  // namespace

namespace {

// Every UNIQUE, non-partial index on plain columns, as indices into
// shape.columns (shifted by `offset` past a synthetic rowid column), except
// the one that is the row identity.
void AddUniqueKeys(const RawTable& raw, size_t offset, TableShape* shape) {
  std::vector<size_t> identity = shape->KeyColumns();
  for (const RawIndex& idx : raw.indexes) {
    if (!idx.unique || idx.partial || idx.cids.empty()) continue;
    std::vector<size_t> cols;
    for (int cid : idx.cids) {
      if (cid < 0 || static_cast<size_t>(cid) >= raw.columns.size()) {
        cols.clear();
        break;
      }
      cols.push_back(static_cast<size_t>(cid) + offset);
    }
    if (cols.empty() || cols == identity) continue;
    shape->unique_keys.push_back(std::move(cols));
  }
}

}  // namespace

TableShape ChooseIdentity(const RawTable& raw) {
  TableShape shape = ChooseIdentityOnly(raw);
  AddUniqueKeys(raw, shape.identity == TableShape::Identity::kRowid ? 1 : 0, &shape);
  return shape;
}

TableShape ChooseIdentityOnly(const RawTable& raw) {
  TableShape shape;
  shape.name = raw.name;
  shape.without_rowid = raw.without_rowid;
  for (const RawColumn& rc : raw.columns) {
    ColumnShape c;
    c.name = rc.name;
    c.declared_type = rc.declared_type;
    c.not_null = rc.not_null;
    c.key_position = rc.pk;
    shape.columns.push_back(std::move(c));
  }
  bool has_pk = std::any_of(raw.columns.begin(), raw.columns.end(),
                            [](const RawColumn& c) { return c.pk > 0; });
  if (has_pk) {
    shape.identity = TableShape::Identity::kPrimaryKey;
    return shape;
  }

  const RawIndex* best = nullptr;
  for (const RawIndex& idx : raw.indexes) {
    if (!idx.unique || idx.partial || idx.cids.empty()) continue;
    bool usable = std::all_of(idx.cids.begin(), idx.cids.end(), [&](int cid) {
      return cid >= 0 && static_cast<size_t>(cid) < raw.columns.size() &&
             raw.columns[static_cast<size_t>(cid)].not_null;
    });
    if (!usable) continue;
    if (best == nullptr || idx.cids.size() < best->cids.size() ||
        (idx.cids.size() == best->cids.size() && idx.name < best->name)) {
      best = &idx;
    }
  }
  if (best != nullptr) {
    shape.identity = TableShape::Identity::kUniqueIndex;
    for (size_t i = 0; i < best->cids.size(); ++i) {
      ColumnShape& c = shape.columns[static_cast<size_t>(best->cids[i])];
      // A column listed twice in an index keeps its first position.
      if (c.key_position == 0) c.key_position = static_cast<int>(i + 1);
    }
    return shape;
  }

  shape.identity = TableShape::Identity::kRowid;
  ColumnShape rowid;
  rowid.name = kRowidColumn;
  rowid.declared_type = "INTEGER";
  rowid.not_null = true;
  rowid.key_position = 1;
  shape.columns.insert(shape.columns.begin(), std::move(rowid));
  return shape;
}

Status CheckNames(const std::vector<TableShape>& tables) {
  std::vector<std::string> problems;
  std::vector<std::string> table_names;
  for (const TableShape& t : tables) {
    table_names.push_back(t.name);
    std::vector<std::string> column_names;
    for (const ColumnShape& c : t.columns) {
      if (t.IsSyntheticRowid(c)) continue;
      if (IsReservedName(c.name)) {
        problems.push_back(
            fmt::format("column \"{}\".\"{}\" uses the reserved prefix _sluice_", t.name, c.name));
      }
      column_names.push_back(c.name);
    }
    CheckNameSet(column_names, fmt::format("column of \"{}\": ", t.name), &problems);
  }
  CheckNameSet(table_names, "table ", &problems);
  if (problems.empty()) return Status::Ok();
  std::string m = "cannot mirror these names to PostgreSQL: ";
  for (size_t i = 0; i < problems.size(); ++i) {
    if (i > 0) m += "; ";
    m += problems[i];
  }
  m += ". Rename them in the app, or leave their tables out with source.exclude";
  return Status::InvalidArgument(std::move(m));
}

Status CheckLimits(const std::vector<TableShape>& tables, int sqlite_column_limit) {
  constexpr size_t kMaxTableColumns = kSinkMaxColumns - kSinkReservedColumns;
  const size_t select_limit = static_cast<size_t>(std::max(sqlite_column_limit, 0));
  std::vector<std::string> problems;
  for (const TableShape& t : tables) {
    const size_t n = t.columns.size();
    const char* rowid =
        t.identity == TableShape::Identity::kRowid ? " (with the rowid as _sluice_rowid)" : "";
    if (n > kMaxTableColumns) {
      problems.push_back(fmt::format(
          "table \"{}\" has {} columns{}; a PostgreSQL table holds at most {} and the mirror "
          "keeps {} of them for sluice's own columns, so at most {}",
          t.name, n, rowid, kSinkMaxColumns, kSinkReservedColumns, kMaxTableColumns));
    } else if (n > select_limit) {
      problems.push_back(
          fmt::format("table \"{}\" has {} columns{}; this SQLite returns at most {} columns a row",
                      t.name, n, rowid, select_limit));
    }
    const size_t keys = t.KeyColumns().size();
    if (keys > kSinkMaxKeyColumns) {
      problems.push_back(
          fmt::format("table \"{}\" is keyed by {} columns; a PostgreSQL index holds at most {}",
                      t.name, keys, kSinkMaxKeyColumns));
    }
  }
  if (problems.empty()) return Status::Ok();
  std::string m = "cannot mirror these tables: ";
  for (size_t i = 0; i < problems.size(); ++i) {
    if (i > 0) m += "; ";
    m += problems[i];
  }
  m += ". Leave them out with source.exclude, or split them in the app";
  return Status::InvalidArgument(std::move(m));
}

Result<RawTable> ReadRawTable(SqliteDb& db, const std::string& name) {
  RawTable raw;
  raw.name = name;
  {
    Result<Statement> s = db.Prepare(
        // table_xinfo, not table_info: the latter hides generated columns
        // (hidden 2 = VIRTUAL, 3 = STORED) and numbers the others without
        // them, out of step with pragma_index_info's column numbers.
        // hidden 1 (a virtual table's hidden column) is not a table column.
        "SELECT name, type, \"notnull\", pk FROM pragma_table_xinfo(?1, 'main') "
        "WHERE hidden <> 1 ORDER BY cid");
    if (!s.ok()) return s.status();
    ScopedReset reset(&*s);
    SLUICE_RETURN_IF_ERROR(s->BindText(1, name));
    for (;;) {
      Result<bool> row = s->Step();
      if (!row.ok()) return row.status();
      if (!*row) break;
      RawColumn c;
      c.name = s->ColumnText(0);
      c.declared_type = s->ColumnText(1);
      c.not_null = s->ColumnInt64(2) != 0;
      c.pk = static_cast<int>(s->ColumnInt64(3));
      raw.columns.push_back(std::move(c));
    }
  }
  if (raw.columns.empty()) return Status::NotFound(fmt::format("table \"{}\" not found", name));
  {
    Result<Statement> s = db.Prepare("SELECT wr FROM pragma_table_list(?1) WHERE schema = 'main'");
    if (!s.ok()) return s.status();
    ScopedReset reset(&*s);
    SLUICE_RETURN_IF_ERROR(s->BindText(1, name));
    Result<bool> row = s->Step();
    if (!row.ok()) return row.status();
    raw.without_rowid = *row && s->ColumnInt64(0) != 0;
  }
  {
    Result<Statement> list =
        db.Prepare("SELECT name, \"unique\", partial FROM pragma_index_list(?1, 'main')");
    if (!list.ok()) return list.status();
    Result<Statement> info =
        db.Prepare("SELECT cid FROM pragma_index_info(?1, 'main') ORDER BY seqno");
    if (!info.ok()) return info.status();
    ScopedReset reset_list(&*list);
    SLUICE_RETURN_IF_ERROR(list->BindText(1, name));
    for (;;) {
      Result<bool> row = list->Step();
      if (!row.ok()) return row.status();
      if (!*row) break;
      RawIndex idx;
      idx.name = list->ColumnText(0);
      idx.unique = list->ColumnInt64(1) != 0;
      idx.partial = list->ColumnInt64(2) != 0;
      ScopedReset reset_info(&*info);
      SLUICE_RETURN_IF_ERROR(info->BindText(1, idx.name));
      for (;;) {
        Result<bool> r = info->Step();
        if (!r.ok()) return r.status();
        if (!*r) break;
        idx.cids.push_back(static_cast<int>(info->ColumnInt64(0)));
      }
      raw.indexes.push_back(std::move(idx));
    }
  }
  return raw;
}

Result<TableShape> DescribeTable(SqliteDb& db, const std::string& name) {
  Result<RawTable> raw = ReadRawTable(db, name);
  if (!raw.ok()) return raw.status();
  TableShape shape = ChooseIdentity(*raw);
  if (shape.identity == TableShape::Identity::kRowid && RowidAlias(shape).empty()) {
    return Status::InvalidArgument(fmt::format(
        "table \"{}\" has no primary key, no unique index on NOT NULL columns, and columns "
        "named rowid, _rowid_ and oid hide its rowid: add a key or use source.exclude",
        name));
  }
  return shape;
}

Status FillValueStats(SqliteDb& db, TableShape* shape) {
  static constexpr Value::Kind kKinds[] = {Value::Kind::kNull, Value::Kind::kInteger,
                                           Value::Kind::kReal, Value::Kind::kText,
                                           Value::Kind::kBlob};
  for (const auto& [first, count] : ValueStatsGroups(*shape, db.column_limit())) {
    Result<Statement> s = db.Prepare(ValueStatsSql(*shape, first, count));
    if (!s.ok()) return s.status();
    ScopedReset reset(&*s);
    Result<bool> row = s->Step();
    if (!row.ok()) return row.status();
    if (!*row) return Status::Internal("value stats query returned no row");
    for (size_t i = 0; i < count; ++i) {
      ColumnShape& c = shape->columns[first + i];
      int base = static_cast<int>(i) * kStatsPerColumn;
      c.seen_kinds = 0;
      for (int k = 0; k < 5; ++k) {
        if (s->ColumnInt64(base + k) != 0) c.seen_kinds |= Value::Bit(kKinds[k]);
      }
      // min(...) is NULL on an empty table: vacuously true.
      c.text_all_json = s->ColumnIsNull(base + 5) || s->ColumnInt64(base + 5) != 0;
      c.integers_all_bool = s->ColumnIsNull(base + 6) || s->ColumnInt64(base + 6) != 0;
    }
  }
  return Status::Ok();
}

Status CheckTable(const TableShape& table, int sqlite_column_limit) {
  SLUICE_RETURN_IF_ERROR(CheckNames({table}));
  return CheckLimits({table}, sqlite_column_limit);
}

Result<std::vector<TableShape>> DescribeTables(SqliteDb& db, const TableFilter& filter,
                                               std::vector<TableRefusal>* refused) {
  Result<std::vector<std::string>> names = ListUserTables(db);
  if (!names.ok()) return names.status();
  std::vector<TableShape> shapes;
  for (const std::string& name : *names) {
    if (!filter.Matches(name)) continue;
    Result<TableShape> shape = DescribeTable(db, name);
    Status own = shape.ok() ? CheckTable(*shape, db.column_limit()) : shape.status();
    if (!own.ok() && refused != nullptr && own.code() == Status::Code::kInvalidArgument) {
      refused->push_back({name, own.message()});
      continue;
    }
    if (!shape.ok()) return shape.status();
    shapes.push_back(std::move(*shape));
  }
  SLUICE_RETURN_IF_ERROR(CheckNames(shapes));
  SLUICE_RETURN_IF_ERROR(CheckLimits(shapes, db.column_limit()));
  return shapes;
}

Result<std::vector<std::string>> ListUserTables(SqliteDb& db) {
  // sqlite_master rather than pragma_table_list: the latter needs every virtual
  // table's module loaded, which sluice's connection may not have.
  Result<Statement> s = db.Prepare(
      "SELECT name, sql LIKE 'CREATE VIRTUAL TABLE%' FROM main.sqlite_master WHERE type = 'table' "
      "ORDER BY name");
  if (!s.ok()) return s.status();
  ScopedReset reset(&*s);
  std::vector<std::string> tables;
  std::vector<std::string> virtuals;
  for (;;) {
    Result<bool> row = s->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    std::string name = s->ColumnText(0);
    if (TableFilter::IsInternal(name)) continue;
    if (s->ColumnInt64(1) != 0) {
      spdlog::warn("capture: skipping virtual table \"{}\" (triggers cannot watch it)", name);
      virtuals.push_back(std::move(name));
      continue;
    }
    tables.push_back(std::move(name));
  }
  // Shadow tables (<vtab>_data, <vtab>_content, ...) belong to their virtual table.
  std::vector<std::string> out;
  for (std::string& t : tables) {
    bool shadow = std::any_of(virtuals.begin(), virtuals.end(), [&](const std::string& v) {
      return t.size() > v.size() + 1 && t.compare(0, v.size(), v) == 0 && t[v.size()] == '_' &&
             t.find('_', v.size() + 1) == std::string::npos;
    });
    if (!shadow) out.push_back(std::move(t));
  }
  return out;
}

}  // namespace sluice
