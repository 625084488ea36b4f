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

// The column's name after `columns` rename it, in order (itself if they do not).
std::string Renamed(const std::vector<std::pair<std::string, std::string>>& columns,
                    std::string name) {
  for (const auto& [from, to] : columns) {
    if (from == name) name = to;
  }
  return name;
}

}  // namespace

MovePlan PlanMoves(const std::string& schema, const std::string& table,
                   const std::vector<std::string>& former,
                   const std::vector<ExistingTable>& former_found,
                   const std::vector<std::pair<std::string, std::string>>& columns,
                   const ExistingTable& now) {
  MovePlan plan;
  if (now.columns.empty()) {
    for (size_t i = former.size(); i-- > 0;) {
      const std::string& old_name = former[i];
      const ExistingTable& from = former_found[i];
      if (old_name == table || from.columns.empty()) continue;
      // Indexes sluice named after the table move with it, so that the mirror
      // planned under the new name finds them (and a new table of the old
      // name can have its own). PostgreSQL's own (<table>_pkey) stay.
      for (const std::string& index : from.index_names) {
        std::string to;
        if (index == KeyIndexName(old_name)) to = KeyIndexName(table);
        for (const ExistingColumn& c : from.columns) {
          if (index == EvictIndexName(old_name, c.name)) {
            to = EvictIndexName(table, Renamed(columns, c.name));
          }
        }
        if (to.empty() || to == index) continue;
        plan.ddl.push_back(RenameIndexSql(schema, index, to));
        plan.steps.push_back(
            {old_name, DdlStepJson("rename_index", {{"index", index}, {"to", to}})});
      }
      plan.ddl.push_back(RenameTableSql(schema, old_name, table));
      plan.steps.push_back({old_name, DdlStepJson("rename_table", {{"to", table}})});
      plan.renamed_from = old_name;
      return plan;  // columns in the next round, from the renamed table's catalog
    }
    return plan;
  }
  // Replayed in order against the mirror's names as they become.
  ExistingTable names = now;
  for (const auto& [old_name, new_name] : columns) {
    if (old_name == new_name || !HasColumn(names, old_name) || HasColumn(names, new_name)) {
      continue;
    }
    plan.ddl.push_back(RenameColumnSql(schema, table, old_name, new_name));
    plan.steps.push_back(
        {table, DdlStepJson("rename_column", {{"from", old_name}, {"to", new_name}})});
    for (ExistingColumn& c : names.columns) {
      if (c.name == old_name) c.name = new_name;
    }
    std::string old_index = EvictIndexName(table, old_name);
    std::string new_index = EvictIndexName(table, new_name);
    if (HasIndex(names, old_index) && !HasIndex(names, new_index)) {
      plan.ddl.push_back(RenameIndexSql(schema, old_index, new_index));
      plan.steps.push_back(
          {table, DdlStepJson("rename_index", {{"index", old_index}, {"to", new_index}})});
      std::replace(names.index_names.begin(), names.index_names.end(), old_index, new_index);
    }
  }
  return plan;
}

}  // namespace sluice
