// PeekSourceId / RequestFullRead: see resync_request.h. The marks live in
// _sluice_full_reads (table_tracker.h), the same table the tracker writes when
// it starts tracking a table, so the agent needs no other signal.
#include "capture/resync_request.h"

#include <fmt/format.h>

#include "capture/sqlite_db.h"
#include "capture/table_filter.h"
#include "capture/table_tracker.h"

namespace sluice {

Result<std::optional<std::string>> PeekSourceId(const CaptureOptions& options) {
  Result<std::unique_ptr<SqliteDb>> db = SqliteDb::Open(options.path, options.busy_timeout_ms);
  if (!db.ok()) return db.status();
  Result<std::string> id = ReadSourceId(**db);
  if (id.ok()) return std::optional<std::string>(*id);
  if (id.status().code() == Status::Code::kInvalidArgument) return std::optional<std::string>();
  return id.status();
}

namespace {

// Why `table` cannot be marked, or Ok when it is tracked. Exit 1 (the file's
// state) for a table gone or not tracked yet, exit 2 (kInvalidArgument: the
// config and the command disagree) for one the filter leaves out.
Status CheckMarkable(SqliteDb& db, const CaptureOptions& options, const std::string& table) {
  Result<std::vector<std::string>> in_file =
      db.QueryStrings("SELECT name FROM main.sqlite_master WHERE type = 'table' AND name = ?1",
                      {Value::Text(table)});
  if (!in_file.ok()) return in_file.status();
  Result<std::vector<std::string>> tracked =
      db.QueryStrings("SELECT name FROM main._sluice_tables WHERE name = ?1", {Value::Text(table)});
  if (!tracked.ok()) return tracked.status();
  if (in_file->empty()) {
    return Status::NotFound(fmt::format(
        "table \"{}\" was dropped from the source file {} (or renamed away, or never existed); "
        "the agent tombstones a dropped table's mirror rows by itself",
        table, options.path));
  }
  if (TableFilter::IsInternal(table)) {
    return Status::InvalidArgument(
        fmt::format("table \"{}\" is internal to SQLite or sluice and never tracked", table));
  }
  if (!TableFilter(options.include, options.exclude).Matches(table)) {
    return Status::InvalidArgument(fmt::format(
        "table \"{}\" of {} is left out by source.include / source.exclude: change them to "
        "track it",
        table, options.path));
  }
  if (tracked->empty()) {
    return Status::NotFound(fmt::format(
        "table \"{}\" exists in {} but is not tracked yet (the agent or `sluice init` tracks it "
        "at the next schema check)",
        table, options.path));
  }
  return Status::Ok();
}

}  // namespace

Status RequestFullRead(const CaptureOptions& options, const std::vector<std::string>& tables) {
  Result<std::unique_ptr<SqliteDb>> opened = SqliteDb::Open(options.path, options.busy_timeout_ms);
  if (!opened.ok()) return opened.status();
  SqliteDb& db = **opened;
  SLUICE_RETURN_IF_ERROR(ReadSourceId(db).status());
  Transaction txn(&db);
  SLUICE_RETURN_IF_ERROR(txn.Begin(Transaction::Kind::kImmediate));
  for (const std::string& t : tables) {
    SLUICE_RETURN_IF_ERROR(CheckMarkable(db, options, t));
    SLUICE_RETURN_IF_ERROR(MarkFullRead(db, t));
  }
  return txn.Commit();
}

}  // namespace sluice
