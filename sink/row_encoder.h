// Row encoding for BatchApplier: turns a chunk of spool changes into the JSON
// rows the data statements carry (pg_sql's UpsertSql / DeleteSql), keeping the
// last change per row, and sets aside as conflict_log entries (pg_sql's
// ParkSql) the rows whose values the sink cannot store. Pure; any thread.
#pragma once

#include <string>
#include <vector>

#include "common/change.h"
#include "common/status.h"
#include "sink/mirror_table.h"

namespace sluice {

struct EncodedRow {
  uint32_t table = 0;  // index into the batch's tables
  Change::Kind kind = Change::Kind::kUpsert;
  size_t change = 0;  // index of the change it came from
  // ["v0", null, ..., "seq"]: encoded values, then the seq; then 1 for an
  // upsert with Change::updates_existing (see UpsertSql). With `copy`, one
  // COPY text line instead, for CopySql: the values, the seq, NULL, then
  // kExpectedRowMarker or NULL; ends in a newline.
  std::string element;
  bool copy = false;
};

struct EncodedChunk {
  std::vector<EncodedRow> rows;         // in spool order
  std::vector<std::string> parked;      // conflict_log entries, see ParkEntry
  std::vector<uint32_t> parked_tables;  // the table index of each parked entry

  void Park(uint32_t table, std::string entry) {
    parked.push_back(std::move(entry));
    parked_tables.push_back(table);
  }
};

// `targets[i]` is the mirror of `shapes[i]`. Only the last change per row (table
// and key) is kept. A row with a NULL key value or a value EncodeValue refuses
// is parked, not encoded. Internal for changes that do not match their shape.
// `copy[i]` (missing = false): the upserts of table i are COPY text lines.
Result<EncodedChunk> EncodeChunk(const std::vector<TableShape>& shapes,
                                 const std::vector<const MirrorTable*>& targets,
                                 const std::vector<Change>& changes,
                                 const std::vector<bool>& copy = {});

// A conflict_log entry for ParkSql: [table, row_key, seq, reason, source_data]
// with row_key the JSON array of the key values and source_data an object
// column -> value, both in AppendValueJson's lossless form.
std::string ParkEntry(const TableShape& shape, const Change& change, const std::string& reason);

}  // namespace sluice
