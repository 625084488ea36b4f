// The agent's state table. Each row lists where a state may go; everything
// else is a bug in the loop (e.g. reading while stopping, which once left a
// process running and doing nothing after a fatal error during a prune).
#include "agent/lifecycle.h"

namespace sluice {
namespace {

using S = AgentState;

constexpr uint16_t Bit(S s) { return static_cast<uint16_t>(1u << static_cast<unsigned>(s)); }

// kAllowed[from] = set of states `from` may move to.
constexpr uint16_t kAllowed[kAgentStateCount] = {
    // starting: the file is open (connect, or re-read the position after a
    // reopen, or stand by: the lease went meanwhile), or opening failed.
    Bit(S::kConnecting) | Bit(S::kLoadingPosition) | Bit(S::kStandby) | Bit(S::kBackoff) |
        Bit(S::kStopping),
    // connecting: leading (read the position), or another node leads.
    Bit(S::kLoadingPosition) | Bit(S::kStandby) | Bit(S::kBackoff) | Bit(S::kStopping),
    // loading-position
    Bit(S::kReading) | Bit(S::kStandby) | Bit(S::kBackoff) | Bit(S::kStopping),
    // reading: a batch to apply, nothing to do, a retry, the file replaced,
    // the lease lost.
    Bit(S::kApplying) | Bit(S::kIdle) | Bit(S::kBackoff) | Bit(S::kStarting) | Bit(S::kStandby) |
        Bit(S::kStopping),
    // applying: the next read, the position re-read after a conflict, a retry,
    // fenced or the lease lost.
    Bit(S::kReading) | Bit(S::kLoadingPosition) | Bit(S::kBackoff) | Bit(S::kStandby) |
        Bit(S::kStopping),
    // idle
    Bit(S::kReading) | Bit(S::kStandby) | Bit(S::kStopping),
    // backoff: the retried step, or the lease lost meanwhile.
    Bit(S::kStarting) | Bit(S::kConnecting) | Bit(S::kLoadingPosition) | Bit(S::kStandby) |
        Bit(S::kStopping),
    // standby: the lease acquired (read the position, or connect first).
    Bit(S::kLoadingPosition) | Bit(S::kConnecting) | Bit(S::kStopping),
    // stopping
    Bit(S::kStopped),
    // stopped
    0,
};

}  // namespace

const char* AgentStateName(AgentState s) {
  switch (s) {
    case S::kStarting:
      return "starting";
    case S::kConnecting:
      return "connecting";
    case S::kLoadingPosition:
      return "loading-position";
    case S::kReading:
      return "reading";
    case S::kApplying:
      return "applying";
    case S::kIdle:
      return "idle";
    case S::kBackoff:
      return "backoff";
    case S::kStandby:
      return "standby";
    case S::kStopping:
      return "stopping";
    case S::kStopped:
      return "stopped";
  }
  return "?";
}

bool TransitionAllowed(AgentState from, AgentState to) {
  auto f = static_cast<unsigned>(from);
  if (f >= static_cast<unsigned>(kAgentStateCount)) return false;
  return (kAllowed[f] & Bit(to)) != 0;
}

}  // namespace sluice
