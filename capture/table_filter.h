// TableFilter: decides which SQLite tables sluice tracks, from the include and
// exclude GLOB patterns of CaptureOptions. sqlite_* and _sluice_* (any case)
// are never tracked. Pure; safe to share between threads once built.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace sluice {

class TableFilter {
 public:
  TableFilter(std::vector<std::string> include, std::vector<std::string> exclude)
      : include_(std::move(include)), exclude_(std::move(exclude)) {}

  // True when `table` matches an include pattern (or include is empty) and no
  // exclude pattern; always false for internal names.
  bool Matches(std::string_view table) const;

  // True for names SQLite or sluice reserve (sqlite_*, _sluice_*, any case).
  static bool IsInternal(std::string_view table);

 private:
  std::vector<std::string> include_;
  std::vector<std::string> exclude_;
};

}  // namespace sluice
