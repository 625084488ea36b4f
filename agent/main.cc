// sluice: command-line entry point. Parses the subcommand with CLI11, loads the
// config, sets up logging, and hands over to agent/commands.
#include <malloc.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <string>
#include <vector>

#include "agent/admin_commands.h"
#include "agent/commands.h"
#include "agent/config.h"
#include "sluice_version.h"

namespace {

constexpr const char* kEnvHelp =
    "Environment overrides: SLUICE_DEPLOYMENT, SLUICE_NODE, SLUICE_SOURCE_PATH, SLUICE_SINK_URL\n"
    "(or DATABASE_URL), SLUICE_SINK_SCHEMA, SLUICE_LOG_LEVEL, SLUICE_LEASE_DURATION_MS,\n"
    "SLUICE_LEASE_RENEW_MS, SLUICE_LEASE_POLL_MS, SLUICE_HTTP_LISTEN, SLUICE_CONFLICT_CONFIG\n"
    "(or CONFLICT_RESOLUTION_CONFIG); libpq's PG* variables and .pgpass apply to the sink\n"
    "connection.";

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  // glibc gives every thread that allocates its own arena; the libuv pool
  // threads that read SQLite would each keep one. Two bound the agent's RSS.
  mallopt(M_ARENA_MAX, 2);
  CLI::App app{"sluice: keeps a PostgreSQL copy of an app's SQLite database current.", "sluice"};
  app.footer(kEnvHelp);
  app.set_version_flag("--version", std::string("sluice ") + SLUICE_VERSION);
  app.require_subcommand(1);

  std::string config_path;
  bool json = false;
  auto add = [&](const char* name, const char* help) {
    CLI::App* sub = app.add_subcommand(name, help);
    sub->add_option("-c,--config", config_path, "JSON config file (see config/example.json)")
        ->required()
        ->check(CLI::ExistingFile);
    return sub;
  };
  CLI::App* init = add("init",
                       "Prepare the SQLite file (WAL, journal, triggers) and the PostgreSQL side "
                       "(control plane, schema, mirror tables). Idempotent.");
  CLI::App* run = add("run",
                      "Run the agent: initial sync if needed, then stream changes while it "
                      "holds the deployment's leader lease (agents of the same deployment with "
                      "other node ids stand by and take over when it dies or stops); HTTP "
                      "endpoints on http.listen (/health /livez /readyz /leader /metrics). "
                      "SIGTERM/SIGINT: finish the batch in flight for at most "
                      "agent.stop_timeout_ms (default 30 s), then roll it back, and exit 0; "
                      "a second SIGTERM/SIGINT rolls back at once (nothing is lost: the "
                      "position moves only with a commit). SIGHUP: re-read the config file "
                      "(agent.log_level, the other agent.* timings and the conflict policy, "
                      "if it fits the tables; other keys are logged as needing a restart).");
  std::vector<std::string> resync_tables;
  CLI::App* resync = add("resync",
                         "Make the deployment follow this SQLite file from scratch (after "
                         "`uninstall`, a restore, or a file swap): prepare it like init, then "
                         "the next `run` reads every table whole. With --table: read just those "
                         "tables whole again (the agent may be running).");
  resync->add_option("-t,--table", resync_tables, "Tracked table to resynchronise (repeatable)");
  CLI::App* status =
      add("status",
          "Show the sink position, the journal backlog, the lag, parked rows, pending conflicts, "
          "tables still to be "
          "read whole, the leader (node, epoch, lease expiry) and whether this node would lead, "
          "and the agent's own state and last error (from its state file, also when "
          "the sink is unreachable). Exits 1 on an error: sink unreachable, the deployment "
          "following another file, a restored file.");
  status->add_flag("--json", json, "Print one JSON object instead of text");
  CLI::App* uninstall =
      add("uninstall", "Remove every sluice object from the SQLite file (app data untouched).");

  CLI::App* conflicts = app.add_subcommand(
      "conflicts",
      "Conflicts with outside writes at the sink (sync_metadata.conflict_log): list them, "
      "resolve pending (manual) ones.");
  conflicts->require_subcommand(1);
  auto add_conflicts = [&](const char* name, const char* help) {
    CLI::App* sub = conflicts->add_subcommand(name, help);
    sub->add_option("-c,--config", config_path, "JSON config file (see config/example.json)")
        ->required()
        ->check(CLI::ExistingFile);
    return sub;
  };
  sluice::ConflictFilter conflict_filter;
  bool images = false;
  CLI::App* conflicts_list = add_conflicts(
      "list",
      "Print this deployment's conflict_log entries, oldest first: id, table, key, kind, "
      "strategy, status (pending: waits for `conflicts resolve`; resolved: by `automatic` or "
      "an operator; parked: a row the sink rejected), seq, epoch, batch, created, resolved by "
      "and at.");
  conflicts_list->add_option("-t,--table", conflict_filter.table, "Only this table's entries");
  conflicts_list->add_option("--status", conflict_filter.status, "Only entries with this status")
      ->check(CLI::IsMember({"pending", "resolved", "parked"}));
  conflicts_list->add_flag("--json", json,
                           "One JSON object per line (id, table, key, kind, strategy, status, "
                           "reason, seq, epoch, batch, created_at, resolved_by, resolved_at)");
  conflicts_list->add_flag("--images", images,
                           "Add the source, target, base and resolved images of each row");
  sluice::ResolveRequest resolve_request;
  std::string take;
  std::string row;
  double wait_s = 30;
  CLI::App* conflicts_resolve = add_conflicts(
      "resolve",
      "Resolve pending conflict ID at once, exactly once, in one transaction ordered against "
      "the agent's batches (the agent may run): --take source writes SQLite's version (the "
      "row is clean again), target keeps the row as the sink holds it now, merged writes the "
      "three-way merge of the two against the base by the table's conflict policy (or --row). "
      "Records who and when. Exits 1 when the entry is unknown, not pending (resolved or "
      "parked), or a batch holds it up longer than --wait; 2 for bad usage: a bad --row, or "
      "merged where one side deleted the row (nothing to merge).");
  conflicts_resolve->add_option("id", resolve_request.id, "Entry id (`sluice conflicts list`)")
      ->required()
      ->check(CLI::PositiveNumber);
  conflicts_resolve->add_option("--take", take, "Which version the row keeps")
      ->required()
      ->check(CLI::IsMember({"source", "target", "merged"}));
  conflicts_resolve->add_option(
      "--row", row,
      "With --take merged: the row to write instead of the computed merge, a JSON object of "
      "mirror columns (columns left out keep the target's values, the source's when the row "
      "is deleted at the target; the key cannot change)");
  conflicts_resolve->add_option("--by", resolve_request.by,
                                "Who resolves it, recorded in resolved_by (default: the OS user)");
  conflicts_resolve
      ->add_option("--wait", wait_s, "Seconds to wait for a batch in flight (default 30)")
      ->check(CLI::Range(0.001, 3600.0));

  CLI::App* admin = app.add_subcommand(
      "admin",
      "An operator's set-up of hosts that share one control plane (sql/03-host-isolation.sql), "
      "with an administrator's connection (--admin-url or SLUICE_ADMIN_URL; put its password "
      "in PGPASSWORD or ~/.pgpass, a URL on the command line shows in ps).");
  admin->require_subcommand(1);
  sluice::BootstrapOptions bootstrap_options;
  std::string revoke_host_name;
  CLI::App* bootstrap = admin->add_subcommand(
      "bootstrap",
      "Apply sql/01-03 where older than this sluice's; create this host's login role "
      "(sluice_host_<host name>, a member of sluice_sync: no DELETE, no DDL) with a random "
      "password written to a 0600 file, never printed (an existing role keeps its password "
      "unless --rotate-password); register the host and the config's deployment; prepare the "
      "SQLite file "
      "and the mirror tables as the administrator (the host role cannot DELETE them); print "
      "the sink.url the host's agents use. Re-running changes nothing and says so.");
  bootstrap->add_option("-c,--config", config_path, "The host's JSON config file")
      ->required()
      ->check(CLI::ExistingFile);
  bootstrap
      ->add_option("--admin-url", bootstrap_options.admin_url,
                   "Administrator's libpq conninfo or URI (Supabase: user postgres); "
                   "required, here or in SLUICE_ADMIN_URL")
      ->envname("SLUICE_ADMIN_URL");
  bootstrap->add_option("--host-name", bootstrap_options.host_name,
                        "The host's name in sync_metadata.hosts (default: the config's node)");
  bootstrap->add_option("--role", bootstrap_options.role,
                        "Its login role (default: sluice_host_<host name>)");
  bootstrap->add_option("--password-file", bootstrap_options.password_file,
                        "Where the password goes (default: <role>.pgpass beside the config)");
  bootstrap->add_flag("--rotate-password", bootstrap_options.rotate_password,
                      "Give an existing role a new password (and a new file)");
  CLI::App* revoke_host = admin->add_subcommand(
      "revoke-host",
      "Take a host's access away: its role can no longer log in, leaves sluice_sync and loses "
      "its rights on its mirror schemas; its rows stay. Re-runnable.");
  revoke_host->add_option("name", revoke_host_name, "The host's name (sync_metadata.hosts)")
      ->required();
  revoke_host
      ->add_option("--admin-url", bootstrap_options.admin_url,
                   "Administrator's libpq conninfo or URI")
      ->envname("SLUICE_ADMIN_URL");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version exit 0; every usage error exits 2, like a bad config.
    int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }

  if (*revoke_host)
    return sluice::RunAdminRevokeHost(bootstrap_options.admin_url, revoke_host_name);
  sluice::Result<sluice::Config> config = sluice::LoadConfig(config_path);
  if (!config.ok()) {
    std::fprintf(stderr, "sluice: %s\n", config.status().ToString().c_str());
    return 2;
  }
  auto logger = spdlog::stderr_color_mt("sluice");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ [%n] %v");
  spdlog::set_level(spdlog::level::from_str(config->agent.log_level));

  if (*init) return sluice::RunInit(*config);
  if (*bootstrap) {
    bootstrap_options.config_path = config_path;
    return sluice::RunAdminBootstrap(*config, bootstrap_options);
  }
  if (*run) return sluice::RunAgent(*config);
  if (*resync) return sluice::RunResync(*config, resync_tables);
  if (*status) return sluice::RunStatus(*config, json);
  if (*uninstall) return sluice::RunUninstall(*config);
  if (*conflicts_list) return sluice::RunConflictsList(*config, conflict_filter, json, images);
  if (*conflicts_resolve) {
    resolve_request.take = take == "source"   ? sluice::ConflictTake::kSource
                           : take == "target" ? sluice::ConflictTake::kTarget
                                              : sluice::ConflictTake::kMerged;
    if (conflicts_resolve->count("--row") > 0) resolve_request.row = row;
    resolve_request.lock_timeout_ms = static_cast<int>(wait_s * 1000);
    return sluice::RunConflictsResolve(*config, resolve_request);
  }
  return 2;
}
