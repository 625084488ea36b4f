// The agent's state table (agent/lifecycle.h): every move the loop makes is
// allowed, impossible ones are refused, and every state can stop.
#include "agent/lifecycle.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

namespace sluice {
namespace {

using S = AgentState;

std::vector<S> AllStates() {
  std::vector<S> all;
  for (int i = 0; i < kAgentStateCount; ++i) all.push_back(static_cast<S>(i));
  return all;
}

TEST(Lifecycle, TheLoopsMovesAreAllowed) {
  // One batch, a reconnect, a conflict, a replaced file, a retry of each step.
  const std::pair<S, S> moves[] = {
      {S::kStarting, S::kConnecting},
      {S::kConnecting, S::kLoadingPosition},
      {S::kLoadingPosition, S::kReading},
      {S::kReading, S::kApplying},
      {S::kApplying, S::kReading},
      {S::kReading, S::kIdle},
      {S::kIdle, S::kReading},
      {S::kApplying, S::kLoadingPosition},
      {S::kApplying, S::kBackoff},
      {S::kBackoff, S::kConnecting},
      {S::kBackoff, S::kLoadingPosition},
      {S::kBackoff, S::kStarting},
      {S::kReading, S::kStarting},
      {S::kStarting, S::kLoadingPosition},
      {S::kConnecting, S::kBackoff},
      {S::kStopping, S::kStopped},
      // The lease: stand by after connecting, lead from standby, lose it
      // while reading, applying, idle or backing off.
      {S::kConnecting, S::kStandby},
      {S::kStandby, S::kLoadingPosition},
      {S::kStandby, S::kConnecting},
      {S::kReading, S::kStandby},
      {S::kApplying, S::kStandby},
      {S::kIdle, S::kStandby},
      {S::kBackoff, S::kStandby},
      {S::kLoadingPosition, S::kStandby},
      {S::kStarting, S::kStandby},  // a file reopened after the lease went
  };
  for (auto [from, to] : moves) {
    EXPECT_TRUE(TransitionAllowed(from, to))
        << AgentStateName(from) << " -> " << AgentStateName(to);
  }
}

TEST(Lifecycle, EveryLiveStateCanStop) {
  for (S s : AllStates()) {
    if (s == S::kStopping || s == S::kStopped) continue;
    EXPECT_TRUE(TransitionAllowed(s, S::kStopping)) << AgentStateName(s);
  }
}

TEST(Lifecycle, ImpossibleMovesAreRefused) {
  // Work after a stop began, applying without a read, idling without a read,
  // leaving the final state, and staying put (not a move).
  const std::pair<S, S> moves[] = {
      {S::kStopping, S::kReading},
      {S::kStopping, S::kApplying},
      {S::kStopping, S::kIdle},
      {S::kIdle, S::kApplying},
      {S::kConnecting, S::kApplying},
      {S::kLoadingPosition, S::kIdle},
      {S::kBackoff, S::kApplying},
      {S::kBackoff, S::kBackoff},
      {S::kStopped, S::kStarting},
      {S::kStopped, S::kStopping},
      {S::kIdle, S::kIdle},
      {S::kStarting, S::kReading},
      // A standby neither reads nor applies before it holds the lease.
      {S::kStandby, S::kReading},
      {S::kStandby, S::kApplying},
      {S::kStandby, S::kIdle},
      {S::kStopping, S::kStandby},
  };
  for (auto [from, to] : moves) {
    EXPECT_FALSE(TransitionAllowed(from, to))
        << AgentStateName(from) << " -> " << AgentStateName(to);
  }
  for (S s : AllStates()) EXPECT_FALSE(TransitionAllowed(S::kStopped, s)) << AgentStateName(s);
}

TEST(Lifecycle, NamesAreDistinct) {
  std::set<std::string> names;
  for (S s : AllStates()) names.insert(AgentStateName(s));
  EXPECT_EQ(names.size(), static_cast<size_t>(kAgentStateCount));
  EXPECT_EQ(names.count("?"), 0u);
}

}  // namespace
}  // namespace sluice
