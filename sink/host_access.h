// Host access, an administrator's side of sql/03-host-isolation.sql: the
// scripts, a host's login role (its password set as a SCRAM verifier made
// here), its registration with its deployment, and revocation. Blocking, over
// a SinkAdmin connected with the administrator's URL; for `sluice admin`.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"
#include "sink/sink_admin.h"

namespace sluice {

// The login role of a host: "sluice_host_" and the host name, lower case,
// anything but [a-z0-9_] as '_', at most 63 bytes (PostgreSQL's limit).
std::string HostRoleName(std::string_view host_name);

// Runs sql/01 and 03 when the sink's are older than this binary's (kControlPlaneVersion,
// kHostIsolationVersion), and 02 always (each idempotent, one transaction each).
Status InstallAccessControl(SinkAdmin& admin);

struct HostAccessRequest {
  std::string host_name;
  std::string role;  // HostRoleName(host_name) unless the operator names one
  std::string deployment;
  std::string schema;    // the deployment's mirror schema
  std::string password;  // set when the role is created, or with rotate
  bool rotate = false;
};

struct HostAccessReport {
  bool role_created = false;
  bool password_set = false;           // request.password is now the role's
  bool login_restored = false;         // the role had been revoked (NOLOGIN)
  bool host_registered = false;        // new hosts row (or a revoked one back)
  bool deployment_registered = false;  // new client_deployments row
};

// In one transaction: creates the host's role (LOGIN, a member of
// sluice_sync) or keeps it, sets its password when created or rotated,
// registers host and deployment and grants the host role its mirror schema
// (sync_metadata.register_host / register_deployment).
Result<HostAccessReport> GrantHostAccess(SinkAdmin& admin, const HostAccessRequest& request);

// Grants the host role the deployment's mirror tables made since (again
// register_deployment, a no-op otherwise).
Status RegrantDeployment(SinkAdmin& admin, const HostAccessRequest& request);

// sync_metadata.revoke_host: true if the host was active. Its data stays.
Result<bool> RevokeHostAccess(SinkAdmin& admin, const std::string& host_name);

}  // namespace sluice
