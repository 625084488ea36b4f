// ScratchCluster: initdb + pg_ctl start in a private directory (see the header).
#include "tests/integration/scratch_cluster.h"

#include <pwd.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <stdexcept>

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

}  // namespace sluice::e2e
