// Phase (f): failover and handover times of a pair, and the lease's cost (see failover.h).
#include "bench/failover.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <random>
#include <sstream>
#include <thread>
#include <vector>

#include "bench/host.h"
#include "bench/lease_cost.h"
#include "bench/pair.h"
#include "bench/workload.h"

namespace sluice::bench {
namespace {

using sluice::testing::PgRows;
using sluice::testing::QuoteIdent;

// How often the bench asks the sink whether the new leader has committed.
constexpr auto kPollEvery = std::chrono::milliseconds(2);

// The agent's default lease (agent/config.h); only for the timeout and the summary.
constexpr int kDefaultLeaseMs = 5000;

// One takeover, as measured and as the sink recorded it.
struct Takeover {
  std::string signal;
  int rep = 0;
  std::string from, to;
  int64_t old_epoch = 0, new_epoch = 0;
  int64_t signal_unix_ms = 0;
  int64_t delay_ms = 0;
  double to_lease_s = NAN;   // the lease row shows a new epoch
  double to_commit_s = NAN;  // a batch under the new epoch is visible
  double old_exit_s = NAN;   // the signalled agent's process is gone
  int old_exit_code = -1;

  Json ToJson() const {
    JsonObject j;
    j.Set("signal", Json::Str(signal));
    j.Set("rep", Json::Int(rep));
    j.Set("from_node", Json::Str(from));
    j.Set("to_node", Json::Str(to));
    j.Set("old_epoch", Json::Int(old_epoch));
    j.Set("new_epoch", Json::Int(new_epoch));
    j.Set("signal_unix_ms", Json::Int(signal_unix_ms));
    j.Set("delay_after_settled_ms", Json::Int(delay_ms));
    j.Set("to_new_lease_s", Json::Num(to_lease_s));
    j.Set("to_first_commit_s", Json::Num(to_commit_s));
    j.Set("old_process_exit_s", Json::Num(old_exit_s));
    j.Set("old_exit_code", Json::Int(old_exit_code));
    return j.ToJson();
  }
};

// Waits until both agents have run for `settle` seconds, one holds a live
// lease and has committed a batch under it since this wait began: the
// standby has been watching, the leader is streaming.
int WaitSettled(Pair& p, Pg& pg, double settle_s, double timeout_s) {
  auto deadline = Clock::now() + std::chrono::duration<double>(timeout_s);
  int64_t seq0 = AppliedSeq(pg, p.d.name);
  while (true) {
    p.CheckAllAlive();
    bool warm = true;
    for (const auto& t : p.started) warm = warm && Seconds(Clock::now() - t) >= settle_s;
    LeaseRow l = ReadLease(pg, p.d.name);
    int leader = p.IndexOf(l.leader);
    if (warm && l.live && leader >= 0 && AppliedSeq(pg, p.d.name) > seq0 &&
        LastBatchEpoch(pg, p.d.name) == l.epoch) {
      return leader;
    }
    if (Clock::now() > deadline) {
      Fail(Fmt("the pair did not settle within %.0f s (lease epoch %lld held by '%s', live %d)",
               timeout_s, static_cast<long long>(l.epoch), l.leader.c_str(), l.live ? 1 : 0));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

// Once the pair has settled, waits `delay`, signals the leader and polls the
// sink every 2 ms until a batch under a new epoch is visible; the signalled
// agent is then started again (a standby).
Takeover OneTakeover(Pair& p, Pg& pg, int sig, int rep, double settle_s, double timeout_s,
                     std::chrono::milliseconds delay, SteadyWriter& writer) {
  int leader = WaitSettled(p, pg, settle_s, timeout_s);
  std::this_thread::sleep_for(delay);
  AgentProcess& old = *p.agents[static_cast<size_t>(leader)];
  LeaseRow before = ReadLease(pg, p.d.name);
  Takeover t;
  t.signal = sig == SIGKILL ? "SIGKILL" : "SIGTERM";
  t.rep = rep;
  t.from = p.d.nodes[static_cast<size_t>(leader)];
  t.old_epoch = before.epoch;
  t.delay_ms = delay.count();
  const std::string seq0 = std::to_string(AppliedSeq(pg, p.d.name));

  t.signal_unix_ms = UnixMillis();
  auto t0 = Clock::now();
  old.Signal(sig);
  auto deadline = t0 + std::chrono::duration<double>(timeout_s);
  bool old_gone = false;
  while (true) {
    auto asked = Clock::now();
    // The new batch starts at or after the position at the signal: the
    // primary key (deployment, after_seq, ...) keeps this a short range scan.
    PgRows r = pg.Query(
        "SELECT (SELECT epoch FROM sync_metadata.leader_election WHERE deployment = $1), "
        "(SELECT max(epoch) FROM sync_metadata.applied_batches WHERE deployment = $1 AND "
        "after_seq >= $2::bigint)",
        {p.d.name, seq0});
    int64_t lease_epoch = std::stoll(r.rows[0][0].value_or("0"));
    int64_t batch_epoch = std::stoll(r.rows[0][1].value_or("0"));
    // A row seen by this query was visible by its snapshot, taken after `asked`.
    double at = Seconds(asked - t0);
    if (lease_epoch > t.old_epoch && std::isnan(t.to_lease_s)) t.to_lease_s = at;
    if (!old_gone && !old.Running()) {
      old_gone = true;
      t.old_exit_s = Seconds(Clock::now() - t0);
    }
    if (batch_epoch > t.old_epoch) {
      t.to_commit_s = at;
      t.new_epoch = batch_epoch;
      if (std::isnan(t.to_lease_s)) t.to_lease_s = at;
      break;
    }
    writer.CheckOk();
    for (size_t i = 0; i < p.agents.size(); ++i) {
      if (static_cast<int>(i) != leader) CheckAlive(*p.agents[i]);
    }
    if (Clock::now() > deadline) {
      Fail(Fmt("%s of node %s: no batch under a new epoch within %.0f s; standby log tail:\n%s",
               t.signal.c_str(), t.from.c_str(), timeout_s,
               TailOf(p.agents[static_cast<size_t>(1 - leader)]->log_path(), 3000).c_str()));
    }
    std::this_thread::sleep_for(kPollEvery);
  }
  std::optional<int> code = old.WaitExit(std::chrono::seconds(30));
  if (!code) Fail(t.signal + " of node " + t.from + ": the process did not exit within 30 s");
  if (!old_gone) t.old_exit_s = Seconds(Clock::now() - t0);
  t.old_exit_code = *code;
  t.to = ReadLease(pg, p.d.name).leader;
  p.Start(static_cast<size_t>(leader));
  return t;
}

struct SignalStats {
  std::vector<double> commit_s, lease_s, exit_s;
  void Add(const Takeover& t) {
    commit_s.push_back(t.to_commit_s);
    lease_s.push_back(t.to_lease_s);
    exit_s.push_back(t.old_exit_s);
  }
};

JsonObject StatsJson(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  JsonObject j;
  j.Set("median_s", Json::Num(Median(v)));
  j.Set("p95_s", Json::Num(Percentile(v, 95)));
  j.Set("min_s", Json::Num(v.empty() ? NAN : v.front()));
  j.Set("max_s", Json::Num(v.empty() ? NAN : v.back()));
  return j;
}

double P95(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return Percentile(v, 95);
}

// The takeovers of one lease setting: SIGKILL then SIGTERM, `reps` each,
// while the app writes; then the mirror is checked against the source.
void OneSetting(const Options& o, Deployments& deployments, const std::string& setting,
                JsonObject& j, std::string* summary, FailoverFigures* figures) {
  bool is_default = setting == "default";
  int duration_ms = is_default ? kDefaultLeaseMs : std::stoi(setting);
  std::string lease_json = is_default ? "" : Fmt("{\"duration_ms\": %d}", duration_ms);
  Log(Fmt("(f) failover, lease %s: %d SIGKILL + %d SIGTERM takeovers at %d tx/s",
          is_default ? "default" : (setting + " ms").c_str(), o.failover_reps, o.failover_reps,
          o.failover_rate));
  Pair p = StartFirst(o, deployments, "f_" + setting, lease_json);
  p.Start(1);
  Pg pg(o.conninfo);
  SteadyWriter writer(p.d.db, o.synchronous, o.row_bytes, o.failover_rate);
  writer.Start();
  double timeout_s = 3.0 * duration_ms / 1000.0 + 30.0;

  std::vector<Json> runs;
  SignalStats kill, term;
  // Restarting the old leader and waiting for the pair to settle would put
  // every signal at the same point of the new leader's renewal cycle (the
  // same time left on its lease): a random delay over one lease duration
  // spreads the signals over the whole cycle, as crashes are. Fixed seed:
  // the same delays every run.
  std::mt19937 rng(6);
  std::uniform_int_distribution<int> delay_ms(0, duration_ms - 1);
  auto w0 = Clock::now();
  for (int sig : {SIGKILL, SIGTERM}) {
    for (int rep = 0; rep < o.failover_reps; ++rep) {
      auto delay = std::chrono::milliseconds(delay_ms(rng));
      Takeover t = OneTakeover(p, pg, sig, rep, o.failover_settle_s, timeout_s, delay, writer);
      Log(Fmt("(f)   %s %s -> %s: new lease %.3f s, first commit %.3f s (epoch %lld -> %lld)",
              t.signal.c_str(), t.from.c_str(), t.to.c_str(), t.to_lease_s, t.to_commit_s,
              static_cast<long long>(t.old_epoch), static_cast<long long>(t.new_epoch)));
      (sig == SIGKILL ? kill : term).Add(t);
      runs.push_back(t.ToJson());
    }
  }
  double load_s = Seconds(Clock::now() - w0);

  // Drain and compare: nothing lost across the takeovers, epochs only go up.
  writer.Stop();
  writer.CheckOk();
  Sqlite reader(p.d.db, kBusyTimeoutMs, /*read_only=*/true);
  int64_t last = JournalMaxSeq(reader);
  if (!WaitApplied(pg, p.All(), p.d, last, 120, "drain after the takeovers")) {
    Fail("the pair did not apply the last writes within 120 s");
  }
  int64_t source_rows = reader.ScalarInt("SELECT count(*) FROM message");
  int64_t sink_rows = pg.ScalarInt("SELECT count(*) FROM " + QuoteIdent(p.d.schema) +
                                   ".message WHERE _sluice_deleted_at IS NULL");
  int64_t epoch_drops = pg.ScalarInt(
      "SELECT count(*) FROM (SELECT epoch, lag(epoch) OVER (ORDER BY after_seq, applied_at) AS "
      "prev FROM sync_metadata.applied_batches WHERE deployment = $1) b WHERE epoch < prev",
      {p.d.name});
  std::vector<std::string> stops;
  for (auto& a : p.agents) stops.push_back(StopAgent(*a, std::chrono::seconds(30)));

  j.Set("lease", Json::Str(is_default ? "default (no lease object)" : lease_json));
  j.Set("lease_duration_ms", Json::Int(duration_ms));
  j.Set("lease_renew_and_poll", Json::Str("agent defaults: renew_ms = duration / 3, poll_ms = "
                                          "min(200, duration / 5)"));
  j.Set("app_rate_per_s", Json::Int(o.failover_rate));
  j.Set("app_txn", Json::Str("autocommit, 4 inserts of a new message : 1 content update"));
  j.Set("app_transactions", Json::Int(writer.transactions()));
  j.Set("app_max_behind_schedule_ms", Json::Num(writer.max_behind_ms()));
  j.Set("load_seconds", Json::Num(load_s));
  j.Set("standby_settle_s", Json::Num(o.failover_settle_s));
  j.Set("signal_delay",
        Json::Str(Fmt("uniform over 0..%d ms after the pair settled (seed 6)", duration_ms - 1)));
  j.Set("poll_interval_ms", Json::Int(kPollEvery.count()));
  JsonObject k, s;
  k.Set("to_first_commit", StatsJson(kill.commit_s));
  k.Set("to_new_lease", StatsJson(kill.lease_s));
  s.Set("to_first_commit", StatsJson(term.commit_s));
  s.Set("to_new_lease", StatsJson(term.lease_s));
  s.Set("old_process_exit", StatsJson(term.exit_s));
  j.Set("sigkill", k);
  j.Set("sigterm", s);
  j.Set("runs", JsonArray(runs));
  j.Set("source_rows", Json::Int(source_rows));
  j.Set("sink_live_rows", Json::Int(sink_rows));
  j.Set("sink_rows_match_source", Json::Bool(source_rows == sink_rows));
  j.Set("batches_with_a_lower_epoch_than_the_one_before", Json::Int(epoch_drops));
  std::string stop_text;
  for (const std::string& st : stops) stop_text += (stop_text.empty() ? "" : ", ") + st;
  j.Set("agent_stops", Json::Str(stop_text));

  auto line = [&](const char* what, const std::vector<double>& v) {
    std::vector<double> sorted = v;
    std::sort(sorted.begin(), sorted.end());
    return Fmt("%s median %.3f s, p95 %.3f s (min %.3f, max %.3f)", what, Median(sorted),
               Percentile(sorted, 95), sorted.front(), sorted.back());
  };
  *summary +=
      Fmt("    lease %s (duration %d ms; renew and poll at their defaults), %d takeovers each:\n"
          "      SIGKILL -> standby's first commit: %s\n"
          "                 (new lease row: %s)\n"
          "      SIGTERM -> standby's first commit: %s\n"
          "                 (old process gone: %s)\n"
          "      mirror %lld rows vs source %lld (%s); batches with a lower epoch than the one "
          "before: %lld; app max %.1f ms behind schedule\n",
          is_default ? "default" : lease_json.c_str(), duration_ms, o.failover_reps,
          line("", kill.commit_s).c_str(), line("", kill.lease_s).c_str(),
          line("", term.commit_s).c_str(), line("", term.exit_s).c_str(),
          static_cast<long long>(sink_rows), static_cast<long long>(source_rows),
          source_rows == sink_rows ? "match" : "MISMATCH", static_cast<long long>(epoch_drops),
          writer.max_behind_ms());
  if (is_default) {
    figures->kill_p95_default_s = P95(kill.commit_s);
    figures->term_p95_default_s = P95(term.commit_s);
  } else if (duration_ms == 1000) {
    figures->kill_p95_1s_s = P95(kill.commit_s);
    figures->term_p95_1s_s = P95(term.commit_s);
  }
}

std::vector<std::string> SplitList(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) {
    item = Trim(item);
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

}  // namespace

void RunFailover(const Options& o, Deployments& deployments, JsonObject& j, std::string* summary,
                 FailoverFigures* figures) {
  *summary += Fmt(
      "\n(f) failover of a pair (two `sluice run`, one deployment and SQLite file, nodes bench and "
      "bench-2), %ld cores online; the app writes %d autocommit txn/s meanwhile (4 inserts of "
      "an Open WebUI message : 1 update); the standby runs >= %.1f s, then a random delay "
      "within one lease duration, before each signal; the bench polls applied_batches every "
      "%lld ms (p95: nearest rank)\n",
      sysconf(_SC_NPROCESSORS_ONLN), o.failover_rate, o.failover_settle_s,
      static_cast<long long>(kPollEvery.count()));
  JsonObject settings;
  for (const std::string& setting : SplitList(o.failover_leases)) {
    if (setting != "default" && std::stoi(setting) <= 0) Fail("bad lease setting " + setting);
    JsonObject s;
    OneSetting(o, deployments, setting, s, summary, figures);
    settings.Set(setting == "default" ? "lease_default" : "lease_" + setting + "ms", s);
  }
  j.Set("takeovers", settings);

  JsonObject cost;
  MeasureLeaseCost(o, deployments, cost, summary, &figures->latency_p95_one_ms,
                   &figures->latency_p95_two_ms);
  j.Set("lease_cost", cost);
}

}  // namespace sluice::bench
