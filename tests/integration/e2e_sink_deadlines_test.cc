// Issue 5 item 15: deadlines on the sink path. A sink that stops answering
// while keeping the TCP session open (a proxy of ours on loopback that stops
// forwarding: the peer's kernel still ACKs, so TCP keepalives see nothing) is
// detected within sink.query_timeout_ms, the agent reconnects once the sink
// answers again, and every row written before and during the stall arrives.
#include <string>
#include <vector>

#include "tests/integration/e2e_support.h"
#include "tests/integration/stalling_proxy.h"

namespace sluice::e2e {
namespace {

class SinkDeadlines : public E2eTest {
 protected:
  void SetUp() override {
    E2eTest::SetUp();
    catch_up_timeout_ = seconds(40);
  }
};

TEST_F(SinkDeadlines, StalledSinkIsDetectedAndNothingIsLost) {
  if (skipped_) return;
  constexpr int kQueryTimeoutMs = 1500;
  std::string db_path = dir_->file("webui.db");
  CreateOpenWebUiDb(db_path);
  std::string direct = WriteConfig(db_path);  // init and status go straight to PostgreSQL
  Init(direct);

  auto [addr, len] = TcpAddressOf(pg_url_);
  StallingProxy proxy(addr, len);
  std::string via_proxy = ViaProxy(pg_url_, proxy);
  std::string agent_config = WriteConfig(
      db_path, via_proxy,
      [](AgentConfig& c) {
        c.sink_extra = "\"query_timeout_ms\": " + std::to_string(kQueryTimeoutMs);
      },
      "via-proxy.json");

  RandomWriter::Options w;
  w.min_changes = 300;
  w.run_until_stopped = false;
  ASSERT_EQ(WriteRandomChanges(db_path, w), std::vector<std::string>{});
  AgentProcess* agent = StartAgent(agent_config);
  ASSERT_TRUE(ExpectCaughtUp(direct, agent));
  int accepted_before = proxy.accepted();

  // The sink stops answering; the app goes on writing.
  proxy.Stall();
  auto stalled_at = Clock::now();
  w.seed = 2;
  w.key_base = 1000000;
  ASSERT_EQ(WriteRandomChanges(db_path, w, true), std::vector<std::string>{});
  const std::string kDetected = "no reply from PostgreSQL";
  bool detected = WaitUntil([&] { return agent->Log().find(kDetected) != std::string::npos; },
                            milliseconds(kQueryTimeoutMs + 4000));
  auto took = std::chrono::duration_cast<milliseconds>(Clock::now() - stalled_at);
  EXPECT_TRUE(detected) << "a stalled sink was not noticed within " << took.count() << " ms";
  EXPECT_LT(took.count(), kQueryTimeoutMs + 4000);
  EXPECT_TRUE(agent->Running()) << "the agent must retry, not exit";
  // It tries to reconnect (through the stalled proxy, which only accepts).
  EXPECT_TRUE(WaitUntil([&] { return proxy.accepted() > accepted_before; }, seconds(10)))
      << "no reconnect attempt";
  w.seed = 3;
  w.key_base = 2000000;
  ASSERT_EQ(WriteRandomChanges(db_path, w, true), std::vector<std::string>{});

  // The sink answers again: the agent reconnects and everything arrives.
  proxy.Resume();
  ASSERT_TRUE(ExpectCaughtUp(direct, agent));
  Sqlite src(db_path);
  ExpectMirrorEqual(src);
  EXPECT_EQ(CheckBatchChain(*pg_, deployment_), "");
  agent->Signal(SIGTERM);
  EXPECT_EQ(agent->WaitExit(seconds(20)), std::optional<int>(0));
}

}  // namespace
}  // namespace sluice::e2e
