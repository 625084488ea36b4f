// A deterministic generator of realistic Open WebUI SQLite databases (issue
// #9), for benchmarks and kill tests of a big initial sync. At scale 1.0 it
// writes the shape of a real instance: 200 users, 5,156 chats whose `chat`
// JSON is heavy-tailed (median 23 KB, p95 220 KB, max 400 KB; 1 KB = 1000
// bytes), 4,000 channel messages, 1,250 files with extracted text, 430
// feedback rows holding chat snapshots, and some rows in every other table:
// 25 tables with rows, 319 MB, 270 MB of it chat JSON (the instance had
// 263 MB; the clipped log-normal that gives its median and p95 has this mean). JSON is byte for
// byte what Python's json.dumps writes, and the timestamps are in the units the app uses (seconds,
// milliseconds inside chat JSON, nanoseconds for channels, messages and notes).
//
// The same options give the same table contents, byte for byte: every row
// comes from a PRNG stream of (seed, table, row), never from a clock. Called
// from one thread; it blocks while it writes.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"

namespace sluice::bench {

struct GenOptions {
  double scale = 1.0;  // multiplies every row count; a nonzero count stays >= 1
  uint64_t seed = 1;
  std::string schema_sql;  // the fixture's DDL (tests/fixtures/openwebui/schema.sql)
};

struct GenReport {
  std::vector<std::pair<std::string, int64_t>> rows;  // per table, in schema order
  int64_t chat_json_bytes = 0;                        // sum of length(chat.chat)
  int64_t chat_json_median = 0;
  int64_t chat_json_p95 = 0;
  int64_t chat_json_max = 0;
  int64_t file_bytes = 0;  // of the database file when done
};

// Creates the database at `path` (replacing one that is there, with its -wal
// and -shm): the schema, then every table filled in one transaction each. It
// is written as path + ".partial" and renamed when complete, in WAL mode.
Result<GenReport> GenerateOpenWebUiDb(const std::string& path, const GenOptions& options);

// The target sizes in bytes of `n` chats' `chat` JSON: a log-normal (median
// 23,000, p95 220,000) clipped to [2,000, 400,000], sampled by strata (chat
// i gets one of n equal-probability slices, in seeded order), so that the
// median and p95 land on the targets at any scale. The generator writes each
// chat to its size exactly, give or take one byte.
std::vector<int64_t> ChatJsonSizes(uint64_t seed, size_t n);

// Row count of a table at `scale`: round(full * scale), at least 1 unless full is 0.
int64_t ScaledCount(int64_t full, double scale);

}  // namespace sluice::bench
