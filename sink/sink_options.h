// SinkOptions: what sink/ needs to know about the PostgreSQL side. Plain data,
// filled by the agent from the config.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "sink/conflict_policy.h"

namespace sluice {

struct SinkOptions {
  std::string url;         // libpq conninfo or URI
  std::string schema;      // target schema of the mirror tables
  std::string deployment;  // key of this deployment's rows in sync_metadata
  // A PostgreSQL round trip that gets no byte back for this long is given up
  // (connection dropped, retried); also the default tcp_user_timeout.
  int query_timeout_ms = 30000;
  // Bounds of one chunk of a batch: at most this many changes and about this
  // many bytes of row data per round of statements. A batch is still ONE
  // transaction; the bounds keep every single statement short (a pooler's or
  // Supabase's statement_timeout) and the agent's memory flat. The sweep that
  // tombstones a table read whole goes chunk_bytes of its heap per statement.
  int chunk_rows = 2000;
  int64_t chunk_bytes = 1 << 20;
  // How the apply transaction compresses values PostgreSQL TOASTs: "lz4" (where
  // the server has it, else its default), "pglz", or "server" (its
  // default_toast_compression). Set for the transaction only.
  std::string toast_compression = "lz4";
  // table -> column -> PostgreSQL type to use instead of the mapped one
  std::map<std::string, std::map<std::string, std::string>> column_types;
  // How conflicts with outside writes are resolved, per table (sink/conflict_policy.h).
  ConflictPolicy conflicts;

  bool operator==(const SinkOptions&) const = default;
};

}  // namespace sluice
