// Host access for `sluice admin`: scripts 01-03, the host's role and password
// verifier, registration and revocation through sql/03's functions.
#include "sink/host_access.h"

#include <cctype>
#include <optional>
#include <vector>

#include "common/sql_quote.h"
#include "sink/pg_sql.h"
#include "sql/control_plane_sql.h"
#include "sql/host_isolation_sql.h"
#include "sql/sync_role_sql.h"

namespace sluice {
namespace {

using Params = std::vector<std::optional<std::string>>;

Result<std::vector<SinkRow>> Run(SinkAdmin& admin, const std::string& sql, const Params& params) {
  return admin.Query(sql, params, 0);
}

}  // namespace

std::string HostRoleName(std::string_view host_name) {
  std::string role = "sluice_host_";
  for (char c : host_name) {
    unsigned char u = static_cast<unsigned char>(c);
    role += std::isalnum(u) != 0 ? static_cast<char>(std::tolower(u)) : '_';
  }
  if (role.size() > 63) role.resize(63);
  return role;
}

// 01 and 03 only when older than this binary's: re-running them takes an
// exclusive lock on control-plane tables (ALTER TABLE, policies), which
// waits for every host's apply transaction in flight and holds up every
// new one meanwhile. 02 (roles and grants, no table lock) always.
Status InstallAccessControl(SinkAdmin& admin) {
  Result<int> control_plane = admin.ControlPlaneVersion();
  if (!control_plane.ok()) return control_plane.status();
  if (*control_plane < kControlPlaneVersion) {
    SLUICE_RETURN_IF_ERROR(admin.RunScript(kControlPlaneSql, "run sql/01-control-plane.sql"));
  }
  SLUICE_RETURN_IF_ERROR(admin.RunScript(kSyncRoleSql, "run sql/02-sync-role.sql"));
  Result<std::vector<SinkRow>> isolation =
      Run(admin,
          "SELECT coalesce(max(version), -1)::text FROM sync_metadata.schema_version "
          "WHERE component = 'host-isolation'",
          {});
  if (!isolation.ok()) return isolation.status().Wrap("read the host isolation's version");
  const std::optional<std::string>& version = (*isolation)[0][0];
  if (version && std::stoi(*version) >= kHostIsolationVersion) return Status::Ok();
  return admin.RunScript(kHostIsolationSql, "run sql/03-host-isolation.sql");
}

Result<HostAccessReport> GrantHostAccess(SinkAdmin& admin, const HostAccessRequest& request) {
  HostAccessReport report;
  SLUICE_RETURN_IF_ERROR(Run(admin, "BEGIN", {}).status());
  auto fail = [&](Status st) {
    (void)Run(admin, "ROLLBACK", {});
    return st;
  };
  Result<std::vector<SinkRow>> role =
      Run(admin, "SELECT rolcanlogin::text FROM pg_catalog.pg_roles WHERE rolname = $1",
          {request.role});
  if (!role.ok()) return fail(role.status().Wrap("look up role " + request.role));
  const bool exists = !role->empty();
  std::string sql;
  if (!exists || request.rotate) {
    Result<std::string> verifier = admin.EncryptPassword(request.password, request.role);
    if (!verifier.ok()) return fail(verifier.status());
    sql = std::string(exists ? "ALTER" : "CREATE") + " ROLE " + QuoteIdent(request.role) +
          " LOGIN PASSWORD " + QuoteLiteral(*verifier);
    report.role_created = !exists;
    report.password_set = true;
  } else if ((*role)[0][0].value_or("") != "true") {
    sql = "ALTER ROLE " + QuoteIdent(request.role) + " LOGIN";
  }
  report.login_restored = exists && (*role)[0][0].value_or("") != "true";
  if (!sql.empty()) {
    Status st = Run(admin, sql, {}).status();
    if (!st.ok()) return fail(st.Wrap((exists ? "alter role " : "create role ") + request.role));
  }
  Result<std::vector<SinkRow>> before =
      Run(admin,
          "SELECT (SELECT count(*) FROM sync_metadata.hosts WHERE host_name = $1 "
          "AND revoked_at IS NULL)::text, (SELECT count(*) FROM sync_metadata.client_deployments "
          "WHERE deployment = $2)::text",
          {request.host_name, request.deployment});
  if (!before.ok()) return fail(before.status().Wrap("read sync_metadata.hosts"));
  report.host_registered = (*before)[0][0].value_or("") == "0";
  report.deployment_registered = (*before)[0][1].value_or("") == "0";
  Status st =
      Run(admin, "SELECT sync_metadata.register_host($1, $2)", {request.host_name, request.role})
          .status();
  if (!st.ok()) return fail(st.Wrap("register host " + request.host_name));
  st = RegrantDeployment(admin, request);
  if (!st.ok()) return fail(st);
  st = Run(admin, "COMMIT", {}).status();
  if (!st.ok()) return fail(st.Wrap("commit"));
  return report;
}

Status RegrantDeployment(SinkAdmin& admin, const HostAccessRequest& request) {
  Status st = Run(admin, "SELECT sync_metadata.register_deployment($1, $2, $3)",
                  {request.host_name, request.deployment, request.schema})
                  .status();
  return st.ok() ? st : st.Wrap("register deployment " + request.deployment);
}

Result<bool> RevokeHostAccess(SinkAdmin& admin, const std::string& host_name) {
  Result<std::vector<SinkRow>> r =
      Run(admin, "SELECT sync_metadata.revoke_host($1)::text", {host_name});
  if (!r.ok()) return r.status().Wrap("revoke host " + host_name);
  return (*r)[0][0].value_or("") == "true";
}

}  // namespace sluice
