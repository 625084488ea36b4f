// ConflictPolicy: how each mirror table resolves a conflict with an outside
// write (issue #7): strategy, compare field, merge rules per column. Plain
// data here plus its JSON form for the apply transaction's `sluice.apply`
// setting, which sync_metadata.sluice_conflict (sql/01) reads. Pure; any thread.
#pragma once

#include <map>
#include <string>
#include <string_view>

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

}  // namespace sluice
