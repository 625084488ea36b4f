// TableShape: a tracked source table described in neutral terms (names,
// declared types, what the values really hold, row identity), so that the sink
// can build its mirror without knowing SQLite. Produced by capture/, read by sink/.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sluice {

// PostgreSQL keeps NAMEDATALEN - 1 bytes of a name and cuts the rest silently,
// so two long names could become one: capture refuses longer table and column
// names, sink checks every name it writes into SQL, config the schema name.
inline constexpr size_t kMaxIdentifierBytes = 63;

// Names sluice gives its own tables and mirror columns start with this; an app
// table or column that does too is refused (compared ignoring ASCII case, as
// SQLite compares names).
inline constexpr std::string_view kReservedPrefix = "_sluice_";
bool IsReservedName(std::string_view name);

// Name of the synthetic key column of tables identified by rowid only.
inline constexpr const char* kRowidColumn = "_sluice_rowid";

struct ColumnShape {
  std::string name;
  std::string declared_type;  // as written in CREATE TABLE; may be empty
  bool not_null = false;
  int key_position = 0;  // 1-based position in the row identity; 0 = not a key column
  // What the column actually holds, from a scan when the shape was taken:
  uint8_t seen_kinds = 0;         // bitmask of Value::Bit(kind), NULL included
  bool text_all_json = true;      // every TEXT value is valid JSON (json_valid)
  bool integers_all_bool = true;  // every INTEGER value is 0 or 1
};

struct TableShape {
  enum class Identity : uint8_t { kPrimaryKey, kUniqueIndex, kRowid };

  // The synthetic first column kRowidColumn of a rowid-identified table (the
  // one reserved name a shape may carry).
  bool IsSyntheticRowid(const ColumnShape& c) const {
    return identity == Identity::kRowid && !columns.empty() && &c == &columns.front() &&
           c.name == kRowidColumn;
  }

  std::string name;
  // In SQLite column order. For Identity::kRowid the first column is the
  // synthetic kRowidColumn (declared INTEGER, key_position 1).
  std::vector<ColumnShape> columns;
  Identity identity = Identity::kPrimaryKey;
  bool without_rowid = false;
  // Other UNIQUE constraints (indices into `columns`), besides the identity.
  // The sink uses them to tombstone rows that an INSERT OR REPLACE evicted
  // without firing a delete trigger (recursive_triggers off in the app).
  std::vector<std::vector<size_t>> unique_keys;

  // Indices into `columns` of the key columns, in key_position order.
  std::vector<size_t> KeyColumns() const;
  // True when names, declared types and key are the same (value stats ignored).
  bool SameStructure(const TableShape& other) const;
};

const char* IdentityName(TableShape::Identity id);

}  // namespace sluice
