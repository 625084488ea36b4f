// BatchApplier against a real PostgreSQL on a real libuv loop: upserts and
// tombstones land with the position in one transaction, replays change
// nothing, full reads tombstone absent rows, unencodable and refused rows are
// parked while the rest applies, and a spilled 100,000-row batch applies in
// bounded chunks. Every test closes its connection and asserts
// uv_loop_close() == 0.
#include "sink/batch_applier.h"

#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <uv.h>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "sink/pg_sql.h"
#include "sink/sink_admin.h"
#include "tests/sink/applier_fixture.h"
#include "tests/test_support.h"

namespace sluice {
namespace {

using testing::ApplierTest;
using testing::ChatShape;
using testing::Col;
using testing::Delete;
using testing::I;
using testing::kInt;
using testing::kSource;
using testing::kText;
using testing::Query;
using testing::T;
using testing::TagShape;
using testing::Upsert;

TEST_F(ApplierTest, UpsertsDeletesPositionAndReplay) {
  if (pg_.empty()) return;
  Batch b1 = NewBatch(-1, 10, {ChatShape(), TagShape()});
  ASSERT_TRUE(
      b1.changes.Append(Upsert(0, 3, {T("c1"), I(1700000000), T(R"({"m":[1]})"), I(1)})).ok());
  ASSERT_TRUE(b1.changes.Append(Upsert(0, 4, {T("c2"), I(1700000001), Value::Null(), I(0)})).ok());
  ASSERT_TRUE(b1.changes.Append(Upsert(0, 5, {T("c'3\""), I(5), T("[]"), Value::Null()})).ok());
  ASSERT_TRUE(b1.changes.Append(Upsert(1, 6, {T("t1"), T("u1"), T("work")})).ok());
  ASSERT_TRUE(b1.changes.Append(Upsert(1, 7, {T("t1"), T("u2"), T("home")})).ok());
  ApplyStats stats;
  Status st = Apply(&b1, &stats);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(stats.upserts, 5);
  EXPECT_EQ(stats.parked, 0);
  EXPECT_EQ(Position(), 10);
  EXPECT_EQ(
      Q("SELECT id, created_at, chat::text, pinned, _sluice_seq FROM " + S() + ".chat ORDER BY id"),
      (std::vector<std::string>{"c'3\"|5|[]|NULL|5", "c1|1700000000|{\"m\": [1]}|t|3",
                                "c2|1700000001|NULL|f|4"}));

  Batch b2 = NewBatch(10, 12, {ChatShape(), TagShape()});
  ASSERT_TRUE(b2.changes.Append(Upsert(0, 11, {T("c1"), I(1700000100), T("{}"), I(0)})).ok());
  ASSERT_TRUE(b2.changes.Append(Delete(0, 12, {T("c2")})).ok());
  ASSERT_TRUE(b2.changes.Append(Delete(1, 12, {T("t1"), T("u2")})).ok());
  st = Apply(&b2, &stats);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(stats.upserts, 1);
  EXPECT_EQ(stats.deletes, 2);
  // Per table, for sluice_rows_applied_total{table,op}.
  ASSERT_EQ(stats.tables.size(), 2u);
  EXPECT_EQ(stats.tables["chat"].upserts, 1);
  EXPECT_EQ(stats.tables["chat"].deletes, 1);
  EXPECT_EQ(stats.tables["tag"].upserts, 0);
  EXPECT_EQ(stats.tables["tag"].deletes, 1);
  EXPECT_EQ(Position(), 12);
  std::vector<std::string> after =
      Q("SELECT id, created_at, _sluice_seq, _sluice_deleted_at IS "
        "NOT NULL, _sluice_updated_at FROM " +
        S() + ".chat ORDER BY id");
  EXPECT_EQ(after[1].substr(0, after[1].rfind('|')), "c1|1700000100|11|f");
  EXPECT_EQ(after[2].substr(0, after[2].rfind('|')), "c2|1700000001|12|t");
  EXPECT_EQ(
      Q("SELECT user_id, _sluice_deleted_at IS NOT NULL FROM " + S() + ".tag ORDER BY user_id"),
      (std::vector<std::string>{"u1|f", "u2|t"}));

  // A replay of the same batch is refused by the position fence and changes nothing.
  st = Apply(&b2, &stats);
  EXPECT_EQ(st.code(), Status::Code::kConflict) << st.ToString();
  EXPECT_NE(st.message().find("apply batch (after 10, to 12)"), std::string::npos);
  EXPECT_EQ(Q("SELECT id, created_at, _sluice_seq, _sluice_deleted_at IS NOT NULL, "
              "_sluice_updated_at FROM " +
              S() + ".chat ORDER BY id"),
            after);
  EXPECT_EQ(Position(), 12);

  // An empty batch still runs; a new column in the shape extends the table.
  TableShape chat = ChatShape();
  chat.columns.push_back(Col("folder_id", "TEXT", 0, kText));
  Batch b3 = NewBatch(12, 12, {chat});
  ASSERT_TRUE(Apply(&b3).ok());
  Batch b4 = NewBatch(12, 13, {chat});
  ASSERT_TRUE(b4.changes.Append(Upsert(0, 13, {T("c2"), I(9), T("{}"), I(1), T("f1")})).ok());
  st = Apply(&b4);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(Q("SELECT folder_id, _sluice_deleted_at IS NULL FROM " + S() + ".chat WHERE id = 'c2'"),
            std::vector<std::string>{"f1|t"});  // un-deleted by the upsert
  EXPECT_EQ(Position(), 13);
}

// A full read into a mirror that holds no row goes by COPY (issue #9): the
// rows arrive exactly as the upserts would write them (values with tabs,
// backslashes, newlines, NULL, unicode, 64-bit integers; seq, no outside
// mark, updated_at set, the update marker); several chunks. A full read into
// a mirror that holds rows, and an incremental batch, keep the upserts.
TEST_F(ApplierTest, FullReadIntoAnEmptyMirrorGoesByCopy) {
  if (pg_.empty()) return;
  TableShape item;
  item.name = "item";
  item.columns = {Col("id", "INTEGER", 1, kInt), Col("note", "TEXT", 0, kText),
                  Col("n", "INTEGER", 0, kInt)};
  SinkOptions small = options_;
  small.chunk_rows = 7;
  BatchApplier applier(small);
  Batch b = NewBatch(-1, 50, {item});
  b.full_tables = {0};
  for (int i = 1; i <= 40; ++i) {
    Value note = i % 5 == 0 ? Value::Null() : T("a\tb\\c\nd\r \xC3\xA9 [x]");
    Change c = Upsert(0, i, {I(i), note, I(i == 3 ? INT64_MIN : 9007199254740993)});
    c.updates_existing = i == 7;
    ASSERT_TRUE(b.changes.Append(c).ok());
  }
  ApplyStats stats;
  Status st = ApplyVia(&applier, conn_.get(), &b, &stats);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(stats.upserts, 40);
  EXPECT_EQ(stats.copied, 40);
  EXPECT_EQ(
      Q("SELECT count(*) FILTER (WHERE note = E'a\\tb\\\\c\\nd\\r \xC3\xA9 [x]'), "
        "count(*) FILTER (WHERE note IS NULL), count(*) FILTER (WHERE n = -9223372036854775808), "
        "count(*) FILTER (WHERE n = 9007199254740993), count(*) FILTER (WHERE _sluice_seq = id), "
        "count(*) FILTER (WHERE _sluice_outside_at IS NULL AND _sluice_deleted_at IS NULL AND "
        "_sluice_updated_at = now() - (now() - _sluice_updated_at)), "
        "count(*) FILTER (WHERE _sluice_base IS NOT NULL) FROM " +
        S() + ".item"),
      std::vector<std::string>{"32|8|1|39|40|40|0"});
  EXPECT_EQ(Position(), 50);
  // The conflict triggers saw the COPY as they see the upserts: row 7, an
  // update of a row the mirror never had, is update_missing (marker cleared).
  EXPECT_EQ(Q("SELECT row_key::text || ' ' || kind FROM sync_metadata.conflict_log WHERE "
              "deployment = '" +
              name_ + "'"),
            std::vector<std::string>{"[7] update_missing"});

  // Read whole again: the mirror has rows now, so the upserts (same result).
  Batch again = NewBatch(50, 60, {item});
  again.full_tables = {0};
  ASSERT_TRUE(again.changes.Append(Upsert(0, 60, {I(1), T("one"), I(1)})).ok());
  ApplyStats again_stats;
  ASSERT_TRUE(ApplyVia(&applier, conn_.get(), &again, &again_stats).ok());
  EXPECT_EQ(again_stats.upserts, 1);
  EXPECT_EQ(again_stats.copied, 0);
  EXPECT_EQ(Q("SELECT count(*) FILTER (WHERE _sluice_deleted_at IS NULL) FROM " + S() + ".item"),
            std::vector<std::string>{"1"});
}

// COPY FROM refuses a table under row-level security (SQLSTATE 0A000, which
// no retry fixes): for a role RLS applies to (the test's own is a superuser,
// which RLS never applies to, so it asks as another role), an empty mirror
// with RLS forced is not one to COPY into; one without RLS is.
TEST_F(ApplierTest, MirrorUnderRowSecurityIsNotCopiedInto) {
  if (pg_.empty()) return;
  std::string role = name_ + "_r";
  Q("CREATE SCHEMA " + S() + "; CREATE TABLE " + S() + ".item (id bigint PRIMARY KEY); " +
    "CREATE TABLE " + S() + ".plain (id bigint PRIMARY KEY); ALTER TABLE " + S() +
    ".item ENABLE ROW LEVEL SECURITY; ALTER TABLE " + S() + ".item FORCE ROW LEVEL SECURITY; " +
    "CREATE POLICY open ON " + S() + ".item USING (true) WITH CHECK (true); CREATE ROLE " + role +
    " NOLOGIN; GRANT USAGE ON SCHEMA " + S() + " TO " + role +
    "; GRANT SELECT ON ALL TABLES IN SCHEMA " + S() + " TO " + role);
  std::vector<std::string> got =
      Q("SET ROLE " + role + "; SELECT (" + TableEmptySql(S() + ".item") + ")::text || '|' || (" +
        TableEmptySql(S() + ".plain") + ")::text");  // a connection of its own
  Q("DROP OWNED BY " + role + "; DROP ROLE " + role);
  EXPECT_EQ(got, std::vector<std::string>{"false|true"});
}

// character(n) and bit(n) columns of an adopted table: the upserts store what
// COPY stores ('abc' and 101), not a value cut to length 1 or refused.
TEST_F(ApplierTest, FixedLengthCharacterAndBitColumnsKeepTheirValues) {
  if (pg_.empty()) return;
  Q("CREATE SCHEMA " + S() + "; CREATE TABLE " + S() +
    ".code (id bigint PRIMARY KEY, c character(3), b bit(3), cs character(2)[])");
  TableShape code;
  code.name = "code";
  code.columns = {Col("id", "INTEGER", 1, kInt), Col("c", "TEXT", 0, kText),
                  Col("b", "TEXT", 0, kText), Col("cs", "TEXT", 0, kText)};
  Batch b = NewBatch(-1, 10, {code});
  ASSERT_TRUE(b.changes.Append(Upsert(0, 1, {I(1), T("abc"), T("101"), T("{ab,cd}")})).ok());
  ApplyStats stats;
  Status st = Apply(&b, &stats);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(stats.parked, 0);
  EXPECT_EQ(Q("SELECT c || '|' || b::text || '|' || cs::text FROM " + S() + ".code"),
            std::vector<std::string>{"abc|101|{ab,cd}"});
}

// A row COPY refuses (a CHECK of the sink's table, a value its type refuses)
// during a full read into an empty mirror: the batch is applied again row by
// row, the row parked with its reason, every other row loaded.
TEST_F(ApplierTest, RowTheCopyRefusesIsParkedAndTheRestLoads) {
  if (pg_.empty()) return;
  Q("CREATE SCHEMA " + S() + "; CREATE TABLE " + S() +
    ".config (id bigint PRIMARY KEY, n bigint CHECK (n < 100), created_at timestamptz)");
  TableShape config;
  config.name = "config";
  config.columns = {Col("id", "INTEGER", 1, kInt), Col("n", "INTEGER", 0, kInt),
                    Col("created_at", "DATETIME", 0, kText)};
  Batch b = NewBatch(-1, 30, {config});
  b.full_tables = {0};
  for (int i = 1; i <= 30; ++i) {
    Value created = T(i == 21 ? "not a date" : "2024-01-01 10:00:00+00");
    ASSERT_TRUE(b.changes.Append(Upsert(0, i, {I(i), I(i == 12 ? 500 : i), created})).ok());
  }
  ApplyStats stats;
  Status st = Apply(&b, &stats);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(stats.upserts, 28);
  EXPECT_EQ(stats.parked, 2);
  EXPECT_EQ(Q("SELECT count(*) FROM " + S() + ".config WHERE _sluice_deleted_at IS NULL"),
            std::vector<std::string>{"28"});
  EXPECT_EQ(Q("SELECT string_agg(seq::text || ':' || substring(reason FROM 'SQLSTATE .....'), "
              "',' ORDER BY seq) FROM "
              "sync_metadata.conflict_log WHERE deployment = '" +
              name_ + "'"),
            std::vector<std::string>{"12:SQLSTATE 23514,21:SQLSTATE 22007"});
}

TEST_F(ApplierTest, FullTableTombstonesAbsentRows) {
  if (pg_.empty()) return;
  Batch b1 = NewBatch(-1, 5, {TagShape()});
  b1.full_tables = {0};
  for (const char* id : {"a", "b", "c"}) {
    ASSERT_TRUE(b1.changes.Append(Upsert(0, 5, {T(id), T("u"), T("x")})).ok());
  }
  ASSERT_TRUE(Apply(&b1).ok());
  Batch b2 = NewBatch(5, 9, {TagShape()});
  b2.full_tables = {0};
  for (const char* id : {"a", "c"}) {
    ASSERT_TRUE(b2.changes.Append(Upsert(0, 9, {T(id), T("u"), T("y")})).ok());
  }
  Status st = Apply(&b2);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(Q("SELECT id, name, _sluice_deleted_at IS NOT NULL FROM " + S() + ".tag ORDER BY id"),
            (std::vector<std::string>{"a|y|f", "b|x|t", "c|y|f"}));
}

TEST_F(ApplierTest, ParksUnencodableRowsAndAppliesTheRest) {
  if (pg_.empty()) return;
  // An adopted table: n is integer at the sink although SQLite holds 'abc' in it.
  Q("CREATE SCHEMA " + S() + "; CREATE TABLE " + S() +
    ".item (id bigint PRIMARY KEY, n integer, note text)");
  TableShape item;
  item.name = "item";
  item.columns = {Col("id", "INTEGER", 1, kInt), Col("n", "INTEGER", 0, kInt | kText),
                  Col("note", "TEXT", 0, kText)};
  Batch b = NewBatch(-1, 20, {item});
  ASSERT_TRUE(b.changes.Append(Upsert(0, 11, {I(1), I(7), T("fine")})).ok());
  ASSERT_TRUE(b.changes.Append(Upsert(0, 12, {I(2), T("abc"), T("n is text")})).ok());
  ASSERT_TRUE(b.changes.Append(Upsert(0, 13, {I(3), I(1), Value::Text("bad \xff utf8")})).ok());
  ASSERT_TRUE(
      b.changes.Append(Upsert(0, 14, {I(4), I(1), Value::Text(std::string("nul\0x", 5))})).ok());
  ASSERT_TRUE(b.changes.Append(Upsert(0, 15, {I(5), I(9), T("also fine")})).ok());
  ApplyStats stats;
  Status st = Apply(&b, &stats);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(stats.upserts, 2);
  EXPECT_EQ(stats.parked, 3);
  EXPECT_EQ(stats.tables["item"].upserts, 2);
  EXPECT_EQ(stats.tables["item"].parked, 3);
  EXPECT_EQ(Position(), 20);
  EXPECT_EQ(Q("SELECT id, n, note FROM " + S() + ".item ORDER BY id"),
            (std::vector<std::string>{"1|7|fine", "5|9|also fine"}));
  EXPECT_EQ(Q("SELECT table_name, row_key::text, seq, kind, status, reason, source_data::text "
              "FROM sync_metadata.conflict_log WHERE deployment = '" +
              name_ + "' ORDER BY seq"),
            (std::vector<std::string>{
                "item|[2]|12|rejected|parked|column \"n\" (integer): 'abc' is not an integer|"
                "{\"n\": \"abc\", \"id\": 2, \"note\": \"n is text\"}",
                "item|[3]|13|rejected|parked|column \"note\" (text): text is not valid UTF-8|"
                "{\"n\": 1, \"id\": 3, \"note\": {\"$text_hex\": \"62616420ff2075746638\"}}",
                "item|[4]|14|rejected|parked|column \"note\" (text): text contains a NUL byte, "
                "which PostgreSQL text cannot store|"
                "{\"n\": 1, \"id\": 4, \"note\": {\"$text_hex\": \"6e756c0078\"}}"}));
  EXPECT_EQ(*admin_->CountParked(), 3);
}

TEST_F(ApplierTest, SlowModeParksRowsTheSinkRefuses) {
  if (pg_.empty()) return;
  Q("CREATE SCHEMA " + S() + "; CREATE TABLE " + S() +
    ".config (id bigint PRIMARY KEY, n bigint CHECK (n < 100), created_at timestamptz, "
    "code varchar(3))");
  TableShape config;
  config.name = "config";
  config.columns = {Col("id", "INTEGER", 1, kInt), Col("n", "INTEGER", 0, kInt),
                    Col("created_at", "DATETIME", 0, kText), Col("code", "TEXT", 0, kText)};
  Batch b = NewBatch(-1, 30, {config});
  for (int i = 1; i <= 40; ++i) {
    Value n = I(i == 17 ? 500 : i);  // row 17 violates the CHECK constraint
    Value created = T(i == 29 ? "not a date" : "2024-01-01 10:00:00+00");
    Value code = T(i == 33 ? "toolong" : "ok");
    ASSERT_TRUE(b.changes.Append(Upsert(0, i, {I(i), n, created, code})).ok());
  }
  ApplyStats stats;
  Status st = Apply(&b, &stats);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(stats.upserts, 37);
  EXPECT_EQ(stats.parked, 3);
  ASSERT_EQ(stats.tables.size(), 1u);
  EXPECT_EQ(stats.tables["config"].upserts, 37);  // slow mode counts per table too
  EXPECT_EQ(stats.tables["config"].parked, 3);
  EXPECT_EQ(Position(), 30);
  EXPECT_EQ(
      Q("SELECT count(*), min(created_at) = '2024-01-01 10:00:00+00' FROM " + S() + ".config"),
      std::vector<std::string>{"37|t"});
  std::vector<std::string> parked =
      Q("SELECT seq, reason FROM sync_metadata.conflict_log WHERE deployment = '" + name_ +
        "' ORDER BY seq");
  ASSERT_EQ(parked.size(), 3u);
  EXPECT_EQ(parked[0].substr(0, 3), "17|");
  EXPECT_NE(parked[0].find("SQLSTATE 23514"), std::string::npos) << parked[0];
  EXPECT_EQ(parked[1].substr(0, 3), "29|");
  EXPECT_NE(parked[1].find("SQLSTATE 22007"), std::string::npos) << parked[1];
  EXPECT_EQ(parked[2].substr(0, 3), "33|");
  EXPECT_NE(parked[2].find("SQLSTATE 22001"), std::string::npos) << parked[2];
}

// Values large enough to be TOASTed (Open WebUI's chat JSON: median 23 KB)
// are compressed with lz4 where the server has it (sink.toast_compression,
// default "lz4"): with PostgreSQL's default pglz the initial sync of the
// 319 MB generated database took 12.0 s instead of 7.4 s (bench/initial-sync.sh). "pglz" and
// "server" (the server's default_toast_compression) are kept as asked; the
// setting is the transaction's own (SET LOCAL), nothing else of the session.
TEST_F(ApplierTest, LargeValuesAreCompressedAsSinkToastCompressionSays) {
  if (pg_.empty()) return;
  std::string big;
  for (int i = 0; big.size() < 100000; ++i)
    big += "{\"role\":\"user\",\"n\":" + std::to_string(i) + "},";
  TableShape note;
  note.name = "note";
  note.columns = {Col("id", "TEXT", 1, kText), Col("body", "TEXT", 0, kText)};
  Batch b = NewBatch(-1, 10, {note});
  ASSERT_TRUE(b.changes.Append(Upsert(0, 10, {T("lz"), Value::Text(big)})).ok());
  ASSERT_TRUE(Apply(&b).ok());
  EXPECT_EQ(Q("SELECT pg_column_compression(body) FROM " + S() + ".note WHERE id = 'lz'"),
            std::vector<std::string>{"lz4"});
  std::optional<std::string> after;
  conn_->Submit({{"SELECT current_setting('default_toast_compression')", {}}},
                [&](Status st, std::vector<PgResult> res) {
                  after = st.ok() && !res.empty() && !res[0].rows.empty()
                              ? res[0].rows[0][0].value_or("")
                              : st.ToString();
                });
  ASSERT_TRUE(RunUntil([&] { return after.has_value(); }));
  EXPECT_EQ(*after, "pglz") << "the setting outlived the apply transaction";

  SinkOptions pglz = options_;
  pglz.toast_compression = "pglz";
  BatchApplier pglz_applier(pglz);
  Batch b2 = NewBatch(10, 20, {note});
  ASSERT_TRUE(b2.changes.Append(Upsert(0, 20, {T("pg"), Value::Text(big)})).ok());
  ASSERT_TRUE(ApplyVia(&pglz_applier, conn_.get(), &b2).ok());
  EXPECT_EQ(Q("SELECT pg_column_compression(body) FROM " + S() + ".note WHERE id = 'pg'"),
            std::vector<std::string>{"pglz"});

  SinkOptions server = options_;
  server.toast_compression = "server";
  BatchApplier server_applier(server);
  Batch b3 = NewBatch(20, 30, {note});
  ASSERT_TRUE(b3.changes.Append(Upsert(0, 30, {T("sv"), Value::Text(big)})).ok());
  ASSERT_TRUE(ApplyVia(&server_applier, conn_.get(), &b3).ok());
  // The session's default_toast_compression (the test cluster's: pglz).
  EXPECT_EQ(Q("SELECT pg_column_compression(body) FROM " + S() + ".note WHERE id = 'sv'"),
            std::vector<std::string>{"pglz"});
}

// Per-row refusals beyond classes 22/23: a key too large for a btree entry
// (54000) and a sink-side trigger rejecting a row (RAISE EXCEPTION: P0001),
// in a full read (TombstoneAll first) and in an incremental batch.
TEST_F(ApplierTest, ParksRowsTooLargeToIndexOrRejectedByATrigger) {
  if (pg_.empty()) return;
  Q("CREATE SCHEMA " + S() + "; CREATE TABLE " + S() +
    ".note (id text PRIMARY KEY, body text);"
    "CREATE FUNCTION " +
    S() +
    ".no_forbidden() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "IF NEW.body = 'forbidden' THEN RAISE EXCEPTION 'body is forbidden'; END IF; RETURN NEW; "
    "END $$;"
    "CREATE TRIGGER no_forbidden BEFORE INSERT OR UPDATE ON " +
    S() + ".note FOR EACH ROW EXECUTE FUNCTION " + S() + ".no_forbidden()");
  TableShape note;
  note.name = "note";
  note.columns = {Col("id", "TEXT", 1, kText), Col("body", "TEXT", 0, kText)};
  std::string huge;
  uint32_t x = 7;
  for (int i = 0; i < (1 << 20); ++i)
    huge += static_cast<char>('a' + (x = x * 1103515245 + 12345) % 26);
  for (int round = 0; round < 2; ++round) {
    Batch b = NewBatch(round == 0 ? -1 : 10, round == 0 ? 10 : 20, {note});
    if (round == 0) b.full_tables = {0};
    for (int i = 0; i < 10; ++i) {
      std::string id = std::to_string(round) + "-" + std::to_string(i);
      if (i == 3) id = huge + id;
      ASSERT_TRUE(b.changes
                      .Append(Upsert(0, round * 10 + i,
                                     {Value::Text(id), T(i == 6 ? "forbidden" : "fine")}))
                      .ok());
    }
    ApplyStats stats;
    Status st = Apply(&b, &stats);
    ASSERT_TRUE(st.ok()) << "round " << round << ": " << st.ToString();
    EXPECT_EQ(stats.upserts, 8);
    EXPECT_EQ(stats.parked, 2);
  }
  EXPECT_EQ(Q("SELECT count(*) FROM " + S() + ".note"), std::vector<std::string>{"16"});
  EXPECT_EQ(Q("SELECT table_name, seq FROM sync_metadata.conflict_log WHERE deployment = '" +
              name_ + "' ORDER BY seq"),
            (std::vector<std::string>{"note|3", "note|6", "note|13", "note|16"}));
  EXPECT_EQ(Q("SELECT count(*) FROM sync_metadata.conflict_log WHERE deployment = '" + name_ +
              "' AND (reason LIKE '%SQLSTATE 54000%' OR reason LIKE '%SQLSTATE P0001: body is "
              "forbidden%')"),
            std::vector<std::string>{"4"});
}

TEST_F(ApplierTest, LargeSpilledBatchAppliesInChunks) {
  if (pg_.empty()) return;
  constexpr int kRows = 100000;
  Batch b = NewBatch(-1, kRows, {TagShape()});
  b.full_tables = {0};
  b.changes = ChangeSpool(1u << 20);
  for (int i = 0; i < kRows; ++i) {
    std::string id = "id-" + std::to_string(i);
    ASSERT_TRUE(b.changes
                    .Append(Upsert(0, kRows,
                                   {Value::Text(id), T("user"), Value::Text(std::string(40, 'n'))}))
                    .ok());
  }
  ASSERT_TRUE(b.changes.spilled());
  ApplyStats stats;
  Status st = Apply(&b, &stats);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(stats.upserts, kRows);
  EXPECT_GE(stats.round_trips, kRows / 2000);
  EXPECT_EQ(
      Q("SELECT count(*), count(*) FILTER (WHERE _sluice_deleted_at IS NULL) FROM " + S() + ".tag"),
      std::vector<std::string>{"100000|100000"});
  EXPECT_EQ(Position(), kRows);
}

TEST_F(ApplierTest, AdoptedTableWithDuplicateKeysIsRefusedClearly) {
  if (pg_.empty()) return;
  Q("CREATE SCHEMA " + S() + "; CREATE TABLE " + S() + ".tag (id text, user_id text, name text);" +
    "INSERT INTO " + S() + ".tag VALUES ('a', 'u', 'x'), ('a', 'u', 'y')");
  Batch b = NewBatch(-1, 1, {TagShape()});
  ASSERT_TRUE(b.changes.Append(Upsert(0, 1, {T("b"), T("u"), T("z")})).ok());
  Status st = Apply(&b);
  EXPECT_EQ(st.code(), Status::Code::kInvalidArgument) << st.ToString();
  EXPECT_NE(st.message().find("create or extend mirror tables"), std::string::npos);
  EXPECT_NE(st.message().find("23505"), std::string::npos) << st.message();
  EXPECT_EQ(Position(), -1);
  // Once the operator fixes the duplicates, the same batch applies.
  Q("DELETE FROM " + S() + ".tag WHERE name = 'y'");
  st = Apply(&b);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(Q("SELECT count(*) FROM " + S() + ".tag"), std::vector<std::string>{"2"});
}

// Supabase's transaction pooler stand-in: unnamed statements, explicit
// transactions and savepoints (slow mode) must all work through pgbouncer.
TEST_F(ApplierTest, WorksThroughPgbouncerTransactionMode) {
  if (pg_.empty()) return;
  const char* bouncer = std::getenv("SLUICE_TEST_PGBOUNCER");
  if (bouncer == nullptr || *bouncer == '\0') {
    GTEST_SKIP() << "SLUICE_TEST_PGBOUNCER not set (scripts/with-pgbouncer.sh sets it)";
  }
  PgConnection conn(&loop_, bouncer);
  std::optional<Status> connected;
  conn.Connect([&](Status st) { connected = st; });
  ASSERT_TRUE(RunUntil([&] { return connected.has_value(); }));
  ASSERT_TRUE(connected->ok()) << connected->ToString();
  BatchApplier applier(options_);

  Q("CREATE SCHEMA " + S() + "; CREATE TABLE " + S() +
    ".item (id bigint PRIMARY KEY, n bigint CHECK (n < 100))");
  TableShape item;
  item.name = "item";
  item.columns = {Col("id", "INTEGER", 1, kInt), Col("n", "INTEGER", 0, kInt)};
  Status st;
  for (int round = 0; round < 3; ++round) {
    Batch b = NewBatch(round == 0 ? -1 : round * 10, (round + 1) * 10, {item, TagShape()});
    for (int i = 0; i < 10; ++i) {
      int64_t n = (round == 1 && i == 4) ? 1000 : i;  // round 1 goes through slow mode
      ASSERT_TRUE(b.changes.Append(Upsert(0, (round + 1) * 10, {I(round * 10 + i), I(n)})).ok());
    }
    ASSERT_TRUE(b.changes.Append(Upsert(1, (round + 1) * 10, {T("t"), T("u"), T("x")})).ok());
    ApplyStats stats;
    st = ApplyVia(&applier, &conn, &b, &stats);
    ASSERT_TRUE(st.ok()) << "round " << round << ": " << st.ToString();
    EXPECT_EQ(stats.parked, round == 1 ? 1 : 0);
  }
  EXPECT_EQ(Q("SELECT count(*) FROM " + S() + ".item"), std::vector<std::string>{"29"});
  EXPECT_EQ(Position(), 30);

  bool closed = false;
  conn.Close([&] { closed = true; });
  EXPECT_TRUE(RunUntil([&] { return closed; }));
}

}  // namespace
}  // namespace sluice
