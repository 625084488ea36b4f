// Message generator and app writer of the benchmark (see workload.h).
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

}  // namespace sluice::bench
