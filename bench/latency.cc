// Commit-to-visible latency through LISTEN/NOTIFY from the mirror (see latency.h).
#include "bench/latency.h"

#include <poll.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <thread>

namespace sluice::bench {

using sluice::testing::QuoteIdent;

void AddVisibilityTrigger(Pg& pg, const std::string& schema) {
  std::string qs = QuoteIdent(schema);
  pg.Query("CREATE FUNCTION " + qs +
           ".sluice_bench_notify() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN PERFORM "
           "pg_notify('sluice_bench', NEW.id::text); RETURN NULL; END$$");
  pg.Query("CREATE TRIGGER sluice_bench_notify AFTER INSERT ON " + qs +
           ".message FOR EACH ROW EXECUTE FUNCTION " + qs + ".sluice_bench_notify()");
  // Fire even if the agent's session runs with session_replication_role = replica.
  pg.Query("ALTER TABLE " + qs + ".message ENABLE ALWAYS TRIGGER sluice_bench_notify");
}

LatencyRun MeasureCommitToVisible(const std::string& conninfo, App& app, int rate, double seconds,
                                  uint64_t first_index, const std::function<void()>& check) {
  Pg listener(conninfo);
  listener.Query("LISTEN sluice_bench");

  LatencyRun out;
  out.rate = rate;
  out.warmup = std::min(100, rate / 2);
  const int64_t n = out.warmup + static_cast<int64_t>(seconds * rate);
  out.transactions = n - out.warmup;
  std::vector<Clock::time_point> committed(static_cast<size_t>(n));
  std::vector<Clock::time_point> visible(static_cast<size_t>(n));
  std::vector<char> seen(static_cast<size_t>(n), 0);
  std::atomic<bool> stop_listen{false};
  std::atomic<int64_t> received{0}, duplicates{0};
  std::string listen_error;

  std::thread listen_thread([&] {
    PGconn* c = listener.handle();
    int sock = PQsocket(c);
    while (!stop_listen.load()) {
      pollfd p{sock, POLLIN, 0};
      int pr = poll(&p, 1, 20);
      if (pr < 0 && errno != EINTR) {
        listen_error = std::string("poll: ") + std::strerror(errno);
        return;
      }
      if (pr <= 0) continue;
      if (PQconsumeInput(c) != 1) {
        listen_error = "PQconsumeInput: " + Trim(PQerrorMessage(c));
        return;
      }
      PGnotify* nt;
      while ((nt = PQnotifies(c)) != nullptr) {
        auto now = Clock::now();
        int64_t idx = MessageGen::IndexOfId(nt->extra) - static_cast<int64_t>(first_index);
        if (idx >= 0 && idx < n) {
          if (seen[static_cast<size_t>(idx)]) {
            ++duplicates;
          } else {
            visible[static_cast<size_t>(idx)] = now;
            seen[static_cast<size_t>(idx)] = 1;
            ++received;
          }
        }
        PQfreemem(nt);
      }
    }
  });

  auto period =
      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(1.0 / rate));
  auto start = Clock::now() + std::chrono::milliseconds(20);
  out.commit_ms.reserve(static_cast<size_t>(n));
  try {
    for (int64_t i = 0; i < n; ++i) {
      auto deadline = start + period * i;
      std::this_thread::sleep_until(deadline);
      double behind = Millis(Clock::now() - deadline);
      out.max_behind_ms = std::max(out.max_behind_ms, behind);
      if (behind > 1.0) ++out.late;
      auto before = Clock::now();
      app.Insert(first_index + static_cast<uint64_t>(i));  // autocommit: one single-row txn
      committed[static_cast<size_t>(i)] = Clock::now();
      out.commit_ms.push_back(Millis(committed[static_cast<size_t>(i)] - before));
      if ((i & 1023) == 0) check();
    }
  } catch (...) {
    stop_listen = true;
    listen_thread.join();
    throw;
  }
  out.paced_seconds = Seconds(Clock::now() - start);
  auto wait_until = Clock::now() + std::chrono::seconds(10);
  while (received.load() < n && Clock::now() < wait_until && listen_error.empty()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  stop_listen = true;
  listen_thread.join();
  if (!listen_error.empty()) Fail("listener: " + listen_error);

  for (int64_t i = out.warmup; i < n; ++i) {
    if (!seen[static_cast<size_t>(i)]) {
      ++out.missing;
      continue;
    }
    out.latency_ms.push_back(
        Millis(visible[static_cast<size_t>(i)] - committed[static_cast<size_t>(i)]));
  }
  out.duplicates = duplicates.load();
  std::sort(out.latency_ms.begin(), out.latency_ms.end());
  std::sort(out.commit_ms.begin(), out.commit_ms.end());
  return out;
}

LatencyRun Merge(const std::vector<LatencyRun>& runs) {
  LatencyRun out;
  for (const LatencyRun& r : runs) {
    out.rate = r.rate;
    out.transactions += r.transactions;
    out.warmup += r.warmup;
    out.paced_seconds += r.paced_seconds;
    out.latency_ms.insert(out.latency_ms.end(), r.latency_ms.begin(), r.latency_ms.end());
    out.missing += r.missing;
    out.duplicates += r.duplicates;
    out.max_behind_ms = std::max(out.max_behind_ms, r.max_behind_ms);
    out.late += r.late;
    out.commit_ms.insert(out.commit_ms.end(), r.commit_ms.begin(), r.commit_ms.end());
  }
  std::sort(out.latency_ms.begin(), out.latency_ms.end());
  std::sort(out.commit_ms.begin(), out.commit_ms.end());
  return out;
}

double LatencyRun::Mean() const {
  if (latency_ms.empty()) return NAN;
  double sum = 0;
  for (double v : latency_ms) sum += v;
  return sum / static_cast<double>(latency_ms.size());
}

void LatencyJson(const LatencyRun& r, JsonObject& j) {
  const std::vector<double>& lat = r.latency_ms;
  j.Set("rate_per_s", Json::Int(r.rate));
  j.Set("transactions", Json::Int(r.transactions));
  j.Set("warmup_transactions", Json::Int(r.warmup));
  j.Set("rows_per_txn", Json::Int(1));
  j.Set("paced_seconds", Json::Num(r.paced_seconds));
  j.Set("count", Json::Int(static_cast<int64_t>(lat.size())));
  j.Set("missing", Json::Int(r.missing));
  j.Set("duplicate_notifications", Json::Int(r.duplicates));
  j.Set("p50_ms", Json::Num(r.P(50)));
  j.Set("p95_ms", Json::Num(r.P(95)));
  j.Set("p99_ms", Json::Num(r.P(99)));
  j.Set("max_ms", Json::Num(lat.empty() ? NAN : lat.back()));
  j.Set("mean_ms", Json::Num(r.Mean()));
  j.Set("min_ms", Json::Num(lat.empty() ? NAN : lat.front()));
  j.Set("app_max_behind_schedule_ms", Json::Num(r.max_behind_ms));
  j.Set("app_txns_late_over_1ms", Json::Int(r.late));
  j.Set("app_insert_commit_p50_ms", Json::Num(Percentile(r.commit_ms, 50)));
  j.Set("app_insert_commit_p99_ms", Json::Num(Percentile(r.commit_ms, 99)));
  j.Set("app_insert_commit_max_ms", Json::Num(r.commit_ms.empty() ? NAN : r.commit_ms.back()));
  j.Set("method", Json::Str("steady_clock after sqlite3_step(COMMIT) returns -> arrival of "
                            "pg_notify from an AFTER INSERT trigger on the mirror table, "
                            "LISTEN on a separate libpq connection (poll + PQconsumeInput)"));
}

std::string LatencySummary(const LatencyRun& r) {
  const std::vector<double>& lat = r.latency_ms;
  return Fmt(
      "p50 %.2f ms, p95 %.2f ms, p99 %.2f ms, max %.2f ms, mean %.2f ms; received %zu, missing "
      "%lld; app max %.2f ms behind schedule",
      r.P(50), r.P(95), r.P(99), lat.empty() ? NAN : lat.back(), r.Mean(), lat.size(),
      static_cast<long long>(r.missing), r.max_behind_ms);
}

}  // namespace sluice::bench
