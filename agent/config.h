// Config: the agent's settings, parsed from a JSON file and overridden by
// environment variables. Pure: ParseConfig takes the text and an environment
// lookup, so it is unit-tested without files. Any thread.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "capture/capture_options.h"
#include "common/status.h"
#include "sink/sink_options.h"

namespace sluice {

struct AgentOptions {
  int poll_interval_ms = 200;  // data_version poll, the fallback to inotify on the -wal file
  int retry_min_ms = 100;      // first reconnect / retry delay
  int retry_max_ms = 10000;    // cap of the exponential backoff
  std::string log_level = "info";
  // After SIGTERM/SIGINT the batch in flight may finish for this long; then it
  // is rolled back (nothing is lost: the position moves only with a commit)
  // and the agent exits. A second signal rolls back at once. 0 = at once.
  int stop_timeout_ms = 30000;

  bool operator==(const AgentOptions&) const = default;
};

// The leader lease (agent/lease.h). 0 = derived from duration_ms.
struct LeaseOptions {
  int duration_ms = 5000;  // how long a lease lasts without a renewal
  int renew_ms = 0;        // the leader renews this often (default: a third of the duration)
  int poll_ms = 0;         // a standby asks this often (default: 200, at most a fifth)

  bool operator==(const LeaseOptions&) const = default;
};

// The HTTP endpoints (/health, /livez, /readyz, /leader, /metrics).
struct HttpOptions {
  std::string listen = "127.0.0.1:9443";  // "host:port", "[v6]:port", or "off"
  int max_connections = 64;

  bool operator==(const HttpOptions&) const = default;
};

struct Config {
  std::string deployment;  // name; also the default sink schema
  std::string node;        // this instance's id (default: host name)
  CaptureOptions source;
  SinkOptions sink;
  AgentOptions agent;
  LeaseOptions lease;  // after ParseConfig: every field set (no 0 left)
  HttpOptions http;
  // Keys whose value in the file itself (not from the environment) is a
  // secret: "sink.url" when it carries a password. For the permission warning.
  std::vector<std::string> secret_keys;
  // The file LoadConfig read ("" when parsed from text): SIGHUP reads it again.
  std::string file;
  // The conflict policy file LoadConfig reads into sink.conflicts ("" = none,
  // the policy is inline or not configured): SLUICE_CONFLICT_CONFIG, else
  // CONFLICT_RESOLUTION_CONFIG (as given), else conflicts.file (a relative
  // path joined to ParseConfig's base_dir, the config file's directory).
  std::string conflicts_file;
};

// Fills the lease fields left at 0 (renew: a third of the duration; poll:
// 200 ms, at most a fifth) and checks that one lost renewal does not cost the
// lease. ParseConfig calls it; so does the agent for a Config built in code.
Status ResolveLease(LeaseOptions* lease);

// This machine's host name, "" when gethostname fails. The default node name
// ("node" then), and what the lease row and the state file record as host.
std::string HostName();

// Returns the value of an environment variable, or nullptr.
using EnvLookup = std::function<const char*(const char*)>;

// Parses `json`; `env` supplies overrides (see README "Configuration").
// Errors name the offending key: "config: unknown key 'source.pathh'".
// `conflicts` is the policy inline (sink.conflicts, checked in structure:
// ParseConflictPolicy) or {"file": PATH}: only the path is resolved here,
// relative to `base_dir` ("" = as written); LoadConfig reads the file.
Result<Config> ParseConfig(std::string_view json, const EnvLookup& env,
                           const std::string& base_dir = "");

// Secrets readable by group or others, one line each saying what to do: the
// config file when it holds one (Config::secret_keys), and the password file
// named by sink.url's passfile or PGPASSFILE. LoadConfig refuses them.
std::vector<std::string> ExposedSecrets(const std::string& config_path, const Config& config,
                                        const EnvLookup& env);

// Reads the file and parses it with the process environment, then the
// conflict policy file (Config::conflicts_file), if any. InvalidArgument when
// ExposedSecrets finds any (the message says which file and the chmod).
Result<Config> LoadConfig(const std::string& path);

}  // namespace sluice
