// sluice_bench: end-to-end benchmark of the sluice agent against a real
// PostgreSQL. Drives the real binary (init / run) on SQLite files built from
// the Open WebUI fixture schema and measures, each with its conditions:
//   (a) catch-up throughput on a backlog vs PostgreSQL's own COPY ingest rate,
//       and the largest lag while the app writes at full speed;
//   (b) commit-to-visible latency at a steady 1,000 single-row txn/s (LISTEN/NOTIFY);
//   (c) trigger overhead on the app's own 1,000-row insert transactions;
//   (d) the agent's peak RSS (VmHWM) after (a);
//   (f) failover of a pair: SIGKILL / SIGTERM of the leader to the standby's
//       first commit, and the lease's cost (bench/failover.h);
//   (g) catch-up with conflict detection off / on, 0 % and N % of the backlog
//       in conflict with an outside writer (bench/conflicts.h).
// Usage: sluice_bench --sluice PATH [--conninfo STR] [--json OUT] [options]; see --help.
// bench/run.sh runs it inside pg_virtualenv. Not part of the test suite.
#include <fcntl.h>
#include <libpq-fe.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <csignal>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "bench/basics.h"
#include "bench/conflicts.h"
#include "bench/deployment.h"
#include "bench/failover.h"
#include "bench/host.h"
#include "bench/latency.h"
#include "bench/options.h"
#include "bench/report.h"
#include "bench/workload.h"
#include "common/copy_text.h"
#include "tests/support/processes.h"
#include "tests/support/sql_clients.h"

extern char** environ;

namespace sluice::bench {
namespace {

namespace fs = std::filesystem;
using sluice::testing::Pg;
using sluice::testing::QuoteIdent;
using sluice::testing::WriteFile;

// ---------------------------------------------------------------- the bench

class Bench {
 public:
  explicit Bench(Options o) : o_(std::move(o)) {}

  int Run() {
    char tmpl[4096];
    std::snprintf(tmpl, sizeof(tmpl), "%s/sluice-bench.XXXXXX", o_.workdir.c_str());
    if (mkdtemp(tmpl) == nullptr) Fail("mkdtemp in " + o_.workdir + ": " + std::strerror(errno));
    dir_ = tmpl;
    suffix_ = Fmt("%lld", static_cast<long long>(UnixMillis() % 100000000));
    schema_sql_ = ReadWholeFile(o_.schema_sql);
    pg_ = std::make_unique<Pg>(o_.conninfo);
    deployments_ =
        std::make_unique<Deployments>(o_.sluice, o_.conninfo, dir_, suffix_, schema_sql_);
    Conditions();

    int failures = 0;
    auto phase = [&](const std::string& key, const std::function<void(JsonObject&)>& fn) {
      JsonObject obj;
      auto t0 = Clock::now();
      try {
        fn(obj);
      } catch (const std::exception& e) {
        ++failures;
        obj.Set("error", Json::Str(e.what()));
        summary_ += "\n  " + key + ": FAILED: " + e.what() + "\n";
        Log(key + " failed: " + e.what());
      }
      obj.Set("phase_wall_seconds", Json::Num(Seconds(Clock::now() - t0)));
      results_.Set(key, obj);
    };
    if (Wants('a')) phase("catchup", [&](JsonObject& j) { CatchUp(j); });
    if (Wants('b')) phase("latency", [&](JsonObject& j) { Latency(j); });
    if (Wants('c')) phase("trigger_overhead", [&](JsonObject& j) { TriggerOverhead(j); });
    if (Wants('f')) {
      phase("failover",
            [&](JsonObject& j) { RunFailover(o_, *deployments_, j, &summary_, &failover_); });
    }
    if (Wants('g')) {
      phase("conflicts",
            [&](JsonObject& j) { RunConflicts(o_, *deployments_, j, &summary_, &conflicts_); });
    }
    Targets();
    conditions_.Set("loadavg_at_end", Json::Str(LoadAverage()));
    summary_ += "  load average at end: " + LoadAverage() + " (1/5/15 min)\n";

    JsonObject root;
    root.Set("tool", Json::Str("sluice_bench"));
    root.Set("generated_at_unix_ms", Json::Int(UnixMillis()));
    root.Set("mode", Json::Str(o_.quick ? "quick" : "full"));
    root.Set("conditions", conditions_);
    root.Set("results", results_);
    root.Set("targets", targets_);
    root.Set("failed_phases", Json::Int(failures));
    if (!o_.json_path.empty()) {
      std::string tmp = o_.json_path + ".tmp";
      WriteFile(tmp, root.ToJson().text() + "\n");
      fs::rename(tmp, o_.json_path);
    }
    std::printf("%s\n", summary_.c_str());
    if (!o_.json_path.empty()) std::printf("JSON: %s\n", o_.json_path.c_str());
    Cleanup();
    return failures == 0 ? 0 : 1;
  }

 private:
  bool Wants(char p) const { return o_.phases.find(p) != std::string::npos; }

  void Conditions() {
    struct utsname u {};
    uname(&u);
    std::string pg_version = pg_->Scalar("SHOW server_version").value_or("");
    std::string version_out;
    try {
      version_out = Trim(RunOrFail({o_.sluice, "--version"}, dir_ + "/version.log"));
    } catch (const std::exception& e) {
      version_out = std::string("unknown: ") + e.what();
    }
    auto setting = [&](const char* name) {
      try {
        return pg_->Scalar(std::string("SELECT current_setting('") + name + "')").value_or("");
      } catch (const std::exception&) {
        return std::string("unknown");
      }
    };
    std::string data_dir = setting("data_directory");
    pg_local_ = fs::exists(data_dir);
    unsigned cores = std::thread::hardware_concurrency();
    long online = sysconf(_SC_NPROCESSORS_ONLN);

    conditions_.Set("cpu_model", Json::Str(CpuModel()));
    conditions_.Set("cores_online", Json::Int(online));
    conditions_.Set("cores_usable", Json::Int(cores));
    conditions_.Set("kernel", Json::Str(std::string(u.sysname) + " " + u.release));
    conditions_.Set("sqlite_version", Json::Str(sqlite3_libversion()));
    conditions_.Set("postgresql_version", Json::Str(pg_version));
    conditions_.Set("libpq_version", Json::Int(PQlibVersion()));
    conditions_.Set("sluice_version", Json::Str(version_out));
    conditions_.Set("sluice_binary", Json::Str(fs::absolute(o_.sluice).string()));
    conditions_.Set("workdir", Json::Str(dir_));
    conditions_.Set("workdir_fs", Json::Str(FsType(dir_)));
    conditions_.Set("pg_data_directory_fs", Json::Str(pg_local_ ? FsType(data_dir) : "remote"));
    conditions_.Set("pg_local", Json::Bool(pg_local_));
    for (const char* s :
         {"fsync", "synchronous_commit", "shared_buffers", "max_wal_size", "wal_level"}) {
      conditions_.Set(std::string("pg_") + s, Json::Str(setting(s)));
    }
    conditions_.Set("app_journal_mode", Json::Str("wal"));
    conditions_.Set("app_synchronous", Json::Str(o_.synchronous));
    conditions_.Set("source_schema", Json::Str(o_.schema_sql));
    conditions_.Set("table", Json::Str("message"));
    conditions_.Set("content_bytes", Json::Int(static_cast<int64_t>(o_.row_bytes)));
    conditions_.Set("agent_log_level", Json::Str(o_.agent_log_level));
    conditions_.Set("loadavg_at_start", Json::Str(LoadAverage()));

    summary_ += "sluice bench (" + std::string(o_.quick ? "quick" : "full") + ")\n";
    summary_ +=
        Fmt("  machine: %s, %ld cores online (%u usable), %s %s\n  SQLite %s (app and agent, "
            "journal_mode=WAL, synchronous=%s); PostgreSQL %s (%s, fsync=%s, "
            "synchronous_commit=%s)\n  %s; workdir %s (%s)\n",
            CpuModel().c_str(), online, cores, u.sysname, u.release, sqlite3_libversion(),
            o_.synchronous.c_str(), pg_version.c_str(),
            pg_local_ ? ("local, data on " + FsType(data_dir)).c_str() : "remote",
            setting("fsync").c_str(), setting("synchronous_commit").c_str(), version_out.c_str(),
            dir_.c_str(), FsType(dir_).c_str());
    summary_ += "  load average at start: " + LoadAverage() + " (1/5/15 min)\n";
    summary_ += "  workload: Open WebUI `message` rows (UUID ids, " + std::to_string(o_.row_bytes) +
                "-byte content, JSON data/meta, nanosecond created_at/updated_at)\n";
  }

  Deployment NewDeployment(const std::string& tag, bool init) {
    DeploymentSpec spec;
    spec.tag = tag;
    spec.init = init;
    spec.log_level = o_.agent_log_level;
    return deployments_->Create(spec);
  }

  // ---- (a) catch-up, COPY comparison, lag under full-speed writes, (d) RSS
  void CatchUp(JsonObject& j) {
    MessageGen gen(o_.row_bytes);
    Deployment d = NewDeployment("a", true);
    Pg pg(o_.conninfo);

    // Initial sync of the empty tables, then stop: the backlog is then streamed
    // from the journal, not loaded by the initial snapshot.
    {
      AgentProcess agent(o_.sluice, d.config, d.dir + "/agent-initial.log");
      agent.Start();
      if (!WaitApplied(pg, {&agent}, d, 0, 120, "initial sync")) Fail("initial sync timed out");
      std::string how = StopAgent(agent, std::chrono::seconds(30));
      if (how != "exit 0") Fail("agent stop after initial sync: " + how);
    }
    int64_t start_pos = AppliedSeq(pg, d.name);

    // The backlog, agent stopped.
    Log(Fmt("(a) app writes a backlog of %lld changes, agent stopped",
            static_cast<long long>(o_.changes)));
    App app(d.db, o_.synchronous, &gen);
    int64_t seq_before = JournalMaxSeq(app.db());
    int64_t txns = o_.changes / o_.txn_rows;
    auto w0 = Clock::now();
    for (int64_t t = 0; t < txns; ++t) app.MixedTxn(o_.txn_rows, o_.update_pct);
    double write_s = Seconds(Clock::now() - w0);
    int64_t target = JournalMaxSeq(app.db());
    int64_t journal_rows = target - seq_before;
    int64_t backlog = target - start_pos;
    int64_t distinct_rows = app.db().ScalarInt("SELECT count(*) FROM message");
    int64_t db_bytes =
        static_cast<int64_t>(fs::file_size(d.db)) +
        (fs::exists(d.db + "-wal") ? static_cast<int64_t>(fs::file_size(d.db + "-wal")) : 0);

    // Catch-up: from spawning `sluice run` until the sink position reaches the
    // journal's max seq.
    Log(Fmt("(a) catch-up of %lld journal rows", static_cast<long long>(backlog)));
    auto pg_cpu0 = CpuByPid("postgres");
    auto c0 = Clock::now();
    AgentProcess agent(o_.sluice, d.config, d.dir + "/agent.log");
    agent.Start();
    Clock::time_point first_move;
    bool done = WaitApplied(pg, {&agent}, d, target, o_.catchup_timeout_s, "catch-up", &first_move);
    double catch_s = Seconds(Clock::now() - c0);
    double first_move_s = Seconds(first_move - c0);
    double agent_cpu = ProcessCpuSeconds(agent.pid());
    double pg_cpu = CpuSince(pg_cpu0, "postgres");
    int64_t hwm_after_catchup = VmHwmKib(agent.pid());
    if (!done) Fail(Fmt("catch-up did not finish within %.0f s", o_.catchup_timeout_s));
    double rate = static_cast<double>(backlog) / catch_s;

    // Sink check: same row count as the source.
    int64_t sink_rows = pg.ScalarInt("SELECT count(*) FROM " + QuoteIdent(d.schema) +
                                     ".message WHERE _sluice_deleted_at IS NULL");

    JsonObject& cu = j;
    cu.Set("changes_requested", Json::Int(o_.changes));
    cu.Set("journal_rows", Json::Int(journal_rows));
    cu.Set("backlog_rows", Json::Int(backlog));
    cu.Set("txn_rows", Json::Int(o_.txn_rows));
    cu.Set("inserts", Json::Int(static_cast<int64_t>(app.inserted())));
    cu.Set("updates", Json::Int(static_cast<int64_t>(app.updated())));
    cu.Set("distinct_rows", Json::Int(distinct_rows));
    cu.Set("sqlite_file_bytes", Json::Int(db_bytes));
    cu.Set("app_backlog_write_seconds", Json::Num(write_s));
    cu.Set("app_backlog_write_rows_per_s", Json::Num(static_cast<double>(journal_rows) / write_s));
    cu.Set("seconds", Json::Num(catch_s));
    cu.Set("rows_per_s", Json::Num(rate));
    cu.Set("seconds_to_first_position_move", Json::Num(first_move_s));
    cu.Set("agent_cpu_seconds", Json::Num(agent_cpu));
    cu.Set("postgres_cpu_seconds", pg_local_ ? Json::Num(pg_cpu) : Json());
    cu.Set("sink_live_rows", Json::Int(sink_rows));
    cu.Set("sink_rows_match_source", Json::Bool(sink_rows == distinct_rows));
    summary_ += Fmt(
        "\n(a) catch-up: %.0f rows/s  (%lld journal rows: %llu inserts + %llu updates in "
        "%d-row txns, %lld distinct rows; %.2f s from `sluice run` to sink position = journal "
        "max seq %lld; first position move after %.2f s)\n      agent CPU %.2f s, postgres CPU "
        "%.2f s during catch-up; sink rows "
        "%lld vs source %lld (%s)\n      app wrote the backlog at %.0f rows/s (triggers on, "
        "agent stopped)\n",
        rate, static_cast<long long>(backlog), static_cast<unsigned long long>(app.inserted()),
        static_cast<unsigned long long>(app.updated()), o_.txn_rows,
        static_cast<long long>(distinct_rows), catch_s, static_cast<long long>(target),
        first_move_s, agent_cpu, pg_cpu, static_cast<long long>(sink_rows),
        static_cast<long long>(distinct_rows), sink_rows == distinct_rows ? "match" : "MISMATCH",
        static_cast<double>(journal_rows) / write_s);

    // The same rows through PostgreSQL's own COPY (the agent idles meanwhile).
    CopyBaseline(cu, pg, d, app.db(), rate);

    // Lag while the app writes at full speed with the agent running.
    LagUnderLoad(cu, pg, agent, d, app);

    // (d) peak RSS, read just before stopping the agent.
    int64_t hwm = VmHwmKib(agent.pid());
    std::string stop = StopAgent(agent, std::chrono::seconds(60));
    JsonObject rss;
    rss.Set("vm_hwm_kib", Json::Int(hwm));
    rss.Set("vm_hwm_mib", Json::Num(static_cast<double>(hwm) / 1024.0));
    rss.Set("vm_hwm_kib_after_catchup", Json::Int(hwm_after_catchup));
    rss.Set("workload", Json::Str(Fmt("catch-up of %lld rows, then the full-speed lag run",
                                      static_cast<long long>(backlog))));
    rss.Set("agent_stop", Json::Str(stop));
    results_.Set("agent_rss", rss);
    rss_mib_ = static_cast<double>(hwm) / 1024.0;
    summary_ += Fmt(
        "(d) agent peak RSS: %.1f MiB VmHWM (after catch-up of %lld rows: %.1f MiB; then the lag "
        "run); agent stop: %s\n",
        rss_mib_, static_cast<long long>(backlog), static_cast<double>(hwm_after_catchup) / 1024.0,
        stop.c_str());
  }

  void LagUnderLoad(JsonObject& cu, Pg& pg, AgentProcess& agent, const Deployment& d, App& app) {
    Log(Fmt("(a) lag: app writes %d-row txns at full speed for %.0f s, agent running", o_.txn_rows,
            o_.lag_seconds));
    std::atomic<bool> stop{false};
    std::atomic<int64_t> app_rows{0};
    std::string app_error;
    std::thread writer([&] {
      try {
        while (!stop.load()) {
          app.MixedTxn(o_.txn_rows, o_.update_pct);
          app_rows += o_.txn_rows;
        }
      } catch (const std::exception& e) {
        app_error = e.what();
      }
    });

    Sqlite reader(d.db, kBusyTimeoutMs, /*read_only=*/true);
    std::vector<Json> samples;
    int64_t max_lag_rows = 0;
    double max_lag_ms = 0;
    std::vector<double> lag_rows_all;
    auto t0 = Clock::now();
    auto write_end = t0 + std::chrono::duration<double>(o_.lag_seconds);
    auto next = t0;
    bool writing = true;
    int64_t final_seq = -1;
    double drain_s = 0;
    Clock::time_point write_stopped;
    while (true) {
      next += std::chrono::milliseconds(50);
      std::this_thread::sleep_until(next);
      CheckAlive(agent);
      int64_t applied = AppliedSeq(pg, d.name);  // first: the lag is never underestimated
      reader.Exec("BEGIN");
      int64_t max_seq = JournalMaxSeq(reader);
      int64_t oldest_at = -1;
      {
        SqliteStatement s(reader.handle(),
                          "SELECT at FROM _sluice_journal WHERE seq > ?1 ORDER BY seq LIMIT 1");
        s.BindInt(1, applied);
        if (s.Step()) oldest_at = s.Int(0);
      }
      reader.Exec("COMMIT");
      int64_t now_ms = UnixMillis();
      int64_t lag_rows = std::max<int64_t>(0, max_seq - applied);
      double lag_ms = oldest_at >= 0 ? static_cast<double>(now_ms - oldest_at) : 0.0;
      double t_ms = Millis(Clock::now() - t0);
      samples.push_back(JsonArray({Json::Num(t_ms), Json::Int(lag_rows), Json::Num(lag_ms)}));
      if (writing) {
        max_lag_rows = std::max(max_lag_rows, lag_rows);
        max_lag_ms = std::max(max_lag_ms, lag_ms);
        lag_rows_all.push_back(static_cast<double>(lag_rows));
        if (Clock::now() >= write_end) {
          stop = true;
          writer.join();
          write_stopped = Clock::now();
          writing = false;
          final_seq = JournalMaxSeq(reader);
          if (!app_error.empty()) Fail("app writer: " + app_error);
        }
      } else if (applied >= final_seq) {
        drain_s = Seconds(Clock::now() - write_stopped);
        break;
      } else if (Seconds(Clock::now() - write_stopped) > 600) {
        Fail("agent did not catch up within 600 s after the full-speed run");
      }
    }
    double write_s = Seconds(write_stopped - t0);
    std::sort(lag_rows_all.begin(), lag_rows_all.end());
    JsonObject lag;
    lag.Set("write_seconds", Json::Num(write_s));
    lag.Set("app_rows", Json::Int(app_rows.load()));
    lag.Set("app_rows_per_s", Json::Num(static_cast<double>(app_rows.load()) / write_s));
    lag.Set("txn_rows", Json::Int(o_.txn_rows));
    lag.Set("sample_interval_ms", Json::Int(50));
    lag.Set("samples_while_writing", Json::Int(static_cast<int64_t>(lag_rows_all.size())));
    lag.Set("max_lag_rows", Json::Int(max_lag_rows));
    lag.Set("p50_lag_rows", Json::Num(Percentile(lag_rows_all, 50)));
    lag.Set("max_lag_ms", Json::Num(max_lag_ms));
    lag.Set("drain_seconds_after_writes_stop", Json::Num(drain_s));
    lag.Set("samples_t_ms_rows_ms", JsonArray(samples));
    cu.Set("lag_under_full_speed_writes", lag);
    summary_ += Fmt(
        "    lag while the app writes at full speed (%d-row txns, %.0f rows/s for %.1f s, agent "
        "running, sampled every 50 ms): max %lld rows / %.0f ms (oldest unapplied journal row's "
        "`at`), p50 %.0f rows; drained %.2f s after the writes stopped\n",
        o_.txn_rows, static_cast<double>(app_rows.load()) / write_s, write_s,
        static_cast<long long>(max_lag_rows), max_lag_ms, Percentile(lag_rows_all, 50), drain_s);
  }

  void CopyBaseline(JsonObject& cu, Pg& pg, const Deployment& d, Sqlite& src, double catch_rate) {
    std::string copy_schema = d.schema + "_copy";
    deployments_->AddSchema(copy_schema);
    std::string qs = QuoteIdent(copy_schema);
    pg.Query("DROP SCHEMA IF EXISTS " + qs + " CASCADE");
    pg.Query("CREATE SCHEMA " + qs);
    pg.Query("CREATE TABLE " + qs + ".message (LIKE " + QuoteIdent(d.schema) +
             ".message INCLUDING ALL)");
    auto cols = pg.Query(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = $1 "
        "AND table_name = 'message' ORDER BY ordinal_position",
        {copy_schema});
    std::vector<std::string> src_cols;
    {
      SqliteStatement s(src.handle(), "SELECT name FROM pragma_table_info('message') ORDER BY cid");
      while (s.Step())
        src_cols.push_back(reinterpret_cast<const char*>(sqlite3_column_text(s.handle(), 0)));
    }
    // For each sink column: index of the SQLite column, or a sluice column filler.
    std::string select, col_list;
    std::vector<int> src_index;
    std::vector<std::string> filler;
    std::string types;
    for (const auto& c : cols.rows) {
      const std::string& name = *c[0];
      const std::string& type = *c[1];
      types += (types.empty() ? "" : ", ") + name + " " + type;
      col_list += (col_list.empty() ? "" : ", ") + QuoteIdent(name);
      auto it = std::find(src_cols.begin(), src_cols.end(), name);
      if (it != src_cols.end()) {
        src_index.push_back(static_cast<int>(it - src_cols.begin()));
        filler.emplace_back();
      } else {
        src_index.push_back(-1);
        if (name == "_sluice_seq") {
          filler.push_back("#seq");
        } else if (type.find("timestamp") != std::string::npos) {
          filler.push_back(name == "_sluice_deleted_at" ? "\\N" : "2025-11-02 12:00:00.123456+00");
        } else if (type == "bigint" || type == "integer") {
          filler.push_back("0");
        } else {
          filler.push_back("\\N");
        }
      }
    }
    // Materialise the COPY text first, so the timing is PostgreSQL's ingest only.
    std::string sel = "SELECT ";
    for (size_t i = 0; i < src_cols.size(); ++i) sel += (i ? ", " : "") + QuoteIdent(src_cols[i]);
    sel += " FROM message";
    std::vector<std::string> chunks(1);
    int64_t rows = 0;
    size_t bytes = 0;
    {
      SqliteStatement s(src.handle(), sel);
      while (s.Step()) {
        std::string& out = chunks.back();
        for (size_t k = 0; k < src_index.size(); ++k) {
          if (k) out.push_back('\t');
          int si = src_index[k];
          if (si < 0) {
            out += filler[k] == "#seq" ? std::to_string(rows + 1) : filler[k];
          } else if (sqlite3_column_type(s.handle(), si) == SQLITE_NULL) {
            out += "\\N";
          } else {
            const char* v = reinterpret_cast<const char*>(sqlite3_column_text(s.handle(), si));
            AppendCopyField(
                &out,
                std::string_view(v, static_cast<size_t>(sqlite3_column_bytes(s.handle(), si))));
          }
        }
        out.push_back('\n');
        ++rows;
        if (out.size() >= (256u << 10)) {
          bytes += out.size();
          chunks.emplace_back();
        }
      }
    }
    bytes += chunks.back().size();
    Log(Fmt("(a) COPY baseline: %lld rows, %.1f MiB of COPY text", static_cast<long long>(rows),
            static_cast<double>(bytes) / 1048576.0));
    auto pg_cpu0 = CpuByPid("postgres");
    auto t0 = Clock::now();
    PGresult* r =
        PQexec(pg.handle(), ("COPY " + qs + ".message (" + col_list + ") FROM STDIN").c_str());
    if (PQresultStatus(r) != PGRES_COPY_IN) {
      std::string msg = PQresultErrorMessage(r);
      PQclear(r);
      Fail("COPY: " + Trim(msg));
    }
    PQclear(r);
    for (const std::string& c : chunks) {
      if (c.empty()) continue;
      if (PQputCopyData(pg.handle(), c.data(), static_cast<int>(c.size())) != 1) {
        Fail("PQputCopyData: " + Trim(PQerrorMessage(pg.handle())));
      }
    }
    if (PQputCopyEnd(pg.handle(), nullptr) != 1)
      Fail("PQputCopyEnd: " + Trim(PQerrorMessage(pg.handle())));
    std::string err;
    while ((r = PQgetResult(pg.handle())) != nullptr) {
      if (PQresultStatus(r) != PGRES_COMMAND_OK) err = PQresultErrorMessage(r);
      PQclear(r);
    }
    double copy_s = Seconds(Clock::now() - t0);
    double pg_cpu = CpuSince(pg_cpu0, "postgres");
    if (!err.empty()) Fail("COPY: " + Trim(err));
    double copy_rate = static_cast<double>(rows) / copy_s;
    double ratio = catch_rate / copy_rate;
    if (!o_.keep) pg.Query("DROP SCHEMA IF EXISTS " + qs + " CASCADE");

    JsonObject cp;
    cp.Set("rows", Json::Int(rows));
    cp.Set("bytes", Json::Int(static_cast<int64_t>(bytes)));
    cp.Set("seconds", Json::Num(copy_s));
    cp.Set("rows_per_s", Json::Num(copy_rate));
    cp.Set("postgres_cpu_seconds", pg_local_ ? Json::Num(pg_cpu) : Json());
    cp.Set("table", Json::Str("fresh table LIKE the mirror INCLUDING ALL (same columns, types, "
                              "primary key; no triggers)"));
    cp.Set("columns", Json::Str(types));
    cp.Set("format", Json::Str("text, one COPY FROM STDIN, 256 KiB PQputCopyData chunks, "
                               "autocommit; text built before timing"));
    cu.Set("copy_baseline", cp);
    cu.Set("catchup_vs_copy_ratio", Json::Num(ratio));
    copy_ratio_ = ratio;
    summary_ += Fmt(
        "    PostgreSQL COPY of the same %lld rows (final state of `message`, %.1f MiB text, "
        "fresh table LIKE the mirror INCLUDING ALL): %.0f rows/s in %.2f s\n    catch-up / COPY "
        "= %.2f (catch-up counts journal rows incl. updates; COPY counts distinct rows)\n",
        static_cast<long long>(rows), static_cast<double>(bytes) / 1048576.0, copy_rate, copy_s,
        ratio);
  }

  // ---- (b) commit-to-visible latency
  void Latency(JsonObject& j) {
    MessageGen gen(o_.row_bytes);
    Deployment d = NewDeployment("b", true);
    Pg pg(o_.conninfo);
    AgentProcess agent(o_.sluice, d.config, d.dir + "/agent.log");
    agent.Start();
    if (!WaitApplied(pg, {&agent}, d, 0, 120, "initial sync")) Fail("initial sync timed out");

    Log(Fmt("(b) latency: single-row txns at %d/s for %.1f s (after a warm-up)", o_.latency_rate,
            o_.latency_seconds));
    App app(d.db, o_.synchronous, &gen);
    AddVisibilityTrigger(pg, d.schema);
    LatencyRun run = MeasureCommitToVisible(o_.conninfo, app, o_.latency_rate, o_.latency_seconds,
                                            0, [&] { CheckAlive(agent); });
    CheckAlive(agent);
    std::string stop = StopAgent(agent, std::chrono::seconds(30));
    LatencyJson(run, j);
    j.Set("agent_stop", Json::Str(stop));
    p95_ms_ = run.P(95);
    summary_ +=
        Fmt("\n(b) commit-to-visible latency at %d single-row txn/s for %.1f s (%lld txns after %d "
            "warm-up; via LISTEN/NOTIFY from an AFTER INSERT trigger on the mirror):\n      %s\n"
            "      app's own INSERT+COMMIT: p50 %.3f ms, p99 %.3f ms, max %.2f ms\n",
            o_.latency_rate, run.paced_seconds, static_cast<long long>(run.transactions),
            run.warmup, LatencySummary(run).c_str(), Percentile(run.commit_ms, 50),
            Percentile(run.commit_ms, 99), run.commit_ms.empty() ? NAN : run.commit_ms.back());
  }

  // ---- (c) trigger overhead on the app's own writes
  void TriggerOverhead(JsonObject& j) {
    MessageGen gen(o_.row_bytes);
    Deployment with = NewDeployment("c_with", true);  // sluice init: triggers installed
    Deployment without = NewDeployment("c_without", false);
    int64_t triggers = 0;
    {
      Sqlite db(with.db, kBusyTimeoutMs);
      triggers = db.ScalarInt(
          "SELECT count(*) FROM sqlite_master WHERE type='trigger' AND tbl_name='message'");
    }
    if (triggers == 0) Fail("sluice init installed no trigger on message");

    auto one = [&](const Deployment& d, int rep) {
      std::string path = d.dir + "/rep" + std::to_string(rep) + ".db";
      for (const char* ext : {"", "-wal", "-shm"}) fs::remove(path + ext);
      fs::copy_file(d.db, path);
      if (fs::exists(d.db + "-wal")) fs::copy_file(d.db + "-wal", path + "-wal");
      double secs = 0;
      {
        App app(path, o_.synchronous, &gen);
        auto t0 = Clock::now();
        for (int t = 0; t < o_.trigger_txns; ++t) app.MixedTxn(o_.txn_rows, 0);
        secs = Seconds(Clock::now() - t0);
      }
      for (const char* ext : {"", "-wal", "-shm"}) fs::remove(path + ext);
      return secs;
    };
    Log(Fmt("(c) trigger overhead: %d x %d txns of %d inserts, with / without triggers",
            o_.trigger_reps, o_.trigger_txns, o_.txn_rows));
    one(with, -1);  // warm-up of both: page cache, allocator
    one(without, -1);
    std::vector<double> tw, tn;
    for (int rep = 0; rep < o_.trigger_reps; ++rep) {
      // Alternate the order so that drift hits both sides alike.
      if (rep % 2 == 0) {
        tw.push_back(one(with, rep));
        tn.push_back(one(without, rep));
      } else {
        tn.push_back(one(without, rep));
        tw.push_back(one(with, rep));
      }
    }
    double mw = Median(tw), mn = Median(tn);
    double ratio = mw / mn;
    int64_t rows = static_cast<int64_t>(o_.trigger_txns) * o_.txn_rows;
    auto arr = [](const std::vector<double>& v) {
      std::vector<Json> out;
      for (double x : v) out.push_back(Json::Num(x));
      return JsonArray(out);
    };
    JsonObject& r = j;
    r.Set("transactions", Json::Int(o_.trigger_txns));
    r.Set("rows_per_txn", Json::Int(o_.txn_rows));
    r.Set("operation", Json::Str("INSERT INTO message (prepared, one row per statement)"));
    r.Set("repetitions", Json::Int(o_.trigger_reps));
    r.Set("journal_mode", Json::Str("wal"));
    r.Set("synchronous", Json::Str(o_.synchronous));
    r.Set("triggers_on_message", Json::Int(triggers));
    r.Set("with_triggers_seconds", arr(tw));
    r.Set("without_triggers_seconds", arr(tn));
    r.Set("with_triggers_median_s", Json::Num(mw));
    r.Set("without_triggers_median_s", Json::Num(mn));
    r.Set("with_triggers_us_per_row", Json::Num(mw * 1e6 / static_cast<double>(rows)));
    r.Set("without_triggers_us_per_row", Json::Num(mn * 1e6 / static_cast<double>(rows)));
    r.Set("ratio", Json::Num(ratio));
    trigger_ratio_ = ratio;
    summary_ +=
        Fmt("\n(c) trigger overhead: %d txns x %d-row INSERTs into message, WAL, synchronous=%s, "
            "median of %d reps (fresh file copy each):\n      with sluice triggers %.3f s (%.2f "
            "us/row), without %.3f s (%.2f us/row): ratio %.2fx\n",
            o_.trigger_txns, o_.txn_rows, o_.synchronous.c_str(), o_.trigger_reps, mw,
            mw * 1e6 / static_cast<double>(rows), mn, mn * 1e6 / static_cast<double>(rows), ratio);
  }

  void Targets() {
    summary_ += "\ntargets (from the issue):\n";
    auto target = [&](const char* key, const char* text, double value, double limit, bool ge,
                      const char* unit) {
      JsonObject t;
      t.Set("target", Json::Str(text));
      t.Set("value", Json::Num(value));
      t.Set("limit", Json::Num(limit));
      const char* verdict = "not measured";
      if (std::isfinite(value)) {
        bool met = ge ? value >= limit : value <= limit;
        verdict = met ? "met" : "NOT met";
        t.Set("met", Json::Bool(met));
      } else {
        t.Set("met", Json());
      }
      targets_.Set(key, t);
      summary_ += Fmt("  %-46s %10.3g%-4s %s\n", text, value, unit, verdict);
    };
    target("catchup_vs_copy", "catch-up >= 60% of COPY rate", copy_ratio_, 0.60, true, "");
    target("latency_p95_ms", "commit-to-visible p95 <= 5 ms", p95_ms_, 5.0, false, " ms");
    target("trigger_overhead", "trigger overhead <= 1.3x (1,000-row txns)", trigger_ratio_, 1.3,
           false, "x");
    target("agent_rss_mib", "agent peak RSS <= 32 MiB", rss_mib_, 32.0, false, " MiB");
    target("failover_sigkill_p95_s", "SIGKILL failover p95 <= 6 s (default lease)",
           failover_.kill_p95_default_s, 6.0, false, " s");
    target("failover_sigkill_1s_lease_p95_s", "SIGKILL failover p95 <= 1.5 s (1 s lease)",
           failover_.kill_p95_1s_s, 1.5, false, " s");
    target("handover_sigterm_p95_s", "SIGTERM handover p95 <= 0.5 s (default lease)",
           failover_.term_p95_default_s, 0.5, false, " s");
    target("handover_sigterm_1s_lease_p95_s", "SIGTERM handover p95 <= 0.5 s (1 s lease)",
           failover_.term_p95_1s_s, 0.5, false, " s");
    target("latency_two_agents_p95_ms", "commit-to-visible p95 <= 5 ms, two agents",
           failover_.latency_p95_two_ms, 5.0, false, " ms");
    target("conflict_detection_ratio", "catch-up, detection on / off >= 0.90 (0 %)",
           conflicts_.detection_ratio, 0.90, true, "x");
  }

  void Cleanup() {
    if (o_.keep) {
      std::printf("kept %s and sink schemas:", dir_.c_str());
      for (const std::string& s : deployments_->schemas()) std::printf(" %s", s.c_str());
      std::printf("\n");
      return;
    }
    for (const std::string& s : deployments_->schemas()) {
      try {
        pg_->Query("DROP SCHEMA IF EXISTS " + QuoteIdent(s) + " CASCADE");
      } catch (const std::exception&) {
      }
    }
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  Options o_;
  std::string dir_, suffix_, schema_sql_, summary_;
  std::unique_ptr<Pg> pg_;
  bool pg_local_ = false;
  JsonObject conditions_, results_, targets_;
  std::unique_ptr<Deployments> deployments_;
  double copy_ratio_ = NAN, p95_ms_ = NAN, trigger_ratio_ = NAN, rss_mib_ = NAN;
  FailoverFigures failover_;
  ConflictFigures conflicts_;
};

}  // namespace
}  // namespace sluice::bench

int main(int argc, char** argv) {
  using namespace sluice::bench;
  std::signal(SIGPIPE, SIG_IGN);
  try {
    Options o = ParseArgs(argc, argv);
    // The config file names the sink; keep environment overrides from redirecting the agent.
    for (const char* v :
         {"SLUICE_SINK_URL", "DATABASE_URL", "SLUICE_SINK_SCHEMA", "SLUICE_DEPLOYMENT",
          "SLUICE_SOURCE_PATH", "SLUICE_LOG_LEVEL", "SLUICE_NODE", "SLUICE_HTTP_LISTEN",
          "SLUICE_LEASE_DURATION_MS", "SLUICE_LEASE_RENEW_MS", "SLUICE_LEASE_POLL_MS",
          "SLUICE_CONFLICT_CONFIG", "CONFLICT_RESOLUTION_CONFIG"}) {
      if (std::getenv(v) != nullptr) {
        Log(std::string("ignoring ") + v + " from the environment");
        unsetenv(v);
      }
    }
    Bench bench(std::move(o));
    return bench.Run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sluice_bench: %s\n", e.what());
    return 2;
  }
}
