// Planning of renames at the sink (see mirror_moves.h).
#include "sink/mirror_moves.h"

#include <algorithm>

#include "sink/pg_sql.h"

namespace sluice {
namespace {

bool HasColumn(const ExistingTable& t, const std::string& name) {
  return std::any_of(t.columns.begin(), t.columns.end(),
                     [&](const ExistingColumn& c) { return c.name == name; });
}

bool HasIndex(const ExistingTable& t, const std::string& name) {
  return std::find(t.index_names.begin(), t.index_names.end(), name) != t.index_names.end();
}

// The column's name after `columns` renames it (itself if they do not).
std::string Renamed(const std::vector<std::pair<std::string, std::string>>& columns,
                    const std::string& name) {
  for (const auto& [from, to] : columns) {
    if (from == name) return to;
  }
  return name;
}

}  // namespace

MovePlan PlanMoves(const std::string& schema, const std::string& table,
                   const std::string& renamed_from,
                   const std::vector<std::pair<std::string, std::string>>& columns,
                   const ExistingTable& now, const ExistingTable& from) {
  MovePlan plan;
  if (!renamed_from.empty() && renamed_from != table && now.columns.empty() &&
      !from.columns.empty()) {
    // Indexes sluice named after the table move with it, so that the mirror
    // planned under the new name finds them (and a new table of the old name
    // can have its own). PostgreSQL's own (e.g. <table>_pkey) stay as they are.
    for (const std::string& index : from.index_names) {
      std::string to;
      if (index == KeyIndexName(renamed_from)) to = KeyIndexName(table);
      for (const ExistingColumn& c : from.columns) {
        if (index == EvictIndexName(renamed_from, c.name)) {
          to = EvictIndexName(table, Renamed(columns, c.name));
        }
      }
      if (!to.empty() && to != index) plan.ddl.push_back(RenameIndexSql(schema, index, to));
    }
    plan.ddl.push_back(RenameTableSql(schema, renamed_from, table));
    plan.table_renamed = true;
    return plan;  // columns in the next round, from the renamed table's catalog
  }
  if (now.columns.empty()) return plan;
  for (const auto& [old_name, new_name] : columns) {
    if (old_name == new_name || !HasColumn(now, old_name) || HasColumn(now, new_name)) continue;
    plan.ddl.push_back(RenameColumnSql(schema, table, old_name, new_name));
    std::string old_index = EvictIndexName(table, old_name);
    std::string new_index = EvictIndexName(table, new_name);
    if (HasIndex(now, old_index) && !HasIndex(now, new_index)) {
      plan.ddl.push_back(RenameIndexSql(schema, old_index, new_index));
    }
  }
  return plan;
}

}  // namespace sluice
