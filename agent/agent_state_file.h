// The agent's state file: a small JSON record the running agent rewrites
// atomically (temp file, rename) on every change of state, every
// failure and every few seconds, so that `sluice status` can show what only
// the agent's process knows (backoff, its last error and since when, tables
// it stopped) even when the sink is unreachable. It lives next to the SQLite
// file (StateFilePath), found from the config alone. Format and parse are
// pure; the file calls are blocking and may run on any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/sync_progress.h"
#include "common/status.h"

namespace sluice {

// A table the agent does not replicate until its cause is fixed (e.g. a
// column with the reserved prefix _sluice_); the other tables go on.
struct StoppedTable {
  std::string table;
  std::string error;
  int64_t since_ms = 0;
};

struct AgentStateRecord {
  std::string state;     // AgentStateName, or "streaming" for reading/applying/idle
  int64_t since_ms = 0;  // unix ms: entered this state (or the first of the failures in a row)
  int64_t position = -1;
  std::string last_error;  // the last failure, kept after recovery ("" if none yet)
  int64_t last_error_at_ms = 0;
  int64_t failures = 0;  // failures in a row now (0: making progress)
  int exit_code = -1;    // once stopped
  int64_t pid = 0;
  std::string host;
  std::string node;   // this agent's node id
  std::string role;   // "leader", "standby" or "starting"
  int64_t epoch = 0;  // the lease epoch held or last seen
  std::string http;   // the address its HTTP endpoints listen on ("" = off)
  int64_t updated_at_ms = 0;
  std::vector<StoppedTable> stopped_tables;
  std::optional<SyncProgress> progress;  // while a batch is at the sink
};

// "<source_path>.sluice-<deployment>.<node>.state.json" (one per agent of a
// pair on the same file); bytes of the names outside [A-Za-z0-9._-] become '_'.
std::string StateFilePath(const std::string& source_path, const std::string& deployment,
                          const std::string& node);

std::string FormatAgentState(const AgentStateRecord& record);
Result<AgentStateRecord> ParseAgentState(std::string_view json);

// Writes `record` to `path` through `path`.tmp + rename (no fsync: advisory).
Status WriteAgentState(const std::string& path, const AgentStateRecord& record);
// nullopt when there is no file (no agent ran here yet).
Result<std::optional<AgentStateRecord>> ReadAgentState(const std::string& path);

// Why the record is not the agent's current state, "" when it is: the state
// is "stopped", or the process is gone (`pid_alive`, meaningful only on the
// host that wrote it), or it was not rewritten for `max_age_ms`.
std::string StaleReason(const AgentStateRecord& record, int64_t now_ms, bool pid_alive,
                        int64_t max_age_ms);

// How often a running agent rewrites the file at least; status calls a
// record older than kStateStaleMs stale.
inline constexpr int64_t kStateHeartbeatMs = 5000;
inline constexpr int64_t kStateStaleMs = 30000;

}  // namespace sluice
