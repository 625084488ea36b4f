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
  MovePlan p = PlanMoves("app", "new", "old", {{"v", "w"}}, ExistingTable{}, from);
  EXPECT_TRUE(p.table_renamed);
  EXPECT_EQ(p.ddl,
            (std::vector<std::string>{
                RenameIndexSql("app", EvictIndexName("old", "v"), EvictIndexName("new", "w")),
                RenameIndexSql("app", KeyIndexName("old"), KeyIndexName("new")),
                "ALTER TABLE \"app\".\"old\" RENAME TO \"new\""}));
}

TEST(PlanMoves, TableRenameOnlyIntoAFreeName) {
  ExistingTable from = Table({"id", "v"});
  // The new name has a mirror already (or the old one is gone): nothing.
  EXPECT_TRUE(PlanMoves("app", "new", "old", {}, Table({"id"}), from).ddl.empty());
  EXPECT_TRUE(PlanMoves("app", "new", "old", {}, ExistingTable{}, ExistingTable{}).ddl.empty());
  EXPECT_TRUE(PlanMoves("app", "new", "", {}, ExistingTable{}, from).ddl.empty());
}

TEST(PlanMoves, ColumnRenames) {
  ExistingTable now = Table({"id", "a", "b", "c"}, {EvictIndexName("t", "a")});
  MovePlan p = PlanMoves("app", "t", "", {{"a", "a2"}, {"b", "c"}, {"gone", "x"}}, now, {});
  EXPECT_FALSE(p.table_renamed);
  // b -> c: c exists already; gone -> x: no column gone. Neither is touched.
  EXPECT_EQ(p.ddl,
            (std::vector<std::string>{
                "ALTER TABLE \"app\".\"t\" RENAME COLUMN \"a\" TO \"a2\"",
                RenameIndexSql("app", EvictIndexName("t", "a"), EvictIndexName("t", "a2"))}));
  // Done already (the old name is gone): nothing.
  EXPECT_TRUE(PlanMoves("app", "t", "", {{"a", "a2"}}, Table({"id", "a2"}), {}).ddl.empty());
}

}  // namespace
}  // namespace sluice
