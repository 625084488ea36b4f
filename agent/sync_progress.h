// SyncProgress: how far the batch at the sink is (an initial sync, a resync,
// or a large batch), as `sluice status`, /health and the state file show it:
// rows and bytes sent per table, tables done of total, rate and time left.
// Built from the applier's counts; pure.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "sink/batch_applier.h"

namespace sluice {

struct SyncProgress {
  struct Table {
    std::string table;
    int64_t rows_total = 0;
    int64_t rows_done = 0;
    int64_t bytes_done = 0;
  };
  std::string kind;        // "initial sync", "resync" (tables read whole), "batch"
  int64_t started_ms = 0;  // unix ms
  int64_t rows_total = 0, rows_done = 0, bytes_done = 0;
  int64_t tables_total = 0, tables_done = 0;
  double rows_per_s = 0;
  double eta_s = -1;  // -1: not known yet (nothing sent)
  std::vector<Table> tables;
};

// `initial`: the sink position is still -1. The rate is rows done over the
// time since `started_ms`; the time left, the rows left at that rate.
SyncProgress MakeSyncProgress(const ApplyProgress& p, bool initial, int64_t started_ms,
                              int64_t now_ms);

// {"kind":...,"started_ms":...,"rows_total":...,"rows_done":...,"bytes_done":...,
//  "tables_total":...,"tables_done":...,"rows_per_s":...,"eta_s":... (null when unknown),
//  "tables":[{"table","rows_total","rows_done","bytes_done"}]}, or null.
std::string SyncProgressJson(const std::optional<SyncProgress>& p);

}  // namespace sluice
