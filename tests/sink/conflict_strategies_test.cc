// Every conflict strategy against every conflict kind, through BatchApplier on
// a real PostgreSQL (issue #7, docs/design-conflicts.md sections 2 and 3): one
// mirror table per case, each with its own policy, all in the same batches.
// Per case: the mirror row afterwards, the exact conflict_log row, and
// exactly-once (the position moves once, a replay is refused and changes
// nothing, a later batch logs nothing again). Then merge rules on values
// shaped like Open WebUI's chat rows, manual's one pending entry per row, a
// batch that also parks a row, and an outside delete the source agrees with.
#include <gtest/gtest.h>

#include <cstdint>
#include <ctime>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sink/batch_applier.h"
#include "sink/conflict_policy.h"
#include "tests/sink/applier_fixture.h"

namespace sluice {
namespace {

using testing::ApplierTest;
using testing::Col;
using testing::Delete;
using testing::I;
using testing::kInt;
using testing::kText;
using testing::T;
using testing::Update;
using testing::Upsert;

constexpr int64_t kT0 = 1733000000;  // 2024-11-30 20:53:20 UTC, the base row's time

// The compare values of one version of a row, in all three units Open WebUI
// uses: epoch seconds, epoch nanoseconds, ISO-8601 text (no zone: UTC).
struct Times {
  std::optional<int64_t> s, ns;
  std::optional<std::string> iso;
};

std::string Iso(int64_t t) {
  time_t tt = static_cast<time_t>(t);
  struct tm tm;
  gmtime_r(&tt, &tm);
  char buf[32];
  strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

// kT0 + offset seconds; the nanoseconds carry a fraction so they are not just s * 1e9.
Times At(int64_t offset) {
  int64_t t = kT0 + offset;
  return {t, t * 1000000000 + 123456789, Iso(t)};
}

std::string Lit(const std::optional<int64_t>& v) { return v ? std::to_string(*v) : "NULL"; }
std::string Lit(const std::optional<std::string>& v) { return v ? "'" + *v + "'" : "NULL"; }
Value Val(const std::optional<int64_t>& v) { return v ? I(*v) : Value::Null(); }
Value Val(const std::optional<std::string>& v) { return v ? T(v->c_str()) : Value::Null(); }

// A mirror with compare fields in each unit; one table per case.
TableShape NoteShape(const std::string& name) {
  TableShape t;
  t.name = name;
  t.identity = TableShape::Identity::kUniqueIndex;
  t.columns = {Col("id", "VARCHAR(255)", 1, kText), Col("title", "TEXT", 0, kText),
               Col("ts_s", "INTEGER", 0, kInt), Col("ts_ns", "INTEGER", 0, kInt),
               Col("ts_iso", "TEXT", 0, kText)};
  return t;
}

std::vector<Value> NoteRow(const char* id, const std::string& title, const Times& t) {
  return {T(id), T(title.c_str()), Val(t.s), Val(t.ns), Val(t.iso)};
}

// The conflict kinds, by what the outside writer does before the source's change.
enum class Kind {
  kUpdateOriginDiffers,  // outside UPDATE, then a source update
  kUpdateDeleted,        // outside hard DELETE, then a source update
  kUpdateMissing,        // DELETE with the triggers off (no record), then a source update
  kUpdateTombstoned,     // outside UPDATE setting _sluice_deleted_at, then a source update
  kDeleteOriginDiffers,  // outside UPDATE, then a source delete
  kInsertExists,         // outside INSERT of a key sluice never wrote, then a source insert
};

TableConflictPolicy Policy(const std::string& strategy, const std::string& compare = "",
                           const std::string& fallback = "",
                           std::map<std::string, std::string> rules = {}) {
  TableConflictPolicy p;
  p.strategy = strategy;
  p.compare_field = compare;
  p.fallback = fallback;
  p.rules = std::move(rules);
  return p;
}

struct Case {
  std::string table;  // the case's name, and its mirror
  TableConflictPolicy policy;
  Kind kind;
  // Row "k" as the outside writer leaves it and as the source sends it.
  std::string out_title = "outside";
  Times out = At(100);
  std::string src_title = "source";
  Times src = At(200);
  // Expected afterwards. Images print as title@seconds-since-kT0 (" deleted"
  // for a tombstone), "-" for none.
  // Row k: image | clean/marked | _sluice_base | _sluice_seq.
  std::string row;
  // Log: kind|strategy|status|resolved_by|source|target|base|resolved|resolved is
  // s(ource)/t(arget)/m(erged)/-|resolved_at set|epoch|batch|seq.
  std::string log;
};

// The design's table (section 3), case by case. Base: "base@0", seq 1; the
// source's change has seq 11, in batch 20.
std::vector<Case> Cases() {
  const std::string R = "|t|E|20|11";  // resolved: resolved_at set, our epoch, batch 20, seq 11
  const std::string P = "|f|E|20|11";  // pending
  std::vector<Case> c;
  auto add = [&](Case x) { c.push_back(std::move(x)); };
  using K = Kind;
  // ---- source_wins: the source's image replaces the target; clean again.
  add({.table = "sw_uod",
       .policy = Policy("source_wins"),
       .kind = K::kUpdateOriginDiffers,
       .row = "source@200|clean|-|11",
       .log = "update_origin_differs|source_wins|resolved|automatic|source@200|outside@100|"
              "base@0|source@200|s" +
              R});
  add({.table = "sw_ud",
       .policy = Policy("source_wins"),
       .kind = K::kUpdateDeleted,
       .row = "source@200|clean|-|11",
       .log =
           "update_deleted|source_wins|resolved|automatic|source@200|-|base@0|source@200|s" + R});
  add({.table = "sw_um",
       .policy = Policy("source_wins"),
       .kind = K::kUpdateMissing,
       .row = "source@200|clean|-|11",
       .log = "update_missing|source_wins|resolved|automatic|source@200|-|-|source@200|s" + R});
  add({.table = "sw_udt",
       .policy = Policy("source_wins"),
       .kind = K::kUpdateTombstoned,
       .row = "source@200|clean|-|11",
       .log = "update_deleted|source_wins|resolved|automatic|source@200|base@0 deleted|base@0|"
              "source@200|s" +
              R});
  add({.table = "sw_dod",
       .policy = Policy("source_wins"),
       .kind = K::kDeleteOriginDiffers,
       .row = "outside@100 deleted|clean|-|11",
       .log = "delete_origin_differs|source_wins|resolved|automatic|outside@100 deleted|"
              "outside@100|base@0|outside@100 deleted|s" +
              R});
  add({.table = "sw_ie",
       .policy = Policy("source_wins"),
       .kind = K::kInsertExists,
       .row = "source@200|clean|-|11",
       .log = "insert_exists|source_wins|resolved|automatic|source@200|outside@100|-|source@200|s" +
              R});
  // ---- target_wins: the target stays (a delete as a tombstone), marked; the
  // source's image becomes the base for its next change.
  add({.table = "tw_uod",
       .policy = Policy("target_wins"),
       .kind = K::kUpdateOriginDiffers,
       .row = "outside@100|marked|source@200|11",
       .log = "update_origin_differs|target_wins|resolved|automatic|source@200|outside@100|"
              "base@0|outside@100|t" +
              R});
  add({.table = "tw_ud",
       .policy = Policy("target_wins"),
       .kind = K::kUpdateDeleted,
       .row = "source@200 deleted|marked|source@200|11",
       .log = "update_deleted|target_wins|resolved|automatic|source@200|-|base@0|-|-" + R});
  add({.table = "tw_um",
       .policy = Policy("target_wins"),
       .kind = K::kUpdateMissing,
       .row = "source@200|clean|-|11",
       .log = "update_missing|target_wins|resolved|automatic|source@200|-|-|source@200|s" + R});
  add({.table = "tw_udt",
       .policy = Policy("target_wins"),
       .kind = K::kUpdateTombstoned,
       .row = "base@0 deleted|marked|source@200|11",
       .log = "update_deleted|target_wins|resolved|automatic|source@200|base@0 deleted|base@0|"
              "base@0 deleted|t" +
              R});
  add({.table = "tw_dod",
       .policy = Policy("target_wins"),
       .kind = K::kDeleteOriginDiffers,
       .row = "outside@100|marked|outside@100 deleted|11",
       .log = "delete_origin_differs|target_wins|resolved|automatic|outside@100 deleted|"
              "outside@100|base@0|outside@100|t" +
              R});
  add({.table = "tw_ie",
       .policy = Policy("target_wins"),
       .kind = K::kInsertExists,
       .row = "outside@100|marked|source@200|11",
       .log =
           "insert_exists|target_wins|resolved|automatic|source@200|outside@100|-|outside@100|t" +
           R});
  // ---- newest_wins, per unit: source newer, target newer, tie (source).
  const std::string nw_src = "|newest_wins|resolved|automatic|source@200|";
  for (const char* unit : {"s", "ns", "iso"}) {
    std::string f = std::string("ts_") + unit;
    std::string n = std::string("nw_") + unit;
    add({.table = n + "_src_newer",
         .policy = Policy("newest_wins", f),
         .kind = K::kUpdateOriginDiffers,
         .row = "source@200|clean|-|11",
         .log = "update_origin_differs" + nw_src + "outside@100|base@0|source@200|s" + R});
    add({.table = n + "_tgt_newer",
         .policy = Policy("newest_wins", f),
         .kind = K::kUpdateOriginDiffers,
         .out = At(300),
         .row = "outside@300|marked|source@200|11",
         .log = "update_origin_differs" + nw_src + "outside@300|base@0|outside@300|t" + R});
    add({.table = n + "_tie",
         .policy = Policy("newest_wins", f),
         .kind = K::kUpdateOriginDiffers,
         .out = At(200),
         .row = "source@200|clean|-|11",
         .log = "update_origin_differs" + nw_src + "outside@200|base@0|source@200|s" + R});
  }
  // Nanoseconds compare exactly: a target 1 ns newer wins (a double would tie).
  Times one_ns_later = At(200);
  *one_ns_later.ns += 1;
  add({.table = "nw_ns_tgt_1ns",
       .policy = Policy("newest_wins", "ts_ns"),
       .kind = K::kUpdateOriginDiffers,
       .out = one_ns_later,
       .row = "outside@200|marked|source@200|11",
       .log = "update_origin_differs" + nw_src + "outside@200|base@0|outside@200|t" + R});
  // Units by magnitude in one column: the outside wrote milliseconds (kT0+300 s).
  Times ms = At(300);
  *ms.s *= 1000;
  add({.table = "nw_s_ms",
       .policy = Policy("newest_wins", "ts_s"),
       .kind = K::kUpdateOriginDiffers,
       .out = ms,
       .row = "outside@300|marked|source@200|11",
       .log = "update_origin_differs" + nw_src + "outside@300|base@0|outside@300|t" + R});
  // ISO-8601 with a zone: 22:55:00+02:00 is kT0+100 (older than the source's kT0+200).
  Times zoned = At(300);
  zoned.iso = "2024-11-30T22:55:00+02:00";
  add({.table = "nw_iso_zone",
       .policy = Policy("newest_wins", "ts_iso"),
       .kind = K::kUpdateOriginDiffers,
       .out = zoned,
       .row = "source@200|clean|-|11",
       .log = "update_origin_differs" + nw_src + "outside@300|base@0|source@200|s" + R});
  // Missing or unparsable loses to a usable value; two unusable: the source.
  Times junk = At(300), none = At(300);
  junk.iso = "yesterday";
  none.s = std::nullopt;
  Times src_junk = At(200);
  src_junk.iso = "2025-13-45";
  Times src_none = At(200);
  src_none.s = std::nullopt;
  add({.table = "nw_iso_tgt_junk",
       .policy = Policy("newest_wins", "ts_iso"),
       .kind = K::kUpdateOriginDiffers,
       .out = junk,
       .row = "source@200|clean|-|11",
       .log = "update_origin_differs" + nw_src + "outside@300|base@0|source@200|s" + R});
  add({.table = "nw_iso_src_junk",
       .policy = Policy("newest_wins", "ts_iso"),
       .kind = K::kUpdateOriginDiffers,
       .src = src_junk,
       .row = "outside@100|marked|source@200|11",
       .log = "update_origin_differs" + nw_src + "outside@100|base@0|outside@100|t" + R});
  add({.table = "nw_iso_both_junk",
       .policy = Policy("newest_wins", "ts_iso"),
       .kind = K::kUpdateOriginDiffers,
       .out = junk,
       .src = src_junk,
       .row = "source@200|clean|-|11",
       .log = "update_origin_differs" + nw_src + "outside@300|base@0|source@200|s" + R});
  add({.table = "nw_s_tgt_missing",
       .policy = Policy("newest_wins", "ts_s"),
       .kind = K::kUpdateOriginDiffers,
       .out = none,
       .row = "source@200|clean|-|11",
       .log = "update_origin_differs" + nw_src + "outside@-|base@0|source@200|s" + R});
  add({.table = "nw_s_src_missing",
       .policy = Policy("newest_wins", "ts_s"),
       .kind = K::kUpdateOriginDiffers,
       .src = src_none,
       .row = "outside@100|marked|source@-|11",
       .log = "update_origin_differs|newest_wins|resolved|automatic|source@-|outside@100|base@0|"
              "outside@100|t" +
              R});
  // The other kinds: a delete has no compare value and loses to a live row.
  add({.table = "nw_ud",
       .policy = Policy("newest_wins", "ts_s"),
       .kind = K::kUpdateDeleted,
       .row = "source@200|clean|-|11",
       .log = "update_deleted" + nw_src + "-|base@0|source@200|s" + R});
  add({.table = "nw_um",
       .policy = Policy("newest_wins", "ts_s"),
       .kind = K::kUpdateMissing,
       .row = "source@200|clean|-|11",
       .log = "update_missing" + nw_src + "-|-|source@200|s" + R});
  add({.table = "nw_udt",
       .policy = Policy("newest_wins", "ts_s"),
       .kind = K::kUpdateTombstoned,
       .row = "source@200|clean|-|11",
       .log = "update_deleted" + nw_src + "base@0 deleted|base@0|source@200|s" + R});
  add({.table = "nw_dod",
       .policy = Policy("newest_wins", "ts_s"),
       .kind = K::kDeleteOriginDiffers,
       .out = At(50),
       .row = "outside@50|marked|outside@50 deleted|11",
       .log = "delete_origin_differs|newest_wins|resolved|automatic|outside@50 deleted|"
              "outside@50|base@0|outside@50|t" +
              R});
  add({.table = "nw_ie_tgt_newer",
       .policy = Policy("newest_wins", "ts_s"),
       .kind = K::kInsertExists,
       .out = At(300),
       .row = "outside@300|marked|source@200|11",
       .log = "insert_exists" + nw_src + "outside@300|-|outside@300|t" + R});
  add({.table = "nw_ie_src_newer",
       .policy = Policy("newest_wins", "ts_s"),
       .kind = K::kInsertExists,
       .row = "source@200|clean|-|11",
       .log = "insert_exists" + nw_src + "outside@100|-|source@200|s" + R});
  // ---- merge: per column against the base; the delete kinds follow the fallback.
  add({.table = "mg_uod",
       .policy = Policy("merge"),
       .kind = K::kUpdateOriginDiffers,
       .out = At(0),
       .src_title = "base",
       .row = "outside@200|marked|base@200|11",
       .log = "update_origin_differs|merge|resolved|automatic|base@200|outside@0|base@0|"
              "outside@200|m" +
              R});
  add({.table = "mg_uod_both",
       .policy = Policy("merge"),
       .kind = K::kUpdateOriginDiffers,
       .row = "source@200|clean|-|11",
       .log = "update_origin_differs|merge|resolved|automatic|source@200|outside@100|base@0|"
              "source@200|s" +
              R});
  add({.table = "mg_uod_rule",
       .policy = Policy("merge", "ts_s", "", {{"title", "target_wins"}}),
       .kind = K::kUpdateOriginDiffers,
       .row = "outside@200|marked|source@200|11",
       .log = "update_origin_differs|merge|resolved|automatic|source@200|outside@100|base@0|"
              "outside@200|m" +
              R});
  add({.table = "mg_ud",
       .policy = Policy("merge"),
       .kind = K::kUpdateDeleted,
       .row = "source@200|clean|-|11",
       .log = "update_deleted|merge|resolved|automatic|source@200|-|base@0|source@200|s" + R});
  add({.table = "mg_ud_newest",
       .policy = Policy("merge", "ts_s", "newest_wins"),
       .kind = K::kUpdateDeleted,
       .row = "source@200|clean|-|11",
       .log = "update_deleted|merge|resolved|automatic|source@200|-|base@0|source@200|s" + R});
  add({.table = "mg_ud_tw",
       .policy = Policy("merge", "", "target_wins"),
       .kind = K::kUpdateDeleted,
       .row = "source@200 deleted|marked|source@200|11",
       .log = "update_deleted|merge|resolved|automatic|source@200|-|base@0|-|-" + R});
  add({.table = "mg_um",
       .policy = Policy("merge"),
       .kind = K::kUpdateMissing,
       .row = "source@200|clean|-|11",
       .log = "update_missing|merge|resolved|automatic|source@200|-|-|source@200|s" + R});
  add({.table = "mg_um_tw",
       .policy = Policy("merge", "", "target_wins"),
       .kind = K::kUpdateMissing,
       .row = "source@200|clean|-|11",
       .log = "update_missing|merge|resolved|automatic|source@200|-|-|source@200|s" + R});
  add({.table = "mg_udt",
       .policy = Policy("merge"),
       .kind = K::kUpdateTombstoned,
       .row = "source@200|clean|-|11",
       .log = "update_deleted|merge|resolved|automatic|source@200|base@0 deleted|base@0|"
              "source@200|s" +
              R});
  add({.table = "mg_dod",
       .policy = Policy("merge"),
       .kind = K::kDeleteOriginDiffers,
       .row = "outside@100 deleted|clean|-|11",
       .log = "delete_origin_differs|merge|resolved|automatic|outside@100 deleted|outside@100|"
              "base@0|outside@100 deleted|s" +
              R});
  add({.table = "mg_dod_tw",
       .policy = Policy("merge", "", "target_wins"),
       .kind = K::kDeleteOriginDiffers,
       .row = "outside@100|marked|outside@100 deleted|11",
       .log = "delete_origin_differs|merge|resolved|automatic|outside@100 deleted|outside@100|"
              "base@0|outside@100|t" +
              R});
  add({.table = "mg_ie_rule",
       .policy = Policy("merge", "", "", {{"title", "target_wins"}}),
       .kind = K::kInsertExists,
       .row = "outside@200|marked|source@200|11",
       .log = "insert_exists|merge|resolved|automatic|source@200|outside@100|-|outside@200|m" + R});
  // ---- manual: the target stays, one pending entry; the base stays for the operator.
  add({.table = "mn_uod",
       .policy = Policy("manual"),
       .kind = K::kUpdateOriginDiffers,
       .row = "outside@100|marked|base@0|11",
       .log = "update_origin_differs|manual|pending|-|source@200|outside@100|base@0|-|-" + P});
  add({.table = "mn_ud",
       .policy = Policy("manual"),
       .kind = K::kUpdateDeleted,
       .row = "source@200 deleted|marked|base@0|11",
       .log = "update_deleted|manual|pending|-|source@200|-|base@0|-|-" + P});
  add({.table = "mn_um",
       .policy = Policy("manual"),
       .kind = K::kUpdateMissing,
       .row = "source@200|clean|-|11",
       .log = "update_missing|manual|resolved|automatic|source@200|-|-|source@200|s" + R});
  add({.table = "mn_udt",
       .policy = Policy("manual"),
       .kind = K::kUpdateTombstoned,
       .row = "base@0 deleted|marked|base@0|11",
       .log = "update_deleted|manual|pending|-|source@200|base@0 deleted|base@0|-|-" + P});
  add({.table = "mn_dod",
       .policy = Policy("manual"),
       .kind = K::kDeleteOriginDiffers,
       .row = "outside@100|marked|base@0|11",
       .log = "delete_origin_differs|manual|pending|-|outside@100 deleted|outside@100|base@0|-|-" +
              P});
  add({.table = "mn_ie",
       .policy = Policy("manual"),
       .kind = K::kInsertExists,
       .row = "outside@100|marked|-|11",
       .log = "insert_exists|manual|pending|-|source@200|outside@100|-|-|-" + P});
  return c;
}

class ConflictStrategiesTest : public ApplierTest {
 protected:
  void SetUp() override {
    ApplierTest::SetUp();
    if (pg_.empty() || HasFatalFailure()) return;
    std::vector<std::string> lease = Q("SELECT held, epoch FROM sync_metadata.sluice_lease('" +
                                       name_ + "', 'n1', 'test-host', NULL, 60000)");
    ASSERT_EQ(lease.size(), 1u);
    ASSERT_EQ(lease[0].substr(0, 2), "t|");
    epoch_ = std::stoll(lease[0].substr(2));
    applier_->SetLease(epoch_, 0);
  }

  // Like ApplierTest::Q, on one connection kept open (the checks run hundreds of queries).
  std::vector<std::string> Q(const std::string& sql) {
    if (!client_) client_ = std::make_unique<testing::Pg>(pg_);
    std::vector<std::string> rows;
    for (const auto& row : client_->Query(sql).rows) {
      std::string line;
      for (size_t j = 0; j < row.size(); ++j) line += (j > 0 ? "|" : "") + row[j].value_or("NULL");
      rows.push_back(line);
    }
    return rows;
  }

  // A row image (jsonb expression) as title@seconds-since-kT0[ deleted], "-" for none.
  static std::string Img(const std::string& x) {
    return "coalesce((" + x + ")->>'title' || '@' || coalesce((round(sync_metadata." +
           "sluice_time_seconds((" + x + ")->'ts_s')) - " + std::to_string(kT0) +
           ")::text, '-') || CASE WHEN (" + x + ")->>'_sluice_deleted_at' IS NULL THEN '' ELSE " +
           "' deleted' END, '-')";
  }
  std::string Row(const std::string& table, const char* key = "k") {
    std::vector<std::string> r =
        Q("SELECT " + Img("to_jsonb(t)") +
          ", CASE WHEN _sluice_outside_at IS NULL THEN 'clean' ELSE 'marked' END, " +
          Img("_sluice_base") + ", _sluice_seq FROM " + S() + "." + table + " t WHERE id = '" +
          key + "'");
    return r.empty() ? "(none)" : r[0];
  }
  // This deployment's log rows of `table` (all tables when empty), in id order.
  std::vector<std::string> Log(const std::string& table = "") {
    return Q("SELECT kind, strategy, status, coalesce(resolved_by, '-'), " + Img("source_data") +
             ", " + Img("target_data") + ", " + Img("base_data") + ", " + Img("resolved_data") +
             ", CASE WHEN resolved_data IS NULL THEN '-' WHEN resolved_data = source_data THEN "
             "'s' WHEN resolved_data = target_data THEN 't' ELSE 'm' END, resolved_at IS NOT "
             "NULL, CASE WHEN epoch = " +
             std::to_string(epoch_) +
             " THEN 'E' ELSE coalesce(epoch::text, 'null') END, batch, seq FROM "
             "sync_metadata.conflict_log WHERE deployment = '" +
             name_ + "'" + (table.empty() ? "" : " AND table_name = '" + table + "'") +
             " ORDER BY id");
  }
  int64_t Count(const std::string& sql) { return std::stoll(Q(sql)[0]); }
  int64_t LogRows() {
    return Count("SELECT count(*) FROM sync_metadata.conflict_log WHERE deployment = '" + name_ +
                 "'");
  }
  std::vector<std::string> Outside(const std::string& table, const char* title, const Times& t) {
    return Q("UPDATE " + S() + "." + table + " SET title = '" + title + "', ts_s = " + Lit(t.s) +
             ", ts_ns = " + Lit(t.ns) + ", ts_iso = " + Lit(t.iso) + " WHERE id = 'k'");
  }
  ConflictPolicy PolicyOf(const std::vector<Case>& cases) {
    ConflictPolicy p;
    for (const Case& c : cases) p.tables[c.table] = c.policy;
    return p;
  }

  int64_t epoch_ = 0;
  std::unique_ptr<testing::Pg> client_;
};

// The source's change to every case's row "k": batch 10 -> 20.
void AddSourceChanges(const std::vector<Case>& cases, Batch* b) {
  for (uint32_t i = 0; i < cases.size(); ++i) {
    b->tables.push_back(NoteShape(cases[i].table));
    // The source inserts "k" where the outside inserted it; elsewhere it had
    // "k" (batch 1) and updates or deletes it, as the journal reports.
    std::vector<Value> row = NoteRow("k", cases[i].src_title, cases[i].src);
    Status st = cases[i].kind == Kind::kDeleteOriginDiffers
                    ? b->changes.Append(Delete(i, 11, {T("k")}))
                : cases[i].kind == Kind::kInsertExists ? b->changes.Append(Upsert(i, 11, row))
                                                       : b->changes.Append(Update(i, 11, row));
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
}

TEST_F(ConflictStrategiesTest, EveryStrategyAgainstEveryKind) {
  if (pg_.empty()) return;
  std::vector<Case> cases = Cases();
  applier_->SetConflictPolicy(PolicyOf(cases));
  // Batch 1: "k" as sluice writes it ("base", kT0), except where the outside
  // inserts it; "o" everywhere, left alone by the outside writer.
  Batch b1 = NewBatch(-1, 10, {});
  for (uint32_t i = 0; i < cases.size(); ++i) {
    b1.tables.push_back(NoteShape(cases[i].table));
    if (cases[i].kind != Kind::kInsertExists) {
      ASSERT_TRUE(b1.changes.Append(Upsert(i, 1, NoteRow("k", "base", At(0)))).ok());
    }
    ASSERT_TRUE(b1.changes.Append(Upsert(i, 2, NoteRow("o", "other", At(0)))).ok());
  }
  Status st = Apply(&b1);
  ASSERT_TRUE(st.ok()) << st.ToString();
  ASSERT_EQ(LogRows(), 0);

  // The outside writer (no sluice.writer: a dashboard, another service).
  for (const Case& c : cases) {
    const std::string t = S() + "." + c.table;
    switch (c.kind) {
      case Kind::kUpdateOriginDiffers:
      case Kind::kDeleteOriginDiffers:
        Outside(c.table, c.out_title.c_str(), c.out);
        break;
      case Kind::kUpdateDeleted:
        Q("DELETE FROM " + t + " WHERE id = 'k'");
        break;
      case Kind::kUpdateMissing:
        Q("BEGIN; SET LOCAL session_replication_role = replica; DELETE FROM " + t +
          " WHERE id = 'k'; COMMIT");
        break;
      case Kind::kUpdateTombstoned:
        Q("UPDATE " + t + " SET _sluice_deleted_at = now() WHERE id = 'k'");
        break;
      case Kind::kInsertExists:
        Q("INSERT INTO " + t + " (id, title, ts_s, ts_ns, ts_iso) VALUES ('k', '" + c.out_title +
          "', " + Lit(c.out.s) + ", " + Lit(c.out.ns) + ", " + Lit(c.out.iso) + ")");
        break;
    }
  }
  ASSERT_EQ(LogRows(), 0) << "outside writes alone are no conflicts";

  Batch b2 = NewBatch(10, 20, {});
  AddSourceChanges(cases, &b2);
  ApplyStats stats;
  st = Apply(&b2, &stats);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(Position(), 20);
  std::vector<std::string> rows_after, logs_after;
  int64_t pending = 0, counted = 0;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.table);
    std::string row = Row(c.table);
    EXPECT_EQ(row, c.row);
    std::string want = c.log;
    std::vector<std::string> log = Log(c.table);
    EXPECT_EQ(log, std::vector<std::string>{want});
    EXPECT_EQ(Row(c.table, "o"), "other@0|clean|-|2") << "a clean row of the same batch";
    rows_after.push_back(row);
    logs_after.push_back(log.empty() ? "" : log[0]);
    if (c.policy.strategy == "manual" && c.kind != Kind::kUpdateMissing) ++pending;
  }
  for (const ConflictCount& cc : stats.conflicts) counted += cc.count;
  EXPECT_EQ(counted, static_cast<int64_t>(cases.size()));
  EXPECT_EQ(stats.conflicts_pending, pending);

  // Exactly once: replaying batch 2 is refused and changes nothing.
  Batch again = NewBatch(10, 20, {});
  AddSourceChanges(cases, &again);
  st = Apply(&again);
  EXPECT_EQ(st.code(), Status::Code::kConflict) << st.ToString();
  EXPECT_EQ(Position(), 20);
  EXPECT_EQ(LogRows(), static_cast<int64_t>(cases.size()));
  for (size_t i = 0; i < cases.size(); ++i) {
    EXPECT_EQ(Row(cases[i].table), rows_after[i]) << cases[i].table;
  }

  // A later batch (the clean rows "o" only) logs nothing again, changes no "k".
  Batch b3 = NewBatch(20, 30, {});
  for (uint32_t i = 0; i < cases.size(); ++i) {
    b3.tables.push_back(NoteShape(cases[i].table));
    ASSERT_TRUE(b3.changes.Append(Upsert(i, 21, NoteRow("o", "other 2", At(0)))).ok());
  }
  st = Apply(&b3, &stats);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_TRUE(stats.conflicts.empty());
  EXPECT_EQ(Position(), 30);
  for (size_t i = 0; i < cases.size(); ++i) {
    EXPECT_EQ(Row(cases[i].table), rows_after[i]) << cases[i].table;
    EXPECT_EQ(Log(cases[i].table), std::vector<std::string>{logs_after[i]}) << cases[i].table;
  }
}

// ---------------------------------------------------------------- merge rules
// Open WebUI's chat: chat.chat holds {"history": {"messages": {id: {...}},
// "currentId": id}, "messages": [{"id": ...}, ...]}, chat.meta {"tags": [...]},
// updated_at epoch seconds; "files" stands for a JSON array column (append).
TableShape ChatLikeShape() {
  TableShape t;
  t.name = "chat";
  t.identity = TableShape::Identity::kUniqueIndex;
  t.columns = {Col("id", "VARCHAR(255)", 1, kText), Col("title", "TEXT", 0, kText),
               Col("chat", "JSON", 0, kText),       Col("meta", "JSON", 0, kText),
               Col("files", "JSON", 0, kText),      Col("updated_at", "INTEGER", 0, kInt)};
  return t;
}

std::string ChatJson(const std::vector<std::string>& ids) {
  std::string history, list;
  for (const std::string& id : ids) {
    std::string m = R"({"id": ")" + id + R"(", "content": "text of )" + id + R"("})";
    history += (history.empty() ? "" : ", ") + ("\"" + id + "\": " + m);
    list += (list.empty() ? "" : ", ") + m;
  }
  return R"({"history": {"messages": {)" + history + R"(}, "currentId": ")" + ids.back() +
         R"("}, "messages": [)" + list + "]}";
}

std::string MetaJson(const std::string& tags) { return R"({"tags": )" + tags + "}"; }

struct ChatRow {
  std::string title = "Chat";
  std::vector<std::string> msgs = {"m1"};
  std::string tags = R"(["x"])";
  std::string files = R"(["a"])";
  int64_t updated = kT0;
};

Change ChatUpsert(int64_t seq, const char* id, const ChatRow& r) {
  return Upsert(0, seq,
                {T(id), T(r.title.c_str()), T(ChatJson(r.msgs).c_str()),
                 T(MetaJson(r.tags).c_str()), T(r.files.c_str()), I(r.updated)});
}

class ConflictMergeTest : public ConflictStrategiesTest {
 protected:
  void SetUp() override {
    ConflictStrategiesTest::SetUp();
    if (pg_.empty() || HasFatalFailure()) return;
    ConflictPolicy policy;
    policy.tables["chat"] = Policy("merge", "updated_at", "",
                                   {{"chat", "union"},
                                    {"meta", "union"},
                                    {"files", "append"},
                                    {"title", "newest_wins"},
                                    {"updated_at", "newest_wins"}});
    applier_->SetConflictPolicy(policy);
  }
  std::string Ids(const char* id) {
    return Q(
        "SELECT string_agg(m->>'id', ',' ORDER BY o) || ' / ' || (SELECT string_agg(k, ',' "
        "ORDER BY k) FROM jsonb_object_keys(chat->'history'->'messages') k) || ' / ' || "
        "(chat->'history'->>'currentId') FROM " +
        S() + ".chat, jsonb_array_elements(chat->'messages') WITH ORDINALITY a(m, o) WHERE id = '" +
        id + "' GROUP BY chat")[0];
  }
  std::string Cols(const char* id) {
    return Q("SELECT title, meta->>'tags', files::text, updated_at - " + std::to_string(kT0) +
             ", CASE WHEN _sluice_outside_at IS NULL THEN 'clean' ELSE 'marked' END FROM " + S() +
             ".chat WHERE id = '" + id + "'")[0];
  }
  // The log rows of `id`: kind|strategy|status|resolved_by|resolved image = the row|base = source.
  std::vector<std::string> ChatLog(const char* id) {
    return Q(
        "SELECT l.kind, l.strategy, l.status, l.resolved_by, l.resolved_data = "
        "sync_metadata.sluice_image(to_jsonb(c)), c._sluice_base = l.source_data, l.batch "
        "FROM sync_metadata.conflict_log l JOIN " +
        S() + ".chat c ON l.row_key = jsonb_build_array(c.id) WHERE l.deployment = '" + name_ +
        "' AND c.id = '" + id + "' ORDER BY l.id");
  }
};

TEST_F(ConflictMergeTest, ChatShapedRowsMergeByRuleAndMergeAgain) {
  if (pg_.empty()) return;
  Batch b1 = NewBatch(-1, 10, {ChatLikeShape()});
  for (const char* id : {"msgs", "tags", "title1", "title2", "newer_out", "newer_src", "files"}) {
    ASSERT_TRUE(b1.changes.Append(ChatUpsert(1, id, ChatRow{})).ok());
  }
  Status st = Apply(&b1);
  ASSERT_TRUE(st.ok()) << st.ToString();
  ASSERT_EQ(Q("SELECT data_type FROM information_schema.columns WHERE table_schema = '" + name_ +
              "' AND table_name = 'chat' AND column_name IN ('chat', 'meta', 'files') "
              "GROUP BY 1"),
            std::vector<std::string>{"jsonb"});

  // Outside (the Open WebUI instance writing to PostgreSQL meanwhile).
  const std::string chat = S() + ".chat";
  Q("UPDATE " + chat +
    " SET chat = jsonb_set(jsonb_set(jsonb_set(chat, '{history,messages,m2}', "
    "'{\"id\": \"m2\", \"content\": \"outside\"}'), '{history,currentId}', '\"m2\"'), "
    "'{messages}', chat->'messages' || '[{\"id\": \"m2\", \"content\": \"outside\"}]') "
    "WHERE id = 'msgs'");
  Q("UPDATE " + chat + " SET meta = '{\"tags\": [\"x\", \"t-out\"]}' WHERE id = 'tags'");
  Q("UPDATE " + chat + " SET title = 'renamed outside' WHERE id = 'title1'");
  Q("UPDATE " + chat + " SET files = '[\"a\", \"b\"]' WHERE id = 'title2'");
  Q("UPDATE " + chat + " SET title = 'out', updated_at = " + std::to_string(kT0 + 300) +
    " WHERE id = 'newer_out'");
  Q("UPDATE " + chat + " SET title = 'out', updated_at = " + std::to_string(kT0 + 100) +
    " WHERE id = 'newer_src'");
  Q("UPDATE " + chat + " SET files = '[\"a\", \"b\"]' WHERE id = 'files'");

  // The source (SQLite) meanwhile.
  Batch b2 = NewBatch(10, 20, {ChatLikeShape()});
  ChatRow r;
  r.msgs = {"m1", "m3"};
  r.updated = kT0 + 200;
  ASSERT_TRUE(b2.changes.Append(ChatUpsert(11, "msgs", r)).ok());
  r = ChatRow{};
  r.tags = R"(["x", "t-src"])";
  ASSERT_TRUE(b2.changes.Append(ChatUpsert(12, "tags", r)).ok());
  r = ChatRow{};
  r.msgs = {"m1", "m3"};
  r.updated = kT0 + 200;
  ASSERT_TRUE(b2.changes.Append(ChatUpsert(13, "title1", r)).ok());
  r = ChatRow{};
  r.title = "renamed in sqlite";
  ASSERT_TRUE(b2.changes.Append(ChatUpsert(14, "title2", r)).ok());
  r = ChatRow{};
  r.title = "src";
  r.updated = kT0 + 200;
  ASSERT_TRUE(b2.changes.Append(ChatUpsert(15, "newer_out", r)).ok());
  ASSERT_TRUE(b2.changes.Append(ChatUpsert(16, "newer_src", r)).ok());
  r = ChatRow{};
  r.files = R"(["a", "c", "b"])";
  ASSERT_TRUE(b2.changes.Append(ChatUpsert(17, "files", r)).ok());
  st = Apply(&b2);
  ASSERT_TRUE(st.ok()) << st.ToString();

  // Messages appended on both sides: all kept, the target's order then the source's new.
  EXPECT_EQ(Ids("msgs"), "m1,m2,m3 / m1,m2,m3 / m3");
  EXPECT_EQ(Cols("msgs"), "Chat|[\"x\"]|[\"a\"]|200|marked");
  // Tags added on both sides: a set union.
  EXPECT_EQ(Cols("tags"), "Chat|[\"x\", \"t-out\", \"t-src\"]|[\"a\"]|0|marked");
  // Title changed on one side only: that side wins (the other columns too).
  EXPECT_EQ(Cols("title1"), "renamed outside|[\"x\"]|[\"a\"]|200|marked");
  EXPECT_EQ(Ids("title1"), "m1,m3 / m1,m3 / m3");
  EXPECT_EQ(Cols("title2"), "renamed in sqlite|[\"x\"]|[\"a\", \"b\"]|0|marked");
  // Title changed on both sides, rule newest_wins: the newer updated_at.
  EXPECT_EQ(Cols("newer_out"), "out|[\"x\"]|[\"a\"]|300|marked");
  EXPECT_EQ(Cols("newer_src"), "src|[\"x\"]|[\"a\"]|200|clean") << "merged = source: clean";
  // append: the target's elements, then the source's new ones, no duplicates.
  EXPECT_EQ(Cols("files"), "Chat|[\"x\"]|[\"a\", \"b\", \"c\"]|0|marked");
  for (const char* id : {"msgs", "tags", "title1", "title2", "newer_out", "files"}) {
    EXPECT_EQ(ChatLog(id),
              std::vector<std::string>{"update_origin_differs|merge|resolved|automatic|t|t|20"})
        << id;
  }
  EXPECT_EQ(
      Q("SELECT kind, status, resolved_data = source_data FROM sync_metadata.conflict_log WHERE "
        "row_key = '[\"newer_src\"]' AND deployment = '" +
        name_ + "'"),
      std::vector<std::string>{"update_origin_differs|resolved|t"});

  // Merge again: the source, which never saw m2, adds m4; the source's last
  // image is the base now, so m2 (the outside's) stays and the outside's
  // title stays where the source did not touch it.
  Batch b3 = NewBatch(20, 30, {ChatLikeShape()});
  r = ChatRow{};
  r.msgs = {"m1", "m3", "m4"};
  r.updated = kT0 + 400;
  ASSERT_TRUE(b3.changes.Append(ChatUpsert(21, "msgs", r)).ok());
  r.msgs = {"m1", "m3", "m4"};
  ASSERT_TRUE(b3.changes.Append(ChatUpsert(22, "title1", r)).ok());
  st = Apply(&b3);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(Ids("msgs"), "m1,m2,m3,m4 / m1,m2,m3,m4 / m4");
  EXPECT_EQ(Cols("title1"), "renamed outside|[\"x\"]|[\"a\"]|400|marked");
  EXPECT_EQ(Ids("title1"), "m1,m3,m4 / m1,m3,m4 / m4");
  EXPECT_EQ(ChatLog("title1"),
            (std::vector<std::string>{"update_origin_differs|merge|resolved|automatic|f|f|20",
                                      "update_origin_differs|merge|resolved|automatic|t|t|30"}));
}

// A source delete the target's newer change outlived (fallback newest_wins:
// the live row stays, the source's tombstone image becomes the base), then the
// source inserts the key again: insert_exists, two live rows and no common
// ancestor, so every column both sides hold differently follows its rule.
TEST_F(ConflictMergeTest, AReinsertAfterAKeptDeleteMergesWithoutABase) {
  if (pg_.empty()) return;
  ConflictPolicy policy;
  policy.tables["chat"] =
      Policy("merge", "updated_at", "newest_wins", {{"files", "append"}, {"title", "newest_wins"}});
  applier_->SetConflictPolicy(policy);
  Batch b1 = NewBatch(-1, 10, {ChatLikeShape()});
  ASSERT_TRUE(b1.changes.Append(ChatUpsert(1, "k", ChatRow{})).ok());
  ASSERT_TRUE(Apply(&b1).ok());
  Q("UPDATE " + S() + ".chat SET title = 'renamed outside', updated_at = " +
    std::to_string(kT0 + 300) + " WHERE id = 'k'");
  Batch b2 = NewBatch(10, 20, {ChatLikeShape()});
  ASSERT_TRUE(b2.changes.Append(Delete(0, 11, {T("k")})).ok());
  ASSERT_TRUE(Apply(&b2).ok());
  EXPECT_EQ(Cols("k"), "renamed outside|[\"x\"]|[\"a\"]|300|marked");
  Batch b3 = NewBatch(20, 30, {ChatLikeShape()});
  ChatRow again;
  again.title = "created again";
  again.files = R"(["a", "z"])";
  again.updated = kT0 + 200;
  ASSERT_TRUE(b3.changes.Append(ChatUpsert(21, "k", again)).ok());
  ASSERT_TRUE(Apply(&b3).ok());
  EXPECT_EQ(Cols("k"), "renamed outside|[\"x\"]|[\"a\", \"z\"]|300|marked")
      << "the outside's newer title and time stay; files: append";
  EXPECT_EQ(Q("SELECT kind, strategy, resolved_data->>'title' FROM sync_metadata.conflict_log "
              "WHERE deployment = '" +
              name_ + "' ORDER BY id"),
            (std::vector<std::string>{"delete_origin_differs|merge|renamed outside",
                                      "insert_exists|merge|renamed outside"}));
}

// ---------------------------------------------------------------- manual
// One pending entry per row: later source changes (an update, then a delete)
// update it (newest source image, kind, seq, batch) instead of adding rows;
// the target stays; the other rows of the same batches apply.
TEST_F(ConflictStrategiesTest, ManualKeepsOnePendingEntryPerRowWithTheNewestSourceImage) {
  if (pg_.empty()) return;
  ConflictPolicy policy;
  policy.tables["m"] = Policy("manual");
  applier_->SetConflictPolicy(policy);
  auto batch = [&](int64_t after, int64_t to) { return NewBatch(after, to, {NoteShape("m")}); };
  Batch b1 = batch(-1, 10);
  for (const char* id : {"p1", "p2", "p3"}) {
    ASSERT_TRUE(b1.changes.Append(Upsert(0, 1, NoteRow(id, "base", At(0)))).ok());
  }
  ASSERT_TRUE(Apply(&b1).ok());
  Q("UPDATE " + S() + ".m SET title = 'outside' WHERE id IN ('p1', 'p3')");
  const std::string entries =
      "SELECT id, row_key->>0, kind, status, source_data->>'title', source_data->>"
      "'_sluice_deleted_at' IS NOT NULL, target_data->>'title', base_data->>'title', seq, batch "
      "FROM sync_metadata.conflict_log WHERE deployment = '" +
      name_ + "' ORDER BY id";
  auto rows = [&] {
    return Q("SELECT id, title, _sluice_deleted_at IS NULL, _sluice_seq FROM " + S() +
             ".m ORDER BY id");
  };

  Batch b2 = batch(10, 20);
  ASSERT_TRUE(b2.changes.Append(Upsert(0, 11, NoteRow("p1", "source 1", At(100)))).ok());
  ASSERT_TRUE(b2.changes.Append(Upsert(0, 12, NoteRow("p2", "source 1", At(100)))).ok());
  ASSERT_TRUE(b2.changes.Append(Upsert(0, 13, NoteRow("p3", "source 1", At(100)))).ok());
  ApplyStats stats;
  ASSERT_TRUE(Apply(&b2, &stats).ok());
  EXPECT_EQ(stats.conflicts_pending, 2);
  EXPECT_EQ(rows(),
            (std::vector<std::string>{"p1|outside|t|11", "p2|source 1|t|12", "p3|outside|t|13"}));
  std::vector<std::string> first = Q(entries);
  ASSERT_EQ(first.size(), 2u);
  const std::string id1 = first[0].substr(0, first[0].find('|'));
  const std::string id3 = first[1].substr(0, first[1].find('|'));
  EXPECT_EQ(first, (std::vector<std::string>{
                       id1 + "|p1|update_origin_differs|pending|source 1|f|outside|base|11|20",
                       id3 + "|p3|update_origin_differs|pending|source 1|f|outside|base|13|20"}));

  Batch b3 = batch(20, 30);
  ASSERT_TRUE(b3.changes.Append(Upsert(0, 21, NoteRow("p1", "source 2", At(200)))).ok());
  ASSERT_TRUE(b3.changes.Append(Upsert(0, 22, NoteRow("p2", "source 2", At(200)))).ok());
  ASSERT_TRUE(Apply(&b3, &stats).ok());
  EXPECT_EQ(stats.conflicts_pending, 2);
  ASSERT_EQ(stats.conflicts.size(), 1u);
  EXPECT_EQ(stats.conflicts[0],
            (ConflictCount{"m", "update_origin_differs", "manual", "pending", 1}));
  EXPECT_EQ(rows(),
            (std::vector<std::string>{"p1|outside|t|21", "p2|source 2|t|22", "p3|outside|t|13"}));
  EXPECT_EQ(Q(entries),
            (std::vector<std::string>{
                id1 + "|p1|update_origin_differs|pending|source 2|f|outside|base|21|30",
                id3 + "|p3|update_origin_differs|pending|source 1|f|outside|base|13|20"}));

  Batch b4 = batch(30, 40);
  ASSERT_TRUE(b4.changes.Append(Delete(0, 31, {T("p1")})).ok());
  ASSERT_TRUE(Apply(&b4, &stats).ok());
  EXPECT_EQ(rows(),
            (std::vector<std::string>{"p1|outside|t|31", "p2|source 2|t|22", "p3|outside|t|13"}));
  EXPECT_EQ(Q(entries),
            (std::vector<std::string>{
                id1 + "|p1|delete_origin_differs|pending|outside|t|outside|base|31|40",
                id3 + "|p3|update_origin_differs|pending|source 1|f|outside|base|13|20"}));
  EXPECT_EQ(stats.conflicts_pending, 2);
}

// A pending entry whose row stops being in conflict is closed, not left
// pending (resolving it later would write an old source image over a newer
// row): the source changes the row under a new policy (source_wins), or the
// source sends what the target already holds (both sides converged).
TEST_F(ConflictStrategiesTest, APendingEntryIsClosedWhenItsRowIsResolvedOtherwise) {
  if (pg_.empty()) return;
  ConflictPolicy policy;
  policy.tables["m"] = Policy("manual");
  applier_->SetConflictPolicy(policy);
  Batch b1 = NewBatch(-1, 10, {NoteShape("m")});
  for (const char* id : {"p1", "p2"}) {
    ASSERT_TRUE(b1.changes.Append(Upsert(0, 1, NoteRow(id, "base", At(0)))).ok());
  }
  ASSERT_TRUE(Apply(&b1).ok());
  Q("UPDATE " + S() + ".m SET title = 'outside' WHERE id IN ('p1', 'p2')");
  Batch b2 = NewBatch(10, 20, {NoteShape("m")});
  for (const char* id : {"p1", "p2"}) {
    ASSERT_TRUE(b2.changes.Append(Upsert(0, 11, NoteRow(id, "source", At(100)))).ok());
  }
  ApplyStats stats;
  ASSERT_TRUE(Apply(&b2, &stats).ok());
  ASSERT_EQ(stats.conflicts_pending, 2);

  policy.tables["m"] = Policy("source_wins");  // a reload
  applier_->SetConflictPolicy(policy);
  Batch b3 = NewBatch(20, 30, {NoteShape("m")});
  ASSERT_TRUE(b3.changes.Append(Upsert(0, 21, NoteRow("p1", "source 2", At(200)))).ok());
  ASSERT_TRUE(b3.changes.Append(Upsert(0, 22, NoteRow("p2", "outside", At(0)))).ok());
  ASSERT_TRUE(Apply(&b3, &stats).ok());
  EXPECT_EQ(stats.conflicts_pending, 0);
  EXPECT_EQ(Row("m", "p1"), "source 2@200|clean|-|21");
  EXPECT_EQ(Row("m", "p2"), "outside@0|clean|-|22");
  EXPECT_EQ(Log("m"), (std::vector<std::string>{
                          "update_origin_differs|source_wins|resolved|automatic|source 2@200|"
                          "outside@0|base@0|source 2@200|s|t|E|30|21",
                          "update_origin_differs|manual|resolved|automatic|outside@0|outside@0|"
                          "base@0|outside@0|s|t|E|30|22"}));
}

// ---------------------------------------------------------------- rollback
// A batch that meets a conflict and a row the sink refuses: the fast path
// rolls back (its log row with it), the slow path redoes the chunk under
// savepoints, bisecting down to the refused row. The conflict is logged once
// and the refused row parked once, with the rest applied.
TEST_F(ConflictStrategiesTest, ASlowPathRedoLogsTheConflictOnce) {
  if (pg_.empty()) return;
  // An adopted mirror: code is varchar(5) at the sink, SQLite holds longer text.
  Q("CREATE SCHEMA " + S() + "; CREATE TABLE " + S() +
    ".item (id bigint PRIMARY KEY, code varchar(5), note text)");
  TableShape item;
  item.name = "item";
  item.columns = {Col("id", "INTEGER", 1, kInt), Col("code", "TEXT", 0, kText),
                  Col("note", "TEXT", 0, kText)};
  Batch b1 = NewBatch(-1, 10, {item});
  for (int i = 1; i <= 8; ++i) {
    ASSERT_TRUE(b1.changes.Append(Upsert(0, i, {I(i), T("ok"), T("base")})).ok());
  }
  ASSERT_TRUE(Apply(&b1).ok());
  Q("UPDATE " + S() + ".item SET note = 'outside' WHERE id IN (2, 7)");
  Batch b2 = NewBatch(10, 20, {item});
  for (int i = 1; i <= 8; ++i) {
    ASSERT_TRUE(
        b2.changes.Append(Upsert(0, 10 + i, {I(i), T(i == 5 ? "toolong" : "ok2"), T("source")}))
            .ok());
  }
  ApplyStats stats;
  Status st = Apply(&b2, &stats);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(stats.parked, 1);
  EXPECT_EQ(Position(), 20);
  EXPECT_EQ(Q("SELECT row_key::text, kind, status, strategy, seq, batch FROM "
              "sync_metadata.conflict_log WHERE deployment = '" +
              name_ + "' ORDER BY seq"),
            (std::vector<std::string>{"[2]|update_origin_differs|resolved|source_wins|12|20",
                                      "[5]|rejected|parked|NULL|15|NULL",
                                      "[7]|update_origin_differs|resolved|source_wins|17|20"}));
  EXPECT_EQ(Q("SELECT string_agg(id || ':' || code || ':' || note, ' ' ORDER BY id) FROM " + S() +
              ".item"),
            std::vector<std::string>{"1:ok2:source 2:ok2:source 3:ok2:source 4:ok2:source "
                                     "5:ok:base 6:ok2:source 7:ok2:source 8:ok2:source"});
  EXPECT_EQ(Count("SELECT count(*) FROM sync_metadata.conflict_log WHERE deployment = '" + name_ +
                  "' AND status = 'parked' AND reason LIKE '%SQLSTATE 22001%'"),
            1)
      << "refused by the sink (the slow path), not by the encoder";
  int64_t counted = 0;
  for (const ConflictCount& c : stats.conflicts) counted += c.count;
  EXPECT_EQ(counted, 2);
}

// ---------------------------------------------------------------- agreed deletes
// The outside deletes a row (hard DELETE, or a tombstone of its own), then
// the source deletes it too: both sides agree, no conflict, and the outside
// delete is used up. A later source insert of that key is a new row: applied,
// not update_deleted (under target_wins that would hide the new row).
// (Before DeleteSql used the outside deletes up and matched marked tombstones:
// update_deleted logged, and target_wins tombstoned the new row.)
TEST_F(ConflictStrategiesTest, AnOutsideDeleteTheSourceAgreesWithIsNoConflictLater) {
  if (pg_.empty()) return;
  ConflictPolicy policy;
  policy.tables["d_sw"] = Policy("source_wins");
  policy.tables["d_tw"] = Policy("target_wins");
  policy.tables["t_tw"] = Policy("target_wins");
  applier_->SetConflictPolicy(policy);
  const std::vector<std::string> tables = {"d_sw", "d_tw", "t_tw"};
  auto batch = [&](int64_t after, int64_t to) {
    Batch b = NewBatch(after, to, {});
    for (const std::string& t : tables) b.tables.push_back(NoteShape(t));
    return b;
  };
  Batch b1 = batch(-1, 10);
  for (uint32_t i = 0; i < tables.size(); ++i) {
    ASSERT_TRUE(b1.changes.Append(Upsert(i, 1, NoteRow("k", "base", At(0)))).ok());
  }
  ASSERT_TRUE(Apply(&b1).ok());
  Q("DELETE FROM " + S() + ".d_sw WHERE id = 'k'");
  Q("DELETE FROM " + S() + ".d_tw WHERE id = 'k'");
  Q("UPDATE " + S() + ".t_tw SET _sluice_deleted_at = now() WHERE id = 'k'");
  const std::string open_deletes =
      "SELECT count(*) FROM sync_metadata.outside_deletes WHERE deployment = '" + name_ +
      "' AND consumed_at IS NULL";
  ASSERT_EQ(Count(open_deletes), 2);

  Batch b2 = batch(10, 20);
  for (uint32_t i = 0; i < tables.size(); ++i) {
    ASSERT_TRUE(b2.changes.Append(Delete(i, 11, {T("k")})).ok());
  }
  ApplyStats stats;
  ASSERT_TRUE(Apply(&b2, &stats).ok());
  EXPECT_TRUE(stats.conflicts.empty());
  EXPECT_EQ(Count(open_deletes), 0) << "the source's delete used the outside deletes up";
  EXPECT_EQ(Row("t_tw"), "base@0 deleted|clean|-|11") << "both deleted: clean again";

  Batch b3 = batch(20, 30);
  for (uint32_t i = 0; i < tables.size(); ++i) {
    ASSERT_TRUE(b3.changes.Append(Upsert(i, 21, NoteRow("k", "new", At(300)))).ok());
  }
  ASSERT_TRUE(Apply(&b3, &stats).ok());
  for (const std::string& t : tables) EXPECT_EQ(Row(t), "new@300|clean|-|21") << t;
  EXPECT_EQ(Log(), std::vector<std::string>{});
  EXPECT_TRUE(stats.conflicts.empty());
}

}  // namespace
}  // namespace sluice
