// SinkOptions: what sink/ needs to know about the PostgreSQL side. Plain data,
// filled by the agent from the config.
#pragma once

#include <map>
#include <string>

namespace sluice {

struct SinkOptions {
  std::string url;         // libpq conninfo or URI
  std::string schema;      // target schema of the mirror tables
  std::string deployment;  // key of this deployment's rows in sync_metadata
  // A PostgreSQL round trip that gets no byte back for this long is given up
  // (connection dropped, retried); also the default tcp_user_timeout.
  int query_timeout_ms = 30000;
  // table -> column -> PostgreSQL type to use instead of the mapped one
  std::map<std::string, std::map<std::string, std::string>> column_types;
};

}  // namespace sluice
