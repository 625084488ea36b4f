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
  std::vector<DdlStep> steps;  // the same as sluice_mirror_ddl steps (MirrorTable::steps)
  // `ddl` renames the table from this name: the caller moves its mirror
  // registry row too. Empty when the table is not renamed.
  std::string renamed_from;
};

// `table`: the source table's current name; `former`: the names it had,
// oldest first (empty if it was not renamed) and `former_found`: the catalog
// of the mirror under each of them; `columns`: column renames (old, new) in
// the order they happened; `now`: the catalog of the mirror named `table`.
// The table is renamed (with the indexes sluice named after it) only when no
// mirror has the new name yet, from the latest former name one exists under;
// a column, in order, only when the mirror has the old name and not the new
// one (so renames the sink followed already are skipped). Anything else
// plans nothing: the full read that follows makes the live rows right either
// way, and nothing is ever dropped.
MovePlan PlanMoves(const std::string& schema, const std::string& table,
                   const std::vector<std::string>& former,
                   const std::vector<ExistingTable>& former_found,
                   const std::vector<std::pair<std::string, std::string>>& columns,
                   const ExistingTable& now);

}  // namespace sluice
