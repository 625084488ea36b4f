// Rename planning at the sink: a mirror follows its table's and columns'
// renames only when that can be done without touching another table.
#include "sink/mirror_moves.h"

#include <gtest/gtest.h>

#include "sink/pg_sql.h"

namespace sluice {
namespace {

ExistingTable Table(std::vector<std::string> columns, std::vector<std::string> indexes = {}) {
  ExistingTable t;
  for (std::string& c : columns) t.columns.push_back({c, "text", "text"});
  t.index_names = std::move(indexes);
  t.relid = "16400";
  return t;
}

TEST(PlanMoves, TableRenameMovesSluiceIndexesAndStops) {
  ExistingTable from = Table({"id", "v", "_sluice_seq"},
                             {"old_pkey", EvictIndexName("old", "v"), KeyIndexName("old")});
  MovePlan p = PlanMoves("app", "new", {"old"}, {from}, {{"v", "w"}}, ExistingTable{});
  EXPECT_EQ(p.renamed_from, "old");
  EXPECT_EQ(p.ddl,
            (std::vector<std::string>{
                RenameIndexSql("app", EvictIndexName("old", "v"), EvictIndexName("new", "w")),
                RenameIndexSql("app", KeyIndexName("old"), KeyIndexName("new")),
                "ALTER TABLE \"app\".\"old\" RENAME TO \"new\""}));
  // The same for a host role, as sluice_mirror_ddl steps on the old name.
  ASSERT_EQ(p.steps.size(), 3u);
  EXPECT_EQ(p.steps[0].table, "old");
  EXPECT_EQ(p.steps[0].step, DdlStepJson("rename_index", {{"index", EvictIndexName("old", "v")},
                                                          {"to", EvictIndexName("new", "w")}}));
  EXPECT_EQ(p.steps[2].step, "{\"op\":\"rename_table\",\"to\":\"new\"}");
}

TEST(PlanMoves, TableRenameOnlyIntoAFreeName) {
  ExistingTable from = Table({"id", "v"});
  // The new name has a mirror already (or the old one is gone): nothing.
  EXPECT_TRUE(PlanMoves("app", "new", {"old"}, {from}, {}, Table({"id"})).ddl.empty());
  EXPECT_TRUE(PlanMoves("app", "new", {"old"}, {ExistingTable{}}, {}, ExistingTable{}).ddl.empty());
  EXPECT_TRUE(PlanMoves("app", "new", {}, {}, {}, ExistingTable{}).ddl.empty());
  // Renamed twice (first -> mid -> new) before the sink followed: from the
  // latest name a mirror exists under.
  MovePlan p =
      PlanMoves("app", "new", {"first", "mid"}, {from, ExistingTable{}}, {}, ExistingTable{});
  EXPECT_EQ(p.renamed_from, "first");
  p = PlanMoves("app", "new", {"first", "mid"}, {from, from}, {}, ExistingTable{});
  EXPECT_EQ(p.renamed_from, "mid");
  EXPECT_EQ(p.ddl.back(), "ALTER TABLE \"app\".\"mid\" RENAME TO \"new\"");
}

TEST(PlanMoves, ColumnRenames) {
  ExistingTable now = Table({"id", "a", "b", "c"}, {EvictIndexName("t", "a")});
  MovePlan p = PlanMoves("app", "t", {}, {}, {{"a", "a2"}, {"b", "c"}, {"gone", "x"}}, now);
  EXPECT_EQ(p.renamed_from, "");
  // b -> c: c exists already; gone -> x: no column gone. Neither is touched.
  EXPECT_EQ(p.ddl,
            (std::vector<std::string>{
                "ALTER TABLE \"app\".\"t\" RENAME COLUMN \"a\" TO \"a2\"",
                RenameIndexSql("app", EvictIndexName("t", "a"), EvictIndexName("t", "a2"))}));
  ASSERT_EQ(p.steps.size(), 2u);
  EXPECT_EQ(p.steps[0].table, "t");
  EXPECT_EQ(p.steps[0].step, "{\"op\":\"rename_column\",\"from\":\"a\",\"to\":\"a2\"}");
  // Done already (the old name is gone): nothing.
  EXPECT_TRUE(PlanMoves("app", "t", {}, {}, {{"a", "a2"}}, Table({"id", "a2"})).ddl.empty());
  // Renamed twice (a -> b -> c): replayed in order, whichever the sink followed already.
  std::vector<std::pair<std::string, std::string>> twice = {{"a", "b"}, {"b", "c"}};
  EXPECT_EQ(PlanMoves("app", "t", {}, {}, twice, Table({"id", "a"})).ddl,
            (std::vector<std::string>{RenameColumnSql("app", "t", "a", "b"),
                                      RenameColumnSql("app", "t", "b", "c")}));
  EXPECT_EQ(PlanMoves("app", "t", {}, {}, twice, Table({"id", "b"})).ddl,
            (std::vector<std::string>{RenameColumnSql("app", "t", "b", "c")}));
}

}  // namespace
}  // namespace sluice
