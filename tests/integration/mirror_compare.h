// Mirror comparator for the end-to-end tests: every source row equals its live
// mirror row, values compared by the sink column's type (jsonb semantics for
// JSON, doubles as doubles), no other row live, the key the design prescribes.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tests/support/sql_clients.h"

namespace sluice::e2e {

using testing::Pg;
using testing::Sqlite;
using testing::SqlRow;
using testing::SqlValue;

struct SourceRowRef {
  const std::vector<std::string>* names;
  const SqlRow* values;
  const SqlValue* Get(const std::string& column) const;
};

struct CompareOptions {
  std::vector<std::string> tables;  // empty: every app table of the source
  // When set, a source row that is missing or different at the sink is
  // accepted if this returns true (the row was parked in conflict_log).
  std::function<bool(const std::string& table, const SourceRowRef& row)> is_parked;
};

struct CompareReport {
  std::vector<std::string> problems;
  int64_t rows_compared = 0;
  int64_t rows_parked = 0;
  int tables = 0;
  bool ok() const { return problems.empty(); }
  std::string Text() const;
};

// Checks that every source row equals its live mirror row (matched by the
// sink's key, values compared by the sink column's type), that no other
// mirror row is live, and that the sink key is the row identity the design
// prescribes (primary key, else a UNIQUE index on NOT NULL columns, else rowid).
CompareReport CompareMirror(Sqlite& src, Pg& pg, const std::string& schema,
                            const CompareOptions& options = {});

// Key columns of a mirror table (its primary key, else first unique index).
std::vector<std::string> SinkKeyColumns(Pg& pg, const std::string& schema,
                                        const std::string& table);

// True when the mirror has a row with the given key (key column → value as
// PostgreSQL text) that is tombstoned (_sluice_deleted_at IS NOT NULL).
// nullopt when no such row exists at all.
std::optional<bool> SinkRowTombstoned(Pg& pg, const std::string& schema, const std::string& table,
                                      const std::vector<std::pair<std::string, std::string>>& key);

// The applied_batches ranges for a deployment chain without gap or overlap and
// end at the position; returns "" when they do, else a description.
std::string CheckBatchChain(Pg& pg, const std::string& deployment, int64_t* batches = nullptr);

// The data type (format_type) of a mirror column, "" when missing.
std::string SinkColumnType(Pg& pg, const std::string& schema, const std::string& table,
                           const std::string& column);

}  // namespace sluice::e2e
