// Type mapping: declared type + observed values → PostgreSQL type; PG type names → kinds.
#include "sink/type_mapping.h"

#include <gtest/gtest.h>

#include "common/value.h"

namespace sluice {
namespace {

constexpr uint8_t kNull = Value::Bit(Value::Kind::kNull);
constexpr uint8_t kInt = Value::Bit(Value::Kind::kInteger);
constexpr uint8_t kReal = Value::Bit(Value::Kind::kReal);
constexpr uint8_t kText = Value::Bit(Value::Kind::kText);
constexpr uint8_t kBlob = Value::Bit(Value::Kind::kBlob);

ColumnShape Col(std::string declared, uint8_t seen, bool all_json = true, bool all_bool = true) {
  ColumnShape c;
  c.name = "c";
  c.declared_type = std::move(declared);
  c.seen_kinds = seen;
  c.text_all_json = all_json;
  c.integers_all_bool = all_bool;
  return c;
}

TEST(TypeMapping, OpenWebUiColumns) {
  // chat.created_at DATETIME holding epoch seconds
  EXPECT_EQ(MapColumnType(Col("DATETIME", kInt)), "bigint");
  // config.updated_at: NULL (ORM) or CURRENT_TIMESTAMP text
  EXPECT_EQ(MapColumnType(Col("DATETIME", kNull | kText)), "text");
  EXPECT_EQ(MapColumnType(Col("DATETIME", kNull)), "text");
  // chat.chat JSON
  EXPECT_EQ(MapColumnType(Col("JSON", kNull | kText)), "jsonb");
  // chat.pinned BOOLEAN with 0/1/NULL
  EXPECT_EQ(MapColumnType(Col("BOOLEAN", kNull | kInt)), "boolean");
  // prompt.id INTEGER PRIMARY KEY
  EXPECT_EQ(MapColumnType(Col("INTEGER", kInt)), "bigint");
  // message.created_at BIGINT with nanoseconds
  EXPECT_EQ(MapColumnType(Col("BIGINT", kInt)), "bigint");
  EXPECT_EQ(MapColumnType(Col("VARCHAR(255)", kText)), "text");
  EXPECT_EQ(MapColumnType(Col("TEXT", kText | kNull)), "text");
}

TEST(TypeMapping, Boolean) {
  EXPECT_EQ(MapColumnType(Col("BOOL", 0)), "boolean");
  EXPECT_EQ(MapColumnType(Col("BOOLEAN", kInt, true, false)), "bigint");
  EXPECT_EQ(MapColumnType(Col("BOOLEAN", kInt | kText)), "text");
  EXPECT_EQ(MapColumnType(Col("boolean", kReal)), "text");
}

TEST(TypeMapping, Json) {
  EXPECT_EQ(MapColumnType(Col("JSON", 0)), "jsonb");
  EXPECT_EQ(MapColumnType(Col("JSON", kText, false)), "text");
  EXPECT_EQ(MapColumnType(Col("json", kText | kInt)), "text");
}

TEST(TypeMapping, DateTime) {
  EXPECT_EQ(MapColumnType(Col("DATE", kInt | kNull)), "bigint");
  EXPECT_EQ(MapColumnType(Col("TIMESTAMP", kText)), "text");
  EXPECT_EQ(MapColumnType(Col("TIME", kInt | kReal)), "text");
  EXPECT_EQ(MapColumnType(Col("DATETIME", 0)), "text");  // empty table: declared type alone
}

TEST(TypeMapping, Affinities) {
  EXPECT_EQ(MapColumnType(Col("INT", 0)), "bigint");
  EXPECT_EQ(MapColumnType(Col("INTEGER", kInt | kText)), "text");  // 'abc' in INTEGER
  EXPECT_EQ(MapColumnType(Col("INTEGER", kInt | kReal)), "double precision");
  EXPECT_EQ(MapColumnType(Col("REAL", kReal | kInt)), "double precision");
  EXPECT_EQ(MapColumnType(Col("DOUBLE PRECISION", kText)), "text");
  EXPECT_EQ(MapColumnType(Col("FLOAT", 0)), "double precision");
  EXPECT_EQ(MapColumnType(Col("CLOB", kText)), "text");
  EXPECT_EQ(MapColumnType(Col("NUMERIC", kInt | kReal)), "numeric");
  EXPECT_EQ(MapColumnType(Col("DECIMAL(10,2)", kText)), "text");
}

TEST(TypeMapping, BlobAndUntyped) {
  EXPECT_EQ(MapColumnType(Col("BLOB", 0)), "bytea");
  EXPECT_EQ(MapColumnType(Col("BLOB", kBlob | kNull)), "bytea");
  EXPECT_EQ(MapColumnType(Col("", 0)), "text");
  EXPECT_EQ(MapColumnType(Col("", kInt)), "bigint");
  EXPECT_EQ(MapColumnType(Col("", kInt | kReal)), "double precision");
  EXPECT_EQ(MapColumnType(Col("", kBlob | kText)), "text");
}

TEST(TypeMapping, RowidColumn) {
  ColumnShape c = Col("INTEGER", kText);
  c.name = kRowidColumn;
  EXPECT_EQ(MapColumnType(c), "bigint");
}

TEST(TypeMapping, KindOfPgType) {
  EXPECT_EQ(KindOfPgType("bigint"), TargetKind::kBigint);
  EXPECT_EQ(KindOfPgType("integer"), TargetKind::kInteger);
  EXPECT_EQ(KindOfPgType("smallint"), TargetKind::kSmallint);
  EXPECT_EQ(KindOfPgType("boolean"), TargetKind::kBoolean);
  EXPECT_EQ(KindOfPgType("double precision"), TargetKind::kDouble);
  EXPECT_EQ(KindOfPgType("real"), TargetKind::kDouble);
  EXPECT_EQ(KindOfPgType("numeric(10,2)"), TargetKind::kNumeric);
  EXPECT_EQ(KindOfPgType("numeric"), TargetKind::kNumeric);
  EXPECT_EQ(KindOfPgType("text"), TargetKind::kText);
  EXPECT_EQ(KindOfPgType("character varying(255)"), TargetKind::kText);
  EXPECT_EQ(KindOfPgType("character(3)"), TargetKind::kText);
  EXPECT_EQ(KindOfPgType("jsonb"), TargetKind::kJsonb);
  EXPECT_EQ(KindOfPgType("json"), TargetKind::kJsonb);
  EXPECT_EQ(KindOfPgType("bytea"), TargetKind::kBytea);
  EXPECT_EQ(KindOfPgType("timestamp with time zone"), TargetKind::kOther);
  EXPECT_EQ(KindOfPgType("timestamp(3) without time zone"), TargetKind::kOther);
  EXPECT_EQ(KindOfPgType("uuid"), TargetKind::kOther);
  EXPECT_EQ(KindOfPgType("integer[]"), TargetKind::kOther);
  EXPECT_EQ(KindOfPgType("INT8"), TargetKind::kBigint);
}

// Overrides are spliced into DDL, so only type-name syntax is accepted.
TEST(TypeMapping, PgTypeNameGrammar) {
  for (const char* ok : {"bigint",
                         "BIGINT",
                         "text",
                         "int8",
                         "varchar(20)",
                         "character varying(20)",
                         "numeric(10,2)",
                         "numeric(10, 2)",
                         "double precision",
                         "timestamp with time zone",
                         "timestamp(3) with time zone",
                         "time without time zone",
                         "timestamptz",
                         "text[]",
                         "integer[][]",
                         "int[3]",
                         "public.citext",
                         "pg_catalog.int8",
                         "  jsonb  ",
                         "interval day to second",
                         "bit varying(8)",
                         "uuid"}) {
    Status s = CheckPgTypeName(ok);
    EXPECT_TRUE(s.ok()) << ok << ": " << s.ToString();
  }
  for (const char* bad : {"",
                          " ",
                          "bigint DEFAULT (pg_sleep(1))",
                          "text, extra text",
                          "text NOT NULL",
                          "text; DROP TABLE x",
                          "text -- c",
                          "text /* c */",
                          "int8)",
                          "(int8)",
                          "varchar(20",
                          "varchar(a)",
                          "numeric(1,2,3)",
                          "a.b.c",
                          ".int8",
                          "int8.",
                          "\"int8\"",
                          "text COLLATE C",
                          "text[",
                          "int8 PRIMARY KEY",
                          "bigint REFERENCES t",
                          "text CHECK (true)",
                          "1int",
                          "bigint GENERATED ALWAYS AS (1) STORED",
                          "text\ninteger"}) {
    Status s = CheckPgTypeName(bad);
    EXPECT_FALSE(s.ok()) << "accepted: " << bad;
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  }
  EXPECT_FALSE(CheckPgTypeName(std::string(64, 'a')).ok());  // longer than an identifier
}

}  // namespace
}  // namespace sluice
