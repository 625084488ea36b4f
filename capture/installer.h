// Installs and removes sluice's objects in the app's SQLite file: _sluice_meta,
// _sluice_journal and three triggers per tracked table. Idempotent, one short
// write transaction each, safe while the app writes. Called by the CLI (init,
// uninstall) and by JournalReader when the schema moves. Any thread.
#pragma once

#include <string>
#include <vector>

#include "capture/capture_options.h"
#include "common/status.h"
#include "common/table_shape.h"

namespace sluice {

struct InstallReport {
  std::string source_id;                   // UUID minted on first install, kept after
  bool switched_to_wal = false;            // the file was in a rollback-journal mode
  std::vector<TableShape> tables;          // every tracked table, with value stats
  std::vector<std::string> newly_tracked;  // tables whose triggers were (re)created now
  // Tracked tables whose full-read mark carries renames (table or column) the
  // sink may not have followed yet: `init` leaves their mirrors to the agent,
  // which renames the old mirror first (a mirror created now would stop it).
  std::vector<std::string> renamed;
};

// Creates the file's sluice objects if missing, switches it to WAL (refusing
// with a clear message if it cannot), installs missing triggers.
Result<InstallReport> InstallCapture(const CaptureOptions& options);

// Removes every sluice object from the file; the app's tables are untouched.
Status UninstallCapture(const CaptureOptions& options);

}  // namespace sluice
