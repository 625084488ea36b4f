// ConflictPolicy: how each mirror table resolves a conflict with an outside
// write (issue #7): strategy, compare field, merge rules per column. Plain
// data here plus its JSON form for the apply transaction's `sluice.apply`
// setting, which sync_metadata.sluice_conflict (sql/01) reads; parsed from
// the config's `conflicts` JSON (the seed's conflict-resolution shape) and
// validated against the tracked tables. Pure; any thread.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "common/table_shape.h"

namespace sluice {

// Strategies: source_wins, target_wins, newest_wins, merge, manual.
// Merge rules: source_wins, target_wins, newest_wins, append, union.
struct TableConflictPolicy {
  std::string strategy = "source_wins";
  std::string compare_field;  // newest_wins, and merge's newest_wins rules
  // merge: columns changed on both sides without a rule, and the delete kinds
  // (update_deleted, delete_origin_differs); source_wins when empty.
  std::string fallback;
  std::map<std::string, std::string> rules;  // merge: column -> rule

  bool operator==(const TableConflictPolicy&) const = default;
};

struct ConflictPolicy {
  TableConflictPolicy defaults;                       // tables not listed
  std::map<std::string, TableConflictPolicy> tables;  // by source table name

  bool operator==(const ConflictPolicy&) const = default;
  // The policy for `table`: its own, else the defaults.
  const TableConflictPolicy& For(const std::string& table) const;
};

// {"strategy": ..., "compare_field": ..., "fallback": ..., "rules": {...}}:
// the shape sync_metadata.sluice_conflict reads (empty fields left out).
std::string PolicyJson(const TableConflictPolicy& policy);

// Parses the seed's shape, with or without its wrapper:
//   {"conflict_resolution": {"default_strategy": S, "default_compare_field": C,
//     "table_strategies": {"<table>": {"strategy": S, "compare_field": C,
//       "fallback_strategy": F, "merge_rules": {"<column>": R}, "description": ...}}}}
// Every field is optional; nothing configured = source_wins everywhere. A
// table's compare_field defaults to default_compare_field, its fallback to
// default_strategy when that is source_wins, target_wins or newest_wins, else
// source_wins; every TableConflictPolicy comes back with both filled in.
// Unknown keys are errors (except "description" and "_metadata"), the seed's
// resolution_log / notification / advanced_options / notify included: sluice
// does not do what they promised. Errors start with "conflicts: " and name
// the path: "conflicts: table_strategies.chat.strategy: unknown strategy ...".
Result<ConflictPolicy> ParseConflictPolicy(std::string_view json);

// Checks `policy` against the tracked tables and the mirror column types they
// map to (type_mapping.h, with `column_types` overrides as in SinkOptions):
// every listed table is tracked; where newest_wins is used (strategy,
// fallback, or a merge rule) the compare field is a column with a number,
// text or date type, and an explicit compare_field always is; merge rules name
// non-key columns; append/union only on json/jsonb mirror columns. Every
// problem is named (table, column, path) in one InvalidArgument, "; "-joined.
Status ValidateConflictPolicy(
    const ConflictPolicy& policy, const std::vector<TableShape>& shapes,
    const std::map<std::string, std::map<std::string, std::string>>& column_types);

}  // namespace sluice
