// Issue 6: `sluice status` of a pair shows the leader (node, epoch, lease
// expiry) and whether the node of its config would lead, from the sink's
// lease row, for either node's config.
#include <string>

#include "tests/integration/e2e_support.h"

namespace sluice::e2e {
namespace {

class PairStatus : public E2eTest {};

TEST_F(PairStatus, StatusNamesTheLeaderAndWhetherThisNodeWouldLead) {
  if (skipped_) return;
  std::string db_path = dir_->file("webui.db");
  CreateOpenWebUiDb(db_path);
  auto node = [](const char* n) {
    return [n](AgentConfig& c) {
      c.node = n;
      c.lease_json = "{\"duration_ms\": 1000}";
    };
  };
  std::string a = WriteConfig(db_path, "", node("a"), "a.json");
  std::string b = WriteConfig(db_path, "", node("b"), "b.json");
  Init(a);
  CommandResult none = RunSluice({"status", "--config", a});
  EXPECT_NE(none.out.find("leader:          none yet"), std::string::npos) << none.Describe();

  AgentProcess* agent_a = StartAgent(a, "a");
  ASSERT_TRUE(ExpectCaughtUp(a, agent_a, seconds(30)));
  AgentProcess* agent_b = StartAgent(b, "b");
  ASSERT_TRUE(WaitUntil(
      [&] {
        return ContainsNoCase(ReadFile(db_path + ".sluice-" + deployment_ + ".b.state.json"),
                              "\"role\":\"standby\"");
      },
      seconds(20)))
      << AgentLogs();

  CommandResult sa = RunSluice({"status", "--json", "--config", a});
  ASSERT_EQ(sa.exit_code, 0) << sa.Describe();
  EXPECT_NE(sa.out.find("\"leader\":{\"node\":\"a\""), std::string::npos) << sa.out;
  EXPECT_NE(sa.out.find("\"held\":true"), std::string::npos) << sa.out;
  EXPECT_NE(sa.out.find("\"this_node\":\"a\",\"would_lead\":true"), std::string::npos) << sa.out;
  CommandResult sb = RunSluice({"status", "--json", "--config", b});
  ASSERT_EQ(sb.exit_code, 0) << sb.Describe();
  EXPECT_NE(sb.out.find("\"leader\":{\"node\":\"a\""), std::string::npos) << sb.out;
  EXPECT_NE(sb.out.find("\"this_node\":\"b\",\"would_lead\":false"), std::string::npos) << sb.out;
  EXPECT_EQ(JsonField(sb.out, "agent_state").value_or(""), "standby") << sb.out;
  CommandResult text = RunSluice({"status", "--config", b});
  EXPECT_NE(text.out.find("leader:          node a"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("b (stands by while the leader's lease lasts)"), std::string::npos)
      << text.out;

  // A graceful stop hands the lease over: b leads under a larger epoch.
  EXPECT_EQ(agent_a->Stop(seconds(20)), 0) << AgentLogs();
  ASSERT_TRUE(WaitUntil(
      [&] {
        CommandResult s = RunSluice({"status", "--json", "--config", b});
        return s.out.find("\"leader\":{\"node\":\"b\"") != std::string::npos &&
               s.out.find("\"epoch\":2") != std::string::npos;
      },
      seconds(10)))
      << AgentLogs();
  CommandResult after = RunSluice({"status", "--config", a});
  EXPECT_NE(after.out.find("a (stands by while the leader's lease lasts)"), std::string::npos)
      << after.out;
  EXPECT_EQ(agent_b->Stop(seconds(20)), 0) << AgentLogs();
  CommandResult released = RunSluice({"status", "--config", a});
  EXPECT_NE(released.out.find("was released"), std::string::npos) << released.out;
  EXPECT_NE(released.out.find("a (would take the lease)"), std::string::npos) << released.out;
}

}  // namespace
}  // namespace sluice::e2e
