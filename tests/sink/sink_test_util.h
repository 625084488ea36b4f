// Helpers shared by the sink tests: column shapes in one line, and a blocking
// query (tests/support's Pg) for setting up and observing the server from
// outside the loop under test.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common/table_shape.h"
#include "tests/support/sql_clients.h"

namespace sluice::testing {

inline ColumnShape Col(std::string name, std::string declared, int key = 0, uint8_t seen = 0) {
  ColumnShape c;
  c.name = std::move(name);
  c.declared_type = std::move(declared);
  c.key_position = key;
  c.seen_kinds = seen;
  return c;
}

// Runs `sql` on a new connection; rows as "a|b" strings, NULL as "NULL".
inline std::vector<std::string> Query(const std::string& conninfo, const std::string& sql) {
  Pg pg(conninfo);
  PgRows r = pg.Query(sql);
  std::vector<std::string> rows;
  for (const auto& row : r.rows) {
    std::string line;
    for (size_t j = 0; j < row.size(); ++j) {
      if (j > 0) line += "|";
      line += row[j].value_or("NULL");
    }
    rows.push_back(line);
  }
  return rows;
}

}  // namespace sluice::testing
