// The app under test: a thread that writes random changes to Open WebUI tables
// through its own SQLite connection, as the app would, and remembers what it
// deleted so tests can check the tombstones.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tests/support/sql_clients.h"

namespace sluice::e2e {

using testing::Sqlite;

// Writes random changes to Open WebUI tables `message` (TEXT key), `tag`
// (composite key) and `prompt` (INTEGER PRIMARY KEY + UNIQUE command) through
// its own connection, as the app would: inserts, updates, deletes, key changes,
// in transactions of 1..max_txn_rows statements. Runs on its own thread.
class RandomWriter {
 public:
  struct Options {
    std::vector<std::string> tables = {"message", "tag", "prompt"};
    int max_txn_rows = 50;
    int pause_us = 0;               // sleep between transactions (pacing only)
    int64_t min_changes = 0;        // keep going until at least this many...
    bool run_until_stopped = true;  // ...and until Stop() (else stop at min_changes)
    uint32_t seed = 1;
    int64_t key_base = 0;  // offset for generated keys (several writers, one file)
  };
  RandomWriter(std::string db_path, Options options);
  ~RandomWriter();

  // Loads the current keys of the tables (call before Start when rows exist).
  void LoadKeys();
  void Start();
  void Stop();  // asks to stop and joins
  void Join();
  int64_t changes() const { return changes_.load(); }
  int64_t transactions() const { return transactions_.load(); }
  int64_t busy_errors() const { return busy_errors_.load(); }
  std::vector<std::string> errors();
  // Keys deleted (or moved away from) as "table\x1f<col>=<value>...", for
  // checks of tombstones; each entry is the PostgreSQL text of the key columns.
  std::vector<std::vector<std::pair<std::string, std::string>>> DeletedKeys(
      const std::string& table);

 private:
  void Run();
  bool OneTransaction(Sqlite& db);
  std::string db_path_;
  Options options_;
  std::thread thread_;
  std::atomic<bool> stop_{false};

  std::atomic<int64_t> changes_{0};
  std::atomic<int64_t> transactions_{0};
  std::atomic<int64_t> busy_errors_{0};
  std::mutex mu_;
  std::vector<std::string> errors_;
  std::mt19937 rng_;
  int64_t counter_ = 0;
  // Live keys per table (the writer is the only writer of these rows).
  std::vector<std::string> message_ids_;
  std::vector<std::pair<std::string, std::string>> tag_keys_;
  std::vector<int64_t> prompt_ids_;
  std::map<std::string, std::vector<std::vector<std::pair<std::string, std::string>>>> deleted_;
};

// Runs a RandomWriter to completion (until options.min_changes, whatever
// run_until_stopped says), loading the file's current keys first if asked;
// returns its errors.
std::vector<std::string> WriteRandomChanges(const std::string& db_path,
                                            RandomWriter::Options options, bool load_keys = false);

}  // namespace sluice::e2e
