// AgentState and the table of moves the replication loop may make between
// states. Pure: no I/O, no clock; Replicator::Transition consults it for every
// move and treats a move the table does not allow as an internal error.
#pragma once

#include <cstdint>

namespace sluice {

enum class AgentState : uint8_t {
  kStarting,         // opening the SQLite file (off loop)
  kConnecting,       // connecting to PostgreSQL
  kLoadingPosition,  // reading the applied position from the sink
  kReading,          // reading one snapshot (off loop)
  kApplying,         // applying one batch in one PostgreSQL transaction
  kIdle,             // caught up; waiting for a wake-up
  kBackoff,          // waiting before a retry
  kStandby,          // connected, another node holds the lease: waiting for it
  kStopping,         // closing handles (after a stop request or a fatal error)
  kStopped,
};

inline constexpr int kAgentStateCount = 10;

const char* AgentStateName(AgentState s);

// True when the loop may move from `from` to `to`. Staying in a state is not
// a move (callers do not transition to the state they are in).
bool TransitionAllowed(AgentState from, AgentState to);

}  // namespace sluice
