// Pure pieces of rename and drop detection: DiffColumns, the column names of
// a recorded ColumnsText, and the table a capture trigger name was made for.
#include <gtest/gtest.h>

#include "capture/table_tracker.h"
#include "capture/trigger_sql.h"

namespace sluice {
namespace {

using Names = std::vector<std::string>;
using Pairs = std::vector<std::pair<std::string, std::string>>;

// Columns named `names`, each " TEXT" unless `types` says otherwise; the
// first is the key.
std::vector<ColumnFacts> Cols(const Names& names, const Names& types = {}) {
  std::vector<ColumnFacts> out;
  for (size_t i = 0; i < names.size(); ++i) {
    out.push_back({names[i], i < types.size() ? types[i] : " TEXT", i == 0 ? 1 : 0});
  }
  return out;
}

TEST(DiffColumns, OneRenameInPlaceAfterOneAlter) {
  ColumnDiff d = DiffColumns(Cols({"id", "a", "b"}), Cols({"id", "a_new", "b"}), true);
  EXPECT_EQ(d.renamed, (Pairs{{"a", "a_new"}}));
  EXPECT_TRUE(d.dropped.empty());
  EXPECT_TRUE(d.added.empty());
  // The key column, and a change of case only.
  d = DiffColumns(Cols({"id", "a"}), Cols({"ident", "a"}), true);
  EXPECT_EQ(d.renamed, (Pairs{{"id", "ident"}}));
  d = DiffColumns(Cols({"id", "b"}), Cols({"id", "B"}), true);
  EXPECT_EQ(d.renamed, (Pairs{{"b", "B"}}));
}

// DROP a; ADD b (b lands where a was): told from RENAME COLUMN by the schema
// version (two statements) or by b's definition or key position.
TEST(DiffColumns, DropAndAddInPlaceIsNoRename) {
  const Names dropped_a{"a"}, added_b{"b"};
  // Same definition, but more than one statement (or unknown): drop + add.
  ColumnDiff d = DiffColumns(Cols({"id", "x", "a"}), Cols({"id", "x", "b"}), false);
  EXPECT_TRUE(d.renamed.empty());
  EXPECT_EQ(d.dropped, dropped_a);
  EXPECT_EQ(d.added, added_b);
  // One statement apart yet another type (the reviewer's repro: a INTEGER, b TEXT).
  d = DiffColumns(Cols({"id", "x", "a"}, {" INTEGER", " TEXT", " INTEGER"}),
                  Cols({"id", "x", "b"}, {" INTEGER", " TEXT", " TEXT"}), true);
  EXPECT_TRUE(d.renamed.empty());
  EXPECT_EQ(d.dropped, dropped_a);
  EXPECT_EQ(d.added, added_b);
  // NOT NULL differs; the key position differs.
  d = DiffColumns(Cols({"id", "a"}, {" TEXT", " TEXT NOT NULL"}), Cols({"id", "b"}), true);
  EXPECT_TRUE(d.renamed.empty());
  EXPECT_EQ(d.added, added_b);
  std::vector<ColumnFacts> keyed = Cols({"id", "b"});
  keyed[1].key_position = 2;
  d = DiffColumns(Cols({"id", "a"}), keyed, true);
  EXPECT_TRUE(d.renamed.empty());
  EXPECT_EQ(d.dropped, dropped_a);
}

TEST(DiffColumns, SeveralChangesAreNeverRenames) {
  // Two names changed in place (a 12-step rebuild, or several ALTERs).
  ColumnDiff d = DiffColumns(Cols({"id", "a", "b"}), Cols({"ident", "a", "B"}), true);
  EXPECT_TRUE(d.renamed.empty());
  EXPECT_EQ(d.dropped, (Names{"id", "b"}));
  EXPECT_EQ(d.added, (Names{"ident", "B"}));
  d = DiffColumns(Cols({"id", "a", "b"}), Cols({"id", "b"}), true);
  EXPECT_TRUE(d.renamed.empty());
  EXPECT_EQ(d.dropped, Names{"a"});
  EXPECT_TRUE(d.added.empty());
  d = DiffColumns(Cols({"id", "a"}), Cols({"id", "a", "c"}), true);
  EXPECT_EQ(d.added, Names{"c"});
  // DROP a + ADD c: same count, but c took another position than a had.
  d = DiffColumns(Cols({"id", "a", "b"}), Cols({"id", "b", "c"}), true);
  EXPECT_TRUE(d.renamed.empty());
  EXPECT_EQ(d.dropped, Names{"a"});
  EXPECT_EQ(d.added, Names{"c"});
  // Swapped names are moves, not renames.
  d = DiffColumns(Cols({"id", "a", "b"}), Cols({"id", "b", "a"}), true);
  EXPECT_TRUE(d.renamed.empty());
  EXPECT_TRUE(d.dropped.empty());
  EXPECT_TRUE(d.added.empty());
  EXPECT_TRUE(DiffColumns(Cols({"id"}), Cols({"id"}), true).renamed.empty());
}

TEST(ColumnsOfText, DefinitionsAndKeysAsRecorded) {
  TableShape t;
  t.name = "t";
  t.columns = {{"id", "INTEGER", true, 1}, {"d", "DECIMAL(10, 2)", false, 0}, {"p", "", false, 0}};
  std::vector<RecordedColumn> cols = ColumnsOfText(ColumnsText(t));
  ASSERT_EQ(cols.size(), 3u);
  EXPECT_EQ(cols[0].definition, " INTEGER NOT NULL");
  EXPECT_EQ(cols[0].definition, ColumnDefinitionText(t.columns[0]));
  EXPECT_EQ(cols[1].definition, " DECIMAL(10, 2)");
  EXPECT_EQ(cols[2].definition, "");
  EXPECT_EQ(KeyNamesOfIdentityText(IdentityText(t)), Names{"id"});
  t.columns[2].key_position = 2;
  EXPECT_EQ(KeyNamesOfIdentityText(IdentityText(t)), (Names{"id", "p"}));
  EXPECT_TRUE(KeyNamesOfIdentityText("rowid").empty());
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
