// ChangeSpool: an append-then-read sequence of row changes. Kept in memory up to
// a limit, then spilled to an unlinked private temp file, so a large backlog can
// be read out of SQLite quickly (closing the read transaction) and applied in
// bounded memory. A directory that cannot hold the spill (missing, not a
// directory, full) does not fail the batch: the changes stay in memory and
// spill_error() says why, for the caller to report. One thread at a time;
// movable, not copyable.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "common/status.h"
#include "common/value.h"

namespace sluice {

struct Change {
  enum class Kind : uint8_t { kUpsert = 0, kDelete = 1 };
  Kind kind = Kind::kUpsert;
  uint32_t table = 0;  // index into Batch::tables
  int64_t seq = 0;     // journal seq that last touched this key (snapshot seq for full loads)
  // kUpsert read from the journal whose first entry in the read was an UPDATE
  // of this key (not the new key of a key change): the row existed before the
  // read, so the sink should have it. A full read never sets it.
  bool updates_existing = false;
  // kUpsert: every column in TableShape::columns order. kDelete: the key
  // values in TableShape::KeyColumns() order.
  std::vector<Value> values;
};

class ChangeSpool {
 public:
  explicit ChangeSpool(size_t memory_limit_bytes = 8u << 20, std::string temp_dir = "");
  ~ChangeSpool();
  ChangeSpool(ChangeSpool&& other) noexcept;
  ChangeSpool& operator=(ChangeSpool&& other) noexcept;
  ChangeSpool(const ChangeSpool&) = delete;
  ChangeSpool& operator=(const ChangeSpool&) = delete;

  Status Append(const Change& change);
  // Starts (or restarts) reading from the first change.
  Status Rewind();
  // Reads the next change into *out; returns false at the end.
  Result<bool> Next(Change* out);

  size_t size() const { return count_; }
  bool empty() const { return count_ == 0; }
  bool spilled() const { return fd_ >= 0; }
  uint64_t bytes() const { return bytes_; }
  // Changes appended for table index `table` (Change::table).
  size_t count_of(uint32_t table) const {
    return table < per_table_.size() ? per_table_[table] : 0;
  }

  // Whether `dir` ("" = $TMPDIR or /tmp) can hold a spill file: a directory
  // in which a file can be created (kInvalidArgument naming it otherwise).
  static Status CheckDir(const std::string& dir);
  // Why the changes are held in memory past the limit; "" when they are not.
  const std::string& spill_error() const { return spill_error_; }

 private:
  Status Spill();
  Status Flush();  // buffer_ to the end of the file
  Status MoveBackToMemory(std::string why);
  void KeepInMemory(std::string why);
  void Reset();

  size_t memory_limit_;
  std::string temp_dir_;
  std::string buffer_;       // encoded records while in memory
  int fd_ = -1;              // the spill file, once spilled
  uint64_t file_bytes_ = 0;  // whole records written to fd_
  std::string spill_dir_;
  std::FILE* file_ = nullptr;  // reads fd_ once reading started
  size_t read_offset_ = 0;
  size_t count_ = 0;
  uint64_t bytes_ = 0;
  std::vector<size_t> per_table_;  // changes by Change::table
  bool reading_ = false;
  std::string spill_error_;
};

}  // namespace sluice
