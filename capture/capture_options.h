// CaptureOptions: what capture/ needs to know about the source SQLite file.
// Filled by the agent from the config; plain data.
#pragma once

#include <string>
#include <vector>

namespace sluice {

struct CaptureOptions {
  std::string path;                  // the app's SQLite file
  std::vector<std::string> include;  // glob patterns (SQLite GLOB syntax); empty = every table
  std::vector<std::string> exclude;  // glob patterns; sqlite_* and _sluice_* are always excluded
  int busy_timeout_ms = 5000;        // how long to wait on SQLITE_BUSY before reporting kBusy
  std::string spool_dir;             // where a large batch spills; empty = $TMPDIR or /tmp
  size_t spool_memory_limit = 4u << 20;

  bool operator==(const CaptureOptions&) const = default;
};

}  // namespace sluice
