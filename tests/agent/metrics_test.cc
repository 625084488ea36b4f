// Metrics (agent/metrics.h): every family in the first scrape with its zero
// series, counters and gauges move as called, hostile table names stay valid
// label values, and the number of table label values is capped.
#include "agent/metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <string>
#include <vector>

#include "tests/agent/exposition.h"

namespace sluice {
namespace {

using testing::Exposition;
using testing::ParseExposition;

Exposition Scrape(const Metrics& m) {
  Result<Exposition> e = ParseExposition(m.Serialize());
  EXPECT_TRUE(e.ok()) << e.status().ToString();
  return e.ok() ? *e : Exposition{};
}

const std::vector<std::pair<std::string, std::string>> kFamilies = {
    {"sluice_build_info", "gauge"},
    {"sluice_leader", "gauge"},
    {"sluice_lease_epoch", "gauge"},
    {"sluice_lease_expiry_seconds", "gauge"},
    {"sluice_lease_renewals_total", "counter"},
    {"sluice_lease_renewal_failures_total", "counter"},
    {"sluice_lease_acquisitions_total", "counter"},
    {"sluice_changes_captured_total", "counter"},
    {"sluice_rows_applied_total", "counter"},
    {"sluice_batches_total", "counter"},
    {"sluice_batch_rows", "histogram"},
    {"sluice_apply_duration_seconds", "histogram"},
    {"sluice_lag_seconds", "gauge"},
    {"sluice_journal_backlog_rows", "gauge"},
    {"sluice_position", "gauge"},
    {"sluice_sink_errors_total", "counter"},
    {"sluice_reconnects_total", "counter"},
    {"sluice_rows_parked_total", "counter"},
    {"sluice_conflicts_total", "counter"},
    {"sluice_conflicts_pending", "gauge"},
    {"sluice_sync_rows", "gauge"},
    {"sluice_sync_rows_sent", "gauge"},
    {"sluice_sync_bytes_sent", "gauge"},
    {"sluice_sync_tables", "gauge"},
    {"sluice_sync_tables_done", "gauge"},
    {"sluice_sync_eta_seconds", "gauge"},
};

const std::vector<std::string> kKinds = {"connection", "timeout",      "position_conflict",
                                         "fenced",     "rejected_row", "permission",
                                         "schema",     "other"};

TEST(Metrics, ConflictsCountByTableKindAndStrategyFromZero) {
  Metrics m("0.1.0", "node-a", "acme");
  ConflictPolicy policy;
  policy.tables["chat"].strategy = "merge";
  m.SetConflictPolicy(policy);
  m.SetTables({"user", "chat"});
  std::string text = m.Serialize();
  // Each table's series of every kind the sink reports, under its strategy, at 0.
  for (const char* kind :
       {"update_origin_differs", "update_deleted", "delete_origin_differs", "insert_exists"}) {
    EXPECT_NE(text.find(std::string("sluice_conflicts_total{kind=\"") + kind +
                        "\",strategy=\"merge\",table=\"chat\"} 0"),
              std::string::npos)
        << kind << "\n"
        << text;
    EXPECT_NE(text.find(std::string("sluice_conflicts_total{kind=\"") + kind +
                        "\",strategy=\"source_wins\",table=\"user\"} 0"),
              std::string::npos)
        << kind;
  }
  m.ConflictsSeen("chat", "update_origin_differs", "merge", 3);
  m.ConflictsSeen("chat", "update_origin_differs", "merge", 2);
  m.ConflictsSeen("user", "insert_exists", "manual", 1);  // a strategy since changed: still counted
  m.SetConflictsPending(4);
  text = m.Serialize();
  EXPECT_NE(text.find("sluice_conflicts_total{kind=\"update_origin_differs\",strategy=\"merge\","
                      "table=\"chat\"} 5"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("sluice_conflicts_total{kind=\"insert_exists\",strategy=\"manual\",table="
                      "\"user\"} 1"),
            std::string::npos);
  EXPECT_NE(text.find("sluice_conflicts_pending 4"), std::string::npos);
}

TEST(Metrics, FirstScrapeHasEveryFamilyWithItsZeroSeries) {
  Metrics m("0.1.0", "node-a", "acme");
  m.SetTables({"user", "chat"});
  Exposition e = Scrape(m);
  for (const auto& [name, type] : kFamilies) {
    ASSERT_TRUE(e.types.count(name)) << name << " missing from the first scrape";
    EXPECT_EQ(e.types.at(name), type) << name;
    EXPECT_FALSE(e.helps[name].empty()) << name << " has no help";
    if (type == "histogram") {
      EXPECT_EQ(e.Value(name + "_count"), 0) << name;
      EXPECT_EQ(e.Value(name + "_bucket", {{"le", "+Inf"}}), 0) << name;
    } else {
      EXPECT_FALSE(e.Find(name).empty()) << name << " has no sample";
    }
  }
  EXPECT_EQ(e.types.size(), kFamilies.size()) << "a family the test does not know";

  EXPECT_EQ(e.Value("sluice_build_info",
                    {{"version", "0.1.0"}, {"node", "node-a"}, {"deployment", "acme"}}),
            1);
  EXPECT_EQ(e.Value("sluice_leader"), 0);
  EXPECT_EQ(e.Value("sluice_lease_expiry_seconds"), 0);
  for (std::string table : {"user", "chat", "_other"}) {
    EXPECT_EQ(e.Value("sluice_rows_applied_total", {{"table", table}, {"op", "upsert"}}), 0)
        << table;
    EXPECT_EQ(e.Value("sluice_rows_applied_total", {{"table", table}, {"op", "delete"}}), 0)
        << table;
    EXPECT_EQ(e.Value("sluice_rows_parked_total", {{"table", table}}), 0) << table;
  }
  EXPECT_EQ(e.Find("sluice_rows_applied_total").size(), 6u);
  EXPECT_EQ(e.Find("sluice_rows_parked_total").size(), 3u);
  for (const std::string& kind : kKinds) {
    EXPECT_EQ(e.Value("sluice_sink_errors_total", {{"kind", kind}}), 0) << kind;
  }
  EXPECT_EQ(e.Find("sluice_sink_errors_total").size(), kKinds.size());
  // Only these families carry labels, and only these.
  for (const testing::Sample& s : e.samples) {
    std::set<std::string> keys;
    for (const auto& [k, v] : s.labels) keys.insert(k);
    std::set<std::string> allowed;
    if (s.name == "sluice_build_info") allowed = {"version", "node", "deployment"};
    if (s.name == "sluice_rows_applied_total") allowed = {"table", "op"};
    if (s.name == "sluice_rows_parked_total") allowed = {"table"};
    if (s.name == "sluice_sink_errors_total") allowed = {"kind"};
    if (s.name == "sluice_conflicts_total") allowed = {"table", "kind", "strategy"};
    if (s.name.ends_with("_bucket")) allowed = {"le"};
    EXPECT_EQ(keys, allowed) << s.name;
  }
}

// The progress of the batch at the sink (an initial sync): what
// `sluice status` shows, as gauges; all 0 once no batch is at the sink.
TEST(Metrics, SyncProgressGaugesFollowTheBatchAtTheSink) {
  Metrics m("0.1.0", "node-a", "acme");
  SyncProgress p;
  p.kind = "initial sync";
  p.rows_total = 5356;
  p.rows_done = 1400;
  p.bytes_done = 60040000;
  p.tables_total = 25;
  p.tables_done = 3;
  p.eta_s = 5.5;
  m.SetSyncProgress(p);
  Exposition e = Scrape(m);
  EXPECT_EQ(e.Value("sluice_sync_rows"), 5356);
  EXPECT_EQ(e.Value("sluice_sync_rows_sent"), 1400);
  EXPECT_EQ(e.Value("sluice_sync_bytes_sent"), 60040000);
  EXPECT_EQ(e.Value("sluice_sync_tables"), 25);
  EXPECT_EQ(e.Value("sluice_sync_tables_done"), 3);
  EXPECT_EQ(e.Value("sluice_sync_eta_seconds"), 5.5);
  m.SetSyncProgress(std::nullopt);
  e = Scrape(m);
  for (const char* g :
       {"sluice_sync_rows", "sluice_sync_rows_sent", "sluice_sync_bytes_sent", "sluice_sync_tables",
        "sluice_sync_tables_done", "sluice_sync_eta_seconds"}) {
    EXPECT_EQ(e.Value(g), 0) << g;
  }
}

TEST(Metrics, SinkErrorKindNames) {
  std::vector<std::string> names;
  for (SinkErrorKind k :
       {SinkErrorKind::kConnection, SinkErrorKind::kTimeout, SinkErrorKind::kPositionConflict,
        SinkErrorKind::kFenced, SinkErrorKind::kRejectedRow, SinkErrorKind::kPermission,
        SinkErrorKind::kSchema, SinkErrorKind::kOther}) {
    names.push_back(SinkErrorKindName(k));
  }
  EXPECT_EQ(names, kKinds);
}

TEST(Metrics, CountersAndGaugesMoveAsCalled) {
  Metrics m("0.1.0", "node-a", "acme");
  m.SetTables({"user"});
  m.SetLeader(true);
  m.SetEpoch(7);
  m.SetLeaseExpirySeconds(4.25);
  m.LeaseAcquired();
  m.LeaseRenewed();
  m.LeaseRenewed();
  m.LeaseRenewalFailed();
  m.ChangesCaptured(10);
  m.ChangesCaptured(5);
  m.RowsApplied("user", 3, 1);
  m.RowsApplied("user", 2, 0);
  m.RowsApplied("chat", 0, 4);  // not given to SetTables: added on first use
  m.RowsParked("user", 2);
  m.BatchApplied(4, 0.003);
  m.BatchApplied(2000, 1.5);
  m.SetLag(0.75);
  m.SetBacklog(123);
  m.SetPosition(456);
  m.SinkError(SinkErrorKind::kTimeout);
  m.SinkError(SinkErrorKind::kTimeout);
  m.SinkError(SinkErrorKind::kFenced);
  m.Reconnected();
  Exposition e = Scrape(m);
  EXPECT_EQ(e.Value("sluice_leader"), 1);
  EXPECT_EQ(e.Value("sluice_lease_epoch"), 7);
  EXPECT_EQ(e.Value("sluice_lease_expiry_seconds"), 4.25);
  EXPECT_EQ(e.Value("sluice_lease_acquisitions_total"), 1);
  EXPECT_EQ(e.Value("sluice_lease_renewals_total"), 2);
  EXPECT_EQ(e.Value("sluice_lease_renewal_failures_total"), 1);
  EXPECT_EQ(e.Value("sluice_changes_captured_total"), 15);
  EXPECT_EQ(e.Value("sluice_rows_applied_total", {{"table", "user"}, {"op", "upsert"}}), 5);
  EXPECT_EQ(e.Value("sluice_rows_applied_total", {{"table", "user"}, {"op", "delete"}}), 1);
  EXPECT_EQ(e.Value("sluice_rows_applied_total", {{"table", "chat"}, {"op", "upsert"}}), 0);
  EXPECT_EQ(e.Value("sluice_rows_applied_total", {{"table", "chat"}, {"op", "delete"}}), 4);
  EXPECT_EQ(e.Value("sluice_rows_parked_total", {{"table", "user"}}), 2);
  EXPECT_EQ(e.Value("sluice_rows_parked_total", {{"table", "chat"}}), 0);
  EXPECT_EQ(e.Value("sluice_batches_total"), 2);
  EXPECT_EQ(e.Value("sluice_batch_rows_count"), 2);
  EXPECT_EQ(e.Value("sluice_batch_rows_sum"), 2004);
  EXPECT_EQ(e.Value("sluice_batch_rows_bucket", {{"le", "5"}}), 1);
  EXPECT_EQ(e.Value("sluice_batch_rows_bucket", {{"le", "1000000"}}), 2);
  EXPECT_EQ(e.Value("sluice_apply_duration_seconds_count"), 2);
  EXPECT_DOUBLE_EQ(e.Value("sluice_apply_duration_seconds_sum"), 1.503);
  EXPECT_EQ(e.Value("sluice_apply_duration_seconds_bucket", {{"le", "0.005"}}), 1);
  EXPECT_EQ(e.Value("sluice_apply_duration_seconds_bucket", {{"le", "2.5"}}), 2);
  EXPECT_EQ(e.Value("sluice_lag_seconds"), 0.75);
  EXPECT_EQ(e.Value("sluice_journal_backlog_rows"), 123);
  EXPECT_EQ(e.Value("sluice_position"), 456);
  EXPECT_EQ(e.Value("sluice_sink_errors_total", {{"kind", "timeout"}}), 2);
  EXPECT_EQ(e.Value("sluice_sink_errors_total", {{"kind", "fenced"}}), 1);
  EXPECT_EQ(e.Value("sluice_sink_errors_total", {{"kind", "connection"}}), 0);
  EXPECT_EQ(e.Value("sluice_reconnects_total"), 1);
}

TEST(Metrics, HistogramBucketsSpanRowsAndSeconds) {
  Metrics m("v", "n", "d");
  Exposition e = Scrape(m);
  std::set<double> rows, seconds;
  for (const auto& s : e.Find("sluice_batch_rows_bucket"))
    rows.insert(std::stod(s.labels.at("le")));
  for (const auto& s : e.Find("sluice_apply_duration_seconds_bucket")) {
    seconds.insert(std::stod(s.labels.at("le")));
  }
  ASSERT_FALSE(rows.empty());
  ASSERT_FALSE(seconds.empty());
  EXPECT_EQ(*rows.begin(), 1);
  EXPECT_TRUE(rows.count(1e6));
  EXPECT_EQ(*seconds.begin(), 0.0005);
  EXPECT_TRUE(seconds.count(30));
}

TEST(Metrics, LeaseExpiryIsZeroWhenNotLeader) {
  Metrics m("v", "n", "d");
  m.SetLeaseExpirySeconds(3);  // a standby has no lease left
  EXPECT_EQ(Scrape(m).Value("sluice_lease_expiry_seconds"), 0);
  m.SetLeader(true);
  m.SetLeaseExpirySeconds(3);
  EXPECT_EQ(Scrape(m).Value("sluice_lease_expiry_seconds"), 3);
  m.SetLeaseExpirySeconds(-0.5);  // overdue by our own clock
  EXPECT_EQ(Scrape(m).Value("sluice_lease_expiry_seconds"), 0);
  m.SetLeaseExpirySeconds(2);
  m.SetLeader(false);  // losing the lease clears the time left
  Exposition e = Scrape(m);
  EXPECT_EQ(e.Value("sluice_leader"), 0);
  EXPECT_EQ(e.Value("sluice_lease_expiry_seconds"), 0);
}

TEST(Metrics, HostileTableNamesAreValidLabelValues) {
  // Any SQLite identifier is a possible table name.
  const std::vector<std::string> hostile = {
      "quo\"te",    "back\\slash", "new\nline",       "ünïcødé 表 🦀",
      "",           "tab\there",   "}{=,\" x=\"y",    "\\n literally",
      "trailing\\", "a\r\nb",      "#TYPE x counter", "sluice_leader 1"};
  Metrics m("v\"1\n", "no\\de", "dep\nloyment");
  m.SetTables(hostile);
  for (const std::string& t : hostile) {
    m.RowsApplied(t, 1, 2);
    m.RowsParked(t, 3);
  }
  Result<Exposition> e = ParseExposition(m.Serialize());
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(e->Value("sluice_build_info",
                     {{"version", "v\"1\n"}, {"node", "no\\de"}, {"deployment", "dep\nloyment"}}),
            1);
  for (const std::string& t : hostile) {
    EXPECT_EQ(e->Value("sluice_rows_applied_total", {{"table", t}, {"op", "upsert"}}), 1) << t;
    EXPECT_EQ(e->Value("sluice_rows_applied_total", {{"table", t}, {"op", "delete"}}), 2) << t;
    EXPECT_EQ(e->Value("sluice_rows_parked_total", {{"table", t}}), 3) << t;
  }
  EXPECT_EQ(e->Value("sluice_leader"), 0);  // no table name could fake another sample
  EXPECT_EQ(e->Find("sluice_rows_parked_total").size(), hostile.size() + 1);
}

TEST(Metrics, TableNamesThatAreNotUtf8AreMadeValid) {
  // SQLite stores identifiers as bytes; Prometheus wants UTF-8 label values.
  Metrics m("v", "n", "d");
  m.SetTables(
      {"bad\xff"
       "byte",
       "cut\xe2\x82"});
  m.RowsApplied(
      "bad\xff"
      "byte",
      1, 0);
  Result<Exposition> e = ParseExposition(m.Serialize());
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(e->Value("sluice_rows_applied_total", {{"table", "bad\\xffbyte"}, {"op", "upsert"}}),
            1);
  EXPECT_EQ(e->Value("sluice_rows_parked_total", {{"table", "cut\\xe2\\x82"}}), 0);
}

TEST(Metrics, TableLabelValuesAreCapped) {
  Metrics m("v", "n", "d");
  std::vector<std::string> tables;
  for (size_t i = 0; i < Metrics::kMaxTables + 5; ++i) tables.push_back("t" + std::to_string(i));
  m.SetTables(tables);
  m.RowsApplied("t0", 1, 0);
  m.RowsApplied("t" + std::to_string(Metrics::kMaxTables - 1), 1, 0);  // the last one in
  m.RowsApplied("t" + std::to_string(Metrics::kMaxTables), 2, 0);      // the first one out
  m.RowsApplied("later", 3, 1);                                        // new, also out
  m.RowsParked("later", 4);
  m.SetTables({"later-still"});
  Exposition e = Scrape(m);
  std::set<std::string> values;
  for (const auto& s : e.Find("sluice_rows_applied_total")) values.insert(s.labels.at("table"));
  EXPECT_EQ(values.size(), Metrics::kMaxTables + 1);  // the first kMaxTables and "_other"
  EXPECT_TRUE(values.count("_other"));
  EXPECT_FALSE(values.count("t" + std::to_string(Metrics::kMaxTables)));
  EXPECT_FALSE(values.count("later"));
  EXPECT_FALSE(values.count("later-still"));
  EXPECT_EQ(e.Find("sluice_rows_parked_total").size(), Metrics::kMaxTables + 1);
  EXPECT_EQ(e.Value("sluice_rows_applied_total", {{"table", "t0"}, {"op", "upsert"}}), 1);
  EXPECT_EQ(e.Value("sluice_rows_applied_total",
                    {{"table", "t" + std::to_string(Metrics::kMaxTables - 1)}, {"op", "upsert"}}),
            1);
  EXPECT_EQ(e.Value("sluice_rows_applied_total", {{"table", "_other"}, {"op", "upsert"}}), 5);
  EXPECT_EQ(e.Value("sluice_rows_applied_total", {{"table", "_other"}, {"op", "delete"}}), 1);
  EXPECT_EQ(e.Value("sluice_rows_parked_total", {{"table", "_other"}}), 4);
}

TEST(Metrics, SetTablesAgainAddsOnlyNewTablesAndKeepsCounts) {
  Metrics m("v", "n", "d");
  m.SetTables({"a"});
  m.RowsApplied("a", 2, 0);
  m.SetTables({"a", "b"});
  Exposition e = Scrape(m);
  EXPECT_EQ(e.Value("sluice_rows_applied_total", {{"table", "a"}, {"op", "upsert"}}), 2);
  EXPECT_EQ(e.Value("sluice_rows_applied_total", {{"table", "b"}, {"op", "upsert"}}), 0);
  EXPECT_EQ(e.Find("sluice_rows_parked_total").size(), 3u);  // a, b, _other
}

}  // namespace
}  // namespace sluice
