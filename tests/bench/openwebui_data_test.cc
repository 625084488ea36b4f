// The Open WebUI database generator at scale 0.02 (103 chats, ~7 MB): the same
// seed gives the same rows, JSON is valid ASCII as Python writes it, times are
// in the app's units, and the chat sizes follow the distribution of issue #9.
#include "bench/openwebui_data.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <memory>
#include <set>

#include "tests/support/processes.h"
#include "tests/support/sql_clients.h"
#include "tests/test_support.h"

namespace sluice::bench {
namespace {

using sluice::testing::QuoteIdent;
using sluice::testing::Sqlite;
using sluice::testing::SqliteStatement;
using sluice::testing::TempDir;

constexpr double kScale = 0.02;

// TEXT columns the app fills with json.dumps output besides those declared JSON.
const std::set<std::pair<std::string, std::string>> kJsonInText = {
    {"user", "settings"},   {"user", "info"},        {"model", "meta"},  {"model", "params"},
    {"tool", "specs"},      {"tool", "meta"},        {"tool", "valves"}, {"function", "meta"},
    {"function", "valves"}, {"document", "content"},
};

std::string SchemaSql() {
  const char* path = std::getenv("SLUICE_SCHEMA_FIXTURE");
  std::string sql =
      sluice::testing::ReadFile(path != nullptr ? path : "tests/fixtures/openwebui/schema.sql");
  EXPECT_FALSE(sql.empty()) << "no schema fixture (SLUICE_SCHEMA_FIXTURE)";
  return sql;
}

struct Generated {
  std::string path;
  GenReport report;
};

Generated Generate(const TempDir& dir, const std::string& name, uint64_t seed) {
  GenOptions o;
  o.scale = kScale;
  o.seed = seed;
  o.schema_sql = SchemaSql();
  Generated g{dir.file(name), {}};
  Result<GenReport> r = GenerateOpenWebUiDb(g.path, o);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  if (r.ok()) g.report = r.value();
  return g;
}

std::vector<std::string> Tables(Sqlite& db) {
  std::vector<std::string> out;
  for (const auto& row :
       db.Query("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")) {
    out.push_back(row[0].bytes);
  }
  return out;
}

struct Column {
  std::string name, type;
};

std::vector<Column> Columns(Sqlite& db, const std::string& table) {
  std::vector<Column> out;
  for (const auto& row : db.Query("SELECT name, type FROM pragma_table_info(?)",
                                  {sluice::testing::SqlValue::Text(table)})) {
    out.push_back({row[0].bytes, row[1].bytes});
  }
  return out;
}

// FNV-1a over quote() of every value of every row, in rowid order, per table.
std::map<std::string, uint64_t> DumpHashes(const std::string& path) {
  Sqlite db(path, 5000, true);
  std::map<std::string, uint64_t> out;
  for (const std::string& table : Tables(db)) {
    std::string select;
    for (const Column& c : Columns(db, table)) {
      select += (select.empty() ? "quote(" : " || ',' || quote(") + QuoteIdent(c.name) + ")";
    }
    SqliteStatement s(db.handle(),
                      "SELECT " + select + " FROM " + QuoteIdent(table) + " ORDER BY rowid");
    uint64_t h = 0xcbf29ce484222325ULL;
    while (s.Step()) {
      auto p = reinterpret_cast<const unsigned char*>(sqlite3_column_blob(s.handle(), 0));
      int n = sqlite3_column_bytes(s.handle(), 0);
      for (int i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ULL;
      h = (h ^ '\n') * 0x100000001b3ULL;
    }
    out[table] = h;
  }
  return out;
}

bool HasSurrogatePair(const std::string& s) {
  auto unit = [&](size_t at, char lo, char hi) {
    return at + 6 <= s.size() && s.compare(at, 3, "\\ud") == 0 && s[at + 3] >= lo &&
           s[at + 3] <= hi;
  };
  for (size_t at = s.find("\\ud"); at != std::string::npos; at = s.find("\\ud", at + 1)) {
    if (unit(at, '8', 'b') && unit(at + 6, 'c', 'f')) return true;
  }
  return false;
}

class OpenWebUiDataTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = std::make_unique<TempDir>();
    a_ = Generate(*dir_, "a.db", 7);
    b_ = Generate(*dir_, "b.db", 7);
    c_ = Generate(*dir_, "c.db", 8);
  }
  static void TearDownTestSuite() { dir_.reset(); }

  static std::unique_ptr<TempDir> dir_;
  static Generated a_, b_, c_;
};

std::unique_ptr<TempDir> OpenWebUiDataTest::dir_;
Generated OpenWebUiDataTest::a_, OpenWebUiDataTest::b_, OpenWebUiDataTest::c_;

TEST_F(OpenWebUiDataTest, SameSeedSameRowsOtherSeedOtherRows) {
  std::map<std::string, uint64_t> a = DumpHashes(a_.path), b = DumpHashes(b_.path),
                                  c = DumpHashes(c_.path);
  ASSERT_EQ(a.size(), 25u);
  for (const auto& [table, hash] : a) EXPECT_EQ(hash, b[table]) << table << " differs, same seed";
  int differ = 0;
  for (const auto& [table, hash] : a) differ += hash != c[table] ? 1 : 0;
  // Only migratehistory and alembic_version (the schema's own rows) are alike.
  EXPECT_EQ(differ, 23);
}

TEST_F(OpenWebUiDataTest, RowCountsFollowTheScale) {
  std::map<std::string, int64_t> rows(a_.report.rows.begin(), a_.report.rows.end());
  EXPECT_EQ(rows["chat"], ScaledCount(5156, kScale));
  EXPECT_EQ(rows["chat"], 103);
  EXPECT_EQ(rows["user"], 4);
  EXPECT_EQ(rows["auth"], 4);
  EXPECT_EQ(rows["message"], 80);
  EXPECT_EQ(rows["file"], 25);
  EXPECT_EQ(rows["feedback"], 9);
  EXPECT_EQ(rows["config"], 1);
  EXPECT_EQ(rows["migratehistory"], 18);
  int nonempty = 0;
  for (const auto& [table, n] : rows) nonempty += n > 0 ? 1 : 0;
  EXPECT_GE(nonempty, 20);
  EXPECT_EQ(nonempty, 25);
}

TEST_F(OpenWebUiDataTest, JsonParsesIsAsciiAndHasEscapes) {
  Sqlite db(a_.path, 5000, true);
  simdjson::dom::parser parser;
  int64_t values = 0, escapes = 0, pairs = 0;
  std::set<std::string> tables_with_json;
  for (const std::string& table : Tables(db)) {
    for (const Column& c : Columns(db, table)) {
      if (c.type != "JSON" && kJsonInText.count({table, c.name}) == 0) continue;
      SqliteStatement s(db.handle(), "SELECT " + QuoteIdent(c.name) + " FROM " + QuoteIdent(table) +
                                         " WHERE " + QuoteIdent(c.name) + " IS NOT NULL");
      while (s.Step()) {
        ASSERT_EQ(sqlite3_column_type(s.handle(), 0), SQLITE_TEXT) << table << "." << c.name;
        std::string v = s.Column(0).bytes;
        ++values;
        tables_with_json.insert(table);
        ASSERT_TRUE(std::all_of(v.begin(), v.end(), [](char ch) { return (ch & 0x80) == 0; }))
            << table << "." << c.name << " not ASCII: " << v.substr(0, 200);
        simdjson::dom::element e;
        ASSERT_EQ(parser.parse(simdjson::padded_string(v)).get(e), simdjson::SUCCESS)
            << table << "." << c.name << ": " << v.substr(0, 200);
        escapes += v.find("\\u") != std::string::npos ? 1 : 0;
        pairs += HasSurrogatePair(v) ? 1 : 0;
      }
    }
  }
  EXPECT_GT(values, 300);
  EXPECT_GE(tables_with_json.size(), 15u);
  EXPECT_GT(escapes, 50);
  EXPECT_GT(pairs, 20);
}

// The chat JSON decodes to the same title as the TEXT column (raw UTF-8), with
// Open WebUI's shape and time units.
TEST_F(OpenWebUiDataTest, ChatJsonHasTheAppsShape) {
  Sqlite db(a_.path, 5000, true);
  simdjson::dom::parser parser;
  int non_ascii_titles = 0;
  SqliteStatement s(db.handle(), "SELECT title, chat, created_at FROM chat ORDER BY rowid");
  while (s.Step()) {
    std::string title = s.Column(0).bytes, chat = s.Column(1).bytes;
    int64_t created = s.Int(2);
    simdjson::dom::element e;
    ASSERT_EQ(parser.parse(simdjson::padded_string(chat)).get(e), simdjson::SUCCESS);
    std::string_view decoded;
    ASSERT_EQ(e["title"].get(decoded), simdjson::SUCCESS);
    EXPECT_EQ(decoded, title);
    non_ascii_titles += std::any_of(title.begin(), title.end(), [](char ch) { return ch & 0x80; });
    int64_t ms = 0;
    ASSERT_EQ(e["timestamp"].get(ms), simdjson::SUCCESS);
    EXPECT_EQ(ms / 1000, created);
    simdjson::dom::array list;
    simdjson::dom::object tree;
    ASSERT_EQ(e["messages"].get(list), simdjson::SUCCESS);
    ASSERT_EQ(e["history"]["messages"].get(tree), simdjson::SUCCESS);
    EXPECT_EQ(list.size(), tree.size());
    EXPECT_GE(list.size(), 2u);
    for (simdjson::dom::element m : list) {
      int64_t t = 0;
      std::string_view id, role;
      ASSERT_EQ(m["timestamp"].get(t), simdjson::SUCCESS);
      EXPECT_GE(t, created);
      EXPECT_LT(t, 2000000000);
      ASSERT_EQ(m["id"].get(id), simdjson::SUCCESS);
      ASSERT_EQ(m["role"].get(role), simdjson::SUCCESS);
      EXPECT_TRUE(role == "user" || role == "assistant") << role;
      EXPECT_EQ(tree[id].error(), simdjson::SUCCESS);
    }
  }
  EXPECT_GT(non_ascii_titles, 0);
}

TEST_F(OpenWebUiDataTest, TimesInTheAppsUnits) {
  Sqlite db(a_.path, 5000, true);
  auto check = [&](const std::string& table, const std::string& col, int64_t lo, int64_t hi) {
    std::string t = QuoteIdent(table), c = QuoteIdent(col);
    EXPECT_EQ(db.ScalarInt("SELECT count(*) FROM " + t + " WHERE typeof(" + c + ") != 'integer'"),
              0)
        << table << "." << col;
    EXPECT_GE(db.ScalarInt("SELECT min(" + c + ") FROM " + t), lo) << table << "." << col;
    EXPECT_LE(db.ScalarInt("SELECT max(" + c + ") FROM " + t), hi) << table << "." << col;
  };
  const int64_t s_lo = 1600000000, s_hi = 2000000000;  // epoch seconds
  const int64_t ns_lo = 1000000000000000000, ns_hi = 2000000000000000000;
  check("chat", "created_at", s_lo, s_hi);
  check("chat", "updated_at", s_lo, s_hi);
  check("user", "created_at", s_lo, s_hi);
  check("file", "created_at", s_lo, s_hi);
  check("feedback", "created_at", s_lo, s_hi);
  check("message", "created_at", ns_lo, ns_hi);
  check("message", "updated_at", ns_lo, ns_hi);
  check("channel", "created_at", ns_lo, ns_hi);
  check("note", "created_at", ns_lo, ns_hi);
  EXPECT_EQ(db.ScalarInt("SELECT count(*) FROM config WHERE updated_at IS NULL"), 1);
  EXPECT_EQ(db.ScalarText("PRAGMA journal_mode"), "wal");
}

// Each chat is as long as its drawn size (give or take the one byte of an odd
// remainder), so the database's distribution is the function's.
TEST_F(OpenWebUiDataTest, ChatsAreWrittenToTheirSizes) {
  Sqlite db(a_.path, 5000, true);
  std::vector<int64_t> want = ChatJsonSizes(7, 103);
  std::vector<int64_t> got;
  for (const auto& row : db.Query("SELECT length(CAST(chat AS BLOB)) FROM chat ORDER BY rowid")) {
    got.push_back(row[0].i);
  }
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_LE(want[i] - got[i], 1) << "chat " << i;
    EXPECT_GE(want[i] - got[i], 0) << "chat " << i;
  }
  EXPECT_LE(a_.report.chat_json_max, 400000);
  EXPECT_GE(a_.report.chat_json_median, 18000);
  EXPECT_LE(a_.report.chat_json_median, 28000);
}

// Over the full database's 5,156 chats (drawn, not written): median 23 KB,
// p95 220 KB, max 400 KB, about 263 MB in all (issue #9).
TEST(ChatJsonSizesTest, DistributionOfTheFullDatabase) {
  for (uint64_t seed : {1, 2, 3}) {
    std::vector<int64_t> v = ChatJsonSizes(seed, 5156);
    std::sort(v.begin(), v.end());
    int64_t sum = 0;
    for (int64_t x : v) sum += x;
    EXPECT_GE(v[5156 / 2], 22000) << seed;
    EXPECT_LE(v[5156 / 2], 24000) << seed;
    EXPECT_GE(v[5156 * 95 / 100], 210000) << seed;
    EXPECT_LE(v[5156 * 95 / 100], 230000) << seed;
    EXPECT_LE(v.back(), 400000) << seed;
    EXPECT_GE(v.front(), 2000) << seed;
    EXPECT_GE(sum, 240000000) << seed;
    EXPECT_LE(sum, 290000000) << seed;
  }
  EXPECT_NE(ChatJsonSizes(1, 100), ChatJsonSizes(2, 100));
  EXPECT_EQ(ChatJsonSizes(1, 100), ChatJsonSizes(1, 100));
}

}  // namespace
}  // namespace sluice::bench
