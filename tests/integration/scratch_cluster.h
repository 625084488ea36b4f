// ScratchCluster: a PostgreSQL server of a test's own (initdb + pg_ctl in a
// fresh directory, Unix socket only), for tests that need server settings the
// shared test cluster cannot have, such as a small lock table
// (max_connections, max_locks_per_transaction need a restart). As root the
// server runs as the `postgres` user (initdb refuses root). Stopped and
// removed when the object dies. Test thread only. ScratchPgbouncer: a
// pgbouncer of a test's own in front of one (its own auth file, TLS).
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace sluice::e2e {

class ScratchCluster {
 public:
  // Starts a server with these postgresql.conf settings ("max_connections=40").
  // Throws std::runtime_error (with the server log) when it cannot.
  explicit ScratchCluster(const std::vector<std::string>& settings);
  ~ScratchCluster();
  ScratchCluster(const ScratchCluster&) = delete;
  ScratchCluster& operator=(const ScratchCluster&) = delete;

  // libpq conninfo of its `postgres` database as its superuser.
  const std::string& conninfo() const { return conninfo_; }

 private:
  std::string dir_;      // owned by the server's user
  std::string bin_dir_;  // where initdb and pg_ctl are
  std::string conninfo_;
};

// A free TCP port on the loopback (the kernel's pick; free again once closed).
int FreePort();

// pgbouncer started with `ini` (its [databases] and [pgbouncer] sections;
// listen_port, logfile and pidfile are added here) and `files` written beside
// it (name -> content, e.g. the auth_file; "@DIR@" in `ini` is their
// directory), in a directory the `postgres` user
// owns when the test runs as root (pgbouncer then runs as it). Waits until it
// listens; throws std::runtime_error (with its log) when it does not.
class ScratchPgbouncer {
 public:
  ScratchPgbouncer(const std::string& ini,
                   const std::vector<std::pair<std::string, std::string>>& files);
  ~ScratchPgbouncer();
  ScratchPgbouncer(const ScratchPgbouncer&) = delete;
  ScratchPgbouncer& operator=(const ScratchPgbouncer&) = delete;

  int port() const { return port_; }
  // Its directory: a file named in `files` is dir() + "/" + name.
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  int port_ = 0;
};

}  // namespace sluice::e2e
