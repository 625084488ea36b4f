// ScratchCluster: a PostgreSQL server of a test's own (initdb + pg_ctl in a
// fresh directory, Unix socket only), for tests that need server settings the
// shared test cluster cannot have, such as a small lock table
// (max_connections, max_locks_per_transaction need a restart). As root the
// server runs as the `postgres` user (initdb refuses root). Stopped and
// removed when the object dies. Test thread only.
#pragma once

#include <string>
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

}  // namespace sluice::e2e
