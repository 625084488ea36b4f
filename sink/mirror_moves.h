// MirrorMoves: the statements that make a mirror follow a rename in the
// source (Batch::table_renames / column_renames), planned from the sink's
// catalog. Pure; any thread. BatchApplier's catalog step runs them before it
// plans the mirror (mirror_table.h) under the table's current names, and reads
// the catalog again after each round: a table rename first, its column
// renames in the next round.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "sink/mirror_table.h"

namespace sluice {

struct MovePlan {
  std::vector<std::string> ddl;
  // `ddl` renames the table: the caller moves its mirror registry row too.
  bool table_renamed = false;
};

// `table`: the source table's current name; `renamed_from`: its old name if
// it was renamed (else ""); `columns`: old -> new column names. `now`: the
// catalog of the mirror named `table`; `from`: of the one named
// `renamed_from`. The table is renamed (with the indexes sluice named after
// it) only when the old mirror exists and no mirror has the new name yet; a
// column only when the mirror has the old name and not the new one. Anything
// else plans nothing: the full read that follows makes the live rows right
// either way, and nothing is ever dropped.
MovePlan PlanMoves(const std::string& schema, const std::string& table,
                   const std::string& renamed_from,
                   const std::vector<std::pair<std::string, std::string>>& columns,
                   const ExistingTable& now, const ExistingTable& from);

}  // namespace sluice
