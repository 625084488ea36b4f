// init / status / uninstall / run / conflicts: wiring of capture/ and sink/ for the CLI.
#include "agent/commands.h"

#include <fmt/format.h>
#include <pwd.h>
#include <spdlog/spdlog.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <ctime>

#include "agent/agent_state_file.h"
#include "agent/policy_check.h"
#include "agent/replicator.h"
#include "capture/installer.h"
#include "capture/journal_reader.h"
#include "capture/resync_request.h"
#include "common/change_spool.h"
#include "common/json_text.h"
#include "sink/pg_sql.h"
#include "sink/sink_admin.h"

namespace sluice {
namespace {

int Fail(const Status& st) {
  std::fprintf(stderr, "sluice: %s\n", st.ToString().c_str());
  return st.code() == Status::Code::kInvalidArgument ? 2 : 1;
}

}  // namespace

// The advice every "this deployment follows another file" message ends with.
std::string ResyncAdvice(const Config& config) {
  return "to make deployment " + config.deployment + " follow " + config.source.path +
         " and resynchronise every table, run `sluice resync --config FILE`";
}

namespace {

// Refuses (before anything in the file changes) when the deployment already
// follows another source than this file, e.g. after `uninstall` + `init`.
Status CheckBinding(const Config& config, SinkAdmin& admin) {
  Result<SinkPosition> pos = admin.ReadPosition();
  if (!pos.ok()) return pos.status();
  if (!pos->exists) return Status::Ok();
  Result<std::optional<std::string>> id = PeekSourceId(config.source);
  if (!id.ok()) return id.status();
  if (id->has_value() && **id == pos->source_id) return Status::Ok();
  std::string file = id->has_value() ? "is source " + **id
                                     : "has no sluice objects (uninstalled or never prepared)";
  return Status::Conflict("deployment " + config.deployment + " follows source " + pos->source_id +
                          " at the sink, but " + config.source.path + " " + file + "; " +
                          ResyncAdvice(config));
}

// Prepares the file and the mirror tables; shared by init and resync.
Result<InstallReport> Prepare(const Config& config, SinkAdmin& admin) {
  // SQLite first: triggers exist before any snapshot is taken, so nothing
  // committed after this point can be missed.
  Result<InstallReport> report = InstallCapture(config.source);
  if (!report.ok()) return report.status().Wrap("prepare " + config.source.path);
  if (report->switched_to_wal) {
    std::printf("switched %s to WAL journal mode (as Open WebUI's DATABASE_ENABLE_SQLITE_WAL)\n",
                config.source.path.c_str());
  }
  std::printf("source %s: id %s, %zu tracked table(s)\n", config.source.path.c_str(),
              report->source_id.c_str(), report->tables.size());
  // A renamed table's mirror is renamed by the agent, from the old one.
  std::vector<TableShape> mirrors;
  for (const TableShape& t : report->tables) {
    if (std::find(report->renamed.begin(), report->renamed.end(), t.name) ==
        report->renamed.end()) {
      mirrors.push_back(t);
    } else {
      std::printf(
          "table %s was renamed (or had columns renamed): its mirror follows when the "
          "agent runs\n",
          t.name.c_str());
    }
  }
  Status st = admin.EnsureMirror(mirrors);
  if (!st.ok()) return st.Wrap("create mirror tables in schema " + config.sink.schema);
  return report;
}

Result<std::unique_ptr<SinkAdmin>> ConnectWithControlPlane(const Config& config) {
  Result<std::unique_ptr<SinkAdmin>> admin = SinkAdmin::Connect(config.sink);
  if (!admin.ok()) return admin.status();
  Status st = (*admin)->InstallControlPlane();
  if (!st.ok()) return st.Wrap("install control plane");
  return admin;
}

}  // namespace

Result<size_t> PrepareDeployment(const Config& config, SinkAdmin& admin) {
  // A batch larger than source.spool_memory_limit spills there: say now, not
  // at the first large batch, that it cannot.
  Status spool = ChangeSpool::CheckDir(config.source.spool_dir);
  if (!spool.ok()) return spool.Wrap("source.spool_dir");
  SLUICE_RETURN_IF_ERROR(CheckConflictPolicy(config));  // before anything changes
  SLUICE_RETURN_IF_ERROR(CheckBinding(config, admin));
  Result<InstallReport> report = Prepare(config, admin);
  if (!report.ok()) return report.status();
  SLUICE_RETURN_IF_ERROR(admin.EnsurePosition(report->source_id));
  return report->tables.size();
}

int RunInit(const Config& config) {
  // The file's side first: no sink round trip for a config that cannot work.
  Status spool = ChangeSpool::CheckDir(config.source.spool_dir);
  if (!spool.ok()) return Fail(spool.Wrap("source.spool_dir"));
  Status policy = CheckConflictPolicy(config);
  if (!policy.ok()) return Fail(policy);
  Result<std::unique_ptr<SinkAdmin>> admin = ConnectWithControlPlane(config);
  if (!admin.ok()) return Fail(admin.status());
  Result<size_t> tables = PrepareDeployment(config, **admin);
  if (!tables.ok()) return Fail(tables.status());
  std::printf("sink: schema %s ready with %zu mirror table(s); run `sluice run` to sync\n",
              config.sink.schema.c_str(), *tables);
  return 0;
}

int RunResync(const Config& config, const std::vector<std::string>& tables) {
  Result<std::unique_ptr<SinkAdmin>> admin = ConnectWithControlPlane(config);
  if (!admin.ok()) return Fail(admin.status());
  if (!tables.empty()) {
    // One table or a few: the deployment must already follow this file.
    Status st = CheckBinding(config, **admin);
    if (!st.ok()) {
      return Fail(Status::Conflict(st.message() + " (without --table)"));
    }
    st = RequestFullRead(config.source, tables);
    if (!st.ok()) return Fail(st.Wrap("request a full read"));
    std::printf(
        "marked %zu table(s) of %s for a full read; the agent resynchronises them with "
        "its next batch\n",
        tables.size(), config.source.path.c_str());
    return 0;
  }
  Result<InstallReport> report = Prepare(config, **admin);
  if (!report.ok()) return Fail(report.status());
  Status st = (*admin)->Rebind(report->source_id);
  if (!st.ok()) return Fail(st);
  std::printf(
      "deployment %s now follows %s (source %s) from scratch: the next `sluice run` "
      "reads every table whole; rows the file no longer holds become tombstones\n",
      config.deployment.c_str(), config.source.path.c_str(), report->source_id.c_str());
  return 0;
}

namespace {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// "2026-12-01T13:40:05Z" (UTC); "" for 0.
std::string IsoTime(int64_t ms) {
  if (ms <= 0) return "";
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char out[32];
  std::strftime(out, sizeof(out), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return out;
}

// What the agent's state file says, and whether it is current.
struct StateFileView {
  std::optional<AgentStateRecord> record;
  std::string stale;  // StaleReason; "" when the agent is running
  std::string error;  // the file could not be read
};

StateFileView ReadAgentView(const Config& config) {
  StateFileView v;
  Result<std::optional<AgentStateRecord>> r =
      ReadAgentState(StateFilePath(config.source.path, config.deployment, config.node));
  if (!r.ok()) {
    v.error = r.status().message();
    return v;
  }
  v.record = std::move(r.value());
  if (!v.record) return v;
  // A pid means something only on the host that wrote it.
  char host[256] = {};
  ::gethostname(host, sizeof(host) - 1);
  bool alive = true;
  if (v.record->host == host && v.record->pid > 0) {
    alive = ::kill(static_cast<pid_t>(v.record->pid), 0) == 0 || errno == EPERM;
  }
  v.stale = StaleReason(*v.record, NowMs(), alive, kStateStaleMs);
  return v;
}

// ,"agent_state":...: the fields `status --json` adds for the agent.
std::string AgentJson(const StateFileView& v) {
  if (!v.record) {
    return ",\"agent_state\":\"unknown\",\"agent_running\":false,\"agent_note\":" +
           JsonString(v.error.empty() ? "no agent state file: no agent ran on this host yet"
                                      : v.error) +
           ",\"stopped_tables\":[],\"progress\":null";
  }
  const AgentStateRecord& r = *v.record;
  std::string j = ",\"agent_state\":" + JsonString(r.state);
  j += ",\"agent_running\":" + std::string(v.stale.empty() ? "true" : "false");
  j += ",\"agent_note\":" + JsonString(v.stale);
  j += ",\"agent_since\":" + JsonString(IsoTime(r.since_ms));
  j += ",\"agent_pid\":" + std::to_string(r.pid);
  j += ",\"agent_updated_at\":" + JsonString(IsoTime(r.updated_at_ms));
  j += ",\"agent_failures\":" + std::to_string(r.failures);
  j += ",\"last_error\":" + JsonString(r.last_error);
  j += ",\"last_error_at\":" + JsonString(IsoTime(r.last_error_at_ms));
  j += ",\"stopped_tables\":[";
  for (size_t i = 0; i < r.stopped_tables.size(); ++i) {
    const StoppedTable& t = r.stopped_tables[i];
    j += (i > 0 ? "," : "") + std::string("{\"table\":") + JsonString(t.table) +
         ",\"error\":" + JsonString(t.error) + ",\"since\":" + JsonString(IsoTime(t.since_ms)) +
         "}";
  }
  // A stale file's progress is not progress: the agent is gone.
  j += "],\"progress\":" + SyncProgressJson(v.stale.empty() ? r.progress : std::nullopt);
  return j;
}

void PrintAgentText(const StateFileView& v) {
  if (!v.record) {
    std::printf(
        "agent:           unknown (%s)\n",
        v.error.empty() ? "no agent state file: no agent ran on this host yet" : v.error.c_str());
    return;
  }
  const AgentStateRecord& r = *v.record;
  if (v.stale.empty()) {
    std::printf("agent:           %s since %s (pid %lld, updated %s)\n", r.state.c_str(),
                IsoTime(r.since_ms).c_str(), static_cast<long long>(r.pid),
                IsoTime(r.updated_at_ms).c_str());
  } else {
    std::printf("agent:           not running: %s; its last state was %s since %s\n",
                v.stale.c_str(), r.state.c_str(), IsoTime(r.since_ms).c_str());
  }
  if (!r.last_error.empty()) {
    std::printf("last error:      %s (at %s%s)\n", r.last_error.c_str(),
                IsoTime(r.last_error_at_ms).c_str(),
                r.failures > 0 ? fmt::format(", {} failure(s) in a row", r.failures).c_str()
                               : ", recovered since");
  }
  for (const StoppedTable& t : r.stopped_tables) {
    std::printf("stopped table:   %s since %s: %s\n", t.table.c_str(), IsoTime(t.since_ms).c_str(),
                t.error.c_str());
  }
  if (r.progress && v.stale.empty()) {
    const SyncProgress& p = *r.progress;
    std::string eta = p.eta_s < 0 ? "not known yet" : fmt::format("about {:.0f} s left", p.eta_s);
    int pad = std::max(1, 16 - static_cast<int>(p.kind.size()));
    std::printf(
        "%s:%*s%lld of %lld change(s) sent, %lld of %lld table(s) sent, %.0f rows/s, %s "
        "(since %s; one transaction: nothing is visible before its commit)\n",
        p.kind.c_str(), pad, "", static_cast<long long>(p.rows_done),
        static_cast<long long>(p.rows_total), static_cast<long long>(p.tables_done),
        static_cast<long long>(p.tables_total), p.rows_per_s, eta.c_str(),
        IsoTime(p.started_ms).c_str());
    for (const SyncProgress::Table& t : p.tables) {
      std::printf("  %-30s %lld of %lld change(s), %.1f MB of values\n", t.table.c_str(),
                  static_cast<long long>(t.rows_done), static_cast<long long>(t.rows_total),
                  static_cast<double>(t.bytes_done) / 1e6);
    }
  }
}

// {"node":...,"epoch":...,...} or null when no lease was ever taken.
std::string LeaseJson(const SinkLease& l) {
  if (!l.exists) return "null";
  return "{\"node\":" + JsonString(l.leader_id) + ",\"host\":" + JsonString(l.leader_host) +
         ",\"epoch\":" + std::to_string(l.epoch) +
         ",\"expires_in_ms\":" + std::to_string(l.expires_in_ms) +
         ",\"held\":" + (l.expires_in_ms > 0 ? "true" : "false") +
         ",\"released\":" + (l.released ? "true" : "false") +
         ",\"heartbeats\":" + std::to_string(l.heartbeats) + "}";
}

std::string LeaseText(const SinkLease& l) {
  if (!l.exists) return "none yet (no agent has taken the lease)";
  std::string who = "node " + l.leader_id + (l.leader_host.empty() ? "" : " on " + l.leader_host) +
                    ", epoch " + std::to_string(l.epoch);
  if (l.expires_in_ms > 0) {
    return fmt::format("{}, lease expires in {:.1f} s", who, l.expires_in_ms / 1000.0);
  }
  return fmt::format("none: the lease of {} {} {:.1f} s ago", who,
                     l.released ? "was released" : "expired", -l.expires_in_ms / 1000.0);
}

}  // namespace

int RunStatus(const Config& config, bool json) {
  // First what the agent knows: it is shown even when the sink is not reachable.
  StateFileView agent = ReadAgentView(config);
  auto fail = [&](const Status& st) {
    if (json) {
      std::printf("{\"deployment\":%s,\"state\":\"error\",\"error\":%s%s}\n",
                  JsonString(config.deployment).c_str(), JsonString(st.message()).c_str(),
                  AgentJson(agent).c_str());
    } else {
      PrintAgentText(agent);
    }
    return Fail(st);
  };
  Result<std::unique_ptr<SinkAdmin>> admin = SinkAdmin::Connect(config.sink);
  if (!admin.ok()) return fail(admin.status());
  Result<SinkPosition> pos = (*admin)->ReadPosition();
  if (!pos.ok()) return fail(pos.status());
  Result<int64_t> parked = (*admin)->CountParked();
  if (!parked.ok()) return fail(parked.status());
  Result<std::vector<SinkRow>> pending =
      (*admin)->Query(PendingConflictsSql(), {config.deployment}, 0);
  if (!pending.ok()) return fail(pending.status().Wrap("count pending conflicts"));
  const long long conflicts_pending =
      pending->empty() || !(*pending)[0][0] ? 0 : std::stoll(*(*pending)[0][0]);
  Status bound = CheckBinding(config, **admin);
  if (!bound.ok()) return fail(bound);
  Result<SinkLease> lease = (*admin)->ReadLease();
  if (!lease.ok()) return fail(lease.status());
  bool held = lease->exists && lease->expires_in_ms > 0;
  // Would this node lead if it ran now (or does it)? The lease is free, or it holds it.
  bool would_lead = !held || lease->leader_id == config.node;
  Result<std::unique_ptr<JournalReader>> reader = JournalReader::Open(config.source);
  if (!reader.ok()) return fail(reader.status());
  Result<JournalStats> stats = (*reader)->Stats(pos->applied_seq);
  if (!stats.ok()) return fail(stats.status());
  // What the agent's read finds too (and resynchronises): show it before.
  Status behind = CheckNotBehind(stats->max_seq, pos->applied_seq);
  if (!behind.ok()) {
    return fail(behind.Wrap(config.source.path + " (`sluice run` resynchronises every table)"));
  }

  double now_ms =
      std::chrono::duration<double, std::milli>(std::chrono::system_clock::now().time_since_epoch())
          .count();
  double lag_s = stats->pending_rows > 0 ? (now_ms - stats->oldest_pending_at_ms) / 1000.0 : 0;
  if (json) {
    std::printf(
        "{\"deployment\":\"%s\",\"source_id\":\"%s\",\"sink_position\":%lld,"
        "\"journal_max_seq\":%lld,\"backlog_rows\":%lld,\"lag_seconds\":%.3f,"
        "\"parked_rows\":%lld,\"conflicts_pending\":%lld,\"initial_sync_done\":%s,"
        "\"pending_full_reads\":%lld,"
        "\"leader\":%s,\"this_node\":%s,\"would_lead\":%s%s}\n",
        config.deployment.c_str(), (*reader)->source_id().c_str(),
        static_cast<long long>(pos->applied_seq), static_cast<long long>(stats->max_seq),
        static_cast<long long>(stats->pending_rows), lag_s, static_cast<long long>(*parked),
        conflicts_pending, pos->applied_seq >= 0 ? "true" : "false",
        static_cast<long long>(stats->pending_full_reads), LeaseJson(*lease).c_str(),
        JsonString(config.node).c_str(), would_lead ? "true" : "false", AgentJson(agent).c_str());
  } else {
    std::printf("deployment:      %s\n", config.deployment.c_str());
    std::printf("source:          %s (id %s)\n", config.source.path.c_str(),
                (*reader)->source_id().c_str());
    std::printf("sink position:   %lld%s\n", static_cast<long long>(pos->applied_seq),
                pos->applied_seq < 0 ? " (initial sync not done)" : "");
    std::printf("journal max seq: %lld\n", static_cast<long long>(stats->max_seq));
    std::printf("backlog:         %lld journal row(s)\n",
                static_cast<long long>(stats->pending_rows));
    std::printf("lag:             %.3f s\n", lag_s);
    if (stats->pending_full_reads > 0) {
      std::printf("full reads:      %lld table(s) still to be read whole\n",
                  static_cast<long long>(stats->pending_full_reads));
    }
    std::printf("parked rows:     %lld (sync_metadata.conflict_log)\n",
                static_cast<long long>(*parked));
    std::printf("conflicts:       %lld pending%s\n", conflicts_pending,
                conflicts_pending > 0 ? " (sluice conflicts list --status pending)" : "");
    std::printf("leader:          %s\n", LeaseText(*lease).c_str());
    std::printf("this node:       %s (%s)\n", config.node.c_str(),
                !would_lead ? "stands by while the leader's lease lasts"
                : held      ? "holds the lease"
                            : "would take the lease");
    PrintAgentText(agent);
  }
  return 0;
}

int RunUninstall(const Config& config) {
  Status st = UninstallCapture(config.source);
  if (!st.ok()) return Fail(st.Wrap("uninstall from " + config.source.path));
  std::printf("removed every sluice object from %s; the app's tables are untouched\n",
              config.source.path.c_str());
  return 0;
}

int RunAgent(const Config& config) {
  Status policy = CheckConflictPolicy(config);
  if (!policy.ok()) return Fail(policy);
  uv_loop_t loop;
  uv_loop_init(&loop);
  int code = 0;
  {
    Replicator replicator(&loop, config);
    replicator.Start();
    uv_run(&loop, UV_RUN_DEFAULT);
    code = replicator.exit_code();
  }
  if (uv_loop_close(&loop) != 0) {
    spdlog::error("internal: handles left open at exit");
    return code == 0 ? 1 : code;
  }
  spdlog::info("exit {}", code);
  return code;
}

namespace {

// JSON text from the sink ("" = NULL) as a JSON value.
std::string JsonOrNull(const std::string& json) { return json.empty() ? "null" : json; }
std::string StringOrNull(const std::string& text) {
  return text.empty() ? "null" : JsonString(text);
}
std::string IntOrNull(const std::optional<int64_t>& v) { return v ? std::to_string(*v) : "null"; }

std::string ConflictJson(const ConflictEntry& e, bool images) {
  std::string j = "{\"id\":" + std::to_string(e.id) + ",\"table\":" + JsonString(e.table) +
                  ",\"key\":" + JsonOrNull(e.key) + ",\"kind\":" + JsonString(e.kind) +
                  ",\"strategy\":" + StringOrNull(e.strategy) +
                  ",\"status\":" + JsonString(e.status) + ",\"reason\":" + JsonString(e.reason) +
                  ",\"seq\":" + IntOrNull(e.seq) + ",\"epoch\":" + IntOrNull(e.epoch) +
                  ",\"batch\":" + IntOrNull(e.batch) +
                  ",\"created_at\":" + StringOrNull(e.created_at) +
                  ",\"resolved_by\":" + StringOrNull(e.resolved_by) +
                  ",\"resolved_at\":" + StringOrNull(e.resolved_at);
  if (images) {
    j += ",\"source\":" + JsonOrNull(e.source_image) + ",\"target\":" + JsonOrNull(e.target_image) +
         ",\"base\":" + JsonOrNull(e.base_image) + ",\"resolved\":" + JsonOrNull(e.resolved_image);
  }
  return j + "}";
}

void PrintConflictTable(const std::vector<ConflictEntry>& entries, bool images) {
  std::vector<std::vector<std::string>> rows = {{"ID", "TABLE", "KEY", "KIND", "STRATEGY", "STATUS",
                                                 "SEQ", "EPOCH", "BATCH", "CREATED", "RESOLVED"}};
  auto num = [](const std::optional<int64_t>& v) { return v ? std::to_string(*v) : "-"; };
  for (const ConflictEntry& e : entries) {
    rows.push_back({std::to_string(e.id), e.table, e.key, e.kind,
                    e.strategy.empty() ? "-" : e.strategy, e.status, num(e.seq), num(e.epoch),
                    num(e.batch), e.created_at,
                    e.resolved_by.empty() ? "-" : e.resolved_by + " at " + e.resolved_at});
  }
  std::vector<size_t> width(rows.front().size(), 0);
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  for (size_t r = 0; r < rows.size(); ++r) {
    std::string line;
    for (size_t i = 0; i < rows[r].size(); ++i) {
      line += rows[r][i];
      if (i + 1 < rows[r].size()) line += std::string(width[i] - rows[r][i].size() + 2, ' ');
    }
    std::printf("%s\n", line.c_str());
    if (!images || r == 0) continue;
    const ConflictEntry& e = entries[r - 1];
    std::printf("    source:   %s\n    target:   %s\n    base:     %s\n    resolved: %s\n",
                JsonOrNull(e.source_image).c_str(), JsonOrNull(e.target_image).c_str(),
                JsonOrNull(e.base_image).c_str(), JsonOrNull(e.resolved_image).c_str());
  }
}

// Who resolves when --by is not given: the OS user.
std::string OsUser() {
  if (const passwd* pw = ::getpwuid(::geteuid()); pw != nullptr && pw->pw_name != nullptr) {
    return pw->pw_name;
  }
  if (const char* user = std::getenv("USER"); user != nullptr && *user != '\0') return user;
  return "uid " + std::to_string(::geteuid());
}

}  // namespace

int RunConflictsList(const Config& config, const ConflictFilter& filter, bool json, bool images) {
  Result<std::unique_ptr<SinkAdmin>> admin = SinkAdmin::Connect(config.sink);
  if (!admin.ok()) return Fail(admin.status());
  Result<std::vector<ConflictEntry>> entries = ListConflicts(**admin, config.sink, filter, images);
  if (!entries.ok()) return Fail(entries.status());
  if (json) {
    for (const ConflictEntry& e : *entries) std::printf("%s\n", ConflictJson(e, images).c_str());
    return 0;
  }
  if (entries->empty()) {
    std::printf("no conflicts in deployment %s%s%s\n", config.deployment.c_str(),
                filter.table.empty() ? "" : (" for table " + filter.table).c_str(),
                filter.status.empty() ? "" : (" with status " + filter.status).c_str());
    return 0;
  }
  PrintConflictTable(*entries, images);
  return 0;
}

int RunConflictsResolve(const Config& config, ResolveRequest request) {
  if (request.row && request.take != ConflictTake::kMerged) {
    return Fail(Status::InvalidArgument("--row goes with --take merged"));
  }
  if (request.by.empty()) request.by = OsUser();
  Result<std::unique_ptr<SinkAdmin>> admin = SinkAdmin::Connect(config.sink);
  if (!admin.ok()) return Fail(admin.status());
  Result<ResolveOutcome> out = ResolveConflict(**admin, config.sink, request);
  if (!out.ok()) return Fail(out.status());
  const ConflictEntry& e = out->entry;
  std::string note;
  if (request.take == ConflictTake::kTarget && out->target_changed_since) {
    note += "; the row had changed outside again since the conflict was seen: kept as it is now";
  }
  if (out->row_state == "missing") note += "; the row stays deleted (the target's delete)";
  if (out->row_state == "deleted") note += "; the row is a tombstone now";
  std::printf("conflict %lld (%s %s): took %s, resolved by %s%s\n", static_cast<long long>(e.id),
              e.table.c_str(), e.key.c_str(), ConflictTakeName(request.take), e.resolved_by.c_str(),
              note.c_str());
  return 0;
}

}  // namespace sluice
