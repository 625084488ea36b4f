// SinkAdmin: blocking administration of the sink for the CLI (init, status) and
// the agent's start-up position read. Uses libpq synchronously; never call it on
// the agent's loop thread while streaming.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "common/table_shape.h"
#include "sink/sink_options.h"

namespace sluice {

struct SinkPosition {
  bool exists = false;       // a row for this deployment exists
  std::string source_id;     // the SQLite file it follows
  int64_t applied_seq = -1;  // -1: initial sync not done yet
  std::string updated_at;    // text timestamp from the sink, may be empty
};

// The deployment's leader lease (sync_metadata.leader_election), as the
// database clock sees it now.
struct SinkLease {
  bool exists = false;  // a lease was ever taken
  std::string leader_id;
  std::string leader_host;
  int64_t epoch = 0;
  int64_t expires_in_ms = 0;  // <= 0: expired (or released)
  int64_t heartbeats = 0;     // renewals by this holder
  bool released = false;      // given up by a graceful stop
};

// One row of SinkAdmin::Query, as text (NULL: nullopt).
using SinkRow = std::vector<std::optional<std::string>>;

class SinkAdmin {
 public:
  // Connects; errors name the host and say what failed (kUnavailable for an
  // unreachable server, kInvalidArgument for bad credentials or conninfo).
  static Result<std::unique_ptr<SinkAdmin>> Connect(const SinkOptions& options);
  virtual ~SinkAdmin() = default;

  // Brings the control plane to kControlPlaneVersion: runs the embedded
  // sql/01-*.sql script (idempotent) unless sync_metadata is at that version
  // already (a host role, which may not change sync_metadata, then needs no
  // rights for it). When it is missing or older and this role cannot install
  // it, the error names the command an administrator runs.
  virtual Status InstallControlPlane() = 0;
  // Runs one of the embedded scripts (sql/02, sql/03: an administrator's).
  virtual Status RunScript(const char* sql, const std::string& what) = 0;
  // The control plane's version (schema_version 'control-plane'), -1 if none.
  virtual Result<int> ControlPlaneVersion() = 0;
  // The SCRAM verifier of `password` for `role`, computed here (libpq's
  // PQencryptPasswordConn): CREATE/ALTER ROLE then never carries the password.
  virtual Result<std::string> EncryptPassword(const std::string& password,
                                              const std::string& role) = 0;
  // The role this connection logged in as.
  virtual std::string User() = 0;
  // Creates the target schema and the mirror tables (or adopts existing ones).
  virtual Status EnsureMirror(const std::vector<TableShape>& tables) = 0;
  // Creates the position row for (deployment, source_id) if missing;
  // kConflict if the deployment already follows another source_id.
  virtual Status EnsurePosition(const std::string& source_id) = 0;
  virtual Result<SinkPosition> ReadPosition() = 0;
  // Makes the deployment follow `source_id` from scratch (creating the row if
  // missing): the position goes back to -1, so the next `sluice run` reads
  // every table whole and tombstones what the file no longer holds.
  virtual Status Rebind(const std::string& source_id) = 0;
  // Rows parked in conflict_log for this deployment.
  virtual Result<int64_t> CountParked() = 0;
  virtual Result<SinkLease> ReadLease() = 0;
  // Runs one statement with text parameters ($1, ...) and returns its rows:
  // for sink-side tools built on this connection (sink/conflict_admin.h).
  // An unnamed statement and no session state, so BEGIN ... COMMIT over
  // several calls works through a transaction-mode pooler. timeout_ms > 0:
  // this round trip may take that long instead of sink.query_timeout_ms (a
  // statement that waits for a lock under its own lock_timeout).
  virtual Result<std::vector<SinkRow>> Query(const std::string& sql,
                                             const std::vector<std::optional<std::string>>& params,
                                             int timeout_ms) = 0;
};

}  // namespace sluice
