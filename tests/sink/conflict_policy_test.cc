// ConflictPolicy: parsing the seed's conflict-resolution JSON (errors name the
// path) and validating a policy against hand-built table shapes. The shipped
// config/conflict-resolution-default.json against the real Open WebUI schema
// is tests/config/conflict_config_test.cc (it needs capture/ to read SQLite).
#include "sink/conflict_policy.h"

#include <gtest/gtest.h>

#include <string>

namespace sluice {
namespace {

ColumnShape Col(const std::string& name, const std::string& type, int key = 0) {
  ColumnShape c;
  c.name = name;
  c.declared_type = type;
  c.key_position = key;
  return c;
}

// A small chat and tag as Open WebUI declares them (chat.chat and meta JSON,
// updated_at DATETIME holding epoch seconds; tag without updated_at).
std::vector<TableShape> Shapes() {
  TableShape chat;
  chat.name = "chat";
  chat.identity = TableShape::Identity::kUniqueIndex;
  chat.columns = {Col("id", "VARCHAR(255)", 1), Col("title", "TEXT"), Col("updated_at", "DATETIME"),
                  Col("chat", "JSON"),          Col("meta", "JSON"),  Col("pinned", "BOOLEAN")};
  TableShape tag;
  tag.name = "tag";
  tag.columns = {Col("id", "VARCHAR(255)", 1), Col("user_id", "VARCHAR(255)", 2),
                 Col("name", "VARCHAR(255)"), Col("meta", "JSON")};
  return {chat, tag};
}

const std::map<std::string, std::map<std::string, std::string>> kNoOverrides;

std::string ParseError(std::string_view json) {
  Result<ConflictPolicy> p = ParseConflictPolicy(json);
  EXPECT_FALSE(p.ok()) << json;
  return p.ok() ? "" : p.status().message();
}

std::string ValidateError(
    std::string_view json,
    const std::map<std::string, std::map<std::string, std::string>>& overrides = kNoOverrides) {
  Result<ConflictPolicy> p = ParseConflictPolicy(json);
  EXPECT_TRUE(p.ok()) << p.status().ToString();
  if (!p.ok()) return "";
  Status st = ValidateConflictPolicy(*p, Shapes(), overrides);
  EXPECT_FALSE(st.ok()) << json;
  if (st.ok()) return "";
  EXPECT_EQ(st.code(), Status::Code::kInvalidArgument);
  return st.message();
}

TEST(ConflictPolicyParse, NothingConfiguredIsSourceWinsEverywhere) {
  for (const char* json : {"{}", R"({"conflict_resolution":{}})"}) {
    Result<ConflictPolicy> p = ParseConflictPolicy(json);
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    EXPECT_EQ(p->For("chat").strategy, "source_wins");
    EXPECT_EQ(p->For("chat").fallback, "source_wins");
    EXPECT_TRUE(p->tables.empty());
    EXPECT_EQ(PolicyJson(p->For("chat")), R"({"strategy":"source_wins","fallback":"source_wins"})");
  }
}

TEST(ConflictPolicyParse, TheSeedShapeWithAndWithoutItsWrapper) {
  const char* inner = R"({
    "default_strategy": "newest_wins", "default_compare_field": "updated_at",
    "table_strategies": {
      "chat": {"strategy": "merge", "fallback_strategy": "target_wins",
               "merge_rules": {"chat": "union", "title": "newest_wins"},
               "description": "merge the history"},
      "tag": {"strategy": "manual"},
      "prompt": {"strategy": "newest_wins", "compare_field": "timestamp"}
    }})";
  ConflictPolicy want;
  want.defaults = {"newest_wins", "updated_at", "newest_wins", {}};
  want.tables["chat"] = {
      "merge", "updated_at", "target_wins", {{"chat", "union"}, {"title", "newest_wins"}}};
  want.tables["tag"] = {"manual", "updated_at", "newest_wins", {}};
  want.tables["prompt"] = {"newest_wins", "timestamp", "newest_wins", {}};
  Result<ConflictPolicy> bare = ParseConflictPolicy(inner);
  ASSERT_TRUE(bare.ok()) << bare.status().ToString();
  EXPECT_EQ(*bare, want);
  Result<ConflictPolicy> wrapped = ParseConflictPolicy(
      std::string(R"({"_metadata": {"version": "1.0"}, "conflict_resolution": )") + inner + "}");
  ASSERT_TRUE(wrapped.ok()) << wrapped.status().ToString();
  EXPECT_EQ(*wrapped, want);
  EXPECT_EQ(PolicyJson(wrapped->For("chat")),
            R"({"strategy":"merge","compare_field":"updated_at","fallback":"target_wins",)"
            R"("rules":{"chat":"union","title":"newest_wins"}})");
  EXPECT_EQ(wrapped->For("user").strategy, "newest_wins");  // not listed: the defaults
}

TEST(ConflictPolicyParse, FallbackDefaultsToASimpleDefaultStrategyElseSourceWins) {
  Result<ConflictPolicy> p = ParseConflictPolicy(
      R"({"default_strategy": "merge", "table_strategies": {"chat": {"strategy": "merge"}}})");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->defaults.fallback, "source_wins");
  EXPECT_EQ(p->For("chat").fallback, "source_wins");
  p = ParseConflictPolicy(
      R"({"default_strategy": "target_wins", "table_strategies": {"chat": {"strategy": "merge"}}})");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->For("chat").fallback, "target_wins");
}

TEST(ConflictPolicyParse, ErrorsNameThePath) {
  EXPECT_EQ(ParseError(R"({"table_strategies": {"chat": {"strategy": "newest"}}})"),
            "conflicts: table_strategies.chat.strategy: unknown strategy \"newest\" (one of "
            "source_wins, target_wins, newest_wins, merge, manual)");
  EXPECT_EQ(ParseError(R"({"conflict_resolution": {"default_strategy": "latest"}})"),
            "conflicts: default_strategy: unknown strategy \"latest\" (one of source_wins, "
            "target_wins, newest_wins, merge, manual)");
  EXPECT_EQ(ParseError(R"({"table_strategies": {"chat": {"strategy": "merge",
                          "fallback_strategy": "merge"}}})"),
            "conflicts: table_strategies.chat.fallback_strategy: unknown fallback strategy "
            "\"merge\" (one of source_wins, target_wins, newest_wins)");
  EXPECT_EQ(ParseError(R"({"table_strategies": {"chat": {"strategy": "merge",
                          "merge_rules": {"chat": "concat"}}}})"),
            "conflicts: table_strategies.chat.merge_rules.chat: unknown rule \"concat\" (one of "
            "source_wins, target_wins, newest_wins, append, union)");
  EXPECT_EQ(ParseError(R"({"table_strategies": {"chat": {"strategy": "newest_wins",
                          "merge_rules": {"chat": "union"}}}})"),
            "conflicts: table_strategies.chat.merge_rules: only under strategy merge (the "
            "table's strategy is newest_wins)");
  EXPECT_EQ(ParseError(R"({"table_strategies": {"chat": {"merge_rules": {"chat": "union"}}}})"),
            "conflicts: table_strategies.chat.merge_rules: only under strategy merge (the "
            "table's strategy is source_wins)");
  EXPECT_EQ(ParseError(R"({"table_strategies": {"chat": {"stratgy": "merge"}}})"),
            "conflicts: table_strategies.chat.stratgy: unknown key");
  EXPECT_EQ(ParseError(R"({"default_strategy": "merge", "tables": {}})"),
            "conflicts: tables: unknown key");
  EXPECT_EQ(ParseError(R"({"table_strategies": {"chat": {"strategy": 3}}})"),
            "conflicts: table_strategies.chat.strategy: must be a string");
  EXPECT_EQ(ParseError(R"({"table_strategies": []})"),
            "conflicts: table_strategies: must be an object");
  EXPECT_EQ(ParseError(R"({"table_strategies": {"chat": {"compare_field": ""}}})"),
            "conflicts: table_strategies.chat.compare_field: must not be empty");
  EXPECT_EQ(ParseError("[]"), "conflicts: must be a JSON object");
  EXPECT_NE(ParseError("{").find("conflicts: not valid JSON"), std::string::npos);
}

TEST(ConflictPolicyParse, TheSeedsOtherSettingsAreRefusedNotIgnored) {
  EXPECT_EQ(ParseError(R"({"conflict_resolution": {"resolution_log": {"enabled": true}}})"),
            "conflicts: resolution_log: not supported by sluice (a setting of the seed system); "
            "every conflict goes to sync_metadata.conflict_log: remove the key");
  EXPECT_NE(ParseError(R"({"conflict_resolution": {"notification": {}}})")
                .find("conflicts: notification: not supported by sluice"),
            std::string::npos);
  EXPECT_NE(ParseError(R"({"advanced_options": {}})")
                .find("conflicts: advanced_options: not supported by sluice"),
            std::string::npos);
  EXPECT_NE(
      ParseError(R"({"table_strategies": {"config": {"strategy": "manual", "notify": true}}})")
          .find("conflicts: table_strategies.config.notify: not supported by sluice"),
      std::string::npos);
  // Beside the wrapper only documentation may stand.
  EXPECT_EQ(ParseError(R"({"conflict_resolution": {}, "default_strategy": "merge"})"),
            "conflicts: default_strategy: unknown key (beside \"conflict_resolution\" only "
            "\"_metadata\" and \"description\")");
}

TEST(ConflictPolicyValidate, AFittingPolicyIsOk) {
  Result<ConflictPolicy> p = ParseConflictPolicy(R"({"default_compare_field": "updated_at",
      "table_strategies": {
        "chat": {"strategy": "merge", "fallback_strategy": "newest_wins",
                 "merge_rules": {"chat": "union", "meta": "union", "title": "newest_wins"}},
        "tag": {"strategy": "merge", "merge_rules": {"meta": "union", "name": "source_wins"}}}})");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  Status st = ValidateConflictPolicy(*p, Shapes(), kNoOverrides);
  EXPECT_TRUE(st.ok()) << st.ToString();
  // Nothing configured fits any tables.
  EXPECT_TRUE(ValidateConflictPolicy(ConflictPolicy{}, Shapes(), kNoOverrides).ok());
}

TEST(ConflictPolicyValidate, UnknownTableAndColumnsAreNamed) {
  EXPECT_EQ(ValidateError(R"({"table_strategies": {"chats": {"strategy": "target_wins"}}})"),
            "conflicts: table_strategies.chats: no tracked table \"chats\" (tracked: chat, tag)");
  EXPECT_EQ(ValidateError(R"({"table_strategies": {"chat": {"strategy": "merge",
                             "merge_rules": {"messages": "append"}}}})"),
            "conflicts: table_strategies.chat.merge_rules.messages: table \"chat\" has no column "
            "\"messages\"");
  EXPECT_EQ(ValidateError(R"({"table_strategies": {"chat": {"strategy": "merge",
                             "merge_rules": {"id": "source_wins"}}}})"),
            "conflicts: table_strategies.chat.merge_rules.id: \"id\" is a key column of table "
            "\"chat\" (the row identity is never merged)");
}

TEST(ConflictPolicyValidate, NewestWinsNeedsItsCompareField) {
  // tag has no updated_at: newest_wins as strategy, fallback, or rule needs another field.
  std::string want =
      "conflicts: table_strategies.tag.compare_field: table \"tag\" has no column "
      "\"updated_at\" (";
  EXPECT_EQ(ValidateError(R"({"default_compare_field": "updated_at",
                             "table_strategies": {"tag": {"strategy": "newest_wins"}}})"),
            want + "newest_wins needs a compare field)");
  EXPECT_EQ(ValidateError(R"({"default_compare_field": "updated_at", "table_strategies":
                             {"tag": {"strategy": "merge", "fallback_strategy": "newest_wins"}}})"),
            want + "fallback_strategy newest_wins needs a compare field)");
  EXPECT_EQ(ValidateError(R"({"default_compare_field": "updated_at", "table_strategies":
                             {"tag": {"strategy": "merge", "merge_rules": {"name": "newest_wins"}}}})"),
            want + "merge rule newest_wins on \"name\" needs a compare field)");
  // default_strategy newest_wins is every listed table's fallback too.
  EXPECT_EQ(ValidateError(R"({"default_strategy": "newest_wins", "table_strategies":
                             {"chat": {"strategy": "merge"}, "tag": {"strategy": "source_wins"}}})"),
            "conflicts: table_strategies.chat.compare_field: fallback_strategy newest_wins needs "
            "a compare field (compare_field, or default_compare_field)");
  EXPECT_EQ(ValidateError(R"({"table_strategies": {"chat": {"strategy": "newest_wins"}}})"),
            "conflicts: table_strategies.chat.compare_field: newest_wins needs a compare field "
            "(compare_field, or default_compare_field)");
  // Unused, a default compare field that a table lacks is fine; an explicit one is not.
  EXPECT_EQ(ValidateError(R"({"table_strategies": {"tag": {"compare_field": "changed"}}})"),
            "conflicts: table_strategies.tag.compare_field: table \"tag\" has no column "
            "\"changed\"");
  // The defaults apply to every table not listed.
  EXPECT_EQ(ValidateError(R"({"default_strategy": "newest_wins", "default_compare_field":
                             "updated_at"})"),
            "conflicts: default_compare_field: table \"tag\" has no column \"updated_at\" "
            "(newest_wins needs a compare field; give the table its own entry in "
            "table_strategies)");
  EXPECT_EQ(ValidateError(R"({"table_strategies": {"chat": {"strategy": "newest_wins",
                             "compare_field": "meta"}}})"),
            "conflicts: table_strategies.chat.compare_field: \"meta\" is mirrored as jsonb; a "
            "compare field must hold numbers, text or dates");
}

TEST(ConflictPolicyValidate, AppendAndUnionNeedAJsonMirrorColumn) {
  const char* json = R"({"table_strategies": {"chat": {"strategy": "merge",
                        "merge_rules": {"title": "union"}}}})";
  EXPECT_EQ(ValidateError(json),
            "conflicts: table_strategies.chat.merge_rules.title: rule union needs a json or "
            "jsonb mirror column, but chat.title is mirrored as text (declared \"TEXT\"); "
            "declare it JSON in SQLite or set tables.chat.columns.title: \"jsonb\"");
  // With the override it fits; an override away from jsonb does not.
  Result<ConflictPolicy> p = ParseConflictPolicy(json);
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(ValidateConflictPolicy(*p, Shapes(), {{"chat", {{"title", "jsonb"}}}}).ok());
  EXPECT_NE(ValidateError(R"({"table_strategies": {"chat": {"strategy": "merge",
                             "merge_rules": {"chat": "append"}}}})",
                          {{"chat", {{"chat", "text"}}}})
                .find("rule append needs a json or jsonb mirror column, but chat.chat is mirrored "
                      "as text"),
            std::string::npos);
}

TEST(ConflictPolicyValidate, EveryProblemIsNamedAtOnce) {
  // The seed's own file: five columns that Open WebUI does not have.
  std::string msg = ValidateError(R"({"table_strategies": {
      "chat": {"strategy": "merge", "merge_rules": {"messages": "append", "metadata": "union"}},
      "tag": {"strategy": "newest_wins", "compare_field": "updated_at"}}})");
  EXPECT_NE(msg.find("chat.merge_rules.messages: table \"chat\" has no column \"messages\""),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find("chat.merge_rules.metadata: table \"chat\" has no column \"metadata\""),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find("tag.compare_field: table \"tag\" has no column \"updated_at\""),
            std::string::npos)
      << msg;
}

}  // namespace
}  // namespace sluice
