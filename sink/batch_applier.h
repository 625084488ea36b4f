// BatchApplier: applies one Batch to the sink in ONE PostgreSQL transaction:
// advance the position (fails with kConflict unless the sink holds exactly
// batch.after_seq), create/extend mirror tables the batch needs, tombstone
// tables read whole, upsert rows and tombstone deletes chunk by chunk from the
// spool, park rows whose values cannot be converted in conflict_log, COMMIT.
// A row the sink itself rejects (SQLSTATE 22/23) sends the batch through a
// slow path that isolates it with savepoints and parks it. Every batch also
// checks the mirror registry (pg_sql's LostMirrorsSql) and registers the tables
// it reads whole. Loop thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/change.h"
#include "common/status.h"
#include "sink/conflict_policy.h"
#include "sink/pg_connection.h"
#include "sink/sink_options.h"

namespace sluice {

// Rows of one table in one batch, as committed.
struct TableRowCounts {
  int64_t upserts = 0;  // rows written (by COPY too)
  int64_t deletes = 0;
  int64_t parked = 0;
  int64_t copied = 0;  // of the upserts, those COPY wrote (a full read into an empty mirror)
};

// Conflicts with outside writes one batch met, by table, kind, strategy and
// status (sync_metadata.conflict_log; docs/design-conflicts.md).
struct ConflictCount {
  std::string table;
  std::string kind;      // update_origin_differs, update_deleted, ...
  std::string strategy;  // the table's strategy then
  std::string status;    // resolved or pending
  int64_t count = 0;

  bool operator==(const ConflictCount&) const = default;
};

struct ApplyStats {
  std::map<std::string, TableRowCounts> tables;  // by table name; only tables with rows
  int64_t upserts = 0;
  int64_t deletes = 0;
  int64_t parked = 0;  // rows recorded in conflict_log instead of applied
  int64_t copied = 0;  // of the upserts, those COPY wrote
  int64_t round_trips = 0;
  std::vector<ConflictCount> conflicts;  // those the batch's transaction met
  int64_t conflicts_pending = -1;        // pending conflicts after the batch (-1: unknown)
  // Tables whose mirror is not the one sluice last read whole (dropped,
  // recreated, truncated at the sink, set aside after a key change, or never
  // read whole): the caller must list them in a later batch's full_tables.
  // The batch itself committed; the sink keeps the mismatch until that full
  // read commits, so the list can be rebuilt after a crash (FindLostMirrors).
  std::vector<std::string> resync_tables;
};

// How far the Apply in flight is: changes read into chunks so far of the
// batch's changes (its spool), per table and in all. The next chunk is
// encoded while the server works on this one, so "done" runs up to two chunks
// ahead of what the server has written; the batch still commits all at once.
// A restart of the batch (the row-by-row path) starts the count again.
struct ApplyProgress {
  struct Table {
    std::string name;
    bool full = false;  // read whole in this batch
    int64_t rows_total = 0;
    int64_t rows_done = 0;
    int64_t bytes_done = 0;  // of the text and blob values read (integers and reals count 0)
  };
  std::vector<Table> tables;  // tables with rows in the batch, in batch order
  int64_t rows_total = 0;
  int64_t rows_done = 0;
  int64_t bytes_done = 0;
};

class BatchApplier {
 public:
  explicit BatchApplier(SinkOptions options);
  ~BatchApplier();
  BatchApplier(const BatchApplier&) = delete;
  BatchApplier& operator=(const BatchApplier&) = delete;

  // `conn` and `batch` must stay alive until `done` runs. One Apply at a time.
  // On any error the transaction is rolled back; the batch may be applied again.
  void Apply(PgConnection* conn, Batch* batch, std::function<void(Status, ApplyStats)> done);

  // Stops the Apply in flight at its next step: the transaction is rolled
  // back and `done` gets kUnavailable. The caller may also cancel the running
  // statement (PgConnection::CancelRunning) or close the connection. No-op
  // when no Apply runs.
  void Cancel();
  // The Apply in flight's progress; nullopt when none runs. Loop thread.
  std::optional<ApplyProgress> Progress() const;

  // The lease epoch every following Apply commits under (nullopt: none, for
  // tools and tests without a lease; the sink refuses that once a lease was
  // ever taken). Each transaction ends with sync_metadata.sluice_fence before
  // its COMMIT; with `idle_timeout_ms` > 0 it also sets
  // idle_in_transaction_session_timeout, so a frozen agent's transaction
  // dies by itself and does not hold its locks against the next leader.
  void SetLease(std::optional<int64_t> epoch, int idle_timeout_ms);

  // The conflict policy every following Apply resolves conflicts by (sent in
  // each apply transaction's `sluice.apply` setting; SinkOptions::conflicts
  // until called). Validate it first (sink/conflict_policy.h).
  void SetConflictPolicy(ConflictPolicy policy);

  // Forget cached knowledge of sink tables (after a reconnect or a DDL error).
  void InvalidateCatalog();

  // The registered mirror tables of this deployment that are no longer the ones
  // sluice last read whole (see ApplyStats::resync_tables): run after each
  // connect, before the first batch, so a mirror lost while no agent ran is
  // found even when the app writes nothing. `conn` must outlive `done`.
  // `tracked`: the tables the source follows (empty: not known yet, all).
  void FindLostMirrors(PgConnection* conn, const std::vector<std::string>& tracked,
                       std::function<void(Status, std::vector<std::string>)> done);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice
