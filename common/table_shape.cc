// TableShape helpers: key column order and structural comparison.
#include "common/table_shape.h"

#include <algorithm>

namespace sluice {

bool IsReservedName(std::string_view name) {
  if (name.size() < kReservedPrefix.size()) return false;
  for (size_t i = 0; i < kReservedPrefix.size(); ++i) {
    char c = name[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != kReservedPrefix[i]) return false;
  }
  return true;
}

std::vector<size_t> TableShape::KeyColumns() const {
  std::vector<size_t> keys;
  for (size_t i = 0; i < columns.size(); ++i) {
    if (columns[i].key_position > 0) keys.push_back(i);
  }
  std::sort(keys.begin(), keys.end(), [this](size_t a, size_t b) {
    return columns[a].key_position < columns[b].key_position;
  });
  return keys;
}

bool TableShape::SameStructure(const TableShape& other) const {
  if (name != other.name || identity != other.identity || columns.size() != other.columns.size())
    return false;
  for (size_t i = 0; i < columns.size(); ++i) {
    const ColumnShape& a = columns[i];
    const ColumnShape& b = other.columns[i];
    if (a.name != b.name || a.declared_type != b.declared_type || a.key_position != b.key_position)
      return false;
  }
  return true;
}

const char* IdentityName(TableShape::Identity id) {
  switch (id) {
    case TableShape::Identity::kPrimaryKey:
      return "primary key";
    case TableShape::Identity::kUniqueIndex:
      return "unique index";
    case TableShape::Identity::kRowid:
      return "rowid";
  }
  return "?";
}

}  // namespace sluice
