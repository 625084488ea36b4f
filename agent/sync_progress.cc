// SyncProgress (see sync_progress.h).
#include "agent/sync_progress.h"

#include <cmath>
#include <cstdio>

#include "common/json_text.h"

namespace sluice {

SyncProgress MakeSyncProgress(const ApplyProgress& p, bool initial, int64_t started_ms,
                              int64_t now_ms) {
  SyncProgress s;
  bool full = false;
  for (const ApplyProgress::Table& t : p.tables) full = full || t.full;
  s.kind = initial ? "initial sync" : full ? "resync" : "batch";
  s.started_ms = started_ms;
  s.rows_total = p.rows_total;
  s.rows_done = p.rows_done;
  s.bytes_done = p.bytes_done;
  for (const ApplyProgress::Table& t : p.tables) {
    s.tables.push_back({t.name, t.rows_total, t.rows_done, t.bytes_done});
    ++s.tables_total;
    if (t.rows_done >= t.rows_total) ++s.tables_done;
  }
  double elapsed = static_cast<double>(now_ms - started_ms) / 1000;
  if (elapsed > 0 && p.rows_done > 0) {
    s.rows_per_s = static_cast<double>(p.rows_done) / elapsed;
    s.eta_s = static_cast<double>(p.rows_total - p.rows_done) / s.rows_per_s;
  }
  return s;
}

namespace {

std::string Number(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

}  // namespace

std::string SyncProgressJson(const std::optional<SyncProgress>& p) {
  if (!p) return "null";
  std::string j = "{\"kind\":";
  AppendJsonStringLossy(&j, p->kind);
  j += ",\"started_ms\":" + std::to_string(p->started_ms);
  j += ",\"rows_total\":" + std::to_string(p->rows_total);
  j += ",\"rows_done\":" + std::to_string(p->rows_done);
  j += ",\"bytes_done\":" + std::to_string(p->bytes_done);
  j += ",\"tables_total\":" + std::to_string(p->tables_total);
  j += ",\"tables_done\":" + std::to_string(p->tables_done);
  j += ",\"rows_per_s\":" + Number(p->rows_per_s);
  j += ",\"eta_s\":" + (p->eta_s < 0 ? std::string("null") : Number(p->eta_s));
  j += ",\"tables\":[";
  for (size_t i = 0; i < p->tables.size(); ++i) {
    const SyncProgress::Table& t = p->tables[i];
    if (i > 0) j += ",";
    j += "{\"table\":";
    AppendJsonStringLossy(&j, t.table);
    j += ",\"rows_total\":" + std::to_string(t.rows_total) +
         ",\"rows_done\":" + std::to_string(t.rows_done) +
         ",\"bytes_done\":" + std::to_string(t.bytes_done) + "}";
  }
  return j + "]}";
}

}  // namespace sluice
