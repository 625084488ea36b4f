// Child processes for tests and benchmarks: run a command to completion with
// a timeout, or keep one (`sluice run`, a Prometheus server) alive as a child
// with its log in a file; plus the small file and polling helpers both need.
// No gtest here.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace sluice::testing {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

// Polls `pred` every 20 ms until it returns true (→ true) or `timeout` passes
// (→ false, after one last evaluation).
bool WaitUntil(const std::function<bool()>& pred, milliseconds timeout);

std::string ReadFile(const std::string& path);                        // "" when missing
void WriteFile(const std::string& path, const std::string& content);  // throws on error
std::string TailLines(const std::string& text, size_t lines);         // the last `lines` lines

// A wait status as a shell reports it: the exit code, or 128 + the signal.
int ExitCode(int wait_status);

struct CommandResult {
  int exit_code = -1;  // exit status, or 128+signal, or -1 on timeout
  bool timed_out = false;
  std::string out;
  std::string err;
  double seconds = 0;
  std::string Describe() const;  // for failure messages
};

// Runs a command (argv[0] resolved through PATH) with stdin from /dev/null;
// killed with SIGKILL after `timeout`.
CommandResult RunCommand(const std::vector<std::string>& argv, milliseconds timeout = seconds(60));

// A long-running child process (argv[0] resolved through PATH, stdin from
// /dev/null) with stdout and stderr appended to `log_path`; each start, exit
// and kill writes a marker line naming it `name`. Killed with SIGKILL when
// destroyed if still running.
class ChildProcess {
 public:
  ChildProcess(std::vector<std::string> argv, std::string log_path, std::string name);
  virtual ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  void Start();
  bool Running();  // reaps the child if it exited
  pid_t pid() const { return pid_; }
  void Signal(int sig);
  // Waits for the child to exit; returns its exit code (128+signal when
  // killed) or nullopt on timeout.
  std::optional<int> WaitExit(milliseconds timeout);
  void KillHard();  // SIGKILL and reap
  // SIGTERM, then SIGKILL after `grace`; returns the exit code (137 if killed).
  int Stop(milliseconds grace);
  int starts() const { return starts_; }
  const std::string& log_path() const { return log_path_; }
  std::string Log() const { return ReadFile(log_path_); }
  std::optional<int> last_exit() const { return last_exit_; }

 private:
  void Mark(const std::string& what);

  std::vector<std::string> argv_;
  std::string log_path_;
  std::string name_;
  pid_t pid_ = -1;
  int starts_ = 0;
  std::optional<int> last_exit_;
};

// `<binary> run --config FILE` as a ChildProcess.
class AgentProcess : public ChildProcess {
 public:
  AgentProcess(std::string binary, std::string config_path, std::string log_path);
};

}  // namespace sluice::testing
