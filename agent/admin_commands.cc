// admin bootstrap / revoke-host: host access set up over an administrator's
// connection (sink/host_access.h), the password file written here.
#include "agent/admin_commands.h"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>

#include "agent/commands.h"
#include "common/hex.h"
#include "sink/host_access.h"
#include "sink/pg_conninfo.h"
#include "sink/sink_admin.h"

namespace sluice {
namespace {

int Fail(const Status& st) {
  std::fprintf(stderr, "sluice: %s\n", st.ToString().c_str());
  return st.code() == Status::Code::kInvalidArgument ? 2 : 1;
}

Result<std::string> NewPassword() {
  char bytes[24];
  size_t got = 0;
  while (got < sizeof(bytes)) {
    ssize_t n = getrandom(bytes + got, sizeof(bytes) - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::Internal(std::string("getrandom: ") + std::strerror(errno));
    got += static_cast<size_t>(n);
  }
  return Hex(std::string_view(bytes, sizeof(bytes)));
}

// Writes a libpq password file for `role` at `path` (mode 0600 from the
// start: the password is never readable by anyone else, not even briefly).
Status WritePassfile(const std::string& path, const std::string& role,
                     const std::string& password) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return Status::InvalidArgument("write " + path + ": " + std::strerror(errno));
  // '\' and ':' would need escaping in a password file; the role name is ours
  // and the password hex.
  std::string line = "*:*:*:" + role + ":" + password + "\n";
  bool ok = ::fchmod(fd, 0600) == 0 &&
            ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) &&
            ::fsync(fd) == 0;
  int err = errno;
  ::close(fd);
  if (!ok) {
    ::unlink(path.c_str());
    return Status::InvalidArgument("write " + path + ": " + std::strerror(err));
  }
  return Status::Ok();
}

Result<std::unique_ptr<SinkAdmin>> ConnectAdmin(const std::string& admin_url,
                                                const SinkOptions& base) {
  if (admin_url.empty()) {
    return Status::InvalidArgument(
        "--admin-url (or SLUICE_ADMIN_URL) is required: an administrator's connection "
        "(Supabase: the postgres role), its password best in PGPASSWORD or ~/.pgpass");
  }
  SinkOptions options = base;
  options.url = admin_url;
  Result<std::unique_ptr<SinkAdmin>> admin = SinkAdmin::Connect(options);
  if (!admin.ok()) return admin.status().Wrap("connect with --admin-url");
  return admin;
}

}  // namespace

int RunAdminBootstrap(const Config& config, const BootstrapOptions& options) {
  HostAccessRequest request;
  request.host_name = options.host_name.empty() ? config.node : options.host_name;
  request.role = options.role.empty() ? HostRoleName(request.host_name) : options.role;
  request.deployment = config.deployment;
  request.schema = config.sink.schema;
  request.rotate = options.rotate_password;
  std::error_code ec;
  std::filesystem::path config_dir =
      std::filesystem::absolute(options.config_path, ec).parent_path();
  std::string passfile = options.password_file.empty()
                             ? (config_dir / (request.role + ".pgpass")).string()
                             : std::filesystem::absolute(options.password_file, ec).string();

  Result<std::unique_ptr<SinkAdmin>> admin = ConnectAdmin(options.admin_url, config.sink);
  if (!admin.ok()) return Fail(admin.status());
  Status st = InstallAccessControl(**admin);
  if (!st.ok()) return Fail(st);

  Result<std::string> password = NewPassword();
  if (!password.ok()) return Fail(password.status());
  request.password = *password;
  // Written before the role gets it, moved into place once it has: a failure
  // in between leaves the old file (and the old password) as they were.
  std::string staged = passfile + ".new";
  st = WritePassfile(staged, request.role, request.password);
  if (!st.ok()) return Fail(st);
  Result<HostAccessReport> report = GrantHostAccess(**admin, request);
  if (report.ok() && report->password_set && std::rename(staged.c_str(), passfile.c_str()) != 0) {
    std::fprintf(stderr,
                 "sluice: role %s has a new password but moving %s to %s failed (%s): move "
                 "it yourself, or run again with --rotate-password\n",
                 request.role.c_str(), staged.c_str(), passfile.c_str(), std::strerror(errno));
    return 1;
  }
  ::unlink(staged.c_str());
  if (!report.ok()) return Fail(report.status());

  // The mirror tables, made by the administrator: the host role gets
  // SELECT/INSERT/UPDATE on them, never ownership (an owner can always DELETE).
  Config as_admin = config;
  as_admin.sink.url = options.admin_url;
  Result<size_t> tables = PrepareDeployment(as_admin, **admin);
  if (!tables.ok()) return Fail(tables.status());
  st = RegrantDeployment(**admin, request);
  if (!st.ok()) return Fail(st);

  const bool changed = report->role_created || report->password_set || report->login_restored ||
                       report->host_registered || report->deployment_registered;
  std::printf("role %s: %s\n", request.role.c_str(),
              report->role_created     ? "created (LOGIN, member of sluice_sync)"
              : report->password_set   ? "kept, new password"
              : report->login_restored ? "kept, may log in again"
                                       : "kept");
  if (report->password_set) {
    std::printf("password: written to %s (mode 0600; not shown)\n", passfile.c_str());
  } else if (!std::filesystem::exists(passfile, ec)) {
    std::printf(
        "password: unchanged, and %s does not exist here: run again with --rotate-password "
        "for a new one\n",
        passfile.c_str());
  }
  std::printf("host %s: %s\n", request.host_name.c_str(),
              report->host_registered ? "registered" : "registered already");
  std::printf("deployment %s: %s, schema %s with %zu mirror table(s) owned by %s\n",
              request.deployment.c_str(),
              report->deployment_registered ? "registered" : "registered already",
              request.schema.c_str(), *tables, (*admin)->User().c_str());
  Result<std::string> url = pg::ConninfoForRole(
      config.sink.url.empty() ? options.admin_url : config.sink.url, request.role, passfile);
  if (!url.ok()) return Fail(url.status());
  std::printf("sink.url for this host's agents: %s\n", url->c_str());
  if (!changed)
    std::printf("nothing changed: host %s was set up already\n", request.host_name.c_str());
  return 0;
}

int RunAdminRevokeHost(const std::string& admin_url, const std::string& host_name) {
  Result<std::unique_ptr<SinkAdmin>> admin = ConnectAdmin(admin_url, SinkOptions{});
  if (!admin.ok()) return Fail(admin.status());
  Status st = InstallAccessControl(**admin);
  if (!st.ok()) return Fail(st);
  Result<bool> was_active = RevokeHostAccess(**admin, host_name);
  if (!was_active.ok()) return Fail(was_active.status());
  std::printf(
      "host %s %s: its role can no longer log in, is out of sluice_sync and has no rights on "
      "its mirror schemas; its rows stay (register it again with `sluice admin bootstrap`)\n",
      host_name.c_str(), *was_active ? "revoked" : "was revoked already");
  return 0;
}

}  // namespace sluice
