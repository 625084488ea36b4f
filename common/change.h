// Change and Batch: what capture/ hands the agent and the agent hands sink/.
// A Batch covers journal seqs (after_seq, snapshot_seq] read in ONE SQLite
// snapshot; applying it moves the sink from one committed snapshot to the next.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common/change_spool.h"
#include "common/table_shape.h"
#include "common/value.h"

namespace sluice {

// A durable "read this table whole" decision recorded in the source; the
// token tells a mark from a newer one set for the same table.
struct FullReadMark {
  std::string table;
  int64_t token = 0;
  // Renames the sink has not followed yet, recorded with the mark (so a kill
  // cannot lose them): the table's former names, oldest first, and its
  // column renames (old, new) in the order they happened.
  std::vector<std::string> former_names;
  std::vector<std::pair<std::string, std::string>> column_renames;
  bool operator==(const FullReadMark& o) const { return table == o.table && token == o.token; }
};

// Renames the source saw (ALTER TABLE ... RENAME TO / RENAME COLUMN), for a
// table this batch reads whole: the sink first renames the mirror table (from
// the latest former name it exists under, if none exists under `to`) and then
// its columns (each, in order, when the old name exists there and the new one
// does not), so that the mirror keeps its history (tombstones, old values).
// When it cannot, the full read alone still makes the live rows right.
struct TableRename {
  std::vector<std::string> from;  // former names, oldest first
  std::string to;
};
struct ColumnRename {
  std::string table;  // the table's current name
  std::string from;
  std::string to;
};

struct Batch {
  std::string source_id;     // UUID of the SQLite file (from _sluice_meta)
  int64_t after_seq = 0;     // the sink must hold exactly this position to apply
  int64_t snapshot_seq = 0;  // the position once applied (journal max seq in the snapshot)
  // Fingerprint of the journal row at snapshot_seq ("" if none): stored at the
  // sink with the position, so that a restored file cannot pass for this one.
  std::string snapshot_mark;
  // Shapes of every table the spool refers to; spool records index into this.
  std::vector<TableShape> tables;
  // Names of every table the source follows now (the mirror registry speaks
  // only for these: a dropped table's leftover registry row is left alone).
  std::vector<std::string> tracked_tables;
  // Indices into `tables` read whole in this snapshot: at the sink, live rows
  // not among this batch's upserts for them become tombstones.
  std::vector<uint32_t> full_tables;
  // Tables gone from the source (dropped, or renamed away): every live row of
  // their mirror becomes a tombstone; the mirror table stays.
  std::vector<std::string> dropped_tables;
  std::vector<TableRename> table_renames;    // each `to` is among full_tables
  std::vector<ColumnRename> column_renames;  // each table is among full_tables
  ChangeSpool changes;
  // Marks this batch's full reads cover: cleared in the source once it commits.
  std::vector<FullReadMark> full_read_marks;
  int64_t journal_rows = 0;  // journal rows covered (before coalescing), for metrics
};

}  // namespace sluice
