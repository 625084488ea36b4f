// The conflict torture's audit: what the sink holds after a run (the mirror
// rows of the torture tables, the deployment's conflict_log and its open
// outside_deletes) checked against the writers' timeline (conflict_writers.h)
// and the tables' strategies (source_wins, the default, or target_wins):
// every log row belongs to a committed batch, names writes that happened,
// and is resolved as the policy says, no (row, batch) is logged twice; each
// outside write is accounted for exactly once (under source_wins logged as a
// conflict's target, else found still in place by the next outside write or
// at the end; a hard delete: logged as update_deleted with its base, or still
// open); every outside write a later source change surely reached was logged;
// every row ends as its policy says.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "tests/integration/conflict_writers.h"

namespace sluice::e2e {

struct SinkRow {
  bool live = false;
  std::string value;       // the text column
  std::string updated_at;  // as PostgreSQL prints it
  bool marked = false;     // _sluice_outside_at set
  std::string base;        // "none", "live" or "deleted" (the merge base's state)
};

struct ConflictLogRow {
  int64_t id = 0;
  RowId row;
  std::string kind, strategy, status, resolved_by;
  std::optional<std::string> source_value;  // the text column of each image
  bool source_deleted = false;
  bool target_null = false;
  std::optional<std::string> target_value;
  bool target_deleted = false;
  std::string base;  // "none", "live" or "deleted"
  std::optional<std::string> base_value;
  bool resolved_is_source = false;
  bool resolved_is_target = false;
  int64_t seq = 0, epoch = 0, batch = 0;
  bool batch_committed = false;  // an applied_batches row (epoch, snapshot_seq) holding seq
};

struct SinkSnapshot {
  std::map<RowId, SinkRow> rows;
  std::vector<ConflictLogRow> log;  // the conflicts (not the parked rows), in id order
  int64_t parked = 0;
  // outside_deletes no source change met yet: the base's value.
  std::map<RowId, std::string> open_deletes;
};
SinkSnapshot ReadSink(Pg& pg, const std::string& deployment, const std::string& schema);

struct SourceRow {
  std::string value;
  int64_t updated_at = 0;
};
std::map<RowId, SourceRow> ReadSource(Sqlite& app);

// table → "source_wins" or "target_wins"; a table not named: source_wins.
using Strategies = std::map<std::string, std::string>;

struct ConflictAudit {
  std::vector<std::string> problems;  // empty: every check passed
  std::map<std::string, int64_t> kinds;
  int64_t marked = 0;        // rows still holding an outside write
  int64_t covered = 0;       // outside writes a later source change surely reached
  int64_t accounted = 0;     // outside writes accounted for exactly once
  int64_t orphans = 0;       // delete_origin_differs of rows the source never deleted
  int64_t rows_checked = 0;  // rows whose final state was checked
};

// `full_reads`: how many times each table was (asked to be) read whole
// during the run: each may meet a row once more without a source change
// (its upsert), and its orphan pass logs marked rows the source does not
// have as delete_origin_differs without a source delete.
ConflictAudit AuditConflicts(const SinkSnapshot& sink, const std::map<RowId, SourceRow>& source,
                             const std::map<RowId, RowHistory>& history,
                             const Strategies& strategies,
                             const std::map<std::string, int64_t>& full_reads = {});

// For the touch round (AppChanger::Touch: every live source row updated, the
// rows returned by AbsentFromSource inserted): the conflict each row must
// log once, by kind; every other row logs none.
std::vector<RowId> AbsentFromSource(const SinkSnapshot& sink,
                                    const std::map<RowId, SourceRow>& source);
std::map<RowId, std::string> TouchConflicts(const SinkSnapshot& sink,
                                            const std::map<RowId, SourceRow>& source);

}  // namespace sluice::e2e
