// ConflictAdmin: the sink side of `sluice conflicts list|resolve` (issue #7,
// docs/design-conflicts.md section 4): reads this deployment's conflict_log
// entries and resolves a pending one in ONE transaction, ordered against the
// agent's apply batches by the source_position row lock (sluice_advance takes
// it first), exactly once by `UPDATE ... WHERE status = 'pending'`. Talks
// through a SinkAdmin connection (blocking, main thread; no session state, so
// it works through a transaction-mode pooler). The pure helpers are exposed
// for unit tests.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "sink/sink_admin.h"
#include "sink/sink_options.h"

namespace sluice {

// One sync_metadata.conflict_log row. Times are UTC ISO-8601 text ("" = NULL);
// JSON members (key, images) are JSON text ("" = NULL).
struct ConflictEntry {
  int64_t id = 0;
  std::string table;
  std::string key;  // JSON array of the key values, key order
  std::string kind;
  std::string strategy;
  std::string status;  // pending, resolved, parked
  std::string reason;
  std::optional<int64_t> seq;
  std::optional<int64_t> epoch;
  std::optional<int64_t> batch;  // snapshot_seq of the batch that last saw it
  std::string created_at;
  std::string resolved_by;
  std::string resolved_at;
  // Filled only when asked for (ListConflicts' `images`, and by resolve).
  std::string source_image;
  std::string target_image;
  std::string base_image;
  std::string resolved_image;
};

struct ConflictFilter {
  std::string table;   // "" = every table
  std::string status;  // "" = every status
};

// This deployment's entries matching `filter`, oldest first.
Result<std::vector<ConflictEntry>> ListConflicts(SinkAdmin& admin, const SinkOptions& options,
                                                 const ConflictFilter& filter, bool images);

enum class ConflictTake { kSource, kTarget, kMerged };
const char* ConflictTakeName(ConflictTake take);  // "source", "target", "merged"

struct ResolveRequest {
  int64_t id = 0;
  ConflictTake take = ConflictTake::kSource;
  // --take merged --row: a JSON object of mirror columns written over the
  // target row (columns it leaves out keep the target's values; the source's
  // when the row is deleted at the target). Must not change the key.
  std::optional<std::string> row;
  std::string by;               // who resolves it (resolved_by)
  int lock_timeout_ms = 30000;  // wait this long for a batch in flight
};

struct ResolveOutcome {
  ConflictEntry entry;  // as it is after the commit (resolved_image: what was written)
  // What the mirror row is now: "live", "deleted" (a tombstone) or "missing"
  // (deleted at the target, and it stays so).
  std::string row_state;
  // The mirror row was changed outside again after the conflict was seen:
  // --take target kept it as it is now (not the entry's older target image).
  bool target_changed_since = false;
  // The entry was stale (later source changes reached the row without
  // updating it; see ResolveConflict): --take target closed it, the row untouched.
  bool stale = false;
};

// Resolves entry `request.id` of this deployment. Errors (the CLI's exit code):
//   kInvalidArgument  bad --row (not an object, unknown or sluice column, the
//                     key changed, a value the column type refuses), --take
//                     merged without --row for a delete kind (exit 2)
//   kNotFound         no such entry in this deployment (exit 1)
//   kConflict         the entry is resolved or parked, not pending (exit 1)
//   kBusy             lock_timeout: "the agent is applying a batch; try again",
//                     or the mirror row is locked by another session (exit 1)
// Anything else as SinkAdmin reports it. On any error nothing changed.
Result<ResolveOutcome> ResolveConflict(SinkAdmin& admin, const SinkOptions& options,
                                       const ResolveRequest& request);

// Pure helpers (unit-tested).

// pg_trigger.tgargs in PostgreSQL's bytea hex output ("\x6400..."): the
// NUL-terminated arguments. nullopt when the text is not such a value.
std::optional<std::vector<std::string>> ParseTriggerArgs(std::string_view bytea_hex);

// The member names of a JSON object, in order; InvalidArgument (naming
// `what`) when `json` is not one JSON object or a name repeats.
Result<std::vector<std::string>> JsonObjectKeys(std::string_view json, std::string_view what);

// Checks --row's member names against the mirror's user columns: every name
// must be one of them (a sluice column or an unknown name is an error naming
// it and the table).
Status CheckRowColumns(const std::vector<std::string>& names,
                       const std::vector<std::string>& columns, const std::string& table);

// The statement that writes `image` ($1, jsonb) into the mirror, keyed by
// the image's key columns: an upsert (the row may be gone at the target),
// with _sluice_seq := $2, _sluice_outside_at / _sluice_base as clean ($3 =
// 't') or kept-marked with base $4. RETURNING the row's image and whether it
// is a tombstone.
std::string ResolveWriteSql(const std::string& qualified, const std::vector<std::string>& columns,
                            const std::vector<std::string>& keys);

}  // namespace sluice
