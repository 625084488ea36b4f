// Metrics (agent/metrics.h): the sluice_* families in a prometheus-cpp core
// registry. Every series a dashboard or alert may ask for is created at 0 up
// front (or when its table first appears), because a counter series born at 1
// is invisible to increase() until its second sample.
#include "agent/metrics.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>
#include <simdjson.h>

#include <array>
#include <map>
#include <tuple>
#include <unordered_map>

#include "common/hex.h"

namespace sluice {
namespace {

constexpr std::array<SinkErrorKind, 8> kAllKinds = {
    SinkErrorKind::kConnection, SinkErrorKind::kTimeout,     SinkErrorKind::kPositionConflict,
    SinkErrorKind::kFenced,     SinkErrorKind::kRejectedRow, SinkErrorKind::kPermission,
    SinkErrorKind::kSchema,     SinkErrorKind::kOther};

// Prometheus label values are UTF-8; a SQLite identifier is any bytes. Valid
// UTF-8 passes unchanged (prometheus-cpp escapes \, " and newline); each byte
// of an invalid sequence becomes the text \xNN, so the value stays readable.
std::string LabelValue(std::string_view name) {
  if (simdjson::validate_utf8(name.data(), name.size())) return std::string(name);
  std::string out;
  size_t i = 0;
  while (i < name.size()) {
    auto c = static_cast<unsigned char>(name[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    if (n != 0 && i + n <= name.size() && simdjson::validate_utf8(name.data() + i, n)) {
      out.append(name.substr(i, n));
      i += n;
    } else {
      out += "\\x";
      AppendHex(&out, name.substr(i, 1));
      ++i;
    }
  }
  return out;
}

// Bounds: batches of 1 row to a 1e6-row backlog; applies of 0.5 ms to 30 s.
const prometheus::Histogram::BucketBoundaries kRowBuckets = {
    1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 2e4, 5e4, 1e5, 2e5, 5e5, 1e6};
const prometheus::Histogram::BucketBoundaries kSecondBuckets = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};

// The conflict kinds the sink reports (sql/01-control-plane.sql, sluice_conflict
// and sluice_inserted).
constexpr std::array<const char*, 5> kConflictKinds = {"update_origin_differs", "update_deleted",
                                                       "update_missing", "delete_origin_differs",
                                                       "insert_exists"};

void Add(prometheus::Counter& c, int64_t n) {
  if (n > 0) c.Increment(static_cast<double>(n));
}

}  // namespace

const char* SinkErrorKindName(SinkErrorKind kind) {
  switch (kind) {
    case SinkErrorKind::kConnection:
      return "connection";
    case SinkErrorKind::kTimeout:
      return "timeout";
    case SinkErrorKind::kPositionConflict:
      return "position_conflict";
    case SinkErrorKind::kFenced:
      return "fenced";
    case SinkErrorKind::kRejectedRow:
      return "rejected_row";
    case SinkErrorKind::kPermission:
      return "permission";
    case SinkErrorKind::kSchema:
      return "schema";
    case SinkErrorKind::kOther:
      return "other";
  }
  return "other";
}

struct Metrics::Impl {
  struct TableSeries {
    prometheus::Counter* upserts;
    prometheus::Counter* deletes;
    prometheus::Counter* parked;
  };

  explicit Impl(const prometheus::Labels& build_labels)
      : build_info(prometheus::BuildGauge()
                       .Name("sluice_build_info")
                       .Help("Always 1; the labels say which sluice build runs as which node of "
                             "which deployment.")
                       .Register(registry)
                       .Add(build_labels)),
        leader(Gauge("sluice_leader", "1 while this agent holds the lease, else 0.")),
        epoch(Gauge("sluice_lease_epoch",
                    "Fencing epoch of the lease this agent holds or last held.")),
        lease_expiry(Gauge("sluice_lease_expiry_seconds",
                           "Time left on the lease by the agent's own monotonic clock; 0 when "
                           "not leader.")),
        renewals(Counter("sluice_lease_renewals_total", "Lease renewals that succeeded.")),
        renewal_failures(Counter("sluice_lease_renewal_failures_total",
                                 "Lease renewals that failed or were refused.")),
        acquisitions(Counter("sluice_lease_acquisitions_total",
                             "Times this agent acquired the lease (became leader).")),
        changes_captured(Counter("sluice_changes_captured_total",
                                 "Journal changes read from SQLite (before coalescing).")),
        rows_applied(prometheus::BuildCounter()
                         .Name("sluice_rows_applied_total")
                         .Help("Rows applied to PostgreSQL, by table and op (upsert, delete).")
                         .Register(registry)),
        rows_parked(prometheus::BuildCounter()
                        .Name("sluice_rows_parked_total")
                        .Help("Rows the sink rejected, parked in conflict_log, by table.")
                        .Register(registry)),
        batches(Counter("sluice_batches_total", "Batches committed to PostgreSQL.")),
        batch_rows(prometheus::BuildHistogram()
                       .Name("sluice_batch_rows")
                       .Help("Rows per committed batch.")
                       .Register(registry)
                       .Add({}, kRowBuckets)),
        apply_duration(prometheus::BuildHistogram()
                           .Name("sluice_apply_duration_seconds")
                           .Help("Time to apply and commit one batch at the sink.")
                           .Register(registry)
                           .Add({}, kSecondBuckets)),
        lag(Gauge("sluice_lag_seconds",
                  "Age of the oldest change captured but not yet committed at the sink.")),
        backlog(Gauge("sluice_journal_backlog_rows",
                      "Journal rows after the acknowledged position, not yet applied.")),
        position(Gauge("sluice_position", "Journal sequence number acknowledged by the sink.")),
        sink_errors_family(prometheus::BuildCounter()
                               .Name("sluice_sink_errors_total")
                               .Help("Failed sink operations, by kind.")
                               .Register(registry)),
        reconnects(Counter("sluice_reconnects_total", "Reconnections to PostgreSQL.")),
        conflicts_family(prometheus::BuildCounter()
                             .Name("sluice_conflicts_total")
                             .Help("Conflicts with outside writes met at the sink, by table, kind "
                                   "and the table's strategy then (a later source change to a "
                                   "pending row counts again; it updates that row's one entry).")
                             .Register(registry)),
        conflicts_pending(Gauge("sluice_conflicts_pending",
                                "Conflicts waiting for `sluice conflicts resolve` (manual "
                                "strategy), as of the last committed batch.")),
        sync_rows_total(Gauge("sluice_sync_rows",
                              "Rows of the batch at the sink (an initial sync, a resync); 0 "
                              "when none is.")),
        sync_rows_done(Gauge("sluice_sync_rows_sent",
                             "Rows of the batch at the sink sent so far (up to two chunks ahead "
                             "of the server's writes; nothing is visible before the commit).")),
        sync_bytes_done(Gauge("sluice_sync_bytes_sent",
                              "Bytes of the text and blob values sent so far of the batch at the "
                              "sink.")),
        sync_tables_total(
            Gauge("sluice_sync_tables", "Tables with rows in the batch at the sink.")),
        sync_tables_done(Gauge("sluice_sync_tables_done",
                               "Tables of the batch at the sink whose rows were all sent.")),
        sync_eta(Gauge("sluice_sync_eta_seconds",
                       "Time left for the batch at the sink at its rate so far; 0 when not "
                       "known or no batch is at the sink.")) {
    build_info.Set(1);
    for (SinkErrorKind k : kAllKinds) {
      sink_errors[static_cast<size_t>(k)] =
          &sink_errors_family.Add({{"kind", SinkErrorKindName(k)}});
    }
    other = Series(std::string(kOtherTable));
    for (const char* kind : kConflictKinds) {
      Conflicts(std::string(kOtherTable), kind, policy.defaults.strategy);
    }
  }

  prometheus::Gauge& Gauge(const char* name, const char* help) {
    return prometheus::BuildGauge().Name(name).Help(help).Register(registry).Add({});
  }
  prometheus::Counter& Counter(const char* name, const char* help) {
    return prometheus::BuildCounter().Name(name).Help(help).Register(registry).Add({});
  }

  TableSeries Series(const std::string& label) {
    return {&rows_applied.Add({{"table", label}, {"op", "upsert"}}),
            &rows_applied.Add({{"table", label}, {"op", "delete"}}),
            &rows_parked.Add({{"table", label}})};
  }

  // The series of `table`, created at 0 on first sight while under the cap,
  // with its conflict series under its strategy.
  TableSeries& Table(const std::string& table) {
    auto it = tables.find(table);
    if (it != tables.end()) return it->second;
    if (tables.size() >= kMaxTables) return other;
    for (const char* kind : kConflictKinds) Conflicts(table, kind, policy.For(table).strategy);
    return tables.emplace(table, Series(LabelValue(table))).first->second;
  }

  prometheus::Counter& Conflicts(const std::string& table, const std::string& kind,
                                 const std::string& strategy) {
    bool known = tables.count(table) > 0 || tables.size() < kMaxTables;
    auto key = std::make_tuple(known ? table : std::string(kOtherTable), kind, strategy);
    auto it = conflicts.find(key);
    if (it != conflicts.end()) return *it->second;
    prometheus::Counter* c = &conflicts_family.Add({{"table", LabelValue(std::get<0>(key))},
                                                    {"kind", LabelValue(kind)},
                                                    {"strategy", LabelValue(strategy)}});
    conflicts.emplace(key, c);
    return *c;
  }

  prometheus::Registry registry;
  prometheus::Gauge& build_info;
  prometheus::Gauge& leader;
  prometheus::Gauge& epoch;
  prometheus::Gauge& lease_expiry;
  prometheus::Counter& renewals;
  prometheus::Counter& renewal_failures;
  prometheus::Counter& acquisitions;
  prometheus::Counter& changes_captured;
  prometheus::Family<prometheus::Counter>& rows_applied;
  prometheus::Family<prometheus::Counter>& rows_parked;
  prometheus::Counter& batches;
  prometheus::Histogram& batch_rows;
  prometheus::Histogram& apply_duration;
  prometheus::Gauge& lag;
  prometheus::Gauge& backlog;
  prometheus::Gauge& position;
  prometheus::Family<prometheus::Counter>& sink_errors_family;
  prometheus::Counter& reconnects;
  prometheus::Family<prometheus::Counter>& conflicts_family;
  prometheus::Gauge& conflicts_pending;
  prometheus::Gauge& sync_rows_total;
  prometheus::Gauge& sync_rows_done;
  prometheus::Gauge& sync_bytes_done;
  prometheus::Gauge& sync_tables_total;
  prometheus::Gauge& sync_tables_done;
  prometheus::Gauge& sync_eta;
  ConflictPolicy policy;  // names the strategy of each table's zero series
  std::map<std::tuple<std::string, std::string, std::string>, prometheus::Counter*> conflicts;
  std::array<prometheus::Counter*, kAllKinds.size()> sink_errors{};
  std::unordered_map<std::string, TableSeries> tables;  // at most kMaxTables
  TableSeries other{};
  bool is_leader = false;
};

Metrics::Metrics(std::string version, std::string node, std::string deployment)
    : impl_(std::make_unique<Impl>(prometheus::Labels{{"version", LabelValue(version)},
                                                      {"node", LabelValue(node)},
                                                      {"deployment", LabelValue(deployment)}})) {}

Metrics::~Metrics() = default;

void Metrics::SetTables(const std::vector<std::string>& tables) {
  for (const std::string& t : tables) impl_->Table(t);
}

void Metrics::SetLeader(bool leader) {
  impl_->is_leader = leader;
  impl_->leader.Set(leader ? 1 : 0);
  if (!leader) impl_->lease_expiry.Set(0);
}

void Metrics::SetEpoch(int64_t epoch) { impl_->epoch.Set(static_cast<double>(epoch)); }

void Metrics::SetLeaseExpirySeconds(double seconds) {
  impl_->lease_expiry.Set(impl_->is_leader && seconds > 0 ? seconds : 0);
}

void Metrics::LeaseRenewed() { impl_->renewals.Increment(); }
void Metrics::LeaseRenewalFailed() { impl_->renewal_failures.Increment(); }
void Metrics::LeaseAcquired() { impl_->acquisitions.Increment(); }
void Metrics::ChangesCaptured(int64_t n) { Add(impl_->changes_captured, n); }

void Metrics::RowsApplied(const std::string& table, int64_t upserts, int64_t deletes) {
  Impl::TableSeries& s = impl_->Table(table);
  Add(*s.upserts, upserts);
  Add(*s.deletes, deletes);
}

void Metrics::RowsParked(const std::string& table, int64_t n) {
  Add(*impl_->Table(table).parked, n);
}

void Metrics::BatchApplied(int64_t rows, double seconds) {
  impl_->batches.Increment();
  impl_->batch_rows.Observe(static_cast<double>(rows));
  impl_->apply_duration.Observe(seconds);
}

void Metrics::SetLag(double seconds) { impl_->lag.Set(seconds); }
void Metrics::SetBacklog(int64_t rows) { impl_->backlog.Set(static_cast<double>(rows)); }
void Metrics::SetPosition(int64_t position) { impl_->position.Set(static_cast<double>(position)); }

void Metrics::SinkError(SinkErrorKind kind) {
  impl_->sink_errors[static_cast<size_t>(kind)]->Increment();
}

void Metrics::Reconnected() { impl_->reconnects.Increment(); }

void Metrics::SetConflictPolicy(const ConflictPolicy& policy) {
  impl_->policy = policy;
  for (const auto& [table, series] : impl_->tables) {
    for (const char* kind : kConflictKinds)
      impl_->Conflicts(table, kind, policy.For(table).strategy);
  }
}

void Metrics::ConflictsSeen(const std::string& table, const std::string& kind,
                            const std::string& strategy, int64_t n) {
  impl_->Table(table);  // the table's own series too
  Add(impl_->Conflicts(table, kind, strategy), n);
}

void Metrics::SetSyncProgress(const std::optional<SyncProgress>& p) {
  Impl& m = *impl_;
  m.sync_rows_total.Set(p ? static_cast<double>(p->rows_total) : 0);
  m.sync_rows_done.Set(p ? static_cast<double>(p->rows_done) : 0);
  m.sync_bytes_done.Set(p ? static_cast<double>(p->bytes_done) : 0);
  m.sync_tables_total.Set(p ? static_cast<double>(p->tables_total) : 0);
  m.sync_tables_done.Set(p ? static_cast<double>(p->tables_done) : 0);
  m.sync_eta.Set(p && p->eta_s > 0 ? p->eta_s : 0);
}

void Metrics::SetConflictsPending(int64_t n) {
  impl_->conflicts_pending.Set(static_cast<double>(n));
}

std::string Metrics::Serialize() const {
  return prometheus::TextSerializer().Serialize(impl_->registry.Collect());
}

}  // namespace sluice
