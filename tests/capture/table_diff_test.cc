// Pure pieces of rename and drop detection: DiffColumns, the column names of
// a recorded ColumnsText, and the table a capture trigger name was made for.
#include <gtest/gtest.h>

#include "capture/table_tracker.h"
#include "capture/trigger_sql.h"

namespace sluice {
namespace {

using Names = std::vector<std::string>;
using Pairs = std::vector<std::pair<std::string, std::string>>;

TEST(DiffColumns, RenameKeepsThePosition) {
  ColumnDiff d = DiffColumns({"id", "a", "b"}, {"id", "a_new", "b"});
  EXPECT_EQ(d.renamed, (Pairs{{"a", "a_new"}}));
  EXPECT_TRUE(d.dropped.empty());
  EXPECT_TRUE(d.added.empty());
  // Several at once (a 12-step rebuild), the key column too, case only.
  d = DiffColumns({"id", "a", "b"}, {"ident", "a", "B"});
  EXPECT_EQ(d.renamed, (Pairs{{"id", "ident"}, {"b", "B"}}));
}

TEST(DiffColumns, DropAndAddAreNotRenames) {
  ColumnDiff d = DiffColumns({"id", "a", "b"}, {"id", "b"});
  EXPECT_TRUE(d.renamed.empty());
  EXPECT_EQ(d.dropped, Names{"a"});
  EXPECT_TRUE(d.added.empty());
  d = DiffColumns({"id", "a"}, {"id", "a", "c"});
  EXPECT_EQ(d.added, Names{"c"});
  // DROP a + ADD c: same count, but c took another position than a had.
  d = DiffColumns({"id", "a", "b"}, {"id", "b", "c"});
  EXPECT_TRUE(d.renamed.empty());
  EXPECT_EQ(d.dropped, Names{"a"});
  EXPECT_EQ(d.added, Names{"c"});
  // Swapped names are moves, not renames.
  d = DiffColumns({"id", "a", "b"}, {"id", "b", "a"});
  EXPECT_TRUE(d.renamed.empty());
  EXPECT_TRUE(d.dropped.empty());
  EXPECT_TRUE(d.added.empty());
  EXPECT_TRUE(DiffColumns({"id"}, {"id"}).renamed.empty());
}

TEST(ColumnNamesOfText, InvertsColumnsText) {
  TableShape t;
  t.name = "t";
  t.columns = {{"id", "INTEGER", true, 1},
               {"we\"ird, \"name", "DECIMAL(10, 2)", false, 0},
               {"plain", "", false, 0},
               {"last", "TEXT", true, 0}};
  EXPECT_EQ(ColumnNamesOfText(ColumnsText(t)), (Names{"id", "we\"ird, \"name", "plain", "last"}));
  EXPECT_TRUE(ColumnNamesOfText("").empty());
  EXPECT_TRUE(ColumnNamesOfText("id INTEGER").empty());  // not ColumnsText's form
  EXPECT_TRUE(ColumnNamesOfText("\"unterminated").empty());
}

TEST(TableOfTriggerName, NamesTheTableItWasMadeFor) {
  EXPECT_EQ(TableOfTriggerName("_sluice_old_name_ai"), "old_name");
  EXPECT_EQ(TableOfTriggerName("_sluice_a_b_au"), "a_b");
  EXPECT_EQ(TableOfTriggerName("_sluice_x_ad"), "x");
  EXPECT_EQ(TableOfTriggerName("_sluice_x_zz"), "");
  EXPECT_EQ(TableOfTriggerName("app_trigger_ai"), "");
  EXPECT_EQ(TableOfTriggerName("_sluice__ai"), "");
}

}  // namespace
}  // namespace sluice
