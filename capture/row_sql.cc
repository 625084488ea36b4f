// Row-reading SQL generation.
#include "capture/row_sql.h"

#include <algorithm>

#include "capture/trigger_sql.h"

namespace sluice {
namespace {

// The expression naming column i: the rowid alias for the synthetic column.
std::string ColumnRef(const TableShape& shape, size_t i) {
  if (shape.identity == TableShape::Identity::kRowid && i == 0) return RowidAlias(shape);
  return QuoteIdent(shape.columns[i].name);
}

}  // namespace

std::string SelectList(const TableShape& shape) {
  std::string out;
  for (size_t i = 0; i < shape.columns.size(); ++i) {
    if (i > 0) out += ", ";
    out += ColumnRef(shape, i);
  }
  return out;
}

std::string FullScanSql(const TableShape& shape) {
  return "SELECT " + SelectList(shape) + " FROM main." + QuoteIdent(shape.name);
}

std::string LookupSql(const TableShape& shape) {
  std::string where;
  int n = 0;
  for (size_t idx : shape.KeyColumns()) {
    if (n > 0) where += " AND ";
    ++n;
    if (shape.identity == TableShape::Identity::kRowid) {
      where += ColumnRef(shape, idx) + " = ?" + std::to_string(n);
    } else {
      // IS, not =: a non-INTEGER primary key of a rowid table may hold NULL.
      where += ColumnRef(shape, idx) + " IS ?" + std::to_string(n);
    }
  }
  return FullScanSql(shape) + " WHERE " + where;
}

std::string LookupByEncodedKeySql(const TableShape& shape) {
  return FullScanSql(shape) + " WHERE " + KeyExpr(shape, "") + " = ?1 LIMIT 1";
}

std::string ValueStatsSql(const TableShape& shape, size_t first, size_t count) {
  std::string out = "SELECT ";
  for (size_t i = first; i < first + count && i < shape.columns.size(); ++i) {
    const std::string c = ColumnRef(shape, i);
    if (i > first) out += ", ";
    out += "max(typeof(" + c + ")='null'), max(typeof(" + c + ")='integer'), max(typeof(" + c +
           ")='real'), max(typeof(" + c + ")='text'), max(typeof(" + c + ")='blob'), min(typeof(" +
           c + ")<>'text' OR json_valid(" + c + ")), min(typeof(" + c + ")<>'integer' OR " + c +
           " IN (0,1))";
  }
  out += " FROM main." + QuoteIdent(shape.name);
  return out;
}

std::vector<std::pair<size_t, size_t>> ValueStatsGroups(const TableShape& shape, int column_limit) {
  size_t per_query = std::max<size_t>(
      1, static_cast<size_t>(std::max(column_limit, 0)) / static_cast<size_t>(kStatsPerColumn));
  std::vector<std::pair<size_t, size_t>> groups;
  for (size_t first = 0; first < shape.columns.size(); first += per_query) {
    groups.emplace_back(first, std::min(per_query, shape.columns.size() - first));
  }
  return groups;
}

}  // namespace sluice
