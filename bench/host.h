// What the machine and its processes do during a run: CPU seconds by process,
// peak RSS, load, file system and CPU model for the conditions; running the
// sluice binary and checking on the agent.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "tests/support/processes.h"

namespace sluice::bench {

using sluice::testing::AgentProcess;

// utime+stime of one process, seconds; -1 if gone.
double ProcessCpuSeconds(pid_t pid);

// CPU seconds of every process named `comm` that we can see (the local
// PostgreSQL server's processes, when PostgreSQL runs on this machine), by pid.
std::map<pid_t, double> CpuByPid(const std::string& comm);

// CPU used since `before` by the processes alive now (those that exited in
// between are not counted).
double CpuSince(const std::map<pid_t, double>& before, const std::string& comm);

std::string LoadAverage();

// The number after `field` (e.g. "VmHWM:") in /proc/PID/status, -1 if unreadable.
int64_t ProcStatusNumber(pid_t pid, const std::string& field);

// VmHWM of a process in KiB, -1 if unreadable.
int64_t VmHwmKib(pid_t pid);

// Voluntary context switches of a process so far (its wake-ups), -1 if unreadable.
int64_t Wakeups(pid_t pid);

// Runs a command to completion with its stderr appended to `log_path`;
// returns its stdout. Fails on a non-zero exit.
std::string RunOrFail(const std::vector<std::string>& argv, const std::string& log_path);

// Fails (with the log tail) if the agent has exited.
void CheckAlive(AgentProcess& agent);

// SIGTERM, SIGKILL after `grace`; the exit as text for the report.
std::string StopAgent(AgentProcess& agent, std::chrono::milliseconds grace);

std::string FsType(const std::string& path);

std::string CpuModel();

}  // namespace sluice::bench
