// Status: wrapping keeps the code and prefixes context.
#include "common/status.h"

#include <gtest/gtest.h>

namespace sluice {
namespace {

TEST(Status, WrapKeepsCodeAndAddsContext) {
  Status st = Status::Unavailable("connection refused").Wrap("apply batch 42");
  EXPECT_EQ(st.code(), Status::Code::kUnavailable);
  EXPECT_EQ(st.message(), "apply batch 42: connection refused");
  EXPECT_EQ(st.ToString(), "unavailable: apply batch 42: connection refused");
  EXPECT_TRUE(Status::Ok().Wrap("x").ok());
}

TEST(Result, CarriesValueOrStatus) {
  Result<int> good = 7;
  Result<int> bad = Status::NotFound("nope");
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(*good, 7);
  EXPECT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Status::Code::kNotFound);
}

}  // namespace
}  // namespace sluice
