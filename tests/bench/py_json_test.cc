// PyJson against what CPython 3's json.dumps prints for the same values.
#include "bench/py_json.h"

#include <gtest/gtest.h>

namespace sluice::bench {
namespace {

TEST(PyJsonTest, SeparatorsAndLiteralsAsJsonDumps) {
  // json.dumps({"a": [1, 2.5, None, True, False], "p": {}, "q": [], "n": -7})
  std::string out;
  PyJson j(&out);
  j.BeginObject().Key("a").BeginArray().Int(1).Float(2.5).Null().Bool(true).Bool(false).EndArray();
  j.Key("p").BeginObject().EndObject().Key("q").BeginArray().EndArray().Field("n", -7).EndObject();
  EXPECT_EQ(out, R"({"a": [1, 2.5, null, true, false], "p": {}, "q": [], "n": -7})");
}

TEST(PyJsonTest, StringsAreAsciiWithLowercaseEscapes) {
  // json.dumps("Grüße 😀 \"q\" \\ \n\t\x01\x7f/é中")
  std::string out;
  AppendPyJsonString(&out, "Grüße 😀 \"q\" \\ \n\t\x01\x7f/é中");
  EXPECT_EQ(out, R"("Gr\u00fc\u00dfe \ud83d\ude00 \"q\" \\ \n\t\u0001\u007f/\u00e9\u4e2d")");
}

TEST(PyJsonTest, FloatsAsRepr) {
  // repr() of each, as json.dumps writes floats.
  EXPECT_EQ(PyFloatRepr(0.1), "0.1");
  EXPECT_EQ(PyFloatRepr(1.0), "1.0");
  EXPECT_EQ(PyFloatRepr(0.0), "0.0");
  EXPECT_EQ(PyFloatRepr(-0.0), "-0.0");
  EXPECT_EQ(PyFloatRepr(45.12), "45.12");
  EXPECT_EQ(PyFloatRepr(0.1 + 0.2), "0.30000000000000004");
  EXPECT_EQ(PyFloatRepr(0.0001), "0.0001");
  EXPECT_EQ(PyFloatRepr(1e-05), "1e-05");
  EXPECT_EQ(PyFloatRepr(2.5e-07), "2.5e-07");
  EXPECT_EQ(PyFloatRepr(1e15), "1000000000000000.0");
  EXPECT_EQ(PyFloatRepr(123456789012345.6), "123456789012345.6");
  EXPECT_EQ(PyFloatRepr(1e16), "1e+16");
  EXPECT_EQ(PyFloatRepr(-1.5e16), "-1.5e+16");
  EXPECT_EQ(PyFloatRepr(1e300), "1e+300");
}

}  // namespace
}  // namespace sluice::bench
