// "Applied twice" made visible, for the tests that kill, freeze or fail over
// agents under load: an insert-only app table `ledger` written by its own
// thread (every 37th row holds invalid UTF-8, which the sink must park), and
// a trigger at the sink that counts every committed write of each ledger row
// per (id, seq) in a side table (it rolls back with its transaction, so it
// counts committed applies only). Check() then says whether every good row
// was written exactly once and every bad one parked exactly once.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/mirror_compare.h"

namespace sluice::e2e {

// Inserts into `ledger` (CREATE TABLE ledger (id INTEGER PRIMARY KEY, note
// TEXT NOT NULL)) from its own connection, 1..20 rows per transaction.
class LedgerWriter {
 public:
  static constexpr const char* kCreateTable =
      "CREATE TABLE ledger (id INTEGER PRIMARY KEY, note TEXT NOT NULL)";
  explicit LedgerWriter(std::string db_path) : db_path_(std::move(db_path)) {}
  ~LedgerWriter() { Stop(); }
  LedgerWriter(const LedgerWriter&) = delete;
  LedgerWriter& operator=(const LedgerWriter&) = delete;
  // The rows the sink must refuse (and park).
  static bool Bad(int64_t id) { return id % 37 == 0; }
  // One transaction of `rows` inserts on `db` (the caller's connection).
  void Write(Sqlite& db, int rows);
  // Writes on a thread of its own until Stop(), sleeping `pause_ms` between
  // transactions.
  void Start(int pause_ms = 5);
  void Stop();
  int64_t rows() const { return next_id_; }
  const std::string& error() const { return error_; }
  // For CompareMirror: the bad ledger rows are parked, not mirrored.
  static CompareOptions ParkedBadRows();

 private:
  std::string db_path_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> next_id_{0};
  std::string error_;
};

// The sink-side counter. Install() after `sluice init` created the mirror of
// ledger (schema `deployment`); the counter lives in schema <deployment>_audit.
class LedgerAudit {
 public:
  LedgerAudit(Pg& pg, std::string deployment);
  void Install();
  struct Result {
    std::vector<std::string> problems;  // empty: exactly once
    int64_t good = 0;                   // ledger rows written exactly once
    int64_t bad = 0;                    // ledger rows parked exactly once
  };
  // Compares with the app's ledger table (`ledger_rows`: what the writer says
  // it wrote): every good row written once, every bad row parked once in
  // conflict_log, nothing else parked.
  Result Check(Sqlite& app, int64_t ledger_rows);
  void Drop();  // after a passing test

 private:
  Pg& pg_;
  std::string deployment_;
  std::string schema_;
};

}  // namespace sluice::e2e
