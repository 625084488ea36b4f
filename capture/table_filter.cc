// TableFilter: GLOB matching through sqlite3_strglob (same syntax as SQL GLOB).
#include "capture/table_filter.h"

#include <sqlite3.h>

#include <cctype>

namespace sluice {
namespace {

bool StartsWithNoCase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(s[i])) !=
        std::tolower(static_cast<unsigned char>(prefix[i])))
      return false;
  }
  return true;
}

bool Glob(const std::string& pattern, std::string_view name) {
  std::string n(name);  // strglob needs NUL-terminated input
  return sqlite3_strglob(pattern.c_str(), n.c_str()) == 0;
}

}  // namespace

bool TableFilter::IsInternal(std::string_view table) {
  return StartsWithNoCase(table, "sqlite_") || StartsWithNoCase(table, "_sluice_");
}

bool TableFilter::Matches(std::string_view table) const {
  if (IsInternal(table)) return false;
  bool included = include_.empty();
  for (const std::string& p : include_) {
    if (Glob(p, table)) {
      included = true;
      break;
    }
  }
  if (!included) return false;
  for (const std::string& p : exclude_) {
    if (Glob(p, table)) return false;
  }
  return true;
}

}  // namespace sluice
