// InstallCapture / UninstallCapture: the `sluice init` and `sluice uninstall`
// work. Everything that can refuse a table (names, limits, the value-stats
// scan) runs first, in one read transaction; the only write transaction is
// short: DDL and a handful of rows. A failed init leaves the file as it was.
#include "capture/installer.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstring>
#include <thread>

#include "capture/schema_reader.h"
#include "capture/sqlite_db.h"
#include "capture/table_filter.h"
#include "capture/table_tracker.h"
#include "capture/trigger_sql.h"

namespace sluice {
namespace {

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Why the switch to WAL failed, in words that say what to fix: a file or a
// directory this user cannot write (SQLite must create <db>-wal and -shm next
// to the database), or another connection that holds the file. Only lock
// contention is kBusy; the rest is kUnavailable: a runtime problem (exit 1),
// not a mistake in the config (exit 2).
Status WalSwitchError(SqliteDb& db, const Result<std::string>& mode) {
  const std::string& path = db.path();
  std::string dir = path.find('/') == std::string::npos ? "." : path.substr(0, path.rfind('/'));
  if (dir.empty()) dir = "/";
  const std::string who = fmt::format("this user (uid {})", ::geteuid());
  const std::string why =
      mode.ok() ? "journal mode stays " + mode.value() : mode.status().message();
  int ext = sqlite3_extended_errcode(db.handle());
  bool readonly = !mode.ok() && (ext & 0xff) == SQLITE_READONLY;
  bool cantopen = !mode.ok() && (ext & 0xff) == SQLITE_CANTOPEN;
  if ((readonly || cantopen) &&
      (ext == SQLITE_READONLY_DIRECTORY || ::access(dir.c_str(), W_OK) != 0)) {
    return Status::Unavailable(fmt::format(
        "cannot switch {} to WAL journal mode ({}): the directory {} is not writable by {}, and "
        "SQLite must create {}-wal and {}-shm there; fix the directory's permissions or run "
        "`sluice init` as the app's user",
        path, why, dir, who, path, path));
  }
  if (readonly || sqlite3_db_readonly(db.handle(), "main") == 1 ||
      ::access(path.c_str(), W_OK) != 0) {
    return Status::Unavailable(fmt::format(
        "cannot switch {} to WAL journal mode ({}): the file {} is not writable by {} (read-only "
        "file, mount or ownership); fix its permissions or run `sluice init` as the app's user",
        path, why, path, who));
  }
  if (cantopen) {
    return Status::Unavailable(fmt::format(
        "cannot switch {} to WAL journal mode ({}): SQLite cannot open {}-wal or {}-shm: {}", path,
        why, path, path, std::strerror(sqlite3_system_errno(db.handle()))));
  }
  if (mode.ok() || mode.status().code() == Status::Code::kBusy) {
    return Status::Busy(fmt::format(
        "cannot switch {} to WAL journal mode ({}): sluice needs WAL so that reading never blocks "
        "the app; close other connections that hold it open in exclusive or rollback mode and run "
        "`sluice init` again",
        path, why));
  }
  return Status::Unavailable(fmt::format("cannot switch {} to WAL journal mode: {}", path, why));
}

// Switches the file to WAL, retrying while another connection holds it.
Result<bool> EnsureWal(SqliteDb& db) {
  Result<std::string> mode = db.QueryText("PRAGMA main.journal_mode");
  if (!mode.ok()) return mode.status();
  if (Lower(*mode) == "wal") return false;
  auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(db.busy_timeout_ms());
  for (;;) {
    mode = db.QueryText("PRAGMA main.journal_mode=WAL");
    if (mode.ok() && Lower(*mode) == "wal") return true;
    bool busy = !mode.ok() && mode.status().code() == Status::Code::kBusy;
    bool not_yet = mode.ok();  // the pragma answers the old mode when it could not switch
    if ((!busy && !not_yet) || std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return WalSwitchError(db, mode);
}

Status CheckEncoding(SqliteDb& db) {
  Result<std::string> enc = db.QueryText("PRAGMA main.encoding");
  if (!enc.ok()) return enc.status();
  if (*enc != "UTF-8") {
    return Status::InvalidArgument(fmt::format(
        "{} uses text encoding {}; sluice captures UTF-8 databases only", db.path(), *enc));
  }
  return Status::Ok();
}

// Best effort: the mode the file had before EnsureWal switched it.
void RestoreJournalMode(SqliteDb& db, const std::string& mode) {
  bool word = !mode.empty() && std::all_of(mode.begin(), mode.end(), [](char c) {
    return std::isalpha(static_cast<unsigned char>(c)) != 0;
  });
  Result<std::string> now =
      word ? db.QueryText("PRAGMA main.journal_mode=" + mode) : Result<std::string>(mode);
  if (!word || !now.ok() || Lower(*now) != Lower(mode)) {
    spdlog::warn("capture: {} stays in WAL journal mode (was {})", db.path(), mode);
  }
}

// Copies the value stats of `scanned` into the plan's shapes. False if a
// table to track is missing there or has another structure: the schema moved
// between the scan and the write lock.
bool TakeStats(const std::vector<TableShape>& scanned, TrackingPlan* plan) {
  for (TablePlan& t : plan->tables) {
    if (!t.tracked()) continue;
    auto it = std::find_if(scanned.begin(), scanned.end(),
                           [&](const TableShape& s) { return s.name == t.name; });
    if (it == scanned.end() || !it->SameStructure(t.shape)) return false;
    for (size_t i = 0; i < t.shape.columns.size(); ++i) {
      ColumnShape& c = t.shape.columns[i];
      c.seen_kinds = it->columns[i].seen_kinds;
      c.text_all_json = it->columns[i].text_all_json;
      c.integers_all_bool = it->columns[i].integers_all_bool;
    }
  }
  return true;
}

// Describes, checks and scans every table to track in one read transaction
// (one snapshot): whatever can refuse a table does so before anything is
// written, and the scan holds no write lock.
Result<std::vector<TableShape>> DescribeAndScan(SqliteDb& db, const TableFilter& filter) {
  Transaction txn(&db);
  SLUICE_RETURN_IF_ERROR(txn.Begin(Transaction::Kind::kDeferred));
  Result<std::vector<TableShape>> shapes = DescribeTables(db, filter);
  if (!shapes.ok()) return shapes.status();
  for (TableShape& shape : *shapes) {
    Status s = FillValueStats(db, &shape);
    if (!s.ok()) return s.Wrap(fmt::format("scan table \"{}\"", shape.name));
  }
  SLUICE_RETURN_IF_ERROR(txn.Commit());
  return shapes;
}

// The install proper, once the file is in WAL mode. *committed tells the
// caller whether the file was changed.
Result<InstallReport> Install(SqliteDb& db, const CaptureOptions& options, bool* committed) {
  TableFilter filter(options.include, options.exclude);
  InstallReport report;
  constexpr int kAttempts = 3;
  for (int attempt = 1;; ++attempt) {
    Result<std::vector<TableShape>> scanned = DescribeAndScan(db, filter);
    if (!scanned.ok()) return scanned.status();

    Transaction txn(&db);
    SLUICE_RETURN_IF_ERROR(txn.Begin(Transaction::Kind::kImmediate));
    SLUICE_RETURN_IF_ERROR(EnsureCaptureTables(db));
    Result<TrackingPlan> plan = PlanTracking(db, filter);
    if (!plan.ok()) return plan.status();
    if (!TakeStats(*scanned, &*plan)) {
      if (attempt == kAttempts) {
        return Status::Busy(
            "the file's schema kept changing while `sluice init` read it: run it again");
      }
      continue;  // rolls back: describe and scan again
    }
    SLUICE_RETURN_IF_ERROR(ApplyTracking(db, *plan));
    Result<std::string> id = ReadSourceId(db);
    if (!id.ok()) return id.status();
    report.source_id = *id;
    Result<std::vector<FullReadMark>> marks = ReadFullReadMarks(db);
    if (!marks.ok()) return marks.status();
    for (const FullReadMark& m : *marks) {
      if (!m.former_names.empty() || !m.column_renames.empty()) report.renamed.push_back(m.table);
    }
    SLUICE_RETURN_IF_ERROR(txn.Commit());
    *committed = true;
    for (TablePlan& t : plan->tables) {
      if (!t.tracked()) continue;
      if (t.action == TablePlan::Action::kTrack || t.action == TablePlan::Action::kRepair) {
        report.newly_tracked.push_back(t.name);
      }
      report.tables.push_back(std::move(t.shape));
    }
    return report;
  }
}

}  // namespace

Result<InstallReport> InstallCapture(const CaptureOptions& options) {
  Result<std::unique_ptr<SqliteDb>> opened = SqliteDb::Open(options.path, options.busy_timeout_ms);
  if (!opened.ok()) return opened.status();
  SqliteDb& db = **opened;
  SLUICE_RETURN_IF_ERROR(CheckEncoding(db));

  Result<std::string> old_mode = db.QueryText("PRAGMA main.journal_mode");
  if (!old_mode.ok()) return old_mode.status();
  Result<bool> switched = EnsureWal(db);
  if (!switched.ok()) return switched.status();
  SLUICE_RETURN_IF_ERROR(FixWalOwnership(options.path));

  bool committed = false;
  Result<InstallReport> report = Install(db, options, &committed);
  if (!report.ok()) {
    // A refused init leaves the file as it found it, journal mode included.
    if (*switched && !committed) RestoreJournalMode(db, *old_mode);
    return report.status();
  }
  report->switched_to_wal = *switched;
  SLUICE_RETURN_IF_ERROR(FixWalOwnership(options.path));
  spdlog::info("capture: installed on {} (source {}): {} tables tracked, {} (re)installed",
               options.path, report->source_id, report->tables.size(),
               report->newly_tracked.size());
  return report;
}

Status UninstallCapture(const CaptureOptions& options) {
  Result<std::unique_ptr<SqliteDb>> opened = SqliteDb::Open(options.path, options.busy_timeout_ms);
  if (!opened.ok()) return opened.status();
  SqliteDb& db = **opened;
  Transaction txn(&db);
  SLUICE_RETURN_IF_ERROR(txn.Begin(Transaction::Kind::kImmediate));
  // sluice's triggers (on the app's tables) first, then its own tables.
  const char* kOwned =
      "SELECT name FROM main.sqlite_master WHERE type = ?1 AND name LIKE '\\_sluice\\_%' "
      "ESCAPE '\\'";
  Result<std::vector<std::string>> triggers = db.QueryStrings(kOwned, {Value::Text("trigger")});
  if (!triggers.ok()) return triggers.status();
  for (const std::string& name : *triggers) SLUICE_RETURN_IF_ERROR(db.Exec(DropTriggerSql(name)));
  Result<std::vector<std::string>> tables = db.QueryStrings(kOwned, {Value::Text("table")});
  if (!tables.ok()) return tables.status();
  for (const std::string& name : *tables) {
    SLUICE_RETURN_IF_ERROR(db.Exec("DROP TABLE IF EXISTS main." + QuoteIdent(name)));
  }
  SLUICE_RETURN_IF_ERROR(txn.Commit());
  SLUICE_RETURN_IF_ERROR(FixWalOwnership(options.path));
  spdlog::info("capture: removed {} sluice objects from {}", triggers->size() + tables->size(),
               options.path);
  return Status::Ok();
}

}  // namespace sluice
