// Value encoding: every rule of EncodeValue, and the JSON helpers.
#include "sink/value_encoder.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace sluice {
namespace {

using K = TargetKind;

std::string Enc(const Value& v, K k) {
  Result<std::optional<std::string>> r = EncodeValue(v, k);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  if (!r.ok() || !r->has_value()) return "<null>";
  return **r;
}

Status Err(const Value& v, K k) {
  Result<std::optional<std::string>> r = EncodeValue(v, k);
  EXPECT_FALSE(r.ok()) << "accepted as " << (r.ok() && r->has_value() ? **r : "NULL");
  return r.status();
}

const int64_t kMin = std::numeric_limits<int64_t>::min();
const int64_t kMax = std::numeric_limits<int64_t>::max();
const double kNaN = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();

TEST(EncodeValue, NullIsNullForEveryKind) {
  for (K k : {K::kBigint, K::kInteger, K::kSmallint, K::kBoolean, K::kDouble, K::kNumeric, K::kText,
              K::kJsonb, K::kBytea, K::kOther}) {
    Result<std::optional<std::string>> r = EncodeValue(Value::Null(), k);
    ASSERT_TRUE(r.ok());
    EXPECT_FALSE(r->has_value());
  }
}

TEST(EncodeValue, Bigint) {
  EXPECT_EQ(Enc(Value::Integer(42), K::kBigint), "42");
  EXPECT_EQ(Enc(Value::Integer(kMin), K::kBigint), "-9223372036854775808");
  EXPECT_EQ(Enc(Value::Integer(kMax), K::kBigint), "9223372036854775807");
  EXPECT_EQ(Enc(Value::Real(3.0), K::kBigint), "3");
  EXPECT_EQ(Enc(Value::Real(-9223372036854775808.0), K::kBigint), "-9223372036854775808");
  EXPECT_EQ(Enc(Value::Text("-17"), K::kBigint), "-17");
  EXPECT_EQ(Enc(Value::Text("9223372036854775807"), K::kBigint), "9223372036854775807");
  EXPECT_EQ(Err(Value::Text("abc"), K::kBigint).message(), "'abc' is not an integer");
  EXPECT_EQ(Err(Value::Text("abc"), K::kBigint).code(), Status::Code::kDataError);
  Err(Value::Text("012"), K::kBigint);
  Err(Value::Text(" 12"), K::kBigint);
  Err(Value::Text("1e3"), K::kBigint);
  Err(Value::Text("-0"), K::kBigint);
  Err(Value::Text("9223372036854775808"), K::kBigint);
  Err(Value::Real(1.5), K::kBigint);
  Err(Value::Real(9223372036854775808.0), K::kBigint);
  Err(Value::Real(kNaN), K::kBigint);
  Err(Value::Real(kInf), K::kBigint);
  Err(Value::Blob("\x01"), K::kBigint);
}

TEST(EncodeValue, IntegerAndSmallintRanges) {
  EXPECT_EQ(Enc(Value::Integer(2147483647), K::kInteger), "2147483647");
  EXPECT_EQ(Enc(Value::Integer(-2147483648LL), K::kInteger), "-2147483648");
  EXPECT_EQ(Err(Value::Integer(2147483648LL), K::kInteger).message(),
            "2147483648 is out of range for type integer");
  EXPECT_EQ(Enc(Value::Integer(-32768), K::kSmallint), "-32768");
  Err(Value::Integer(32768), K::kSmallint);
  Err(Value::Text("40000"), K::kSmallint);
}

TEST(EncodeValue, Boolean) {
  EXPECT_EQ(Enc(Value::Integer(0), K::kBoolean), "false");
  EXPECT_EQ(Enc(Value::Integer(1), K::kBoolean), "true");
  Err(Value::Integer(2), K::kBoolean);
  Err(Value::Text("true"), K::kBoolean);
  Err(Value::Real(1.0), K::kBoolean);
}

TEST(EncodeValue, Double) {
  EXPECT_EQ(Enc(Value::Real(0.1), K::kDouble), "0.1");
  EXPECT_EQ(Enc(Value::Real(kNaN), K::kDouble), "NaN");
  EXPECT_EQ(Enc(Value::Real(kInf), K::kDouble), "Infinity");
  EXPECT_EQ(Enc(Value::Real(-kInf), K::kDouble), "-Infinity");
  EXPECT_EQ(Enc(Value::Integer(kMax), K::kDouble), "9223372036854775807");
  EXPECT_EQ(Enc(Value::Text("2.5e3"), K::kDouble), "2500");
  EXPECT_EQ(Enc(Value::Text(" +1.25 "), K::kDouble), "1.25");
  // Shortest text that reads back exactly.
  double tricky = 0.1 + 0.2;
  EXPECT_EQ(std::stod(Enc(Value::Real(tricky), K::kDouble)), tricky);
  EXPECT_EQ(Err(Value::Text("abc"), K::kDouble).message(), "'abc' is not a number");
  Err(Value::Blob("x"), K::kDouble);
}

TEST(EncodeValue, Numeric) {
  EXPECT_EQ(Enc(Value::Integer(kMin), K::kNumeric), "-9223372036854775808");
  EXPECT_EQ(Enc(Value::Real(1.5), K::kNumeric), "1.5");
  EXPECT_EQ(Enc(Value::Real(kNaN), K::kNumeric), "NaN");
  EXPECT_EQ(Enc(Value::Real(-kInf), K::kNumeric), "-Infinity");
  EXPECT_EQ(Enc(Value::Text("12345678901234567890.000000001"), K::kNumeric),
            "12345678901234567890.000000001");
  EXPECT_EQ(Enc(Value::Text(" -1.5e-3 "), K::kNumeric), "-1.5e-3");
  Err(Value::Text("1.2.3"), K::kNumeric);
  Err(Value::Text("e5"), K::kNumeric);
  Err(Value::Text(""), K::kNumeric);
}

TEST(EncodeValue, Text) {
  EXPECT_EQ(Enc(Value::Text("héllo ✓"), K::kText), "héllo ✓");
  EXPECT_EQ(Enc(Value::Integer(kMin), K::kText), "-9223372036854775808");
  EXPECT_EQ(Enc(Value::Real(1.0), K::kText), "1.0");
  EXPECT_EQ(Enc(Value::Real(0.1), K::kText), "0.1");
  EXPECT_EQ(Enc(Value::Real(kNaN), K::kText), "NaN");
  EXPECT_EQ(Err(Value::Text(std::string("a\xff")), K::kText).message(), "text is not valid UTF-8");
  EXPECT_EQ(Err(Value::Text(std::string("a\0b", 3)), K::kText).message(),
            "text contains a NUL byte, which PostgreSQL text cannot store");
  Err(Value::Text("\xed\xa0\x80"), K::kText);  // UTF-8 encoded surrogate
  EXPECT_EQ(Err(Value::Blob("ab"), K::kText).message(), "blob of 2 bytes in a text column");
  // kOther sends the text form and lets PostgreSQL cast it.
  EXPECT_EQ(Enc(Value::Text("2024-01-01 10:00:00"), K::kOther), "2024-01-01 10:00:00");
  Err(Value::Text(std::string("\0", 1)), K::kOther);
}

TEST(EncodeValue, Jsonb) {
  EXPECT_EQ(Enc(Value::Text(R"({"a":[1,2,{"b":null}]})"), K::kJsonb), R"({"a":[1,2,{"b":null}]})");
  EXPECT_EQ(Enc(Value::Text("\"x\""), K::kJsonb), "\"x\"");
  EXPECT_EQ(Enc(Value::Integer(7), K::kJsonb), "7");
  EXPECT_EQ(Enc(Value::Real(2.5), K::kJsonb), "2.5");
  // Escaped backslash before u0000 is not a NUL escape.
  EXPECT_EQ(Enc(Value::Text(R"(["\\u0000"])"), K::kJsonb), R"(["\\u0000"])");
  EXPECT_EQ(Err(Value::Text(R"({"a":"\u0000"})"), K::kJsonb).message(),
            "JSON contains \\u0000, which jsonb cannot store");
  Err(Value::Text("{not json"), K::kJsonb);
  Err(Value::Text("[1,]"), K::kJsonb);
  Err(Value::Text(""), K::kJsonb);
  Err(Value::Text(std::string("\"\xff\"")), K::kJsonb);
  Err(Value::Real(kNaN), K::kJsonb);
  Err(Value::Blob("{}"), K::kJsonb);
}

TEST(EncodeValue, Bytea) {
  EXPECT_EQ(Enc(Value::Blob(std::string("\x00\x01\xfe\xff", 4)), K::kBytea), "\\x0001feff");
  EXPECT_EQ(Enc(Value::Blob(""), K::kBytea), "\\x");
  EXPECT_EQ(Enc(Value::Text("AB"), K::kBytea), "\\x4142");
  Err(Value::Integer(1), K::kBytea);
}

TEST(Json, AppendJsonStringEscapes) {
  std::string out;
  AppendJsonString(&out, std::string("q\"b\\n\n\x01 é", 10));
  EXPECT_EQ(out, "\"q\\\"b\\\\n\\n\\u0001 é\"");
}

TEST(Json, AppendValueJsonIsLossless) {
  std::string out;
  for (const Value& v : {Value::Null(), Value::Integer(kMin), Value::Real(kNaN), Value::Real(-kInf),
                         Value::Real(0.5), Value::Text("ok"), Value::Text(std::string("\xff\0", 2)),
                         Value::Blob("\x01\x02")}) {
    AppendValueJson(&out, v);
    out += "|";
  }
  EXPECT_EQ(out,
            "null|-9223372036854775808|\"NaN\"|\"-Infinity\"|0.5|\"ok\"|"
            "{\"$text_hex\": \"ff00\"}|{\"$blob_hex\": \"0102\"}|");
}

TEST(Json, PreviewNeverLeaksInvalidBytes) {
  EXPECT_EQ(PreviewBytes("abc"), "'abc'");
  EXPECT_EQ(PreviewBytes(std::string("\xff", 1)), "text of 1 bytes");
  std::string long_text(100, 'x');
  EXPECT_EQ(PreviewBytes(long_text), "'" + std::string(40, 'x') + "...'");
}

}  // namespace
}  // namespace sluice
