// sluice: command-line entry point. Parses the subcommand with CLI11, loads the
// config, sets up logging, and hands over to agent/commands.
#include <malloc.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <string>
#include <vector>

#include "agent/commands.h"
#include "agent/config.h"
#include "sluice_version.h"

namespace {

constexpr const char* kEnvHelp =
    "Environment overrides: SLUICE_DEPLOYMENT, SLUICE_NODE, SLUICE_SOURCE_PATH, SLUICE_SINK_URL\n"
    "(or DATABASE_URL), SLUICE_SINK_SCHEMA, SLUICE_LOG_LEVEL, SLUICE_LEASE_DURATION_MS,\n"
    "SLUICE_LEASE_RENEW_MS, SLUICE_LEASE_POLL_MS, SLUICE_HTTP_LISTEN; libpq's PG* variables\n"
    "and .pgpass apply to the sink connection.";

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
                      "(agent.log_level and the other agent.* timings; other keys are logged "
                      "as needing a restart).");
  std::vector<std::string> resync_tables;
  CLI::App* resync = add("resync",
                         "Make the deployment follow this SQLite file from scratch (after "
                         "`uninstall`, a restore, or a file swap): prepare it like init, then "
                         "the next `run` reads every table whole. With --table: read just those "
                         "tables whole again (the agent may be running).");
  resync->add_option("-t,--table", resync_tables, "Tracked table to resynchronise (repeatable)");
  CLI::App* status =
      add("status",
          "Show the sink position, the journal backlog, the lag, parked rows, tables still to be "
          "read whole, the leader (node, epoch, lease expiry) and whether this node would lead, "
          "and the agent's own state and last error (from its state file, also when "
          "the sink is unreachable). Exits 1 on an error: sink unreachable, the deployment "
          "following another file, a restored file.");
  status->add_flag("--json", json, "Print one JSON object instead of text");
  CLI::App* uninstall =
      add("uninstall", "Remove every sluice object from the SQLite file (app data untouched).");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version exit 0; every usage error exits 2, like a bad config.
    int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }

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
  if (*run) return sluice::RunAgent(*config);
  if (*resync) return sluice::RunResync(*config, resync_tables);
  if (*status) return sluice::RunStatus(*config, json);
  if (*uninstall) return sluice::RunUninstall(*config);
  return 2;
}
