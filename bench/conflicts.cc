// Phase (g): catch-up throughput with conflict detection on and off, and with
// N % of the backlog in conflict with an outside writer (see conflicts.h).
#include "bench/conflicts.h"

#include <algorithm>
#include <cinttypes>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

#include "bench/host.h"
#include "bench/workload.h"
#include "sink/pg_sql.h"

namespace sluice::bench {
namespace {

namespace fs = std::filesystem;
using sluice::testing::PgRows;
using sluice::testing::QuoteIdent;
using sluice::testing::WriteFile;

// What the outside writer appends to a message's content: no source image has it.
constexpr const char* kOutsideMark = " [edited outside sluice]";
// Ids per outside UPDATE statement.
constexpr size_t kOutsideChunk = 5000;
// How often the bench reads pg_trigger while the agent catches up.
constexpr auto kTriggerSampleEvery = std::chrono::milliseconds(200);

// One arm of a round.
struct Variant {
  std::string key;  // JSON key and deployment tag
  bool detection = true;
  double pct = 0;  // share of the backlog's changes that hit a row changed outside
};

// The backlog every arm writes: `txns` transactions of `inserts` new messages
// and `updates` content updates of rows the first sync carried, each of those
// rows updated exactly once (update j is the j-th row of the preload).
struct Shape {
  int64_t txns = 0;
  int inserts = 0, updates = 0;
  int64_t preload() const { return txns * updates; }
  int64_t changes() const { return txns * (inserts + updates); }
};

// Preload rows (update index j) an outside writer changes for `k` conflicts,
// spread evenly over the backlog.
std::vector<int64_t> OutsideRows(int64_t preload, int64_t k) {
  std::vector<int64_t> out;
  for (int64_t j = 0; j < preload; ++j) {
    if ((j + 1) * k / preload > j * k / preload) out.push_back(j);
  }
  return out;
}

// The "conflicts" object of the agent's config for `strategy` ("" = none: the
// agent's default, source_wins). merge: the message entry of the shipped
// config/conflict-resolution-default.json.
std::string ConflictsJson(const std::string& strategy) {
  if (strategy.empty()) return "";
  if (strategy == "merge") {
    return "{\"default_strategy\": \"source_wins\", \"table_strategies\": {\"message\": "
           "{\"strategy\": \"merge\", \"compare_field\": \"updated_at\", \"fallback_strategy\": "
           "\"newest_wins\", \"merge_rules\": {\"content\": \"newest_wins\", \"data\": \"union\", "
           "\"meta\": \"union\"}}}}";
  }
  return "{\"default_strategy\": " + Json::Str(strategy).text() + "}";
}

// Adds "conflicts": `object` to a config file the bench wrote (one JSON object).
void AddConflictsKey(const std::string& config, const std::string& object) {
  std::string text = ReadWholeFile(config);
  size_t end = text.rfind('}');
  if (end == std::string::npos) Fail("config " + config + " is not a JSON object");
  WriteFile(config, text.substr(0, end) + ", \"conflicts\": " + object + "}\n");
}

// The mirror's conflict triggers by what they fire on.
struct TriggerState {
  int64_t active = 0;  // named like a conflict trigger, fires on INSERT / UPDATE / DELETE
  int64_t inert = 0;   // named like one, fires only on TRUNCATE (the bench's stand-ins)
  bool operator==(const TriggerState&) const = default;
};

std::string QualifiedMirror(const Deployment& d) {
  return QuoteIdent(d.schema) + "." + QuoteIdent("message");
}

std::string TriggerNamesArray() {
  std::string a = "{";
  for (const char* n : kConflictTriggers) a += std::string(a.size() > 1 ? "," : "") + n;
  return a + "}";
}

TriggerState ReadTriggers(Pg& pg, const Deployment& d) {
  // tgtype bits: 4 INSERT, 8 DELETE, 16 UPDATE, 32 TRUNCATE; tgenabled 'D' = disabled.
  PgRows r = pg.Query(
      "SELECT count(*) FILTER (WHERE tgtype & 28 <> 0 AND tgenabled <> 'D'), "
      "count(*) FILTER (WHERE tgtype & 28 = 0) FROM pg_trigger WHERE tgrelid = $1::regclass "
      "AND NOT tgisinternal AND tgname = ANY ($2::text[])",
      {QualifiedMirror(d), TriggerNamesArray()});
  return {std::stoll(*r.rows[0][0]), std::stoll(*r.rows[0][1])};
}

// Detection off: each of the four triggers dropped and a namesake calling the
// same sync_metadata function created BEFORE TRUNCATE (never fires while the
// agent applies). The agent's catalog step (ConflictTriggersSql) looks for
// the names and the functions' schema only, so it sees the set complete and
// does not create the real ones again.
void ReplaceTriggersWithInert(Pg& pg, const Deployment& d) {
  PgRows r = pg.Query(
      "SELECT tgname::text, tgfoid::regproc::text FROM pg_trigger WHERE tgrelid = $1::regclass "
      "AND NOT tgisinternal AND tgname = ANY ($2::text[]) ORDER BY 1",
      {QualifiedMirror(d), TriggerNamesArray()});
  if (r.rows.size() != std::size(kConflictTriggers)) {
    Fail(Fmt("mirror %s has %zu of the %zu conflict triggers before the bench replaces them",
             QualifiedMirror(d).c_str(), r.rows.size(), std::size(kConflictTriggers)));
  }
  std::string sql = "BEGIN;";
  for (const auto& row : r.rows) {
    std::string name = QuoteIdent(*row[0]);
    sql += " DROP TRIGGER " + name + " ON " + QualifiedMirror(d) + "; CREATE TRIGGER " + name +
           " BEFORE TRUNCATE ON " + QualifiedMirror(d) + " FOR EACH STATEMENT EXECUTE FUNCTION " +
           *row[1] + "();";
  }
  pg.Query(sql + " COMMIT");
}

// The parent of a process (-1 if unreadable): field 4 of /proc/PID/stat.
pid_t ParentPid(pid_t pid) {
  std::string line = sluice::testing::ReadFile("/proc/" + std::to_string(pid) + "/stat");
  size_t close = line.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream rest(line.substr(close + 2));
  std::string state;
  long ppid = -1;
  rest >> state >> ppid;
  return static_cast<pid_t>(ppid);
}

// CPU seconds of the PostgreSQL server the bench talks to (the postmaster
// `postmaster` and its children), by pid: other clusters on the machine
// (other test runs) are not counted.
std::map<pid_t, double> ClusterCpu(pid_t postmaster) {
  std::map<pid_t, double> out;
  for (const auto& [pid, secs] : CpuByPid("postgres")) {
    if (pid == postmaster || ParentPid(pid) == postmaster) out[pid] = secs;
  }
  return out;
}

double ClusterCpuSince(const std::map<pid_t, double>& before, pid_t postmaster) {
  double total = 0;
  for (const auto& [pid, secs] : ClusterCpu(postmaster)) {
    auto it = before.find(pid);
    total += secs - (it == before.end() ? 0.0 : it->second);
  }
  return total;
}

int64_t PgCount(Pg& pg, const std::string& sql,
                const std::vector<std::optional<std::string>>& params = {}) {
  return pg.ScalarInt(sql, params);
}

struct Run {
  std::string variant;
  int round = 0;
  int64_t preload_rows = 0, backlog_rows = 0, inserts = 0, updates = 0;
  int64_t outside_rows = 0, marked_before = 0, expected_conflicts = 0, logged_conflicts = 0;
  int64_t distinct_logged_keys = 0;
  int64_t kept_outside = 0;  // merge kept the outside content (the source left it unchanged)
  std::string log_breakdown;
  double seconds = NAN, rate = NAN, first_move_s = NAN, agent_cpu = NAN, pg_cpu = NAN;
  double write_s = NAN, outside_s = NAN;
  std::string load_at_start;
  TriggerState triggers_before, triggers_during_min, triggers_during_max, triggers_after;
  int64_t trigger_samples = 0;
  bool probe_marked = false;
  int64_t sink_rows = 0, source_rows = 0;

  Json ToJson() const {
    JsonObject j;
    j.Set("variant", Json::Str(variant));
    j.Set("round", Json::Int(round));
    j.Set("load_at_start", Json::Str(load_at_start));
    j.Set("preload_rows", Json::Int(preload_rows));
    j.Set("backlog_rows", Json::Int(backlog_rows));
    j.Set("inserts", Json::Int(inserts));
    j.Set("updates", Json::Int(updates));
    j.Set("app_backlog_write_seconds", Json::Num(write_s));
    j.Set("outside_rows_updated", Json::Int(outside_rows));
    j.Set("outside_update_seconds", Json::Num(outside_s));
    j.Set("rows_marked_before_catchup", Json::Int(marked_before));
    j.Set("seconds", Json::Num(seconds));
    j.Set("rows_per_s", Json::Num(rate));
    j.Set("seconds_to_first_position_move", Json::Num(first_move_s));
    j.Set("agent_cpu_seconds", Json::Num(agent_cpu));
    j.Set("postgres_cpu_seconds", Json::Num(pg_cpu));
    j.Set("conflicts_expected", Json::Int(expected_conflicts));
    j.Set("conflicts_logged", Json::Int(logged_conflicts));
    j.Set("conflicts_logged_distinct_keys", Json::Int(distinct_logged_keys));
    j.Set("conflict_log_breakdown", Json::Str(log_breakdown));
    j.Set("rows_keeping_outside_content", Json::Int(kept_outside));
    auto trig = [](const TriggerState& t) {
      JsonObject o;
      o.Set("active", Json::Int(t.active));
      o.Set("inert", Json::Int(t.inert));
      return o;
    };
    j.Set("triggers_before", trig(triggers_before));
    j.Set("triggers_during_min", trig(triggers_during_min));
    j.Set("triggers_during_max", trig(triggers_during_max));
    j.Set("triggers_after", trig(triggers_after));
    j.Set("trigger_samples_during", Json::Int(trigger_samples));
    j.Set("probe_outside_update_marked", Json::Bool(probe_marked));
    j.Set("sink_live_rows", Json::Int(sink_rows));
    j.Set("source_rows", Json::Int(source_rows));
    return j.ToJson();
  }
};

// The outside writer: a second client, sluice.writer unset, changes the
// content of the preload rows `rows` (update indexes). Returns rows updated.
int64_t WriteOutside(const Options& o, const Deployment& d, const MessageGen& gen,
                     const std::vector<int64_t>& rows) {
  Pg outside(o.conninfo);
  if (outside.Scalar("SELECT coalesce(current_setting('sluice.writer', true), '')").value_or("") !=
      "") {
    Fail("the outside writer's connection has sluice.writer set");
  }
  int64_t updated = 0;
  for (size_t i = 0; i < rows.size(); i += kOutsideChunk) {
    std::string ids = "{";
    for (size_t n = i; n < std::min(rows.size(), i + kOutsideChunk); ++n) {
      if (ids.size() > 1) ids += ",";
      ids += gen.Id(static_cast<uint64_t>(rows[n]));
    }
    ids += "}";
    updated += outside.ScalarInt("WITH u AS (UPDATE " + QualifiedMirror(d) +
                                     " SET content = content || $2 WHERE id = ANY ($1::text[]) "
                                     "RETURNING 1) SELECT count(*) FROM u",
                                 {ids, std::string(kOutsideMark)});
  }
  return updated;
}

Run OneRun(const Options& o, Deployments& deployments, const Variant& v, int round,
           const Shape& shape, const std::string& conflicts_json) {
  MessageGen gen(o.row_bytes);
  Run run;
  run.variant = v.key;
  run.round = round;
  DeploymentSpec spec;
  spec.tag = Fmt("g%d_%s", round, v.key.c_str());
  spec.init = false;
  spec.log_level = o.agent_log_level;
  Deployment d = deployments.Create(spec);
  if (!conflicts_json.empty()) AddConflictsKey(d.config, conflicts_json);
  RunOrFail({o.sluice, "init", "--config", d.config}, d.dir + "/init.log");
  Pg pg(o.conninfo);

  // Preload: the rows the backlog's updates reach, carried by the first sync.
  App app(d.db, o.synchronous, &gen);
  const int64_t preload = shape.preload();
  for (int64_t i = 0; i < preload;) {
    app.Begin();
    for (int r = 0; r < o.txn_rows && i < preload; ++r) app.Insert(static_cast<uint64_t>(i++));
    app.Commit();
  }
  app.set_next_index(static_cast<uint64_t>(preload));
  {
    AgentProcess agent(o.sluice, d.config, d.dir + "/agent-first.log");
    agent.Start();
    if (!WaitApplied(pg, {&agent}, d, JournalMaxSeq(app.db()), 600, "first sync")) {
      Fail("first sync timed out");
    }
    std::string how = StopAgent(agent, std::chrono::seconds(30));
    if (how != "exit 0") Fail("agent stop after the first sync: " + how);
  }
  const int64_t start_pos = AppliedSeq(pg, d.name);
  run.preload_rows = PgCount(pg, "SELECT count(*) FROM " + QualifiedMirror(d));
  if (run.preload_rows != preload) {
    Fail(Fmt("first sync: mirror has %lld rows, preload %lld",
             static_cast<long long>(run.preload_rows), static_cast<long long>(preload)));
  }
  TriggerState full{static_cast<int64_t>(std::size(kConflictTriggers)), 0};
  if (!(ReadTriggers(pg, d) == full)) Fail("the mirror lacks its conflict triggers after init");

  // The outside writer, between the first sync and the catch-up.
  if (v.pct > 0) {
    run.expected_conflicts =
        static_cast<int64_t>(std::llround(v.pct / 100.0 * static_cast<double>(shape.changes())));
    if (run.expected_conflicts > preload) {
      Fail(Fmt("%.1f %% of %lld changes is more than the %lld rows the backlog updates", v.pct,
               static_cast<long long>(shape.changes()), static_cast<long long>(preload)));
    }
    std::vector<int64_t> rows = OutsideRows(preload, run.expected_conflicts);
    auto t0 = Clock::now();
    run.outside_rows = WriteOutside(o, d, gen, rows);
    run.outside_s = Seconds(Clock::now() - t0);
    if (run.outside_rows != run.expected_conflicts) {
      Fail(Fmt("outside writer updated %lld rows, meant %lld",
               static_cast<long long>(run.outside_rows),
               static_cast<long long>(run.expected_conflicts)));
    }
  }
  run.marked_before = PgCount(pg, "SELECT count(*) FROM " + QualifiedMirror(d) + " WHERE " +
                                      QuoteIdent(kOutsideAtColumn) + " IS NOT NULL");
  if (run.marked_before != run.outside_rows) {
    Fail(Fmt("%lld rows marked as changed outside, %lld changed",
             static_cast<long long>(run.marked_before), static_cast<long long>(run.outside_rows)));
  }
  if (!v.detection) ReplaceTriggersWithInert(pg, d);
  run.triggers_before = ReadTriggers(pg, d);
  TriggerState expect = v.detection ? full : TriggerState{0, full.active};
  if (!(run.triggers_before == expect)) Fail("conflict triggers not as the variant needs");

  // The backlog, agent stopped: every update reaches one preload row, once.
  Log(Fmt("(g) round %d %s: app writes a backlog of %lld changes", round, v.key.c_str(),
          static_cast<long long>(shape.changes())));
  auto w0 = Clock::now();
  int64_t j = 0;
  for (int64_t t = 0; t < shape.txns; ++t) {
    app.Begin();
    uint64_t next = app.next_index();
    for (int r = 0; r < shape.inserts; ++r) app.Insert(next++);
    app.set_next_index(next);
    for (int r = 0; r < shape.updates; ++r) app.Update(static_cast<uint64_t>(j++), 1);
    app.Commit();
  }
  run.write_s = Seconds(Clock::now() - w0);
  run.inserts = shape.txns * shape.inserts;
  run.updates = j;
  const int64_t target = JournalMaxSeq(app.db());
  run.backlog_rows = target - start_pos;
  if (run.backlog_rows != shape.changes()) {
    Fail(Fmt("backlog is %lld journal rows, wrote %lld changes",
             static_cast<long long>(run.backlog_rows), static_cast<long long>(shape.changes())));
  }
  run.source_rows = app.db().ScalarInt("SELECT count(*) FROM message");

  // The same starting state for every arm: no dead tuples, fresh statistics.
  pg.Query("VACUUM (ANALYZE) " + QualifiedMirror(d));
  pg.Query("CHECKPOINT");

  // Catch-up: from spawning `sluice run` until the sink position reaches the journal's max seq.
  run.load_at_start = LoadAverage();
  Log(Fmt("(g) round %d %s: catch-up of %lld journal rows (load %s)", round, v.key.c_str(),
          static_cast<long long>(run.backlog_rows), run.load_at_start.c_str()));
  // The server's postmaster: the parent of this connection's backend (-1: not on this machine).
  const pid_t postmaster = ParentPid(static_cast<pid_t>(pg.ScalarInt("SELECT pg_backend_pid()")));
  auto pg_cpu0 = ClusterCpu(postmaster);
  auto c0 = Clock::now();
  AgentProcess agent(o.sluice, d.config, d.dir + "/agent.log");
  agent.Start();
  auto deadline = c0 + std::chrono::duration<double>(o.catchup_timeout_s);
  auto next_sample = c0;
  auto next_progress = c0 + std::chrono::seconds(5);
  Clock::time_point first_move;
  run.triggers_during_min = {INT64_MAX, INT64_MAX};
  run.triggers_during_max = {-1, -1};
  while (true) {
    int64_t a = AppliedSeq(pg, d.name);
    if (a != start_pos && first_move == Clock::time_point()) first_move = Clock::now();
    if (a >= target) break;
    CheckAlive(agent);
    if (Clock::now() > deadline)
      Fail(Fmt("catch-up did not finish within %.0f s", o.catchup_timeout_s));
    if (Clock::now() >= next_sample) {
      TriggerState s = ReadTriggers(pg, d);
      run.triggers_during_min = {std::min(run.triggers_during_min.active, s.active),
                                 std::min(run.triggers_during_min.inert, s.inert)};
      run.triggers_during_max = {std::max(run.triggers_during_max.active, s.active),
                                 std::max(run.triggers_during_max.inert, s.inert)};
      ++run.trigger_samples;
      next_sample += kTriggerSampleEvery;
    }
    if (Clock::now() > next_progress) {
      Log(Fmt("(g) catch-up: applied %lld of %lld", static_cast<long long>(a),
              static_cast<long long>(target)));
      next_progress += std::chrono::seconds(5);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  run.seconds = Seconds(Clock::now() - c0);
  run.first_move_s = Seconds(first_move - c0);
  run.agent_cpu = ProcessCpuSeconds(agent.pid());
  run.pg_cpu = postmaster > 0 ? ClusterCpuSince(pg_cpu0, postmaster) : NAN;
  run.rate = static_cast<double>(run.backlog_rows) / run.seconds;
  run.triggers_after = ReadTriggers(pg, d);
  if (run.trigger_samples == 0) {
    run.triggers_during_min = run.triggers_during_max = run.triggers_after;
  }
  if (!(run.triggers_after == expect) || !(run.triggers_during_min == expect) ||
      !(run.triggers_during_max == expect)) {
    Fail(
        Fmt("conflict triggers changed during the catch-up: active %lld..%lld, inert %lld..%lld, "
            "after %lld / %lld",
            static_cast<long long>(run.triggers_during_min.active),
            static_cast<long long>(run.triggers_during_max.active),
            static_cast<long long>(run.triggers_during_min.inert),
            static_cast<long long>(run.triggers_during_max.inert),
            static_cast<long long>(run.triggers_after.active),
            static_cast<long long>(run.triggers_after.inert)));
  }
  std::string stop = StopAgent(agent, std::chrono::seconds(60));
  if (stop != "exit 0") Fail("agent stop after the catch-up: " + stop);

  // What the catch-up did: every outside-changed row logged once, as resolved,
  // and written as the source has it; nothing left marked; rows match.
  PgRows log = pg.Query(
      "SELECT kind, coalesce(strategy, ''), status, coalesce(resolved_by, ''), count(*) FROM "
      "sync_metadata.conflict_log WHERE deployment = $1 GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4",
      {d.name});
  for (const auto& row : log.rows) {
    int64_t n = std::stoll(*row[4]);
    run.logged_conflicts += n;
    run.log_breakdown +=
        Fmt("%s%s/%s/%s/%s: %lld", run.log_breakdown.empty() ? "" : "; ", row[0]->c_str(),
            row[1]->c_str(), row[2]->c_str(), row[3]->c_str(), static_cast<long long>(n));
  }
  if (run.logged_conflicts != run.expected_conflicts) {
    Fail(Fmt("%s: %lld conflicts logged, %lld rows changed outside and updated by the backlog (%s)",
             v.key.c_str(), static_cast<long long>(run.logged_conflicts),
             static_cast<long long>(run.expected_conflicts), run.log_breakdown.c_str()));
  }
  if (run.expected_conflicts > 0) {
    const std::string strategy =
        o.conflict_strategy == "none" ? "source_wins" : o.conflict_strategy;
    std::string want = "update_origin_differs/" + strategy +
                       "/resolved/automatic: " + std::to_string(run.expected_conflicts);
    if (run.log_breakdown != want) {
      Fail("conflict log is " + run.log_breakdown + ", expected " + want);
    }
    std::set<std::string> expected_ids;
    for (int64_t r : OutsideRows(preload, run.expected_conflicts)) {
      expected_ids.insert(gen.Id(static_cast<uint64_t>(r)));
    }
    PgRows keys = pg.Query(
        "SELECT row_key ->> 0 FROM sync_metadata.conflict_log WHERE deployment = $1", {d.name});
    std::set<std::string> logged_ids;
    for (const auto& row : keys.rows) {
      if (!row[0]) Fail("conflict_log row_key is not a one-element array (message's key is id)");
      logged_ids.insert(*row[0]);
    }
    run.distinct_logged_keys = static_cast<int64_t>(logged_ids.size());
    if (logged_ids != expected_ids) {
      Fail("the conflict log names other rows than the outside writer changed");
    }
  }
  // A backlog update that happens to draw the content the row had (the same
  // offset into MessageGen's pool, about 1 in 65,536) changes only updated_at:
  // merge then rightly keeps the outside content, and the row stays marked
  // (its base := the source image). Every other row ends as the source has it.
  if (run.expected_conflicts > 0 && o.conflict_strategy == "merge") {
    for (int64_t r : OutsideRows(preload, run.expected_conflicts)) {
      uint64_t i = static_cast<uint64_t>(r);
      if (gen.Content(i, 1) == gen.Content(i, 0)) ++run.kept_outside;
    }
  }
  int64_t marked_after = PgCount(pg, "SELECT count(*) FROM " + QualifiedMirror(d) + " WHERE " +
                                         QuoteIdent(kOutsideAtColumn) + " IS NOT NULL");
  int64_t outside_content =
      PgCount(pg, "SELECT count(*) FROM " + QualifiedMirror(d) + " WHERE strpos(content, $1) > 0",
              {std::string(kOutsideMark)});
  if (marked_after != run.kept_outside || outside_content != run.kept_outside) {
    Fail(
        Fmt("after the catch-up %lld rows still marked, %lld hold the outside content; expected "
            "%lld (rows whose source update left the content as it was)",
            static_cast<long long>(marked_after), static_cast<long long>(outside_content),
            static_cast<long long>(run.kept_outside)));
  }
  run.sink_rows = PgCount(
      pg, "SELECT count(*) FROM " + QualifiedMirror(d) + " WHERE _sluice_deleted_at IS NULL");
  if (run.sink_rows != run.source_rows) {
    Fail(Fmt("sink has %lld live rows, source %lld", static_cast<long long>(run.sink_rows),
             static_cast<long long>(run.source_rows)));
  }
  // Detection really on (off): an outside UPDATE now marks (does not mark) a row.
  run.probe_marked = pg.Scalar("UPDATE " + QualifiedMirror(d) +
                                   " SET meta = '{\"bench_probe\": 1}' WHERE id = $1 " +
                                   "RETURNING " + QuoteIdent(kOutsideAtColumn) + " IS NOT NULL",
                               {gen.Id(static_cast<uint64_t>(preload))})
                         .value_or("") == "t";
  if (run.probe_marked != v.detection) {
    Fail(Fmt("probe: an outside UPDATE after the catch-up %s the row with detection %s",
             run.probe_marked ? "marked" : "did not mark", v.detection ? "on" : "off"));
  }

  if (!o.keep) {
    pg.Query("DROP SCHEMA IF EXISTS " + QuoteIdent(d.schema) + " CASCADE");
    std::error_code ec;
    fs::remove_all(d.dir, ec);
  }
  return run;
}

}  // namespace

void RunConflicts(const Options& o, Deployments& deployments, JsonObject& j, std::string* summary,
                  ConflictFigures* figures) {
  Shape shape;
  shape.txns = o.changes / o.txn_rows;
  shape.updates = o.txn_rows * o.update_pct / 100;
  shape.inserts = o.txn_rows - shape.updates;
  if (shape.updates <= 0) Fail("(g) needs --update-pct > 0: conflicts come from updates");

  std::vector<Variant> variants = {{"detection_off", false, 0}, {"detection_on_0pct", true, 0}};
  for (double p : o.conflict_pcts) {
    variants.push_back({Fmt("detection_on_%gpct", p), true, p});
  }
  const std::string strategy = o.conflict_strategy == "none" ? "" : o.conflict_strategy;
  const std::string conflicts_json = ConflictsJson(strategy);
  const std::string strategy_label =
      strategy.empty() ? "source_wins (the agent's default: no `conflicts` key in the config)"
                       : strategy;
  std::string load_start = LoadAverage();

  std::map<std::string, std::vector<Run>> by_variant;
  std::vector<Json> runs;
  for (int round = 1; round <= o.conflict_rounds; ++round) {
    // Rotate the order so that drift over the run hits every arm alike.
    for (size_t n = 0; n < variants.size(); ++n) {
      const Variant& v = variants[(n + static_cast<size_t>(round - 1)) % variants.size()];
      Run r = OneRun(o, deployments, v, round, shape, conflicts_json);
      Log(Fmt("(g) round %d %s: %.0f rows/s, %lld conflicts logged", round, v.key.c_str(), r.rate,
              static_cast<long long>(r.logged_conflicts)));
      runs.push_back(r.ToJson());
      by_variant[v.key].push_back(std::move(r));
    }
  }

  auto median_of = [&](const std::string& key, double Run::*field) {
    std::vector<double> v;
    for (const Run& r : by_variant[key]) v.push_back(r.*field);
    return Median(v);
  };
  const double base = median_of("detection_off", &Run::rate);
  // Within-round ratios: each arm against detection off of the same round.
  auto round_ratios = [&](const std::string& key) {
    std::vector<double> out;
    const auto& off = by_variant["detection_off"];
    const auto& on = by_variant[key];
    for (size_t i = 0; i < std::min(off.size(), on.size()); ++i)
      out.push_back(on[i].rate / off[i].rate);
    return out;
  };

  j.Set("backlog",
        Json::Str(Fmt(
            "%lld transactions of %d rows: %d inserts of new messages + %d content updates of rows "
            "the first sync carried (each of the %lld preloaded rows updated once, in preload "
            "order)",
            static_cast<long long>(shape.txns), o.txn_rows, shape.inserts, shape.updates,
            static_cast<long long>(shape.preload()))));
  j.Set("backlog_changes", Json::Int(shape.changes()));
  j.Set("preload_rows", Json::Int(shape.preload()));
  j.Set("txn_rows", Json::Int(o.txn_rows));
  j.Set("update_pct", Json::Int(o.update_pct));
  j.Set("rounds", Json::Int(o.conflict_rounds));
  j.Set("strategy", Json::Str(strategy_label));
  j.Set("conflicts_config", conflicts_json.empty() ? Json() : Json::Raw(conflicts_json));
  j.Set(
      "detection_off",
      Json::Str(
          "after the first sync the mirror's four conflict triggers (" + TriggerNamesArray() +
          ") are dropped and namesakes calling the same functions created BEFORE TRUNCATE FOR EACH "
          "STATEMENT: the agent's catalog step finds the names and creates nothing; pg_trigger "
          "read "
          "before, every 200 ms during and after the catch-up: 0 triggers on INSERT/UPDATE/DELETE; "
          "an "
          "outside UPDATE afterwards marks nothing. Columns _sluice_outside_at/_sluice_base, their "
          "partial index and the agent's per-batch settings and conflict count stay"));
  j.Set("outside_writer",
        Json::Str(Fmt(
            "a second PostgreSQL client (sluice.writer unset) after the first sync: UPDATE "
            "message SET content = content || '%s' WHERE id = ANY(...) in chunks of %zu, rows "
            "evenly spread over the backlog's updates; the backlog's update of each such row is "
            "one conflict (update_origin_differs)",
            kOutsideMark, kOutsideChunk)));
  j.Set("before_each_catchup", Json::Str("VACUUM (ANALYZE) of the mirror, CHECKPOINT"));
  j.Set("timing", Json::Str("from spawning `sluice run` until the sink position reaches the "
                            "journal's max seq (polled every 10 ms)"));
  j.Set("postgres_cpu", Json::Str("utime+stime of this run's postmaster and its children during "
                                  "the catch-up (other clusters on the machine not counted)"));
  j.Set("loadavg_at_start", Json::Str(load_start));
  JsonObject med;
  for (const Variant& v : variants) {
    JsonObject m;
    double rate = median_of(v.key, &Run::rate);
    m.Set("detection", Json::Bool(v.detection));
    m.Set("conflict_pct", Json::Num(v.pct));
    m.Set("median_rows_per_s", Json::Num(rate));
    m.Set("median_seconds", Json::Num(median_of(v.key, &Run::seconds)));
    m.Set("ratio_to_detection_off", Json::Num(rate / base));
    std::vector<Json> rr;
    for (double x : round_ratios(v.key)) rr.push_back(Json::Num(x));
    m.Set("within_round_ratios", JsonArray(rr));
    m.Set("median_agent_cpu_seconds", Json::Num(median_of(v.key, &Run::agent_cpu)));
    m.Set("median_postgres_cpu_seconds", Json::Num(median_of(v.key, &Run::pg_cpu)));
    m.Set("conflicts_per_round", Json::Int(by_variant[v.key].front().logged_conflicts));
    med.Set(v.key, m);
  }
  j.Set("medians", med);
  j.Set("runs", JsonArray(runs));
  j.Set("loadavg_at_end", Json::Str(LoadAverage()));
  figures->detection_ratio = median_of("detection_on_0pct", &Run::rate) / base;

  *summary += Fmt(
      "\n(g) conflict detection at the sink: catch-up of a %lld-change backlog (%lld txns of %d "
      "rows: %d inserts + %d content updates of rows the first sync carried, %lld preloaded), "
      "median of %d round(s), arms rotated per round; strategy %s\n",
      static_cast<long long>(shape.changes()), static_cast<long long>(shape.txns), o.txn_rows,
      shape.inserts, shape.updates, static_cast<long long>(shape.preload()), o.conflict_rounds,
      strategy_label.c_str());
  *summary +=
      "      detection off: the 4 conflict triggers dropped, inert BEFORE TRUNCATE "
      "namesakes keep the agent from re-creating them (pg_trigger checked before, every "
      "200 ms during and after each catch-up; an outside UPDATE afterwards marks nothing)\n";
  *summary += Fmt("      %-30s %9s  %6s  %-20s  %9s  %8s  %s\n", "arm (medians)", "changes/s",
                  "vs off", "(per round)", "agent CPU", "PG CPU",
                  "conflicts logged (= rows changed outside, asserted)");
  for (const Variant& v : variants) {
    std::string rr;
    for (double x : round_ratios(v.key)) rr += Fmt("%s%.3f", rr.empty() ? "" : " ", x);
    const Run& first = by_variant[v.key].front();
    std::string label =
        !v.detection ? "detection off, 0 %" : Fmt("detection on, %g %% conflicts", v.pct);
    std::string kept =
        first.kept_outside > 0
            ? Fmt(" (%lld rows kept the outside content: their source update left it as it was)",
                  static_cast<long long>(first.kept_outside))
            : "";
    *summary += Fmt("      %-30s %9.0f  %6.3f  %-20s  %7.2f s  %6.2f s  %lld%s\n", label.c_str(),
                    median_of(v.key, &Run::rate), median_of(v.key, &Run::rate) / base,
                    ("(" + rr + ")").c_str(), median_of(v.key, &Run::agent_cpu),
                    median_of(v.key, &Run::pg_cpu), static_cast<long long>(first.logged_conflicts),
                    kept.c_str());
  }
  *summary += "      load average at start of the phase: " + load_start +
              ", at end: " + LoadAverage() + "\n";
}

}  // namespace sluice::bench
