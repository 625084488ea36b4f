// TableRefusal: a table the filter selects that sluice will not replicate as
// it is now (a column with the reserved prefix _sluice_, a name or width the
// sink cannot hold, no usable row identity). While the agent runs, such a
// table is held back on its own: its triggers stay, it is marked for a full
// read, and the other tables go on. Plain data.
#pragma once

#include <string>

namespace sluice {

struct TableRefusal {
  std::string table;
  std::string reason;  // says what is wrong and how to fix it
};

}  // namespace sluice
