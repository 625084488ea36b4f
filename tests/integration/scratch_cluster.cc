// ScratchCluster: initdb + pg_ctl start in a private directory (see the header).
#include "tests/integration/scratch_cluster.h"

#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <thread>

#include "tests/integration/e2e_support.h"

namespace sluice::e2e {
namespace {

// The server binaries of the newest installed PostgreSQL (Debian layout), or
// those on PATH.
std::string FindBinDir() {
  std::string best;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/usr/lib/postgresql", ec)) {
    std::string bin = (e.path() / "bin").string();
    if (std::filesystem::exists(bin + "/initdb") && e.path().filename().string() > best) {
      best = e.path().filename().string();
    }
  }
  return best.empty() ? "" : "/usr/lib/postgresql/" + best + "/bin/";
}

}  // namespace

ScratchCluster::ScratchCluster(const std::vector<std::string>& settings) {
  char tmpl[] = "/tmp/sluice-scratch-pg.XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp failed");
  dir_ = tmpl;
  bin_dir_ = FindBinDir();
  std::vector<std::string> as_user;
  if (::geteuid() == 0) {
    struct passwd* pw = ::getpwnam("postgres");
    if (pw == nullptr) throw std::runtime_error("running as root but there is no postgres user");
    if (::chown(dir_.c_str(), pw->pw_uid, pw->pw_gid) != 0) {
      throw std::runtime_error("chown " + dir_ + " failed");
    }
    as_user = {"runuser", "-u", "postgres", "--"};
  }
  auto run = [&](std::vector<std::string> argv) {
    argv.insert(argv.begin(), as_user.begin(), as_user.end());
    CommandResult r = RunCommand(argv, seconds(60));
    if (r.exit_code != 0) {
      throw std::runtime_error("scratch cluster: " + argv[as_user.size()] +
                               " failed: " + r.Describe() + "\n--- server log ---\n" +
                               ReadFile(dir_ + "/server.log"));
    }
  };
  run({bin_dir_ + "initdb", "-D", dir_ + "/data", "-N", "-A", "trust", "-U", "postgres",
       "--no-instructions"});
  std::string opts = "-c listen_addresses='' -k " + dir_ + " -c fsync=off";
  for (const std::string& s : settings) opts += " -c " + s;
  run({bin_dir_ + "pg_ctl", "-D", dir_ + "/data", "-l", dir_ + "/server.log", "-w", "-o", opts,
       "start"});
  conninfo_ = "host=" + dir_ + " user=postgres dbname=postgres";
}

ScratchCluster::~ScratchCluster() {
  std::vector<std::string> argv = {bin_dir_ + "pg_ctl", "-D", dir_ + "/data", "-m",
                                   "immediate",         "-w", "stop"};
  if (::geteuid() == 0) argv.insert(argv.begin(), {"runuser", "-u", "postgres", "--"});
  try {
    RunCommand(argv, seconds(30));
  } catch (...) {  // a destructor must not throw; the directory goes anyway
  }
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  ::close(fd);
  return port;
}

ScratchPgbouncer::ScratchPgbouncer(const std::string& ini,
                                   const std::vector<std::pair<std::string, std::string>>& files) {
  char tmpl[] = "/tmp/sluice-scratch-pgbouncer.XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp failed");
  dir_ = tmpl;
  port_ = FreePort();
  std::vector<std::pair<std::string, std::string>> all = files;
  std::string text = ini;
  for (size_t at = text.find("@DIR@"); at != std::string::npos; at = text.find("@DIR@", at)) {
    text.replace(at, 5, dir_);
  }
  all.emplace_back("pgbouncer.ini", text + "\nlisten_port = " + std::to_string(port_) +
                                        "\nlogfile = " + dir_ +
                                        "/pgbouncer.log\npidfile = " + dir_ + "/pgbouncer.pid\n");
  std::vector<std::string> argv = {"/usr/sbin/pgbouncer", "-d"};
  struct passwd* pw = ::geteuid() == 0 ? ::getpwnam("postgres") : nullptr;
  if (::geteuid() == 0 && pw == nullptr) throw std::runtime_error("no postgres user");
  for (const auto& [name, content] : all) {
    std::string path = dir_ + "/" + name;
    std::ofstream(path) << content;
    ::chmod(path.c_str(), 0600);
    if (pw != nullptr && ::chown(path.c_str(), pw->pw_uid, pw->pw_gid) != 0) {
      throw std::runtime_error("chown " + path + " failed");
    }
  }
  if (pw != nullptr) {
    if (::chown(dir_.c_str(), pw->pw_uid, pw->pw_gid) != 0) {
      throw std::runtime_error("chown " + dir_ + " failed");
    }
    argv.insert(argv.end(), {"-u", "postgres"});
  }
  argv.push_back(dir_ + "/pgbouncer.ini");
  CommandResult r = RunCommand(argv, seconds(30));
  if (r.exit_code != 0) {
    throw std::runtime_error("pgbouncer failed to start: " + r.Describe() + "\n" +
                             ReadFile(dir_ + "/pgbouncer.log"));
  }
  for (int i = 0; i < 100; ++i) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port_));
    bool up = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(fd);
    if (up) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  throw std::runtime_error("pgbouncer does not listen on port " + std::to_string(port_) + "\n" +
                           ReadFile(dir_ + "/pgbouncer.log"));
}

ScratchPgbouncer::~ScratchPgbouncer() {
  std::string pid = ReadFile(dir_ + "/pgbouncer.pid");
  if (!pid.empty()) ::kill(static_cast<pid_t>(std::stol(pid)), SIGTERM);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

}  // namespace sluice::e2e
