// The shipped conflict policy cannot name what Open WebUI does not have:
// config/conflict-resolution-default.json is parsed and validated against the
// shapes capture/ reads from the real schema fixture (SLUICE_SCHEMA_FIXTURE),
// and says what the README promises for chat, user, auth, config, function.
// The seed's file named five columns that do not exist: the same check refuses
// them. config/example.json loads the default policy through `conflicts.file`.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "agent/config.h"
#include "capture/schema_reader.h"
#include "capture/sqlite_db.h"
#include "capture/table_filter.h"
#include "sink/conflict_policy.h"

namespace sluice {
namespace {

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  EXPECT_FALSE(ss.str().empty()) << "cannot read " << path;
  return ss.str();
}

std::string ConfigDir() {
  const char* d = std::getenv("SLUICE_CONFIG_DIR");
  return d != nullptr ? d : "config";
}

// Every table of the fixture, as `sluice init` would track it with no filter.
std::vector<TableShape> OpenWebuiShapes() {
  const char* fixture = std::getenv("SLUICE_SCHEMA_FIXTURE");
  Result<std::unique_ptr<SqliteDb>> db = SqliteDb::OpenMemory();
  EXPECT_TRUE(db.ok());
  if (!db.ok()) return {};
  Status st =
      (*db)->Exec(ReadText(fixture != nullptr ? fixture : "tests/fixtures/openwebui/schema.sql"));
  EXPECT_TRUE(st.ok()) << st.ToString();
  Result<std::vector<TableShape>> shapes = DescribeTables(**db, TableFilter({}, {}));
  EXPECT_TRUE(shapes.ok()) << shapes.status().ToString();
  return shapes.ok() ? *shapes : std::vector<TableShape>{};
}

TEST(ConflictConfig, TheDefaultPolicyFitsOpenWebUi) {
  std::vector<TableShape> shapes = OpenWebuiShapes();
  ASSERT_GE(shapes.size(), 20u);
  Result<ConflictPolicy> p =
      ParseConflictPolicy(ReadText(ConfigDir() + "/conflict-resolution-default.json"));
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  Status st = ValidateConflictPolicy(*p, shapes, {});
  EXPECT_TRUE(st.ok()) << st.ToString();

  const TableConflictPolicy& chat = p->For("chat");
  EXPECT_EQ(chat.strategy, "merge");
  EXPECT_EQ(chat.compare_field, "updated_at");
  EXPECT_EQ(chat.rules.at("chat"), "union");  // history.messages and messages by message id
  EXPECT_EQ(chat.rules.at("title"), "newest_wins");
  EXPECT_EQ(chat.rules.at("updated_at"), "newest_wins");
  EXPECT_EQ(p->For("user").strategy, "source_wins");
  EXPECT_EQ(p->For("auth").strategy, "source_wins");
  EXPECT_EQ(p->For("config").strategy, "manual");
  EXPECT_EQ(p->For("function").strategy, "manual");
  EXPECT_EQ(p->For("migratehistory").strategy, "source_wins");  // not listed: the default
}

TEST(ConflictConfig, TheSeedsColumnsAreRefused) {
  // The seed's table_strategies without its unsupported settings: every
  // column it named is missing from Open WebUI's tables.
  Result<ConflictPolicy> p = ParseConflictPolicy(R"({"conflict_resolution": {
      "default_strategy": "newest_wins", "default_compare_field": "updated_at",
      "table_strategies": {
        "chat": {"strategy": "merge", "merge_rules": {"title": "newest_wins",
                 "messages": "append", "metadata": "union", "updated_at": "newest_wins"}},
        "message": {"strategy": "merge", "merge_rules": {"content": "newest_wins",
                    "annotations": "union", "metadata": "union"}},
        "tag": {"strategy": "newest_wins", "compare_field": "updated_at"}}}})");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  Status st = ValidateConflictPolicy(*p, OpenWebuiShapes(), {});
  ASSERT_FALSE(st.ok());
  for (const char* named :
       {"table_strategies.chat.merge_rules.messages: table \"chat\" has no column \"messages\"",
        "table_strategies.chat.merge_rules.metadata: table \"chat\" has no column \"metadata\"",
        "table_strategies.message.merge_rules.annotations: table \"message\" has no column",
        "table_strategies.message.merge_rules.metadata: table \"message\" has no column",
        "table_strategies.tag.compare_field: table \"tag\" has no column \"updated_at\""}) {
    EXPECT_NE(st.message().find(named), std::string::npos) << named << "\n" << st.message();
  }
}

TEST(ConflictConfig, TheExampleConfigLoadsTheDefaultPolicy) {
  Result<Config> c = LoadConfig(ConfigDir() + "/example.json");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  Result<ConflictPolicy> p =
      ParseConflictPolicy(ReadText(ConfigDir() + "/conflict-resolution-default.json"));
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(c->sink.conflicts, *p);
}

}  // namespace
}  // namespace sluice
