// Issue #5 item 18: the statement that tombstones rows evicted by INSERT OR
// REPLACE through a secondary UNIQUE index (pg_sql's EvictSql, run for every
// chunk) finds them through an index, not a scan of the whole mirror: on the
// Open WebUI schema, `chat` (unique share_id) and `user` (unique api_key,
// oauth_sub), for mirrors created by `init` and for existing mirrors that lack
// the index (they get it when the agent starts).
#include <string>
#include <vector>

#include "sink/pg_sql.h"
#include "tests/integration/e2e_support.h"

namespace sluice::e2e {
namespace {

class EvictIndex : public E2eTest {
 protected:
  void SetUp() override {
    E2eTest::SetUp();
    catch_up_timeout_ = seconds(30);
  }

  // The plan of the evict statement for `table`'s UNIQUE column `unique`,
  // built from the mirror's own columns the way the applier builds it.
  std::string EvictPlan(const std::string& table, const std::string& unique) {
    PgRows cols = pg_->Query(
        "SELECT a.attname, format_type(a.atttypid, NULL) FROM pg_attribute a "
        "WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped "
        "AND a.attname NOT LIKE '\\_sluice\\_%' ORDER BY a.attnum",
        {PgTable(deployment_, table)});
    std::vector<SqlColumn> columns;
    std::vector<size_t> key, uniq;
    std::vector<std::string> key_names = SinkKeyColumns(*pg_, deployment_, table);
    for (auto& r : cols.rows) {
      std::string name = r[0].value_or("");
      for (const std::string& k : key_names) {
        if (k == name) key.push_back(columns.size());
      }
      if (name == unique) uniq.push_back(columns.size());
      columns.push_back({name, r[1].value_or("")});
    }
    EXPECT_EQ(uniq.size(), 1u) << table << "." << unique;
    EXPECT_FALSE(key.empty()) << table;
    std::string row = "[";
    for (size_t i = 0; i <= columns.size(); ++i) row += i == 0 ? "\"1\"" : ",\"1\"";
    row += "]";
    std::string sql = EvictSql(PgTable(deployment_, table), columns, key, uniq);
    pg_->Query("SET enable_seqscan = off");
    PgRows plan = pg_->Query("EXPLAIN (COSTS OFF) " + sql, {"[" + row + "]"});
    pg_->Query("RESET enable_seqscan");
    std::string text;
    for (auto& r : plan.rows) text += r[0].value_or("") + "\n";
    return text;
  }

  void ExpectIndexed(const std::string& table, const std::string& unique) {
    std::string plan = EvictPlan(table, unique);
    EXPECT_EQ(plan.find("Seq Scan on " + QuoteIdent(table)), std::string::npos)
        << table << "." << unique << ":\n"
        << plan;
    EXPECT_EQ(plan.find("Seq Scan on " + table), std::string::npos) << plan;
    EXPECT_NE(plan.find("Index"), std::string::npos) << table << "." << unique << ":\n" << plan;
    EXPECT_NE(plan.find(unique), std::string::npos) << plan;
  }
};

TEST_F(EvictIndex, EvictStatementUsesAnIndexOnOpenWebUiTables) {
  if (skipped_) return;
  std::string db_path = dir_->file("webui.db");
  CreateOpenWebUiDb(db_path);
  std::string config = WriteConfig(db_path);
  ASSERT_EQ(Init(config).exit_code, 0);
  ExpectIndexed("chat", "share_id");
  ExpectIndexed("user", "api_key");
  ExpectIndexed("user", "oauth_sub");

  // Mirrors made before the index existed: drop every index but the key's;
  // the agent adds them again when it starts.
  PgRows extra = pg_->Query(
      "SELECT quote_ident(n.nspname) || '.' || quote_ident(ic.relname) FROM pg_index i "
      "JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_class c ON c.oid = i.indrelid "
      "JOIN pg_namespace n ON n.oid = c.relnamespace "
      "WHERE n.nspname = $1 AND c.relname IN ('chat', 'user') AND NOT i.indisprimary "
      "AND NOT (i.indisunique AND i.indnatts = 1 AND "
      "(SELECT attname FROM pg_attribute WHERE attrelid = c.oid AND attnum = i.indkey[0]) = 'id')",
      {deployment_});
  ASSERT_FALSE(extra.rows.empty());
  for (auto& r : extra.rows) pg_->Query("DROP INDEX " + r[0].value_or(""));
  EXPECT_NE(EvictPlan("chat", "share_id").find("Seq Scan"), std::string::npos);
  AgentProcess* agent = StartAgent(config);
  ASSERT_TRUE(ExpectCaughtUp(config, agent));
  ExpectIndexed("chat", "share_id");
  ExpectIndexed("user", "api_key");
  ExpectIndexed("user", "oauth_sub");
}

}  // namespace
}  // namespace sluice::e2e
