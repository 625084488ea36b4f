// Clocks: the two time sources of the agent, injectable so tests can move
// time by hand. wall_ms: the system clock, for timestamps people read (state
// file, "since"); mono_ms: a monotonic clock, for deadlines (the lease), which
// a wall-clock jump must never move.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>

namespace sluice {

struct Clocks {
  std::function<int64_t()> wall_ms;
  std::function<int64_t()> mono_ms;

  static Clocks System() {
    return {[] {
              return static_cast<int64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                              std::chrono::system_clock::now().time_since_epoch())
                                              .count());
            },
            [] {
              return static_cast<int64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                              std::chrono::steady_clock::now().time_since_epoch())
                                              .count());
            }};
  }
};

}  // namespace sluice
