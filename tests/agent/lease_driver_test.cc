// LeaseDriver (agent/lease_driver.h) on a real loop against a sink that
// refuses connections: a lease that cannot be asked for is a stall of its own
// (a standby that can never take over) and is reported at warn, then error,
// like every repeated failure, never only at debug.
#include "agent/lease_driver.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>
#include <uv.h>

#include <chrono>
#include <memory>
#include <string>

#include "agent/metrics.h"

namespace sluice {
namespace {

TEST(LeaseDriver, ALeaseThatCannotBeAskedForIsReported) {
  auto ring = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(200);
  spdlog::default_logger()->sinks().push_back(ring);
  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  int failures = 0;
  Metrics metrics("test", "n1", "dep");
  {
    // Port 1 on loopback: refused at once, every time.
    LeaseDriver driver(
        &loop, "host=127.0.0.1 port=1 connect_timeout=2", {"dep", "n1", "h"},
        LeaseTimings{1000, 333, 20},
        [] {
          return static_cast<int64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                          std::chrono::steady_clock::now().time_since_epoch())
                                          .count());
        },
        &metrics, [](LeaseEvent) {}, [&failures](Status) { ++failures; });
    uv_timer_t stop;
    uv_timer_init(&loop, &stop);
    stop.data = &driver;
    driver.Start();
    uv_timer_start(
        &stop,
        [](uv_timer_t* t) {
          static_cast<LeaseDriver*>(t->data)->Release(
              [t] { uv_close(reinterpret_cast<uv_handle_t*>(t), nullptr); });
        },
        600, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    EXPECT_FALSE(driver.lease().leader());
  }
  EXPECT_EQ(uv_loop_close(&loop), 0);
  spdlog::default_logger()->sinks().pop_back();
  EXPECT_EQ(failures, 0) << "a refused connection is retried, not fatal";
  std::string reported;
  for (const std::string& line : ring->last_formatted()) {
    if ((line.find("warning") != std::string::npos || line.find("error") != std::string::npos) &&
        line.find("lease") != std::string::npos) {
      reported += line;
    }
  }
  EXPECT_NE(reported.find("127.0.0.1"), std::string::npos)
      << "the lease requests failed for 600 ms without a word at warn or error";
}

}  // namespace
}  // namespace sluice
