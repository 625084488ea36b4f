// The shared naming rules (reserved prefix, synthetic rowid) and the hex codec
// that capture, sink and tests all use.
#include <gtest/gtest.h>

#include "common/hex.h"
#include "common/table_shape.h"

namespace sluice {
namespace {

TEST(Hex, BothCasesAndBack) {
  std::string bytes("\x00\x0f\xa0\xff", 4);
  EXPECT_EQ(Hex(bytes), "000fa0ff");
  EXPECT_EQ(Hex(bytes, HexCase::kUpper), "000FA0FF");
  EXPECT_EQ(Unhex("000fA0Ff"), bytes);
  EXPECT_EQ(Unhex(""), std::string());
  EXPECT_FALSE(Unhex("abc").has_value());  // odd length
  EXPECT_FALSE(Unhex("0g").has_value());   // not a digit
  EXPECT_EQ(HexDigit('F'), 15);
  EXPECT_EQ(HexDigit('x'), -1);
}

TEST(ReservedName, PrefixIgnoringAsciiCase) {
  EXPECT_TRUE(IsReservedName("_sluice_seq"));
  EXPECT_TRUE(IsReservedName("_SLUICE_anything"));
  EXPECT_TRUE(IsReservedName("_sluice_"));
  EXPECT_FALSE(IsReservedName("_sluice"));
  EXPECT_FALSE(IsReservedName("x_sluice_seq"));
  EXPECT_FALSE(IsReservedName(""));
}

TEST(ReservedName, OnlyTheFirstColumnOfARowidTableIsTheSyntheticRowid) {
  TableShape t;
  t.identity = TableShape::Identity::kRowid;
  ColumnShape rowid;
  rowid.name = kRowidColumn;
  t.columns.push_back(rowid);
  t.columns.push_back(rowid);  // an app column of that name
  EXPECT_TRUE(t.IsSyntheticRowid(t.columns[0]));
  EXPECT_FALSE(t.IsSyntheticRowid(t.columns[1]));
  t.identity = TableShape::Identity::kPrimaryKey;
  EXPECT_FALSE(t.IsSyntheticRowid(t.columns[0]));
}

}  // namespace
}  // namespace sluice
