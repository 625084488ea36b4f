// Message generator, app writer and steady writer of the benchmark (see workload.h).
#include "bench/workload.h"

#include <cinttypes>
#include <cstring>

namespace sluice::bench {

uint64_t SplitMix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

void AppPragmas(Sqlite& db, const std::string& synchronous) {
  db.Exec("PRAGMA journal_mode=WAL");
  db.Exec("PRAGMA synchronous=" + synchronous);
}

int64_t JournalMaxSeq(Sqlite& db) {
  return db.ScalarInt(
      "SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = '_sluice_journal'), 0)");
}

void SteadyWriter::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void SteadyWriter::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void SteadyWriter::CheckOk() const {
  if (failed_.load()) Fail("app writer: " + error_);
}

void SteadyWriter::Loop() {
  auto period =
      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(1.0 / rate_));
  auto start = Clock::now();
  uint64_t next = 0;
  try {
    for (int64_t k = 0; !stop_.load(); ++k) {
      auto due = start + period * k;
      std::this_thread::sleep_until(due);
      double behind = Millis(Clock::now() - due);
      if (behind > max_behind_ms_.load()) max_behind_ms_ = behind;
      if (k % 5 == 4) {
        app_.Update(SplitMix(static_cast<uint64_t>(k)) % next, static_cast<uint64_t>(k));
      } else {
        app_.Insert(next++);
      }
      ++txns_;
    }
  } catch (const std::exception& e) {
    error_ = e.what();
    failed_ = true;
  }
}

}  // namespace sluice::bench
