// Key codec: the text form of a row identity written by the triggers into
// _sluice_journal.key. Per key column one component, joined with '|':
//   'i' decimal int64 | 't' HEX(utf-8 bytes) | 'b' HEX(bytes) |
//   'r' printf('%!.17g') | 'n' (NULL)
// EncodeKey produces byte for byte what the trigger SQL (trigger_sql.h)
// produces; DecodeKey reverses it. Pure; any thread.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "common/value.h"

namespace sluice {

std::string EncodeKey(const std::vector<Value>& key);
Result<std::vector<Value>> DecodeKey(std::string_view encoded);

// The component for one value (what the SQL CASE expression yields).
std::string EncodeKeyComponent(const Value& v);

// True when some component is a REAL: SQLite's 17-digit printf does not round
// trip every double, so the reader also matches such keys by their encoded form.
bool KeyHasReal(const std::vector<Value>& key);

}  // namespace sluice
