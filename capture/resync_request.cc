// PeekSourceId / RequestFullRead: see resync_request.h. The marks live in
// _sluice_full_reads (table_tracker.h), the same table the tracker writes when
// it starts tracking a table, so the agent needs no other signal.
#include "capture/resync_request.h"

#include <fmt/format.h>

#include "capture/sqlite_db.h"
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

Status RequestFullRead(const CaptureOptions& options, const std::vector<std::string>& tables) {
  Result<std::unique_ptr<SqliteDb>> opened = SqliteDb::Open(options.path, options.busy_timeout_ms);
  if (!opened.ok()) return opened.status();
  SqliteDb& db = **opened;
  SLUICE_RETURN_IF_ERROR(ReadSourceId(db).status());
  Transaction txn(&db);
  SLUICE_RETURN_IF_ERROR(txn.Begin(Transaction::Kind::kImmediate));
  Result<Statement> tracked =
      db.Prepare("SELECT count(*) FROM main._sluice_tables WHERE name = ?1");
  if (!tracked.ok()) return tracked.status();
  for (const std::string& t : tables) {
    SLUICE_RETURN_IF_ERROR(tracked->BindText(1, t));
    Result<bool> row = tracked->Step();
    if (!row.ok()) return row.status();
    bool known = *row && tracked->ColumnInt64(0) > 0;
    tracked->Reset();
    if (!known) {
      return Status::NotFound(
          fmt::format("table \"{}\" is not tracked in {} (see source.include / source.exclude)", t,
                      options.path));
    }
    SLUICE_RETURN_IF_ERROR(MarkFullRead(db, t));
  }
  return txn.Commit();
}

}  // namespace sluice
