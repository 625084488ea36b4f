// Change and Batch: what capture/ hands the agent and the agent hands sink/.
// A Batch covers journal seqs (after_seq, snapshot_seq] read in ONE SQLite
// snapshot; applying it moves the sink from one committed snapshot to the next.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/change_spool.h"
#include "common/table_shape.h"
#include "common/value.h"

namespace sluice {

struct Batch {
  std::string source_id;     // UUID of the SQLite file (from _sluice_meta)
  int64_t after_seq = 0;     // the sink must hold exactly this position to apply
  int64_t snapshot_seq = 0;  // the position once applied (journal max seq in the snapshot)
  // Shapes of every table the spool refers to; spool records index into this.
  std::vector<TableShape> tables;
  // Indices into `tables` read whole in this snapshot: at the sink, live rows
  // not among this batch's upserts for them become tombstones.
  std::vector<uint32_t> full_tables;
  ChangeSpool changes;
  int64_t journal_rows = 0;  // journal rows covered (before coalescing), for metrics
};

}  // namespace sluice
