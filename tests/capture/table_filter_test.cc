// TableFilter: include/exclude globs and the names that are never tracked.
#include "capture/table_filter.h"

#include <gtest/gtest.h>

namespace sluice {
namespace {

TEST(TableFilter, EmptyIncludeMeansEverything) {
  TableFilter f({}, {});
  EXPECT_TRUE(f.Matches("chat"));
  EXPECT_TRUE(f.Matches("weird \"name\""));
  EXPECT_FALSE(f.Matches("sqlite_sequence"));
  EXPECT_FALSE(f.Matches("SQLITE_stat1"));
  EXPECT_FALSE(f.Matches("_sluice_journal"));
  EXPECT_FALSE(f.Matches("_SLUICE_x"));
  EXPECT_TRUE(f.Matches("sluice_journal"));
}

TEST(TableFilter, IncludeAndExclude) {
  TableFilter f({"chat*", "user", "t?g"}, {"chat_tmp*", "*[0-9]"});
  EXPECT_TRUE(f.Matches("chat"));
  EXPECT_TRUE(f.Matches("chatidtag"));
  EXPECT_TRUE(f.Matches("user"));
  EXPECT_TRUE(f.Matches("tag"));
  EXPECT_FALSE(f.Matches("User"));  // GLOB is case-sensitive
  EXPECT_FALSE(f.Matches("chat_tmp_1"));
  EXPECT_FALSE(f.Matches("chat2"));
  EXPECT_FALSE(f.Matches("message"));
}

TEST(TableFilter, ExcludeOnly) {
  TableFilter f({}, {"migratehistory", "alembic_version"});
  EXPECT_FALSE(f.Matches("migratehistory"));
  EXPECT_FALSE(f.Matches("alembic_version"));
  EXPECT_TRUE(f.Matches("chat"));
}

}  // namespace
}  // namespace sluice
