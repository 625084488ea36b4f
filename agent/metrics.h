// Metrics: the agent's Prometheus metrics (the `sluice_*` families served at
// GET /metrics), kept in a prometheus-cpp core registry and serialized in the
// text format 0.0.4. Every family is present from the first scrape: labelled
// ones carry all their known label values at 0 (each tracked table with
// op=upsert|delete, each SinkErrorKind), so rate(), increase() and alerts
// never meet a series that appears only with its first event. Labels are
// bounded: a table is a label value only for the first kMaxTables distinct
// tables; the rest are counted under table="_other". Called from the loop
// thread only; the object must outlive nothing it borrows (it borrows nothing).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/sync_progress.h"
#include "sink/conflict_policy.h"

namespace sluice {

// Why a sink call failed, as the `kind` label of sluice_sink_errors_total.
enum class SinkErrorKind {
  kConnection,
  kTimeout,
  kPositionConflict,
  kFenced,
  kRejectedRow,
  kPermission,
  kSchema,
  kOther,
};

// "connection", "timeout", "position_conflict", "fenced", "rejected_row",
// "permission", "schema", "other".
const char* SinkErrorKindName(SinkErrorKind kind);

class Metrics {
 public:
  // Distinct table label values at most; further tables count as "_other".
  static constexpr std::size_t kMaxTables = 1000;
  static constexpr std::string_view kOtherTable = "_other";

  // `version`, `node` and `deployment` are labels of sluice_build_info only.
  Metrics(std::string version, std::string node, std::string deployment);
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // Creates the zero series of each table not seen before (tables are never
  // removed during a run); safe to call again with a longer list.
  void SetTables(const std::vector<std::string>& tables);

  // Lease.
  void SetLeader(bool leader);  // false also sets the lease expiry to 0
  void SetEpoch(int64_t epoch);
  // Time left on the lease by the agent's own clock; negative counts as 0,
  // and it stays 0 while not leader.
  void SetLeaseExpirySeconds(double seconds);
  void LeaseRenewed();
  void LeaseRenewalFailed();
  void LeaseAcquired();

  // Stream. A table not given to SetTables is added on first use.
  void ChangesCaptured(int64_t n);
  void RowsApplied(const std::string& table, int64_t upserts, int64_t deletes);
  void RowsParked(const std::string& table, int64_t n);
  void BatchApplied(int64_t rows, double seconds);
  void SetLag(double seconds);
  void SetBacklog(int64_t rows);
  void SetPosition(int64_t position);

  // Conflicts with outside writes (sync_metadata.conflict_log). The policy
  // names each table's strategy for the zero series of sluice_conflicts_total
  // (table x each kind the sink reports); call before or after SetTables.
  void SetConflictPolicy(const ConflictPolicy& policy);
  void ConflictsSeen(const std::string& table, const std::string& kind, const std::string& strategy,
                     int64_t n);
  void SetConflictsPending(int64_t n);

  // The batch at the sink (sync_progress.h), or none: its gauges are then 0.
  // An unknown time left (nothing sent yet) is 0 too.
  void SetSyncProgress(const std::optional<SyncProgress>& p);

  // Sink.
  void SinkError(SinkErrorKind kind);
  void Reconnected();

  // The whole registry in the Prometheus text format 0.0.4
  // (Content-Type: text/plain; version=0.0.4; charset=utf-8).
  std::string Serialize() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice
