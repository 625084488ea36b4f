// Row encoding: JSON rows for the data statements, last change per row, parking.
#include "sink/row_encoder.h"

#include <gtest/gtest.h>

namespace sluice {
namespace {

TableShape Tag() {
  TableShape t;
  t.name = "tag";
  ColumnShape id, user, count;
  id.name = "id";
  id.declared_type = "TEXT";
  id.key_position = 1;
  user.name = "user_id";
  user.declared_type = "TEXT";
  user.key_position = 2;
  count.name = "n";
  count.declared_type = "INTEGER";
  t.columns = {id, count, user};  // key (id, user_id) not in column order
  return t;
}

Change Make(Change::Kind kind, int64_t seq, std::vector<Value> values) {
  Change c;
  c.kind = kind;
  c.seq = seq;
  c.values = std::move(values);
  return c;
}

class RowEncoderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    shapes_ = {Tag()};
    Result<MirrorTable> m = PlanMirror("s", "dep", shapes_[0], nullptr, {});
    ASSERT_TRUE(m.ok());
    mirror_ = m.value();
    targets_ = {&mirror_};
  }
  std::vector<TableShape> shapes_;
  MirrorTable mirror_;
  std::vector<const MirrorTable*> targets_;
};

TEST_F(RowEncoderTest, EncodesUpsertsAndDeletes) {
  std::vector<Change> changes = {
      Make(Change::Kind::kUpsert, 5, {Value::Text("a\"1"), Value::Integer(-3), Value::Text("u")}),
      Make(Change::Kind::kUpsert, 6, {Value::Text("b"), Value::Null(), Value::Text("u")}),
      Make(Change::Kind::kDelete, 7, {Value::Text("c"), Value::Text("u")})};
  Result<EncodedChunk> r = EncodeChunk(shapes_, targets_, changes);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->rows.size(), 3u);
  EXPECT_TRUE(r->parked.empty());
  EXPECT_EQ(r->rows[0].element, R"(["a\"1","-3","u","5"])");
  EXPECT_EQ(r->rows[1].element, R"(["b",null,"u","6"])");
  EXPECT_EQ(r->rows[2].element, R"(["c","u","7"])");  // key order: id, user_id
  EXPECT_EQ(r->rows[2].kind, Change::Kind::kDelete);
  EXPECT_EQ(r->rows[2].change, 2u);
}

TEST_F(RowEncoderTest, KeepsTheLastChangePerRow) {
  std::vector<Change> changes = {
      Make(Change::Kind::kUpsert, 1, {Value::Text("a"), Value::Integer(1), Value::Text("u")}),
      Make(Change::Kind::kUpsert, 2, {Value::Text("a"), Value::Integer(1), Value::Text("v")}),
      Make(Change::Kind::kDelete, 3, {Value::Text("a"), Value::Text("u")}),
      Make(Change::Kind::kUpsert, 4, {Value::Text("a"), Value::Integer(9), Value::Text("v")})};
  Result<EncodedChunk> r = EncodeChunk(shapes_, targets_, changes);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->rows.size(), 2u);
  EXPECT_EQ(r->rows[0].element, R"(["a","u","3"])");
  EXPECT_EQ(r->rows[1].element, R"(["a","9","v","4"])");
}

TEST_F(RowEncoderTest, ParksWhatCannotBeStored) {
  std::vector<Change> changes = {
      Make(Change::Kind::kUpsert, 8, {Value::Text("a"), Value::Text("abc"), Value::Text("u")}),
      Make(Change::Kind::kUpsert, 9, {Value::Null(), Value::Integer(1), Value::Text("u")}),
      Make(Change::Kind::kDelete, 10, {Value::Blob("\x01"), Value::Text("u")}),
      Make(Change::Kind::kUpsert, 11, {Value::Text("ok"), Value::Integer(1), Value::Text("u")})};
  Result<EncodedChunk> r = EncodeChunk(shapes_, targets_, changes);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->rows.size(), 1u);
  ASSERT_EQ(r->parked.size(), 3u);
  EXPECT_EQ(r->parked[0], R"(["tag",["a","u"],8,"column \"n\" (bigint): 'abc' is not an integer",)"
                          R"({"id":"a","n":"abc","user_id":"u"}])");
  EXPECT_EQ(r->parked[1],
            R"(["tag",[null,"u"],9,"key column \"id\" is NULL: PostgreSQL cannot identify the )"
            R"(row",{"id":null,"n":1,"user_id":"u"}])");
  EXPECT_EQ(r->parked[2],
            R"(["tag",[{"$blob_hex": "01"},"u"],10,"column \"id\" (text): blob of 1 bytes in a )"
            R"(text column",{"id":{"$blob_hex": "01"},"user_id":"u"}])");
}

// A table whose upserts go by COPY (EncodeChunk's `copy`): one COPY text
// line per row, the values escaped as COPY reads them (backslash, tab,
// newline, carriage return), NULL as \N, then the seq, _sluice_outside_at
// (NULL) and _sluice_base (the marker for an update); deletes stay JSON.
TEST_F(RowEncoderTest, CopyTablesGetCopyTextLines) {
  Change update =
      Make(Change::Kind::kUpsert, 6, {Value::Text("b"), Value::Null(), Value::Text("u")});
  update.updates_existing = true;
  std::vector<Change> changes = {
      Make(Change::Kind::kUpsert, 5,
           {Value::Text("a\tb\nc\rd\\e \xC3\xA9"), Value::Integer(-3), Value::Text("u")}),
      update, Make(Change::Kind::kDelete, 7, {Value::Text("c"), Value::Text("u")})};
  Result<EncodedChunk> r = EncodeChunk(shapes_, targets_, changes, {true});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->rows.size(), 3u);
  EXPECT_TRUE(r->rows[0].copy);
  EXPECT_EQ(r->rows[0].element, "a\\tb\\nc\\rd\\\\e \xC3\xA9\t-3\tu\t5\t\\N\t\\N\n");
  EXPECT_EQ(r->rows[1].element, "b\t\\N\tu\t6\t\\N\t\"update\"\n");
  EXPECT_FALSE(r->rows[2].copy);
  EXPECT_EQ(r->rows[2].element, R"(["c","u","7"])");
  // Without `copy`, the same upsert is JSON.
  Result<EncodedChunk> json = EncodeChunk(shapes_, targets_, {changes[0]});
  ASSERT_TRUE(json.ok());
  EXPECT_FALSE(json->rows[0].copy);
  EXPECT_EQ(json->rows[0].element.front(), '[');
}

TEST_F(RowEncoderTest, RefusesChangesThatDoNotMatchTheShape) {
  std::vector<Change> changes = {Make(Change::Kind::kUpsert, 1, {Value::Text("a")})};
  EXPECT_EQ(EncodeChunk(shapes_, targets_, changes).status().code(), Status::Code::kInternal);
  changes = {Make(Change::Kind::kDelete, 1, {Value::Text("a")})};
  changes[0].table = 3;
  EXPECT_EQ(EncodeChunk(shapes_, targets_, changes).status().code(), Status::Code::kInternal);
}

}  // namespace
}  // namespace sluice
