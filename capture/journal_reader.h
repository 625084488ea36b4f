// JournalReader: the agent's reading side of the SQLite file. Owns one SQLite
// connection; not thread-safe: the agent calls it from one worker thread at a
// time (never from the loop thread). It never checkpoints and never keeps a
// read transaction open beyond one ReadBatch call.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "capture/capture_options.h"
#include "capture/table_refusal.h"
#include "common/change.h"
#include "common/status.h"

namespace sluice {

struct JournalStats {
  int64_t max_seq = 0;              // highest seq ever issued (sqlite_sequence)
  int64_t pending_rows = 0;         // journal rows with seq > the given position
  double oldest_pending_at_ms = 0;  // unix ms of the oldest pending row; 0 if none
  // Tables marked to be read whole (new, rebuilt, resync --table, held back)
  // whose marks no sink commit has cleared yet: their rows may be missing.
  int64_t pending_full_reads = 0;
};

// Corruption when a journal that has issued seqs up to `journal_max_seq`
// cannot be the one the sink followed to `position` (the file was restored
// from a backup, or lost commits); Ok otherwise. The reader checks it on every
// read, `sluice status` before any agent ran.
Status CheckNotBehind(int64_t journal_max_seq, int64_t position);

class JournalReader {
 public:
  // Opens the file (must already be prepared by InstallCapture and in WAL mode,
  // else kInvalidArgument with a message that says to run `sluice init`).
  static Result<std::unique_ptr<JournalReader>> Open(const CaptureOptions& options);
  virtual ~JournalReader() = default;

  virtual const std::string& source_id() const = 0;

  // Names of the tables tracked now (as of the last CheckSchema).
  virtual std::vector<std::string> TrackedTables() const = 0;
  // Names of the tables the file recorded as tracked when the reader opened
  // (before any CheckSchema): what an agent that does not read yet, a standby,
  // knows of them, e.g. for the zero series of its metrics. Read only.
  virtual std::vector<std::string> RecordedTables() const { return TrackedTables(); }

  // Tables the filter selects that are held back as of the last CheckSchema
  // (TableRefusal): not read, their triggers kept, each marked for a full
  // read in the file so that it is read whole once its cause is fixed.
  virtual std::vector<TableRefusal> RefusedTables() const { return {}; }

  // Cheap (one stat): kNotFound when the path no longer names the file this
  // reader opened (deleted, or replaced by `mv`, e.g. a restore): the caller
  // opens a new reader. Ok otherwise.
  virtual Status CheckFile() = 0;

  // The sink's fingerprint of the journal row at its position `seq` (as
  // Batch::snapshot_mark recorded it). The next ReadBatch after `seq` returns
  // kCorruption if the file's row at `seq` differs: the file was restored or
  // replaced, even when the app has since written past `seq`. "" = unknown.
  virtual void ExpectMark(int64_t seq, std::string mark) = 0;

  // Cheap: true if the database changed (PRAGMA data_version) since the last call.
  virtual Result<bool> Changed() = 0;

  // If PRAGMA schema_version moved since the last call (or on the first call):
  // re-describes the tracked tables, re-installs missing triggers, starts
  // tracking new tables that match the filter. Returns the names of tables
  // whose sink copy must be rebuilt from a full read (new, rebuilt, columns changed).
  virtual Result<std::vector<std::string>> CheckSchema() = 0;

  // Reads one snapshot into *out: the journal after `after_seq` coalesced per
  // key with the current row (or a delete) for each, plus every row of the
  // tables in `full_tables` and of the tables marked for a full read in the
  // file (out->full_read_marks lists the marks covered). Sets out->after_seq, snapshot_seq,
  // source_id, tables. kCorruption if the journal's seq is below after_seq (file restored or lost
  // commits) — except when full_tables lists every tracked table (a full resync): then no check,
  // and snapshot_seq is the journal's current max.
  virtual Status ReadBatch(int64_t after_seq, const std::vector<std::string>& full_tables,
                           Batch* out) = 0;

  // Tells the reader that a sink commit covered these full-read marks (from
  // Batch::full_read_marks): ReadBatch no longer acts on them, and the next
  // Prune clears them in the file (unless a newer mark replaced one).
  virtual void NoteCommitted(const std::vector<FullReadMark>& marks) = 0;

  // Deletes journal rows with seq < position (the row at `position` stays: it
  // is the fingerprint a restored file cannot fake) and clears committed
  // full-read marks, in short BEGIN IMMEDIATE transactions.
  virtual Status Prune(int64_t position) = 0;

  virtual Result<JournalStats> Stats(int64_t position) = 0;

  // The one call that may come from another thread while a call runs (for a
  // stop that must not wait for a long read or prune): the running call and
  // every later one fail soon (SQLITE_INTERRUPT); open transactions roll back.
  // The reader is of no use afterwards.
  virtual void Interrupt() {}
};

}  // namespace sluice
