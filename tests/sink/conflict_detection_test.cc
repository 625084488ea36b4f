// Conflict detection through BatchApplier against a real PostgreSQL: a write
// to a mirror that does not come from this deployment's agent (here: a second
// client, as the Supabase dashboard would be) marks the row; the next source
// change to it is a conflict, resolved by the table's policy inside the apply
// transaction and logged once in conflict_log. sluice's own writes never mark.
// Strategy-by-kind cases: conflict_strategies_test.cc.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "sink/batch_applier.h"
#include "tests/sink/applier_fixture.h"

namespace sluice {
namespace {

using testing::ApplierTest;
using testing::ChatShape;
using testing::Delete;
using testing::I;
using testing::T;
using testing::Update;
using testing::Upsert;

class ConflictDetectionTest : public ApplierTest {
 protected:
  // kind|strategy|status|resolved_by|batch of this deployment's log rows, in id order.
  std::vector<std::string> Log() {
    return Q(
        "SELECT row_key::text || '|' || kind || '|' || strategy || '|' || status || '|' || "
        "coalesce(resolved_by, '-') || '|' || batch FROM sync_metadata.conflict_log WHERE "
        "deployment = '" +
        name_ + "' ORDER BY id");
  }
  int64_t Marked() {
    return std::stoll(
        Q("SELECT count(*) FROM " + S() +
          ".chat WHERE _sluice_outside_at IS NOT NULL OR _sluice_base IS NOT NULL")[0]);
  }
};

TEST_F(ConflictDetectionTest, OutsideUpdateIsLoggedAndTheSourceWinsByDefault) {
  if (pg_.empty()) return;
  Batch b1 = NewBatch(-1, 2, {ChatShape()});
  ASSERT_TRUE(b1.changes.Append(Upsert(0, 1, {T("c1"), I(100), T(R"({"m":[1]})"), I(0)})).ok());
  ASSERT_TRUE(b1.changes.Append(Upsert(0, 2, {T("c2"), I(100), T("{}"), I(0)})).ok());
  ASSERT_TRUE(Apply(&b1).ok());
  EXPECT_EQ(Marked(), 0) << "sluice's own writes are not outside writes";

  // A person in the dashboard changes c1; c2 is left alone.
  Q("UPDATE " + S() + ".chat SET pinned = true, created_at = 150 WHERE id = 'c1'");
  EXPECT_EQ(Q("SELECT _sluice_base->>'created_at', _sluice_outside_at IS NOT NULL FROM " + S() +
              ".chat WHERE id = 'c1'"),
            std::vector<std::string>{"100|t"});

  Batch b2 = NewBatch(2, 4, {ChatShape()});
  ASSERT_TRUE(b2.changes.Append(Upsert(0, 3, {T("c1"), I(200), T(R"({"m":[1,2]})"), I(0)})).ok());
  ASSERT_TRUE(b2.changes.Append(Upsert(0, 4, {T("c2"), I(200), T("{}"), I(0)})).ok());
  ApplyStats stats;
  Status st = Apply(&b2, &stats);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(Q("SELECT id, created_at, pinned, _sluice_seq FROM " + S() + ".chat ORDER BY id"),
            (std::vector<std::string>{"c1|200|f|3", "c2|200|f|4"}));
  EXPECT_EQ(Marked(), 0) << "the source's image replaced the outside one: clean again";
  EXPECT_EQ(Log(), std::vector<std::string>{
                       R"(["c1"]|update_origin_differs|source_wins|resolved|automatic|4)"});
  EXPECT_EQ(Q("SELECT source_data->>'created_at', target_data->>'created_at', "
              "base_data->>'created_at', resolved_data->>'created_at', epoch IS NULL, "
              "resolved_at IS NOT NULL FROM sync_metadata.conflict_log WHERE deployment = '" +
              name_ + "'"),
            std::vector<std::string>{"200|150|100|200|t|t"});
  ASSERT_EQ(stats.conflicts.size(), 1u);
  EXPECT_EQ(stats.conflicts[0],
            (ConflictCount{"chat", "update_origin_differs", "source_wins", "resolved", 1}));
  EXPECT_EQ(stats.conflicts_pending, 0);
  EXPECT_EQ(stats.upserts, 2);

  // The next batch meets no conflict: counted once, logged once.
  Batch b3 = NewBatch(4, 5, {ChatShape()});
  ASSERT_TRUE(b3.changes.Append(Upsert(0, 5, {T("c1"), I(300), T("{}"), I(0)})).ok());
  ASSERT_TRUE(Apply(&b3, &stats).ok());
  EXPECT_TRUE(stats.conflicts.empty());
  EXPECT_EQ(Log().size(), 1u);
}

TEST_F(ConflictDetectionTest, OutsideInsertIsPossibleAndMeetsTheSourceAsInsertExists) {
  if (pg_.empty()) return;
  Batch b1 = NewBatch(-1, 1, {ChatShape()});
  ASSERT_TRUE(b1.changes.Append(Upsert(0, 1, {T("c1"), I(100), T("{}"), I(0)})).ok());
  ASSERT_TRUE(Apply(&b1).ok());
  // Another service inserts a row without knowing sluice's columns.
  Q("INSERT INTO " + S() + ".chat (id, created_at) VALUES ('x', 7)");
  EXPECT_EQ(Q("SELECT _sluice_seq, _sluice_outside_at IS NOT NULL, _sluice_base IS NULL FROM " +
              S() + ".chat WHERE id = 'x'"),
            std::vector<std::string>{"-1|t|t"});
  Batch b2 = NewBatch(1, 2, {ChatShape()});
  ASSERT_TRUE(b2.changes.Append(Upsert(0, 2, {T("x"), I(8), T("{}"), I(1)})).ok());
  ASSERT_TRUE(Apply(&b2).ok());
  EXPECT_EQ(Q("SELECT created_at, pinned FROM " + S() + ".chat WHERE id = 'x'"),
            std::vector<std::string>{"8|t"});
  EXPECT_EQ(Log(),
            std::vector<std::string>{R"(["x"]|insert_exists|source_wins|resolved|automatic|2)"});
}

// A row gone from the mirror without a trace (deleted with the triggers
// disabled, as a restore or `session_replication_role = replica` does) meets
// a source UPDATE as update_missing; a source INSERT of it is no conflict, nor
// is the update of a row sluice never wrote (parked earlier). The policy
// decides whether it comes back; no marker stays behind on any row.
TEST_F(ConflictDetectionTest, UpdateOfARowGoneWithoutATraceIsUpdateMissing) {
  if (pg_.empty()) return;
  Batch b1 = NewBatch(-1, 3, {ChatShape()});
  ASSERT_TRUE(b1.changes.Append(Upsert(0, 1, {T("c1"), I(100), T("{}"), I(0)})).ok());
  ASSERT_TRUE(b1.changes.Append(Upsert(0, 2, {T("c2"), I(100), T("{}"), I(0)})).ok());
  // c3's text holds a NUL: parked, never at the sink.
  ASSERT_TRUE(
      b1.changes.Append(Upsert(0, 3, {T("c3"), I(100), Value::Text(std::string("{\0}", 3)), I(0)}))
          .ok());
  ASSERT_TRUE(Apply(&b1).ok());
  ASSERT_EQ(Q("SELECT count(*) FROM sync_metadata.conflict_log WHERE deployment = '" + name_ +
              "' AND status = 'parked'"),
            std::vector<std::string>{"1"});
  Q("BEGIN; SET LOCAL session_replication_role = replica; DELETE FROM " + S() +
    ".chat WHERE id IN ('c1', 'c2'); COMMIT");
  ASSERT_EQ(
      Q("SELECT count(*) FROM sync_metadata.outside_deletes WHERE deployment = '" + name_ + "'"),
      std::vector<std::string>{"0"})
      << "the triggers were off: no record of the delete";

  Batch b2 = NewBatch(3, 6, {ChatShape()});
  ASSERT_TRUE(b2.changes.Append(Update(0, 4, {T("c1"), I(200), T("{}"), I(0)})).ok());
  ASSERT_TRUE(b2.changes.Append(Upsert(0, 5, {T("c2"), I(200), T("{}"), I(0)})).ok());
  ASSERT_TRUE(b2.changes.Append(Update(0, 6, {T("c3"), I(200), T("{}"), I(0)})).ok());
  ApplyStats stats;
  Status st = Apply(&b2, &stats);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(
      Q("SELECT id, created_at, _sluice_deleted_at IS NULL FROM " + S() + ".chat ORDER BY id"),
      (std::vector<std::string>{"c1|200|t", "c2|200|t", "c3|200|t"}));
  EXPECT_EQ(Marked(), 0) << "no marker or mark stays behind";
  EXPECT_EQ(
      Q("SELECT row_key::text || '|' || kind || '|' || strategy || '|' || status || '|' || "
        "(target_data IS NULL) || '|' || (base_data IS NULL) || '|' || "
        "(resolved_data->>'created_at') FROM sync_metadata.conflict_log WHERE deployment = '" +
        name_ + "' AND kind <> 'rejected'"),
      std::vector<std::string>{R"(["c1"]|update_missing|source_wins|resolved|true|true|200)"});
  ASSERT_EQ(stats.conflicts.size(), 1u);
  EXPECT_EQ(stats.conflicts[0],
            (ConflictCount{"chat", "update_missing", "source_wins", "resolved", 1}));

  // Under target_wins too the row comes back (a delete without a trace cannot
  // be told from a lost row; keeping it gone could lose it for good), logged.
  ConflictPolicy policy;
  policy.tables["chat"].strategy = "target_wins";
  applier_->SetConflictPolicy(policy);
  Q("BEGIN; SET LOCAL session_replication_role = replica; DELETE FROM " + S() +
    ".chat WHERE id = 'c1'; COMMIT");
  Batch b3 = NewBatch(6, 7, {ChatShape()});
  ASSERT_TRUE(b3.changes.Append(Update(0, 7, {T("c1"), I(300), T("{}"), I(0)})).ok());
  st = Apply(&b3, &stats);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(Q("SELECT created_at, _sluice_deleted_at IS NULL, _sluice_outside_at IS NULL FROM " +
              S() + ".chat WHERE id = 'c1'"),
            std::vector<std::string>{"300|t|t"});
  Batch b4 = NewBatch(7, 8, {ChatShape()});
  ASSERT_TRUE(b4.changes.Append(Update(0, 8, {T("c1"), I(400), T("{}"), I(0)})).ok());
  ASSERT_TRUE(Apply(&b4).ok());
  EXPECT_EQ(
      Q("SELECT row_key::text || '|' || kind || '|' || strategy || '|' || status || '|' || "
        "resolved_by || '|' || batch FROM sync_metadata.conflict_log WHERE deployment = '" +
        name_ + "' AND kind <> 'rejected' ORDER BY id"),
      (std::vector<std::string>{R"(["c1"]|update_missing|source_wins|resolved|automatic|6)",
                                R"(["c1"]|update_missing|target_wins|resolved|automatic|7)"}));
  EXPECT_EQ(Q("SELECT count(*) FROM " + S() + ".chat WHERE _sluice_base = '\"update\"'"),
            std::vector<std::string>{"0"});
}

TEST_F(ConflictDetectionTest, TheBatchCarriesTheTablesPolicy) {
  if (pg_.empty()) return;
  ConflictPolicy policy;
  policy.tables["chat"].strategy = "target_wins";
  applier_->SetConflictPolicy(policy);
  Batch b1 = NewBatch(-1, 1, {ChatShape()});
  ASSERT_TRUE(b1.changes.Append(Upsert(0, 1, {T("c1"), I(100), T("{}"), I(0)})).ok());
  ASSERT_TRUE(Apply(&b1).ok());
  Q("UPDATE " + S() + ".chat SET created_at = 150 WHERE id = 'c1'");
  Batch b2 = NewBatch(1, 3, {ChatShape()});
  ASSERT_TRUE(b2.changes.Append(Upsert(0, 2, {T("c1"), I(200), T("{}"), I(0)})).ok());
  ASSERT_TRUE(b2.changes.Append(Delete(0, 3, {T("c1")})).ok());
  ApplyStats stats;
  ASSERT_TRUE(Apply(&b2, &stats).ok());
  // The batch's last change per row is the delete: the outside update stays.
  EXPECT_EQ(Q("SELECT created_at, _sluice_deleted_at IS NULL, _sluice_seq FROM " + S() +
              ".chat WHERE id = 'c1'"),
            std::vector<std::string>{"150|t|3"});
  EXPECT_EQ(Log(), std::vector<std::string>{
                       R"(["c1"]|delete_origin_differs|target_wins|resolved|automatic|3)"});
  EXPECT_EQ(Position(), 3);
}

TEST_F(ConflictDetectionTest, AFullReadLeavesOutsideChangedRowsToTheirPolicy) {
  if (pg_.empty()) return;
  ConflictPolicy policy;
  policy.tables["chat"].strategy = "target_wins";
  applier_->SetConflictPolicy(policy);
  Batch b1 = NewBatch(-1, 3, {ChatShape()});
  b1.full_tables = {0};
  for (const char* id : {"a", "b", "c"}) {
    ASSERT_TRUE(b1.changes.Append(Upsert(0, 3, {T(id), I(1), T("{}"), I(0)})).ok());
  }
  ASSERT_TRUE(Apply(&b1).ok());
  Q("UPDATE " + S() + ".chat SET created_at = 2 WHERE id IN ('b', 'c')");
  // The source no longer has b and c (a full read that carries only a).
  Batch b2 = NewBatch(3, 7, {ChatShape()});
  b2.full_tables = {0};
  ASSERT_TRUE(b2.changes.Append(Upsert(0, 7, {T("a"), I(5), T("{}"), I(0)})).ok());
  ApplyStats stats;
  Status st = Apply(&b2, &stats);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(
      Q("SELECT id, created_at, _sluice_deleted_at IS NULL FROM " + S() + ".chat ORDER BY id"),
      (std::vector<std::string>{"a|5|t", "b|2|t", "c|2|t"}));
  EXPECT_EQ(Log(), (std::vector<std::string>{
                       R"(["b"]|delete_origin_differs|target_wins|resolved|automatic|7)",
                       R"(["c"]|delete_origin_differs|target_wins|resolved|automatic|7)"}));
  ASSERT_EQ(stats.conflicts.size(), 1u);
  EXPECT_EQ(stats.conflicts[0].count, 2);
  // Under source_wins the same full read tombstones them (and logs it).
  applier_->SetConflictPolicy(ConflictPolicy{});
  Batch b3 = NewBatch(7, 9, {ChatShape()});
  b3.full_tables = {0};
  ASSERT_TRUE(b3.changes.Append(Upsert(0, 9, {T("a"), I(5), T("{}"), I(0)})).ok());
  ASSERT_TRUE(Apply(&b3).ok());
  EXPECT_EQ(Q("SELECT id, _sluice_deleted_at IS NULL FROM " + S() + ".chat ORDER BY id"),
            (std::vector<std::string>{"a|t", "b|f", "c|f"}));
  EXPECT_EQ(Log().size(), 4u);
}

TEST_F(ConflictDetectionTest, ATableDroppedInTheSourceFollowsItsOwnPolicy) {
  if (pg_.empty()) return;
  ConflictPolicy policy;
  policy.tables["chat"].strategy = "target_wins";
  applier_->SetConflictPolicy(policy);
  Batch b1 = NewBatch(-1, 2, {ChatShape()});
  ASSERT_TRUE(b1.changes.Append(Upsert(0, 1, {T("c1"), I(100), T("{}"), I(0)})).ok());
  ASSERT_TRUE(b1.changes.Append(Upsert(0, 2, {T("c2"), I(100), T("{}"), I(0)})).ok());
  ASSERT_TRUE(Apply(&b1).ok());
  Q("UPDATE " + S() + ".chat SET created_at = 150 WHERE id = 'c1'");
  // The app drops the table: its mirror's live rows become tombstones,
  // except the one changed outside, which its table's target_wins keeps.
  Batch b2 = NewBatch(2, 3, {});
  b2.dropped_tables = {"chat"};
  Status st = Apply(&b2);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(Q("SELECT id, _sluice_deleted_at IS NULL FROM " + S() + ".chat ORDER BY id"),
            (std::vector<std::string>{"c1|t", "c2|f"}));
  EXPECT_EQ(Log(), std::vector<std::string>{
                       R"(["c1"]|delete_origin_differs|target_wins|resolved|automatic|3)"});
}

}  // namespace
}  // namespace sluice
