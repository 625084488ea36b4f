// CheckConflictPolicy: capture's schema reader feeds sink's policy validation.
#include "agent/policy_check.h"

#include "capture/schema_reader.h"
#include "capture/sqlite_db.h"
#include "capture/table_filter.h"
#include "sink/conflict_policy.h"

namespace sluice {

Result<std::vector<TableShape>> DescribeSourceTables(const CaptureOptions& source,
                                                     int busy_timeout_ms) {
  Result<std::unique_ptr<SqliteDb>> db = SqliteDb::Open(source.path, busy_timeout_ms);
  if (!db.ok()) return db.status();
  std::vector<TableRefusal> held_back;
  return DescribeTables(**db, TableFilter(source.include, source.exclude), &held_back);
}

Status CheckConflictPolicy(const Config& config) {
  const ConflictPolicy& policy = config.sink.conflicts;
  // Nothing configured (or defaults without newest_wins) fits every table:
  // `init` and `run` keep reporting a missing file their own way.
  if (policy.tables.empty() && policy.defaults.strategy != "newest_wins" &&
      policy.defaults.fallback != "newest_wins") {
    return Status::Ok();
  }
  Result<std::vector<TableShape>> shapes =
      DescribeSourceTables(config.source, config.source.busy_timeout_ms);
  if (!shapes.ok()) return shapes.status().Wrap("check the conflict policy against the source");
  return ValidateConflictPolicy(policy, *shapes, config.sink.column_types);
}

}  // namespace sluice
