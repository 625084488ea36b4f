// `sluice admin bootstrap` and `sluice admin revoke-host`: an operator's set-up
// of one host's access to a shared control plane (sql/03-host-isolation.sql),
// run with an administrator's connection. Blocking; main thread only.
#pragma once

#include <string>

#include "agent/config.h"

namespace sluice {

struct BootstrapOptions {
  std::string config_path;    // the host's config (its deployment, schema, node, sink.url)
  std::string admin_url;      // an administrator's conninfo; its password is never printed
  std::string host_name;      // default: the config's node
  std::string role;           // default: HostRoleName(host_name)
  std::string password_file;  // default: <role>.pgpass beside the config file
  bool rotate_password = false;
};

// Applies sql/01-03, creates (or keeps) the host's login role with a new
// password written to password_file (0600; the password is never printed),
// registers host and deployment, prepares the SQLite file and the mirror
// tables as the administrator (so the host role does not own them and cannot
// DELETE) and prints the sink.url the host's agents should use.
int RunAdminBootstrap(const Config& config, const BootstrapOptions& options);

// Takes a host's access away (sync_metadata.revoke_host); its data stays.
int RunAdminRevokeHost(const std::string& admin_url, const std::string& host_name);

}  // namespace sluice
