// Process and machine readings of the benchmark (see host.h).
#include "bench/host.h"

#include <sys/statfs.h>
#include <unistd.h>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "bench/basics.h"

namespace sluice::bench {

namespace fs = std::filesystem;
using sluice::testing::CommandResult;
using sluice::testing::RunCommand;

double ProcessCpuSeconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return -1;
  size_t close = line.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream rest(line.substr(close + 2));
  std::string field;
  std::vector<std::string> f;
  while (rest >> field) f.push_back(field);
  // After "pid (comm) ": state is field 3 → index 0; utime is field 14 → index 11.
  if (f.size() < 13) return -1;
  double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  return (std::stod(f[11]) + std::stod(f[12])) / ticks;
}

std::map<pid_t, double> CpuByPid(const std::string& comm) {
  std::map<pid_t, double> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    std::string name = entry.path().filename();
    if (name.empty() || !std::isdigit(static_cast<unsigned char>(name[0]))) continue;
    std::ifstream c(entry.path() / "comm");
    std::string got;
    if (!std::getline(c, got) || got != comm) continue;
    pid_t pid = static_cast<pid_t>(std::stol(name));
    double secs = ProcessCpuSeconds(pid);
    if (secs >= 0) out[pid] = secs;
  }
  return out;
}

double CpuSince(const std::map<pid_t, double>& before, const std::string& comm) {
  double total = 0;
  for (const auto& [pid, secs] : CpuByPid(comm)) {
    auto it = before.find(pid);
    total += secs - (it == before.end() ? 0.0 : it->second);
  }
  return total;
}

std::string LoadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

int64_t ProcStatusNumber(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field, 0) == 0) return std::stoll(line.substr(field.size()));
  }
  return -1;
}

int64_t VmHwmKib(pid_t pid) { return ProcStatusNumber(pid, "VmHWM:"); }

int64_t Wakeups(pid_t pid) {
  // Every thread of the process: /proc/PID/status counts the main thread only.
  int64_t total = 0;
  std::error_code ec;
  for (const auto& t : fs::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    std::ifstream in(t.path() / "status");
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("voluntary_ctxt_switches:", 0) == 0) total += std::stoll(line.substr(24));
    }
  }
  return ec ? -1 : total;
}

std::string RunOrFail(const std::vector<std::string>& argv, const std::string& log_path) {
  CommandResult r = RunCommand(argv, std::chrono::minutes(10));
  {
    std::ofstream log(log_path, std::ios::app);
    log << r.err;
  }
  if (r.exit_code != 0) {
    std::string cmd;
    for (const std::string& a : argv) cmd += a + " ";
    Fail("`" + cmd + "` failed: " + r.Describe());
  }
  return r.out;
}

void CheckAlive(AgentProcess& agent) {
  if (!agent.Running()) {
    Fail("agent exited early (exit " + std::to_string(agent.last_exit().value_or(-1)) +
         "); log tail:\n" + TailOf(agent.log_path(), 3000));
  }
}

std::string StopAgent(AgentProcess& agent, std::chrono::milliseconds grace) {
  int code = agent.Stop(grace);
  return "exit " + std::to_string(code);
}

std::string FsType(const std::string& path) {
  struct statfs s {};
  if (statfs(path.c_str(), &s) != 0) return "unknown";
  switch (static_cast<unsigned long>(s.f_type)) {
    case 0x01021994UL:
      return "tmpfs";
    case 0xEF53UL:
      return "ext2/3/4";
    case 0x58465342UL:
      return "xfs";
    case 0x9123683EUL:
      return "btrfs";
    case 0x794c7630UL:
      return "overlayfs";
    case 0x2FC12FC1UL:
      return "zfs";
    default:
      return Fmt("0x%lx", static_cast<unsigned long>(s.f_type));
  }
}

std::string CpuModel() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      size_t c = line.find(':');
      return c == std::string::npos ? line : Trim(line.substr(c + 1));
    }
  }
  return "unknown";
}

}  // namespace sluice::bench
