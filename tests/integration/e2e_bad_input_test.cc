// Issue test 8: bad input is synced correctly or refused with a clear message,
// and the app's data is never touched: hostile identifiers, colliding long
// names, keys of every storage class, special values, invalid UTF-8 and NUL,
// 10 MB values, tables without keys, WITHOUT ROWID tables, INSERT OR REPLACE
// evictions, malformed configs, bad credentials, unreachable hosts and a
// missing database file.
#include <cmath>
#include <limits>
#include <map>
#include <set>
#include <string>

#include "tests/integration/e2e_support.h"

namespace sluice::e2e {
namespace {

// The CLI's error line: "sluice: <code>: <message>" (log lines may precede it).
bool HasErrorLine(const std::string& err) {
  return err.rfind("sluice: ", 0) == 0 || err.find("\nsluice: ") != std::string::npos;
}

struct Parked {
  std::string row_key;
  std::string reason;
  std::string source_data;
  std::string status;
};

class BadInput : public E2eTest {
 protected:
  void SetUp() override {
    E2eTest::SetUp();
    catch_up_timeout_ = seconds(30);  // small tables: 30 s is ample
  }

  // INSERT OR REPLACE evicting rows by key and through a UNIQUE index: the
  // evicted rows end as tombstones at the sink.
  void ExpectEvictionsTombstoned(bool recursive_triggers);

  // conflict_log rows of this deployment for `table`.
  std::vector<Parked> ParkedRows(const std::string& table) {
    std::string filter;
    for (const char* col : {"deployment", "deployment_id"}) {
      if (pg_->ScalarInt("SELECT count(*) FROM information_schema.columns WHERE table_schema = "
                         "'sync_metadata' AND table_name = 'conflict_log' AND column_name = $1",
                         {std::string(col)}) > 0) {
        filter = std::string(" AND ") + col + "::text = $2";
        break;
      }
    }
    std::vector<std::optional<std::string>> params = {table};
    if (!filter.empty()) params.emplace_back(deployment_);
    PgRows r = pg_->Query(
        "SELECT coalesce(row_key::text, ''), coalesce(reason, ''), "
        "coalesce(source_data::text, ''), coalesce(status::text, '') "
        "FROM sync_metadata.conflict_log WHERE table_name = $1" +
            filter,
        params);
    std::vector<Parked> out;
    for (auto& row : r.rows) {
      out.push_back(
          {row[0].value_or(""), row[1].value_or(""), row[2].value_or(""), row[3].value_or("")});
    }
    return out;
  }

  // Exactly the rows tagged `parked` (table -> tags; a row's `tag` starts with
  // one, updates append to it) are parked, and every other row arrived: the
  // mirror equals the source but for those rows, each of them is missing or
  // stale at the sink, and conflict_log holds rows for those tags and no other.
  // `fixed`: rows parked once whose later version did arrive (logged, not
  // missing).
  using Tags = std::map<std::string, std::set<std::string>>;
  void ExpectParkedExactly(Sqlite& app, const Tags& parked, const Tags& fixed = {}) {
    auto match = [](const Tags& tags, const std::string& table,
                    const std::string& tag) -> std::string {
      auto it = tags.find(table);
      if (it == tags.end()) return "";
      for (const std::string& t : it->second) {
        if (tag.rfind(t, 0) == 0) return t;
      }
      return "";
    };
    auto expected_tag = [&](const std::string& table, const std::string& tag) {
      std::string t = match(parked, table, tag);
      return t.empty() ? match(fixed, table, tag) : t;
    };
    CompareOptions o;
    o.is_parked = [&](const std::string& table, const SourceRowRef& row) {
      const SqlValue* tag = row.Get("tag");
      return tag != nullptr && tag->type == SQLITE_TEXT &&
             !match(parked, table, tag->bytes).empty();
    };
    CompareReport report = CompareMirror(app, *pg_, deployment_, o);
    EXPECT_TRUE(report.ok()) << report.Text();
    size_t want = 0;
    for (auto& [table, tags] : parked) want += tags.size();
    EXPECT_EQ(report.rows_parked, static_cast<int64_t>(want))
        << "rows expected parked that arrived at the sink instead: " << report.Text();
    std::map<std::string, std::set<std::string>> seen;
    PgRows r = pg_->Query(
        "SELECT table_name, coalesce(source_data->>'tag', ''), reason FROM "
        "sync_metadata.conflict_log WHERE deployment = $1 ORDER BY id",
        {deployment_});
    for (auto& row : r.rows) {
      std::string table = row[0].value_or("");
      std::string tag = row[1].value_or("");
      std::string t = expected_tag(table, tag);
      EXPECT_FALSE(t.empty()) << "parked but not expected: " << table << " row tagged '" << tag
                              << "' (" << row[2].value_or("") << ")";
      EXPECT_FALSE(row[2].value_or("").empty()) << table << " " << tag << ": no reason";
      if (!t.empty()) seen[table].insert(t);
    }
    for (const Tags* expected : {&parked, &fixed}) {
      for (auto& [table, tags] : *expected) {
        for (const std::string& t : tags) {
          EXPECT_EQ(seen[table].count(t), 1u)
              << table << " row tagged " << t << " is not in conflict_log";
        }
      }
    }
  }

  std::string NewDb(const std::string& name, const std::string& ddl) {
    std::string path = dir_->file(name);
    Sqlite db(path);
    db.Exec(ddl);
    return path;
  }
};

TEST_F(BadInput, HostileIdentifiers) {
  if (skipped_) return;
  std::string db_path = NewDb(
      "hostile.db",
      "CREATE TABLE \"we\"\"ird table\" (\"co\"\"l\" TEXT PRIMARY KEY, \"from\" INTEGER, "
      "\" space \" TEXT, \"Ünï\" REAL, \"$1\" TEXT);"
      "CREATE TABLE \"select\" (\"where\" INTEGER PRIMARY KEY, \"group\" TEXT, \"order\" JSON);"
      "CREATE TABLE \"MixedCase\" (\"Id\" INTEGER PRIMARY KEY, \"lower\" TEXT, \"UPPER\" TEXT);"
      "CREATE TABLE \"ünïcödé 表\" (\"键\" TEXT PRIMARY KEY, \"値\" TEXT);"
      "CREATE TABLE \"semi;colon--x'\" (id INTEGER PRIMARY KEY, \"a)b\" TEXT, \"%s\" TEXT);");
  Sqlite app(db_path);
  app.Exec(
      "INSERT INTO \"we\"\"ird table\" VALUES ('k\"1', 1, 'a b', 1.5, '$x'), ('k''2', 2, NULL, "
      "-0.5, NULL);"
      "INSERT INTO \"select\" VALUES (1, 'g', '{\"from\": 1}'), (2, 'h', NULL);"
      "INSERT INTO \"MixedCase\" VALUES (1, 'l', 'U');"
      "INSERT INTO \"ünïcödé 表\" VALUES ('钥匙', '值'), ('ключ', 'значение');"
      "INSERT INTO \"semi;colon--x'\" VALUES (1, ')', '%s%n');");
  std::string config = WriteConfig(db_path);
  ASSERT_EQ(Init(config).exit_code, 0);
  AgentProcess* agent = StartAgent(config);
  ASSERT_TRUE(ExpectCaughtUp(config, agent));
  ExpectMirrorEqual(app);
  app.Exec(
      "UPDATE \"we\"\"ird table\" SET \" space \" = 'updated' WHERE \"co\"\"l\" = 'k\"1';"
      "UPDATE \"we\"\"ird table\" SET \"co\"\"l\" = 'k\"3' WHERE \"co\"\"l\" = 'k''2';"
      "DELETE FROM \"select\" WHERE \"where\" = 2;"
      "INSERT INTO \"MixedCase\" VALUES (2, 'l2', NULL);"
      "UPDATE \"ünïcödé 表\" SET \"値\" = '新' WHERE \"键\" = '钥匙';"
      "DELETE FROM \"semi;colon--x'\";");
  ASSERT_TRUE(ExpectCaughtUp(config, agent));
  ExpectMirrorEqual(app);
  EXPECT_EQ(SinkRowTombstoned(*pg_, deployment_, "select", {{"where", "2"}}),
            std::optional<bool>(true));
  EXPECT_EQ(SinkRowTombstoned(*pg_, deployment_, "we\"ird table", {{"co\"l", "k'2"}}),
            std::optional<bool>(true));
  EXPECT_EQ(SinkRowTombstoned(*pg_, deployment_, "semi;colon--x'", {{"id", "1"}}),
            std::optional<bool>(true));
}

TEST_F(BadInput, LongNamesCollidingInTheirFirst63BytesAreRefused) {
  if (skipped_) return;
  std::string prefix(63, 'a');
  std::string t1 = prefix + "1";
  std::string t2 = prefix + "2";
  std::string db_path = NewDb("long.db", "CREATE TABLE " + QuoteIdent(t1) +
                                             " (id INTEGER PRIMARY KEY, v TEXT);"
                                             "CREATE TABLE " +
                                             QuoteIdent(t2) +
                                             " (id INTEGER PRIMARY KEY, v TEXT);"
                                             "INSERT INTO " +
                                             QuoteIdent(t1) +
                                             " VALUES (1, 'one');"
                                             "INSERT INTO " +
                                             QuoteIdent(t2) + " VALUES (2, 'two');");
  std::string before;
  {
    Sqlite db(db_path);
    before = DumpAppTables(db);
  }
  std::string config = WriteConfig(db_path);
  CommandResult r = RunSluice({"init", "--config", config}, seconds(60));
  EXPECT_NE(r.exit_code, 0) << "init accepted two tables that collide at the sink: "
                            << r.Describe();
  EXPECT_TRUE(r.err.find(t1) != std::string::npos && r.err.find(t2) != std::string::npos)
      << "the message must name both tables: " << r.Describe();
  EXPECT_TRUE(HasErrorLine(r.err)) << r.Describe();
  {
    Sqlite db(db_path);
    EXPECT_EQ(DumpAppTables(db), before) << "init changed the app's tables";
  }
  EXPECT_FALSE(pg_->TableExists(deployment_, prefix)) << "a mirror table was created anyway";

  // The same for two columns of one table.
  std::string c1 = std::string(63, 'c') + "x";
  std::string c2 = std::string(63, 'c') + "y";
  std::string db2 =
      NewDb("longcol.db", "CREATE TABLE t (id INTEGER PRIMARY KEY, " + QuoteIdent(c1) + " TEXT, " +
                              QuoteIdent(c2) + " TEXT); INSERT INTO t VALUES (1, 'x', 'y');");
  std::string config2 = WriteConfig(db2, "", nullptr, "sluice2.json");
  CommandResult r2 = RunSluice({"init", "--config", config2}, seconds(60));
  EXPECT_NE(r2.exit_code, 0) << "init accepted two columns that collide at the sink: "
                             << r2.Describe();
  EXPECT_TRUE(r2.err.find(c1) != std::string::npos && r2.err.find(c2) != std::string::npos)
      << "the message must name both columns: " << r2.Describe();
}

TEST_F(BadInput, KeysOfEveryStorageClass) {
  if (skipped_) return;
  std::string db_path = NewDb("keys.db",
                              "CREATE TABLE key_int (k INTEGER PRIMARY KEY, tag TEXT);"
                              "CREATE TABLE key_real (k REAL PRIMARY KEY, tag TEXT);"
                              "CREATE TABLE key_text (k TEXT PRIMARY KEY, tag TEXT);"
                              "CREATE TABLE key_blob (k BLOB PRIMARY KEY, tag TEXT);"
                              "CREATE TABLE key_any (k PRIMARY KEY, tag TEXT);"
                              "CREATE TABLE key_multi (a, b BLOB, tag TEXT, PRIMARY KEY (a, b));");
  Sqlite app(db_path);
  auto ins = [&](const std::string& table, const SqlValue& k, const std::string& tag) {
    app.Query("INSERT INTO " + table + " (k, tag) VALUES (?, ?)", {k, SqlValue::Text(tag)});
  };
  int n = 0;
  auto tag = [&] { return "tag-" + std::to_string(++n) + "-"; };
  for (int64_t v : {std::numeric_limits<int64_t>::min(), int64_t{-1}, int64_t{0}, int64_t{42},
                    std::numeric_limits<int64_t>::max()}) {
    ins("key_int", SqlValue::Int(v), tag());
  }
  for (double v : {1.5, -0.1, 0.1 + 0.2, 1e300, 5e-324, std::numeric_limits<double>::infinity(),
                   -std::numeric_limits<double>::infinity()}) {
    ins("key_real", SqlValue::Real(v), tag());
  }
  for (const std::string& v :
       {std::string(""), std::string("a|b"), std::string("x'y\"z"), std::string("ünï 😀"),
        std::string("ctl\x01\x1f"), std::string("i5")}) {
    ins("key_text", SqlValue::Text(v), tag());
  }
  ins("key_text", SqlValue::Null(), tag());  // SQLite lets a non-INTEGER PRIMARY KEY be NULL
  for (const std::string& v : {std::string(""), std::string(1, '\0'), std::string("\x00\xff", 2),
                               std::string("|"), std::string(1024, '\x7f')}) {
    ins("key_blob", SqlValue::Blob(v), tag());
  }
  ins("key_any", SqlValue::Int(7), tag());
  ins("key_any", SqlValue::Text("seven"), tag());
  ins("key_any", SqlValue::Real(2.5), tag());
  ins("key_any", SqlValue::Blob("\x07"), tag());
  app.Query(
      "INSERT INTO key_multi VALUES (1, X'01', 'multi-a'), ('2', X'01', 'multi-b'), (1, X'', "
      "'multi-c')");
  std::string before = DumpAppTables(app);

  std::string config = WriteConfig(db_path);
  ASSERT_EQ(Init(config).exit_code, 0);
  AgentProcess* agent = StartAgent(config);
  ASSERT_TRUE(ExpectCaughtUp(config, agent));
  EXPECT_EQ(DumpAppTables(app), before) << "the agent changed the app's data";
  // key_any's column maps to text (it holds text), so its BLOB key cannot be
  // stored; a NULL primary key (SQLite allows one) cannot identify a row.
  const Tags parked = {
      {"key_any", {app.ScalarText("SELECT tag FROM key_any WHERE typeof(k) = 'blob'")}},
      {"key_text", {app.ScalarText("SELECT tag FROM key_text WHERE k IS NULL")}}};
  ExpectParkedExactly(app, parked);

  // Updates and deletes by key of every class: the journal keys must decode.
  app.Exec(
      "UPDATE key_int SET tag = tag || 'u' WHERE k IN (-9223372036854775808, 9223372036854775807);"
      "DELETE FROM key_int WHERE k = 0;"
      "UPDATE key_real SET tag = tag || 'u'; DELETE FROM key_real WHERE k = 0.1 + 0.2;"
      "DELETE FROM key_real WHERE k = -9e999;"
      "UPDATE key_text SET tag = tag || 'u' WHERE k = 'a|b'; DELETE FROM key_text WHERE k = "
      "'x''y\"z';"
      "UPDATE key_blob SET tag = tag || 'u' WHERE k = X'00ff'; DELETE FROM key_blob WHERE k = "
      "X'00';"
      "DELETE FROM key_blob WHERE k = X'';"
      "UPDATE key_any SET tag = tag || 'u'; DELETE FROM key_any WHERE k = 'seven';"
      "UPDATE key_multi SET tag = tag || 'u' WHERE a = '2'; DELETE FROM key_multi WHERE b = X'';"
      "UPDATE key_int SET k = 43 WHERE k = 42;");
  ASSERT_TRUE(ExpectCaughtUp(config, agent));
  ExpectParkedExactly(app, parked);
  EXPECT_EQ(SinkRowTombstoned(*pg_, deployment_, "key_int", {{"k", "0"}}),
            std::optional<bool>(true));
  EXPECT_EQ(SinkRowTombstoned(*pg_, deployment_, "key_int", {{"k", "42"}}),
            std::optional<bool>(true));
  EXPECT_EQ(SinkRowTombstoned(*pg_, deployment_, "key_text", {{"k", "x'y\"z"}}),
            std::optional<bool>(true));
  EXPECT_EQ(SinkRowTombstoned(*pg_, deployment_, "key_blob", {{"k", "\\x00"}}),
            std::optional<bool>(true));
  EXPECT_EQ(SinkRowTombstoned(*pg_, deployment_, "key_real", {{"k", "-Infinity"}}),
            std::optional<bool>(true));
  for (const char* table :
       {"key_int", "key_real", "key_text", "key_blob", "key_any", "key_multi"}) {
    for (const Parked& p : ParkedRows(table)) {
      EXPECT_FALSE(p.reason.empty()) << table << ": parked row without a reason: " << p.source_data;
    }
  }
}

// SQLite keys that differ only by storage class (INTEGER 1 and TEXT '1') map
// to one text key at the sink: each must be synced or parked, and the stream
// must go on (not stall on a batch PostgreSQL refuses).
TEST_F(BadInput, KeysDifferingOnlyByStorageClass) {
  if (skipped_) return;
  std::string db_path =
      NewDb("collide.db",
            "CREATE TABLE key_any (k PRIMARY KEY, tag TEXT);"
            "CREATE TABLE key_multi (a, b BLOB, tag TEXT, PRIMARY KEY (a, b));"
            "CREATE TABLE fine (id INTEGER PRIMARY KEY, tag TEXT);"
            "INSERT INTO key_any VALUES (1, 'any-int-1-'), ('1', 'any-text-1-'), ('x', 'any-x-');"
            "INSERT INTO key_multi VALUES (1, X'01', 'multi-int-'), ('1', X'01', 'multi-text-');"
            "INSERT INTO fine VALUES (1, 'fine-1-');");
  Sqlite app(db_path);
  std::string config = WriteConfig(db_path);
  ASSERT_EQ(Init(config).exit_code, 0);
  AgentProcess* agent = StartAgent(config);
  ASSERT_TRUE(ExpectCaughtUp(config, agent, seconds(30)));
  // Within one batch the second of the two rows is parked, the first kept.
  const Tags parked = {{"key_any", {"any-text-1-"}}, {"key_multi", {"multi-text-"}}};
  ExpectParkedExactly(app, parked);
  app.Exec("INSERT INTO fine VALUES (2, 'fine-2-'); UPDATE key_any SET tag = tag || 'u';");
  ASSERT_TRUE(ExpectCaughtUp(config, agent, seconds(30)));
  ExpectParkedExactly(app, parked);
}

TEST_F(BadInput, SpecialValuesAndTenMegabyteValues) {
  if (skipped_) return;
  std::string db_path =
      NewDb("vals.db",
            "CREATE TABLE vals (id INTEGER PRIMARY KEY, r REAL, i INTEGER, t TEXT, b BLOB, "
            "j JSON, flag BOOLEAN, d DATETIME, tag TEXT);"
            "CREATE TABLE flex (id INTEGER PRIMARY KEY, n INTEGER, tag TEXT);");
  Sqlite app(db_path);
  const double inf = std::numeric_limits<double>::infinity();
  auto row = [&](int64_t id, SqlValue r, SqlValue i, SqlValue t, SqlValue b, SqlValue j,
                 SqlValue flag) {
    app.Query("INSERT OR REPLACE INTO vals VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
              {SqlValue::Int(id), r, i, t, b, j, flag, SqlValue::Int(1730000000 + id),
               SqlValue::Text("vals-" + std::to_string(id))});
  };
  row(1, SqlValue::Real(inf), SqlValue::Int(std::numeric_limits<int64_t>::max()),
      SqlValue::Text(""), SqlValue::Blob(""), SqlValue::Text("{}"), SqlValue::Int(1));
  row(2, SqlValue::Real(-inf), SqlValue::Int(std::numeric_limits<int64_t>::min()),
      SqlValue::Text("ü"), SqlValue::Blob(std::string("\0\1\2", 3)),
      SqlValue::Text("[1, \"a\", {\"b\": null}]"), SqlValue::Int(0));
  row(3, SqlValue::Real(-0.0), SqlValue::Int(0), SqlValue::Null(), SqlValue::Null(),
      SqlValue::Null(), SqlValue::Null());
  row(4, SqlValue::Real(5e-324), SqlValue::Int(-1), SqlValue::Text("tab\there"),
      SqlValue::Blob("x"), SqlValue::Text("3.25"), SqlValue::Int(1));
  row(5, SqlValue::Real(1.7976931348623157e308), SqlValue::Int(1),
      SqlValue::Text(std::string(10 << 20, 'T')), SqlValue::Blob(std::string(10 << 20, '\xab')),
      SqlValue::Text("\"s\""), SqlValue::Int(0));
  app.Exec("INSERT INTO flex VALUES (1, 5, 'flex-1'), (2, 'abc', 'flex-2'), (3, 2.5, 'flex-3');");
  std::string config = WriteConfig(db_path);
  ASSERT_EQ(Init(config).exit_code, 0);
  AgentProcess* agent = StartAgent(config);
  ASSERT_TRUE(ExpectCaughtUp(config, agent, seconds(120)));
  ExpectMirrorEqual(app);
  EXPECT_EQ(SinkColumnType(*pg_, deployment_, "vals", "r"), "double precision");
  EXPECT_EQ(SinkColumnType(*pg_, deployment_, "vals", "i"), "bigint");
  EXPECT_EQ(SinkColumnType(*pg_, deployment_, "vals", "b"), "bytea");

  // Streamed (not initial-sync) versions of the same: a new 10 MB text and
  // blob, special values moved around, flexible typing after the fact.
  std::string big(10 << 20, 'u');
  for (size_t i = 0; i < big.size(); i += 4096) big[i] = static_cast<char>('a' + (i / 4096) % 26);
  row(6, SqlValue::Real(-inf), SqlValue::Int(std::numeric_limits<int64_t>::min()),
      SqlValue::Text(big), SqlValue::Blob(big), SqlValue::Text("{\"big\": true}"),
      SqlValue::Int(1));
  row(1, SqlValue::Real(inf), SqlValue::Int(std::numeric_limits<int64_t>::max() - 1),
      SqlValue::Text("x"), SqlValue::Blob("y"), SqlValue::Text("null"), SqlValue::Int(0));
  app.Exec(
      "DELETE FROM vals WHERE id = 5; INSERT INTO flex VALUES (4, 'late text', 'flex-4'), (5, 6, "
      "'flex-5');");
  ASSERT_TRUE(ExpectCaughtUp(config, agent, seconds(120)));
  ExpectParkedExactly(app, {});
  EXPECT_EQ(SinkRowTombstoned(*pg_, deployment_, "vals", {{"id", "5"}}), std::optional<bool>(true));
}

TEST_F(BadInput, InvalidUtf8AndNulAreParkedAndTheRestSyncs) {
  if (skipped_) return;
  std::string db_path =
      NewDb("texts.db", "CREATE TABLE texts (id INTEGER PRIMARY KEY, tag TEXT, t TEXT);");
  Sqlite app(db_path);
  auto put = [&](int64_t id, const std::string& t) {
    app.Query("INSERT OR REPLACE INTO texts VALUES (?, ?, ?)",
              {SqlValue::Int(id), SqlValue::Text("texts-" + std::to_string(id) + "-"),
               SqlValue::Text(t)});
  };
  put(1, "valid ✓");
  put(2, std::string("bad \xff\xfe utf-8"));
  put(3, std::string("nul\0inside", 10));
  put(4, "also valid");
  std::string config = WriteConfig(db_path);
  ASSERT_EQ(Init(config).exit_code, 0);
  AgentProcess* agent = StartAgent(config);
  ASSERT_TRUE(ExpectCaughtUp(config, agent));
  // Streamed as well.
  put(5, std::string("\xc3\x28 truncated sequence"));
  put(6, std::string("\0", 1));
  put(7, "valid after");
  app.Exec("UPDATE texts SET t = 'fixed' WHERE id = 2");  // a parked row corrected later syncs
  std::string before = DumpAppTables(app);
  ASSERT_TRUE(ExpectCaughtUp(config, agent));
  EXPECT_EQ(DumpAppTables(app), before) << "the agent changed the app's data";

  // Rows 3, 5 and 6 cannot be stored as PostgreSQL text; row 2 was parked
  // but its correction arrived.
  ExpectParkedExactly(app, {{"texts", {"texts-3-", "texts-5-", "texts-6-"}}},
                      {{"texts", {"texts-2-"}}});
  std::vector<Parked> parked = ParkedRows("texts");
  bool utf8_reason = false;
  bool nul_reason = false;
  for (const Parked& p : parked) {
    EXPECT_FALSE(p.reason.empty()) << "parked without a reason: " << p.source_data;
    EXPECT_FALSE(p.status.empty());
    utf8_reason =
        utf8_reason || ContainsNoCase(p.reason, "utf-8") || ContainsNoCase(p.reason, "utf8");
    nul_reason = nul_reason || ContainsNoCase(p.reason, "nul");
  }
  EXPECT_TRUE(utf8_reason) << "no conflict_log reason mentions UTF-8";
  EXPECT_TRUE(nul_reason) << "no conflict_log reason mentions the NUL byte";
  AgentStatus st = QueryStatus(config);
  ASSERT_TRUE(st.ok) << st.error;
  EXPECT_GE(st.parked_rows, 3);
  EXPECT_TRUE(agent->Running());
}

TEST_F(BadInput, TablesWithoutKeyAndWithoutRowid) {
  if (skipped_) return;
  std::string db_path =
      NewDb("nokey.db",
            "CREATE TABLE nokey (a TEXT, b INTEGER);"
            "CREATE TABLE nullable_unique (a TEXT UNIQUE, b INTEGER);"
            "CREATE TABLE wr (a TEXT, b INTEGER, v TEXT, PRIMARY KEY (a, b)) WITHOUT ROWID;"
            "CREATE TABLE wr_blob (k BLOB PRIMARY KEY, v) WITHOUT ROWID;");
  Sqlite app(db_path);
  app.Exec(
      "INSERT INTO nokey VALUES ('dup', 1), ('dup', 1), ('dup', 1), (NULL, NULL), ('x', 2);"
      "INSERT INTO nullable_unique VALUES (NULL, 1), (NULL, 2), ('u', 3);"
      "INSERT INTO wr VALUES ('a', 1, 'one'), ('a', 2, 'two'), ('b', 1, 'three');"
      "INSERT INTO wr_blob VALUES (X'00', 1), (X'0000', 'two'), (X'ff', 3.5);");
  std::string config = WriteConfig(db_path);
  ASSERT_EQ(Init(config).exit_code, 0);
  AgentProcess* agent = StartAgent(config);
  ASSERT_TRUE(ExpectCaughtUp(config, agent));
  ExpectMirrorEqual(app);
  EXPECT_EQ(SinkKeyColumns(*pg_, deployment_, "nokey"), std::vector<std::string>{"_sluice_rowid"});
  EXPECT_EQ(SinkKeyColumns(*pg_, deployment_, "wr"), (std::vector<std::string>{"a", "b"}));

  int64_t dup = app.ScalarInt("SELECT min(rowid) FROM nokey WHERE a = 'dup'");
  app.Query("UPDATE nokey SET b = 99 WHERE rowid = ?", {SqlValue::Int(dup)});
  app.Query("DELETE FROM nokey WHERE rowid = ?", {SqlValue::Int(dup + 1)});
  app.Exec(
      "INSERT INTO nokey VALUES ('dup', 1);"
      "UPDATE nullable_unique SET b = b + 10 WHERE a IS NULL; DELETE FROM nullable_unique WHERE a "
      "= 'u';"
      "UPDATE wr SET v = 'ONE' WHERE a = 'a' AND b = 1; UPDATE wr SET b = 3 WHERE a = 'a' AND b = "
      "2;"
      "DELETE FROM wr WHERE a = 'b';"
      "UPDATE wr_blob SET k = X'01' WHERE k = X'00'; DELETE FROM wr_blob WHERE k = X'ff';");
  ASSERT_TRUE(ExpectCaughtUp(config, agent));
  ExpectMirrorEqual(app);
  EXPECT_EQ(
      SinkRowTombstoned(*pg_, deployment_, "nokey", {{"_sluice_rowid", std::to_string(dup + 1)}}),
      std::optional<bool>(true));
  EXPECT_EQ(SinkRowTombstoned(*pg_, deployment_, "wr", {{"a", "a"}, {"b", "2"}}),
            std::optional<bool>(true));
  EXPECT_EQ(SinkRowTombstoned(*pg_, deployment_, "wr", {{"a", "b"}, {"b", "1"}}),
            std::optional<bool>(true));
  EXPECT_EQ(SinkRowTombstoned(*pg_, deployment_, "wr_blob", {{"k", "\\x00"}}),
            std::optional<bool>(true));
}

// recursive_triggers ON: SQLite fires the delete trigger for the evicted rows.
TEST_F(BadInput, InsertOrReplaceEvictionThroughSecondaryUniqueIndex) {
  ExpectEvictionsTombstoned(true);
}

// recursive_triggers OFF (SQLite's default): no trigger sees the evicted rows;
// the sink tombstones them because another row now holds their UNIQUE value.
TEST_F(BadInput, InsertOrReplaceEvictionWithRecursiveTriggersOff) {
  ExpectEvictionsTombstoned(false);
}

void BadInput::ExpectEvictionsTombstoned(bool recursive_triggers) {
  if (skipped_) return;
  std::string db_path =
      NewDb("replace.db",
            "CREATE TABLE u (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE, v TEXT);"
            "INSERT INTO u VALUES (1, 'a@x', 'first'), (2, 'b@x', 'second'), "
            "(5, 'e@x', 'fifth');");
  std::string config = WriteConfig(db_path);
  ASSERT_EQ(Init(config).exit_code, 0);
  AgentProcess* agent = StartAgent(config);
  ASSERT_TRUE(ExpectCaughtUp(config, agent));
  Sqlite app(db_path);
  app.Exec(recursive_triggers ? "PRAGMA recursive_triggers = ON"
                              : "PRAGMA recursive_triggers = OFF");
  // Evicts row 1 through the UNIQUE email index (REPLACE's implicit delete).
  app.Exec("INSERT OR REPLACE INTO u VALUES (3, 'a@x', 'replaced a')");
  // Evicts row 2 by primary key and row 5 by email at once.
  app.Exec("INSERT OR REPLACE INTO u VALUES (2, 'e@x', 'merged')");
  ASSERT_EQ(app.ScalarInt("SELECT count(*) FROM u"), 2);
  ASSERT_TRUE(ExpectCaughtUp(config, agent));
  ExpectMirrorEqual(app);
  EXPECT_EQ(SinkRowTombstoned(*pg_, deployment_, "u", {{"id", "1"}}), std::optional<bool>(true))
      << "row 1 was evicted by INSERT OR REPLACE but is not a tombstone";
  EXPECT_EQ(SinkRowTombstoned(*pg_, deployment_, "u", {{"id", "5"}}), std::optional<bool>(true))
      << "row 5 was evicted by INSERT OR REPLACE but is not a tombstone";
}

// A database with app data, for the tests of commands that must fail.
class FailingCommands : public BadInput {
 protected:
  void SetUp() override {
    BadInput::SetUp();
    if (skipped_ || HasFatalFailure() || IsSkipped()) return;
    db_path_ = dir_->file("webui.db");
    CreateOpenWebUiDb(db_path_);
    Sqlite db(db_path_);
    db.Exec(
        "INSERT INTO user (id, name, email, role, profile_image_url, created_at, updated_at, "
        "last_active_at) "
        "VALUES ('u1', 'One', 'u1@x', 'admin', '', 1, 2, 3);"
        "INSERT INTO config (id, data, version) VALUES (1, '{}', 0);");
    before_ = DumpAppTables(db);
  }
  void ExpectAppDataUntouched() {
    Sqlite db(db_path_);
    EXPECT_EQ(DumpAppTables(db), before_) << "a failed command changed the app's tables";
  }
  std::string db_path_;
  std::string before_;
};

TEST_F(FailingCommands, MalformedConfigExits2NamingTheKey) {
  if (skipped_) return;
  AgentConfig good = BaseConfig(db_path_);
  std::string good_json = good.ToJson();
  struct Case {
    std::string name;
    std::string json;
    std::string must_mention;
  };
  auto replace = [&](const std::string& from, const std::string& to) {
    std::string s = good_json;
    size_t p = s.find(from);
    if (p == std::string::npos) throw std::runtime_error("config template lacks " + from);
    return s.replace(p, from.size(), to);
  };
  std::vector<Case> cases = {
      {"unknown key", replace("\"path\":", "\"pathh\":"), "source.pathh"},
      {"wrong type", replace("\"poll_interval_ms\": 50", "\"poll_interval_ms\": \"fast\""),
       "agent.poll_interval_ms"},
      {"out of range", replace("\"busy_timeout_ms\": 5000", "\"busy_timeout_ms\": -1"),
       "source.busy_timeout_ms"},
      {"include not a list",
       replace("\"busy_timeout_ms\"", "\"include\": \"chat\", \"busy_timeout_ms\""),
       "source.include"},
      {"missing deployment", replace("\"deployment\": " + JsonString(deployment_) + ",", ""),
       "deployment"},
      {"bad log level", replace("\"log_level\": \"info\"", "\"log_level\": \"loud\""),
       "agent.log_level"},
      {"not JSON", "{\"deployment\": ", "JSON"},
  };
  for (const Case& c : cases) {
    std::string path = dir_->file("bad.json");
    WriteFile(path, c.json);
    for (const char* cmd : {"init", "run", "status"}) {
      CommandResult r = RunSluice({cmd, "--config", path}, seconds(20));
      EXPECT_EQ(r.exit_code, 2) << c.name << " (" << cmd << "): " << r.Describe();
      EXPECT_TRUE(HasErrorLine(r.err)) << c.name << " (" << cmd << "): " << r.Describe();
      EXPECT_NE(r.err.find(c.must_mention), std::string::npos)
          << c.name << " (" << cmd << "): the message must name " << c.must_mention << ": "
          << r.Describe();
    }
  }
  // Usage errors are exit 2 as well.
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"init"},
           {"frobnicate", "--config", dir_->file("bad.json")},
           {"status", "--config", dir_->file("no-such-config.json")},
           {}}) {
    CommandResult r = RunSluice(args, seconds(20));
    std::string shown;
    for (auto& a : args) shown += " " + a;
    EXPECT_EQ(r.exit_code, 2) << "sluice" << shown << ": " << r.Describe();
  }
  ExpectAppDataUntouched();
}

TEST_F(FailingCommands, WrongPasswordFailsQuicklyWithAClearMessage) {
  if (skipped_) return;
  std::string role = deployment_ + "_role";
  pg_->Query("CREATE ROLE " + QuoteIdent(role) + " LOGIN PASSWORD 'right-password'");
  std::string url = WithCredentials(pg_url_, role, "wrong-password");
  {
    PGconn* probe = PQconnectdb(url.c_str());
    bool refused = PQstatus(probe) != CONNECTION_OK;
    PQfinish(probe);
    if (!refused) {
      pg_->Query("DROP ROLE " + QuoteIdent(role));
      GTEST_SKIP() << "the test server does not check passwords (trust authentication)";
    }
  }
  std::string config = WriteConfig(db_path_, url);
  CommandResult init = RunSluice({"init", "--config", config}, seconds(30));
  EXPECT_NE(init.exit_code, 0) << init.Describe();
  EXPECT_FALSE(init.timed_out);
  EXPECT_LT(init.seconds, 10) << init.Describe();
  EXPECT_TRUE(ContainsNoCase(init.err, "authentication failed")) << init.Describe();
  EXPECT_TRUE(HasErrorLine(init.err)) << init.Describe();

  CommandResult status = RunSluice({"status", "--config", config}, seconds(30));
  EXPECT_NE(status.exit_code, 0) << status.Describe();
  EXPECT_TRUE(ContainsNoCase(status.err, "authentication failed")) << status.Describe();

  // `run` must not retry bad credentials forever (on a file that a good init
  // prepared: init now checks the sink before it changes the file).
  ASSERT_EQ(Init(WriteConfig(db_path_, "", nullptr, "good.json")).exit_code, 0);
  AgentProcess* agent = StartAgent(config);
  std::optional<int> code = agent->WaitExit(seconds(10));
  EXPECT_TRUE(code.has_value()) << "sluice run kept running with a wrong password";
  if (code) {
    EXPECT_NE(*code, 0);
  }
  EXPECT_TRUE(ContainsNoCase(agent->Log(), "authentication failed")) << agent->Log();
  ExpectAppDataUntouched();
  pg_->Query("DROP ROLE " + QuoteIdent(role));
}

TEST_F(FailingCommands, UnreachableHostGivesAClearMessage) {
  if (skipped_) return;
  std::string config =
      WriteConfig(db_path_, "host=127.0.0.1 port=1 dbname=postgres user=nobody connect_timeout=3");
  for (const char* cmd : {"init", "status"}) {
    CommandResult r = RunSluice({cmd, "--config", config}, seconds(30));
    EXPECT_NE(r.exit_code, 0) << cmd << ": " << r.Describe();
    EXPECT_FALSE(r.timed_out) << cmd;
    EXPECT_TRUE(HasErrorLine(r.err)) << cmd << ": " << r.Describe();
    EXPECT_TRUE(r.err.find("127.0.0.1") != std::string::npos)
        << cmd << ": the message must name the host: " << r.Describe();
  }
  ExpectAppDataUntouched();
}

TEST_F(FailingCommands, MissingDatabaseFileGivesAClearMessage) {
  if (skipped_) return;
  std::string missing = dir_->file("no-such-webui.db");
  std::string config = WriteConfig(missing);
  for (const char* cmd : {"init", "status"}) {
    CommandResult r = RunSluice({cmd, "--config", config}, seconds(30));
    EXPECT_NE(r.exit_code, 0) << cmd << ": " << r.Describe();
    EXPECT_TRUE(HasErrorLine(r.err)) << cmd << ": " << r.Describe();
    EXPECT_NE(r.err.find(missing), std::string::npos)
        << cmd << ": the message must name the file: " << r.Describe();
    EXPECT_FALSE(std::filesystem::exists(missing)) << cmd << " created the missing database file";
  }
  AgentProcess* agent = StartAgent(config);
  std::optional<int> code = agent->WaitExit(seconds(10));
  EXPECT_TRUE(code.has_value()) << "sluice run kept running without its database";
  if (code) {
    EXPECT_NE(*code, 0);
  }
  EXPECT_NE(agent->Log().find(missing), std::string::npos) << agent->Log();
  EXPECT_FALSE(std::filesystem::exists(missing)) << "run created the missing database file";
  ExpectAppDataUntouched();
}

}  // namespace
}  // namespace sluice::e2e
