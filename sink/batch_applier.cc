// BatchApplier: one batch = one PostgreSQL transaction, driven as a chain of
// PgConnection::Submit calls on the loop thread. Steps (each a Submit):
//   catalog   read the sink's columns of tables not yet known (+ DDL, re-read)
//   header    BEGIN, sluice_advance (the exactly-once fence); for tables read
//             whole: lock them and count their pages
//   sweep     tables read whole: tombstone their live rows, chunk_bytes of heap
//             per statement, so no statement's work grows with the table
//   chunks    per chunk of the spool (chunk_rows / chunk_bytes): one upsert /
//             delete statement per table and kind, one conflict_log insert for
//             rows that cannot be encoded
//   commit    COMMIT (sent with the last chunk in the fast path)
// Mirror DDL runs before, in transactions of kDdlTablesPerTransaction tables.
// A kDataError from a chunk (the sink refused a row) rolls back and redoes the
// batch in slow mode: each chunk under a savepoint, bisected down to the
// refused rows, which are parked with PostgreSQL's message.
#include "sink/batch_applier.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "common/fault_point.h"
#include "common/hex.h"
#include "sink/mirror_moves.h"
#include "sink/mirror_table.h"
#include "sink/pg_sql.h"
#include "sink/row_encoder.h"
#include "sink/value_encoder.h"

namespace sluice {
namespace {

struct CachedTable {
  TableShape shape;
  MirrorTable target;
  std::string upsert_sql;
  std::string copy_sql;  // new rows of a full read into an empty mirror
  std::string delete_sql;
  std::vector<std::string> evict_sql;  // one per TableShape::unique_keys, run before upserts
};

// One catalog entry from the results of CatalogColumnsSql, KeyIndexExistsSql
// (may be null) and TableIndexesSql.
ExistingTable ParseExisting(const PgResult& columns, const PgResult* key_index,
                            const PgResult& indexes, const PgResult* triggers) {
  ExistingTable existing;
  for (const auto& row : columns.rows) {
    existing.columns.push_back({row[0].value_or(""), row[1].value_or(""), row[2].value_or("")});
  }
  existing.key_index_exists =
      key_index != nullptr && !key_index->rows.empty() && key_index->rows[0][0] == "t";
  for (const auto& row : indexes.rows) {
    existing.relid = row[0].value_or("");
    if (row[1]) existing.index_names.push_back(*row[1]);
    if (row.size() > 3 && row[2] && row[3]) {
      existing.pages = std::stoll(*row[2]);
      existing.page_bytes = std::stoll(*row[3]);
    }
  }
  if (triggers != nullptr) {
    for (const auto& row : triggers->rows) {
      existing.triggers[row[0].value_or("")] = Unhex(row[1].value_or("")).value_or("");
    }
  }
  return existing;
}

size_t ApproxBytes(const Change& c) {
  size_t n = 32;
  for (const Value& v : c.values) n += 24 + v.bytes.size() * 2;
  return n;
}

}  // namespace

struct BatchApplier::Impl {
  explicit Impl(SinkOptions o) : options(std::move(o)) {}

  SinkOptions options;
  std::map<std::string, CachedTable> catalog;
  std::optional<int64_t> epoch;  // SetLease
  int idle_timeout_ms = 0;

  std::optional<std::string> EpochParam() const {
    if (!epoch) return std::nullopt;
    return std::to_string(*epoch);
  }
  // The fence, before a COMMIT (explicit, or the end of an implicit transaction).
  void AddFence(std::vector<PgQuery>* qs) const {
    qs->push_back({FenceSql(), {options.deployment, EpochParam()}});
  }

  // sluice.apply of an apply transaction: the batch, and the conflict policy
  // of its tables and of the tables it drops (those without one of their own
  // follow "default").
  std::string ApplySettings() const {
    std::string out = "{\"mode\":\"apply\",\"batch\":" + std::to_string(batch->snapshot_seq);
    if (epoch) out += ",\"epoch\":" + std::to_string(*epoch);
    out += ",\"source\":";
    AppendJsonString(&out, batch->source_id);
    out += ",\"default\":" + PolicyJson(options.conflicts.defaults) + ",\"tables\":{";
    bool first = true;
    auto add = [&](const std::string& name) {
      auto it = options.conflicts.tables.find(name);
      if (it == options.conflicts.tables.end()) return;
      if (!first) out += ",";
      first = false;
      AppendJsonString(&out, name);
      out += ":" + PolicyJson(it->second);
    };
    for (const TableShape& t : batch->tables) add(t.name);
    // A table dropped in the source: its mirror's rows changed outside meet
    // the orphan pass under that table's own policy.
    for (const std::string& name : dropped_mirrors) add(name);
    out += "}}";
    return out;
  }
  // Settings of a DDL transaction: its writes to mirror rows (the sweep of a
  // mirror set aside) are sluice's own, and no conflicts: they retire rows.
  PgQuery RetireSettings() const {
    return {WriterSettingsSql(), {options.deployment, "{\"mode\":\"retire\"}"}};
  }

  // --- state of the Apply in progress ---
  PgConnection* conn = nullptr;
  Batch* batch = nullptr;
  std::function<void(Status, ApplyStats)> done;
  ApplyStats stats;
  std::vector<TableRowCounts> counted;  // rows written so far, per batch->tables index
  // One chunk's statements, encoded and ready to send.
  struct PreparedChunk {
    Status status;
    std::vector<PgQuery> qs;
    std::vector<TableRowCounts> counts;  // per batch->tables index
    bool last = false;
    bool had_rows = false;
    std::string tables;          // names of the tables whose rows it writes, for messages
    size_t conflicts_query = 0;  // last chunk: index of ConflictsSeenSql among qs
  };

  PreparedChunk next_chunk;  // encoded while the previous chunk is at the server
  bool slow = false;
  bool ddl_done = false;
  DdlMode ddl_mode = DdlMode::kDirect;      // read with the catalog
  std::vector<const CachedTable*> targets;  // per batch->tables index
  // Per batch->tables index: read whole into a mirror that held no row when
  // the batch began: its upserts go by COPY (nothing there to conflict with,
  // each row once). A row COPY refuses sends the batch to the slow path.
  std::vector<bool> copy_into;
  // Per batch->tables index: rows read into chunks (sent), and their bytes.
  std::vector<std::pair<int64_t, int64_t>> sent;
  std::vector<size_t> unknown;    // batch->tables indices to read from the catalog
  std::optional<Change> pending;  // read ahead, to know whether the spool is done
  bool spool_done = false;
  // Current chunk: rows to send, and conflict_log entries for rows refused here.
  std::vector<Change> changes;  // the chunk's changes (slow mode parks from them)
  std::vector<EncodedRow> rows;
  std::vector<std::string> parked;
  std::vector<uint32_t> parked_tables;            // table index of each `parked` entry
  std::vector<std::pair<size_t, size_t>> ranges;  // slow mode: row ranges still to try
  // The header (BEGIN, advance, LostMirrorsSql, ...) went out with the next
  // Submit and its results are not read yet.
  bool header_pending = false;
  size_t lost_mirrors_query = 0;  // index of LostMirrorsSql among the header's queries
  std::vector<std::string> lost;  // mirrors the header found lost, not read whole now
  int move_rounds = 0;            // catalog rounds that renamed mirrors (tables, then columns)
  // Mirrors of batch->dropped_tables that exist at the sink: tombstoned by the header.
  std::vector<std::string> dropped_mirrors;
  std::vector<int64_t> dropped_rows;  // rows the sweep tombstoned, per dropped mirror

  const TableRename* RenameTo(const std::string& table) const {
    for (const TableRename& r : batch->table_renames) {
      if (r.to == table) return &r;
    }
    return nullptr;
  }
  // The sweep still to run: (table, first page, end page), one statement each.
  struct SweepStep {
    std::string qualified;
    int64_t from = 0;
    int64_t to = 0;
    int dropped = -1;  // index into dropped_mirrors, or -1 for a table read whole
  };
  std::vector<SweepStep> sweep;
  std::vector<std::vector<PgQuery>> ddl_groups;  // DDL transactions still to run
  bool cancelled = false;                        // Cancel(): roll back at the next step
  bool commit_sent = false;                      // past this, a cancel cannot roll the batch back

  // -------------------------------------------------------------- entry
  void Start(PgConnection* c, Batch* b, std::function<void(Status, ApplyStats)> d) {
    conn = c;
    batch = b;
    done = std::move(d);
    stats = ApplyStats();
    counted.clear();
    slow = false;
    ddl_done = false;
    move_rounds = 0;
    dropped_mirrors.clear();
    // Mirrors a rename or drop in the source moves: plan them from the catalog.
    for (const std::string& name : batch->dropped_tables) catalog.erase(name);
    for (const TableRename& r : batch->table_renames) {
      for (const std::string& name : r.from) catalog.erase(name);
      catalog.erase(r.to);
    }
    for (const ColumnRename& r : batch->column_renames) catalog.erase(r.table);
    cancelled = false;
    commit_sent = false;
    targets.assign(batch->tables.size(), nullptr);
    copy_into.assign(batch->tables.size(), false);
    sent.assign(batch->tables.size(), {0, 0});  // nothing sent during the DDL before the header
    unknown.clear();
    for (size_t i = 0; i < batch->tables.size(); ++i) {
      auto it = catalog.find(batch->tables[i].name);
      if (it != catalog.end() && it->second.shape.SameStructure(batch->tables[i])) {
        targets[i] = &it->second;
      } else {
        unknown.push_back(i);
      }
    }
    for (uint32_t f : batch->full_tables) {
      if (f >= batch->tables.size()) {
        return Finish(Status::Internal("full table index " + std::to_string(f) + " out of range"));
      }
    }
    if (unknown.empty() && batch->dropped_tables.empty()) return Header();
    ReadCatalog();
  }

  // -------------------------------------------------------------- catalog
  void ReadCatalog() {
    std::vector<PgQuery> qs;
    for (size_t i : unknown) {
      const TableShape& shape = batch->tables[i];
      // Refuse names PostgreSQL cannot hold before they reach any statement.
      Result<MirrorTable> check = PlanMirror(options.schema, options.deployment, shape,
                                             OverridesFor(options.column_types, shape.name), {});
      if (!check.ok()) return Fail(check.status().Wrap("prepare mirror table"));
      std::string keys = "[";
      for (size_t k : check->key) {
        if (keys.size() > 1) keys += ",";
        AppendJsonString(&keys, check->columns[k].name);
      }
      keys += "]";
      qs.push_back({CatalogColumnsSql(), {check->qualified}});
      qs.push_back({KeyIndexExistsSql(), {check->qualified, keys}});
      qs.push_back({TableIndexesSql(), {check->qualified}});
      qs.push_back({ConflictTriggersSql(), {check->qualified}});
      if (const TableRename* r = RenameTo(shape.name)) {
        for (const std::string& name : r->from) {
          std::string from = QualifiedName(options.schema, name);
          qs.push_back({CatalogColumnsSql(), {from}});
          qs.push_back({TableIndexesSql(), {from}});
        }
      }
    }
    for (const std::string& name : batch->dropped_tables) {
      qs.push_back({TableIndexesSql(), {QualifiedName(options.schema, name)}});
    }
    qs.push_back({DdlModeSql(), {options.schema}});
    Submit(std::move(qs), [this](std::vector<PgResult> res) { OnCatalog(std::move(res)); });
  }

  void OnCatalog(std::vector<PgResult> res) {
    std::vector<ExistingTable> found;
    std::vector<std::vector<ExistingTable>> found_former;  // per unknown table, per former name
    size_t q = 0;
    for (size_t i : unknown) {
      found.push_back(ParseExisting(res[q], &res[q + 1], res[q + 2], &res[q + 3]));
      q += 4;
      found_former.emplace_back();
      if (const TableRename* r = RenameTo(batch->tables[i].name)) {
        for (size_t f = 0; f < r->from.size(); ++f, q += 2) {
          found_former.back().push_back(ParseExisting(res[q], nullptr, res[q + 1], nullptr));
        }
      }
    }
    dropped_mirrors.clear();
    for (const std::string& name : batch->dropped_tables) {
      if (!res[q++].rows.empty()) dropped_mirrors.push_back(name);
    }
    ddl_mode = !res[q].rows.empty() && res[q].rows[0][0] == "delegated" ? DdlMode::kDelegated
                                                                        : DdlMode::kDirect;
    if (FollowRenames(found, found_former)) return;

    std::vector<MirrorTable> plans;
    std::vector<std::vector<PgQuery>> ddl;  // one transaction per kDdlTablesPerTransaction tables
    size_t ddl_tables = 0, ddl_statements = 0;
    for (size_t n = 0; n < unknown.size(); ++n) {
      const TableShape& shape = batch->tables[unknown[n]];
      const ExistingTable& existing = found[n];
      Result<MirrorTable> plan =
          PlanMirror(options.schema, options.deployment, shape,
                     OverridesFor(options.column_types, shape.name), existing);
      if (!plan.ok()) return Fail(plan.status().Wrap("prepare mirror table"));
      if (!plan->set_aside_as.empty()) {
        // The new mirror has another oid than the registered one: the header's
        // LostMirrorsSql reports it, and the agent reads it whole.
        spdlog::warn(
            "sink: mirror {} has another key than table \"{}\" now has: kept as {} (its rows "
            "tombstoned), a new mirror is created and resynchronised",
            plan->qualified, shape.name, plan->set_aside_as);
      }
      if (!plan->ddl.empty()) {
        Result<std::vector<DdlStatement>> statements =
            DdlStatements(ddl_mode, options.deployment, options.schema, plan->qualified, plan->ddl,
                          plan->steps, plan->owner_only);
        if (!statements.ok()) return Fail(statements.status());
        if (ddl.empty() || ddl_tables % kDdlTablesPerTransaction == 0) {
          ddl.push_back({RetireSettings()});
          // A host role's schema exists (registered by an administrator).
          if (ddl_mode == DdlMode::kDirect)
            ddl.back().push_back({CreateSchemaSql(options.schema), {}});
        }
        ++ddl_tables;
        for (DdlStatement& s : *statements) {
          ddl.back().push_back({std::move(s.sql), std::move(s.params)});
        }
        ddl_statements += statements->size();
      }
      plans.push_back(std::move(plan.value()));
    }
    if (!ddl.empty()) {
      if (ddl_done) {
        return Fail(Status::Internal("mirror tables still differ from their plan after DDL"));
      }
      ddl_done = true;
      spdlog::info(
          "sink: creating or extending {} mirror table(s) in schema {} ({} statement(s), {} "
          "transaction(s))",
          ddl_tables, options.schema, ddl_statements, ddl.size());
      ddl_groups = std::move(ddl);
      std::reverse(ddl_groups.begin(), ddl_groups.end());  // popped from the back
      return NextDdl();
    }
    for (size_t n = 0; n < unknown.size(); ++n) {
      size_t i = unknown[n];
      CachedTable& t = catalog[batch->tables[i].name];
      t.shape = batch->tables[i];
      t.target = std::move(plans[n]);
      std::vector<SqlColumn> cols, key_cols;
      for (const MirrorColumn& m : t.target.columns) cols.push_back({m.name, m.cast_type});
      for (size_t k : t.target.key) key_cols.push_back(cols[k]);
      t.upsert_sql = UpsertSql(t.target.qualified, cols, t.target.key);
      t.copy_sql = CopySql(t.target.qualified, cols);
      t.delete_sql = DeleteSql(t.target.qualified, t.target.table, key_cols);
      for (const std::vector<size_t>& unique : t.shape.unique_keys) {
        bool valid = !unique.empty();
        for (size_t u : unique) valid = valid && u < cols.size();
        if (valid) t.evict_sql.push_back(EvictSql(t.target.qualified, cols, t.target.key, unique));
      }
      targets[i] = &t;
    }
    unknown.clear();
    Header();
  }

  // Renames mirror tables and columns after the source's renames (see
  // mirror_moves.h), then reads the catalog again. False when there is nothing
  // (more) to rename.
  bool FollowRenames(const std::vector<ExistingTable>& found,
                     const std::vector<std::vector<ExistingTable>>& found_former) {
    static const std::vector<std::string> kNoNames;
    std::vector<PgQuery> moves;
    for (size_t n = 0; n < unknown.size(); ++n) {
      const std::string& table = batch->tables[unknown[n]].name;
      const TableRename* r = RenameTo(table);
      std::vector<std::pair<std::string, std::string>> columns;
      for (const ColumnRename& c : batch->column_renames) {
        if (c.table == table) columns.emplace_back(c.from, c.to);
      }
      MovePlan plan = PlanMoves(options.schema, table, r != nullptr ? r->from : kNoNames,
                                found_former[n], columns, found[n]);
      if (plan.ddl.empty()) continue;
      if (!plan.renamed_from.empty()) {
        spdlog::info("sink: mirror {} renamed to {} after its source table",
                     QualifiedName(options.schema, plan.renamed_from),
                     QualifiedName(options.schema, table));
      } else {
        spdlog::info("sink: mirror {}: column(s) renamed after the source table's",
                     QualifiedName(options.schema, table));
      }
      Result<std::vector<DdlStatement>> statements =
          DdlStatements(ddl_mode, options.deployment, options.schema,
                        QualifiedName(options.schema, table), plan.ddl, plan.steps, "");
      if (!statements.ok()) {
        Fail(statements.status());
        return true;
      }
      for (DdlStatement& s : *statements) moves.push_back({std::move(s.sql), std::move(s.params)});
      if (!plan.renamed_from.empty()) {
        moves.push_back({RenameMirrorSql(), {options.deployment, plan.renamed_from, table}});
      }
    }
    if (moves.empty()) return false;
    if (++move_rounds > 2) {
      Fail(Status::Internal("mirror tables still need renaming after two rounds"));
      return true;
    }
    // One implicit transaction: the registry row moves with the table.
    moves.insert(moves.begin(), RetireSettings());
    SubmitDdl(std::move(moves), "rename mirror tables or columns");
    return true;
  }

  // Runs catalog-changing statements (one implicit transaction), then reads
  // the catalog again.
  void SubmitDdl(std::vector<PgQuery> ddl, const std::string& what) {
    AddFence(&ddl);
    SubmitRaw(std::move(ddl), [this, what](Status st, std::vector<PgResult>) {
      stats.round_trips++;
      if (st.ok()) return ReadCatalog();
      // E.g. a unique index that cannot be built on an adopted table holding
      // duplicate keys: retrying will not help, an operator has to act.
      if (st.code() == Status::Code::kDataError) st = Status::InvalidArgument(st.message());
      Fail(st.Wrap(what + " in schema " + options.schema));
    });
  }

  // One DDL transaction (a Submit without BEGIN is one implicit transaction),
  // then the next; then the catalog is read again: the cast types then come
  // from the sink itself (typmods stripped), whatever the DDL or overrides said.
  void NextDdl() {
    if (cancelled) return Fail(Cancelled());
    if (ddl_groups.empty()) return ReadCatalog();
    std::vector<PgQuery> qs = std::move(ddl_groups.back());
    ddl_groups.pop_back();
    AddFence(&qs);
    SubmitRaw(std::move(qs), [this](Status st, std::vector<PgResult>) {
      stats.round_trips++;
      if (st.ok()) return NextDdl();
      ddl_groups.clear();
      // E.g. a unique index that cannot be built on an adopted table holding
      // duplicate keys: retrying will not help, an operator has to act.
      if (st.code() == Status::Code::kDataError) {
        st = Status::InvalidArgument(st.message());
      }
      if (st.message().find("SQLSTATE 42501") != std::string::npos) {
        // Mirrors owned by an administrator (created by `sluice init` as one):
        // only their owner may add columns or the conflict triggers.
        st = st.Wrap(
            "the agent's role may not change these mirror tables; run `sluice init` with the "
            "rights of their owner, or, for a host role, `sluice admin bootstrap` (it installs "
            "sql/03's sluice_mirror_ddl and adds what this version needs)");
      }
      Fail(st.Wrap("create or extend mirror tables in schema " + options.schema));
    });
  }

  // -------------------------------------------------------------- header
  void Header() {
    Status st = batch->changes.Rewind();
    if (!st.ok()) return Fail(st.Wrap("rewind spool"));
    pending.reset();
    next_chunk = PreparedChunk{};
    spool_done = false;
    commit_sent = false;
    sent.assign(batch->tables.size(), {0, 0});
    std::vector<PgQuery> qs;
    qs.push_back({"BEGIN", {}});
    qs.push_back({WriterSettingsSql(), {options.deployment, ApplySettings()}});
    if (idle_timeout_ms > 0) {
      qs.push_back({LeaseTransactionSettingsSql(), {std::to_string(idle_timeout_ms) + "ms"}});
    }
    if (options.toast_compression != "server") {
      qs.push_back({ToastCompressionSql(), {options.toast_compression}});
    }
    qs.push_back({AdvanceSql(),
                  {options.deployment, batch->source_id, std::to_string(batch->after_seq),
                   std::to_string(batch->snapshot_seq),
                   std::to_string(static_cast<int64_t>(batch->changes.size())), EpochParam()}});
    // With the position, the fingerprint of the source's journal row there: a
    // restored file that reuses the seq has another row (capture/journal_reader.h).
    qs.push_back(
        {"UPDATE sync_metadata.source_position SET position_mark = $2 WHERE deployment "
         "= $1",
         {options.deployment, batch->snapshot_mark}});
    std::vector<std::string> names;
    for (const TableShape& t : batch->tables) names.push_back(t.name);
    lost_mirrors_query = qs.size();
    qs.push_back({LostMirrorsSql(),
                  {options.deployment, options.schema, JsonStringArray(names),
                   JsonStringArray(batch->tracked_tables)}});
    header_pending = true;
    if (batch->full_tables.empty() && dropped_mirrors.empty()) return Body(std::move(qs));
    // Tables read whole: every live row is tombstoned first (the full read
    // upserts the survivors again); a table gone from the source: its mirror's
    // live rows become tombstones, the table itself stays (and stays
    // registered: it is still the one sluice filled). Both in a sweep of
    // bounded statements.
    std::vector<std::string> swept;  // the full tables' mirrors, then the dropped ones
    for (uint32_t f : batch->full_tables) swept.push_back(targets[f]->target.qualified);
    for (const std::string& name : dropped_mirrors) {
      swept.push_back(QualifiedName(options.schema, name));
    }
    size_t pages_query = qs.size();
    for (const std::string& q : swept) {
      qs.push_back({LockForWriteSql(q), {}});
      qs.push_back({RelationPagesSql(), {q}});
      qs.push_back({TableEmptySql(q), {}});
    }
    Submit(std::move(qs), [this, pages_query, swept](std::vector<PgResult> res) {
      TakeHeader(res);
      sweep.clear();
      dropped_rows.assign(dropped_mirrors.size(), 0);
      const size_t full = batch->full_tables.size();
      for (size_t n = 0; n < swept.size(); ++n) {
        const PgResult& r = res[pages_query + 3 * n + 1];
        const PgResult& empty = res[pages_query + 3 * n + 2];
        if (n < full && !empty.rows.empty() && empty.rows[0][0].value_or("f") == "t") {
          copy_into[batch->full_tables[n]] = true;
        }
        if (r.rows.empty() || r.rows[0].size() < 2) {
          return Fail(Status::Internal("counting the pages of a mirror to tombstone: no answer"));
        }
        int64_t pages = std::stoll(r.rows[0][0].value_or("0"));
        int64_t page_bytes = std::max<int64_t>(1, std::stoll(r.rows[0][1].value_or("8192")));
        const int64_t step = std::max<int64_t>(1, options.chunk_bytes / page_bytes);
        int dropped = n < full ? -1 : static_cast<int>(n - full);
        for (int64_t from = 0; from < pages; from += step) {
          sweep.push_back({swept[n], from, std::min(pages, from + step), dropped});
        }
      }
      std::reverse(sweep.begin(), sweep.end());  // popped from the back
      Sweep();
    });
  }

  void Sweep() {
    if (!sweep.empty()) {
      SweepStep s = std::move(sweep.back());
      sweep.pop_back();
      return Submit(
          {{TombstoneRangeSql(s.qualified), {std::to_string(s.from), std::to_string(s.to)}}},
          [this, dropped = s.dropped](std::vector<PgResult> res) {
            if (dropped >= 0 && !res.empty())
              dropped_rows[static_cast<size_t>(dropped)] += res[0].affected;
            Sweep();
          });
    }
    for (size_t d = 0; d < dropped_mirrors.size(); ++d) {
      spdlog::warn(
          "sink: table \"{}\" was dropped in the source: {} live row(s) of mirror {} tombstoned "
          "(the mirror table is kept)",
          dropped_mirrors[d], dropped_rows[d], QualifiedName(options.schema, dropped_mirrors[d]));
    }
    if (batch->full_tables.empty()) return Body({});
    std::string full_names = "[";
    for (uint32_t f : batch->full_tables) {
      if (full_names.size() > 1) full_names += ",";
      AppendJsonString(&full_names, batch->tables[f].name);
    }
    // After the sweep: its lock keeps a TRUNCATE out until the commit.
    Body({{RegisterMirrorsSql(),
           {options.deployment, options.schema, full_names + "]",
            std::to_string(batch->snapshot_seq)}}});
  }

  // The rows, after `qs` (the header, or the mirror registration).
  void Body(std::vector<PgQuery> qs) {
    if (slow) {
      return Submit(std::move(qs), [this](std::vector<PgResult> res) {
        TakeHeader(res);
        SlowChunk();
      });
    }
    FastChunk(std::move(qs));
  }

  // Reads the header's LostMirrorsSql result (query lost_mirrors_query of the
  // first Submit): mirrors to read whole again, except those read whole now.
  void TakeHeader(const std::vector<PgResult>& res) {
    if (!header_pending) return;
    header_pending = false;
    lost.clear();
    if (res.size() <= lost_mirrors_query) return;
    for (const auto& row : res[lost_mirrors_query].rows) {
      std::string name = row[0].value_or("");
      bool full = false;
      for (uint32_t f : batch->full_tables) full = full || batch->tables[f].name == name;
      if (!full) lost.push_back(std::move(name));
    }
  }

  // -------------------------------------------------------------- fast path
  // Reads and encodes the next chunk after `qs` (COMMIT too when the spool is done).
  PreparedChunk PrepareChunk(std::vector<PgQuery> qs) {
    PreparedChunk p;
    p.status = ReadChunk();
    if (!p.status.ok()) return p;
    AppendRowStatements(0, rows.size(), &qs, &p.counts);
    AppendParkStatement(&qs);
    CountParked(&p.counts);
    p.last = spool_done;
    if (p.last) {
      p.conflicts_query = AppendBatchEnd(&qs);
      AddFence(&qs);
      qs.push_back({"COMMIT", {}});
    }
    p.had_rows = !rows.empty();
    p.tables = TableNames(0, rows.size());
    p.qs = std::move(qs);
    return p;
  }

  void FastChunk(std::vector<PgQuery> qs) { SendChunk(PrepareChunk(std::move(qs))); }

  // Sends one prepared chunk, then encodes the following one while PostgreSQL
  // works on this one (Submit never calls back before returning), so the
  // agent's encoding and the server's apply overlap.
  void SendChunk(PreparedChunk p) {
    if (!p.status.ok()) return Fail(p.status);
    bool last = p.last;
    commit_sent = commit_sent || last;
    Submit(
        std::move(p.qs),
        [this, counts = std::move(p.counts), last,
         conflicts_query = p.conflicts_query](std::vector<PgResult> res) {
          TakeHeader(res);
          AddCounts(counts);
          if (last) {
            TakeConflicts(res, conflicts_query);
            return Finish(Status::Ok());
          }
          // Tests freeze or kill the agent here, inside an open transaction.
          FaultPoint("between-chunks");
          SendChunk(std::move(next_chunk));
        },
        p.had_rows, p.tables);
    if (!last) next_chunk = PrepareChunk({});
  }

  // -------------------------------------------------------------- slow path
  void SlowChunk() {
    if (spool_done) {
      commit_sent = true;
      std::vector<PgQuery> qs;
      size_t conflicts_query = AppendBatchEnd(&qs);
      AddFence(&qs);
      qs.push_back({"COMMIT", {}});
      return Submit(std::move(qs), [this, conflicts_query](std::vector<PgResult> res) {
        TakeConflicts(res, conflicts_query);
        Finish(Status::Ok());
      });
    }
    Status st = ReadChunk();
    if (!st.ok()) return Fail(st);
    ranges.clear();
    if (!rows.empty()) ranges.push_back({0, rows.size()});
    std::vector<PgQuery> qs;
    AppendParkStatement(&qs);
    if (qs.empty()) return SlowRange();
    std::vector<TableRowCounts> counts;
    CountParked(&counts);
    Submit(std::move(qs), [this, counts = std::move(counts)](std::vector<PgResult>) {
      AddCounts(counts);
      SlowRange();
    });
  }

  void SlowRange() {
    if (ranges.empty()) return SlowChunk();
    auto [lo, hi] = ranges.back();
    ranges.pop_back();
    std::vector<PgQuery> qs;
    qs.push_back({"SAVEPOINT sluice_rows", {}});
    std::vector<TableRowCounts> counts;
    AppendRowStatements(lo, hi, &qs, &counts);
    qs.push_back({"RELEASE SAVEPOINT sluice_rows", {}});
    SubmitRaw(std::move(qs), [this, lo, hi, counts = std::move(counts)](Status st,
                                                                        std::vector<PgResult>) {
      stats.round_trips++;
      if (st.ok()) {
        AddCounts(counts);
        return SlowRange();
      }
      if (st.code() != Status::Code::kDataError) {
        return Fail(st.Wrap("write rows of table(s) " + TableNames(lo, hi)));
      }
      std::vector<PgQuery> undo;
      undo.push_back({"ROLLBACK TO SAVEPOINT sluice_rows", {}});
      undo.push_back({"RELEASE SAVEPOINT sluice_rows", {}});
      bool single = hi - lo == 1;
      if (single) {
        const Change& c = changes[rows[lo].change];
        spdlog::warn("sink: parking a row of table {} (seq {}): {}", batch->tables[c.table].name,
                     c.seq, st.message());
        parked.assign(1, ParkEntry(batch->tables[c.table], c, st.message()));
        parked_tables.assign(1, c.table);
        AppendParkStatement(&undo);
      } else {
        size_t mid = lo + (hi - lo) / 2;
        ranges.push_back({mid, hi});  // popped second
        ranges.push_back({lo, mid});  // popped first
      }
      std::vector<TableRowCounts> park_counts;
      if (single) CountParked(&park_counts);
      Submit(std::move(undo), [this, park_counts = std::move(park_counts)](std::vector<PgResult>) {
        AddCounts(park_counts);
        SlowRange();
      });
    });
  }

  // -------------------------------------------------------------- chunks
  // Reads up to one chunk from the spool into `changes`, keeps the last change
  // per row, encodes each into `rows` or a conflict_log entry in `parked`.
  Status ReadChunk() {
    changes.clear();
    rows.clear();
    parked.clear();
    parked_tables.clear();
    size_t bytes = 0;
    auto take = [&](Change c) {
      bytes += ApproxBytes(c);
      if (c.table < sent.size()) {
        int64_t value_bytes = 0;
        for (const Value& v : c.values) value_bytes += static_cast<int64_t>(v.bytes.size());
        sent[c.table].first++;
        sent[c.table].second += value_bytes;
      }
      changes.push_back(std::move(c));
    };
    if (pending) {
      take(std::move(*pending));
      pending.reset();
    }
    const size_t max_rows = static_cast<size_t>(std::max(1, options.chunk_rows));
    const size_t max_bytes = static_cast<size_t>(std::max<int64_t>(1, options.chunk_bytes));
    while (!spool_done && changes.size() < max_rows && bytes < max_bytes) {
      Change c;
      Result<bool> more = batch->changes.Next(&c);
      if (!more.ok()) return more.status().Wrap("read spool");
      if (!*more) {
        spool_done = true;
        break;
      }
      take(std::move(c));
    }
    if (!spool_done) {
      Change c;
      Result<bool> more = batch->changes.Next(&c);
      if (!more.ok()) return more.status().Wrap("read spool");
      if (*more) {
        pending = std::move(c);
      } else {
        spool_done = true;
      }
    }

    std::vector<const MirrorTable*> mirrors;
    for (const CachedTable* t : targets) mirrors.push_back(&t->target);
    // The slow path isolates rows one statement at a time: upserts, never COPY.
    Result<EncodedChunk> encoded =
        EncodeChunk(batch->tables, mirrors, changes, slow ? std::vector<bool>{} : copy_into);
    if (!encoded.ok()) return encoded.status();
    rows = std::move(encoded->rows);
    parked = std::move(encoded->parked);
    parked_tables = std::move(encoded->parked_tables);
    return Status::Ok();
  }

  // "a, b": the distinct tables of rows[lo, hi), for error messages.
  std::string TableNames(size_t lo, size_t hi) const {
    std::vector<uint32_t> seen;
    std::string out;
    for (size_t i = lo; i < hi; ++i) {
      uint32_t t = rows[i].table;
      if (std::find(seen.begin(), seen.end(), t) != seen.end()) continue;
      seen.push_back(t);
      if (!out.empty()) out += ", ";
      out += batch->tables[t].name;
    }
    return out;
  }

  // One statement per (table, kind) among rows[lo, hi), in order of first appearance.
  // Counts into `counts` (per batch->tables index) what the statements write.
  void AppendRowStatements(size_t lo, size_t hi, std::vector<PgQuery>* qs,
                           std::vector<TableRowCounts>* counts) {
    counts->resize(batch->tables.size());
    // One statement per (table, kind), its rows as one JSON array parameter.
    // COPY rows: their lines, one after the other.
    std::map<std::tuple<uint32_t, int, bool>, std::string> group;
    for (size_t i = lo; i < hi; ++i) {
      const EncodedRow& r = rows[i];
      std::string& param = group[std::make_tuple(r.table, static_cast<int>(r.kind), r.copy)];
      if (!r.copy) param += param.empty() ? "[" : ",";
      param += r.element;
      if (r.kind == Change::Kind::kUpsert) {
        ++(*counts)[r.table].upserts;
        if (r.copy) ++(*counts)[r.table].copied;
      } else {
        ++(*counts)[r.table].deletes;
      }
    }
    for (auto& [k, param] : group) {
      const auto& [table, kind, copy] = k;
      const CachedTable* t = targets[table];
      if (copy) {
        qs->push_back(PgQuery::Copy(t->copy_sql, std::move(param)));
        continue;
      }
      param += "]";
      if (kind == static_cast<int>(Change::Kind::kUpsert)) {
        for (const std::string& evict : t->evict_sql) qs->push_back({evict, {param}});
        qs->push_back({t->upsert_sql, {std::move(param)}});
      } else {
        qs->push_back({t->delete_sql, {std::move(param)}});
      }
    }
  }

  // After the batch's rows, before its fence: the orphan pass of the tables
  // read whole or dropped (their rows changed outside sluice that the
  // snapshot no longer has), then what conflicts the transaction saw.
  // Returns the index of ConflictsSeenSql among `qs`.
  size_t AppendBatchEnd(std::vector<PgQuery>* qs) const {
    const std::string seq = std::to_string(batch->snapshot_seq);
    for (uint32_t f : batch->full_tables)
      qs->push_back({OrphanSql(targets[f]->target.qualified), {seq}});
    for (const std::string& name : dropped_mirrors) {
      qs->push_back({OrphanSql(QualifiedName(options.schema, name)), {seq}});
    }
    size_t at = qs->size();
    qs->push_back({ConflictsSeenSql(), {options.deployment}});
    qs->push_back({PendingConflictsSql(), {options.deployment}});
    return at;
  }

  void TakeConflicts(const std::vector<PgResult>& res, size_t at) {
    if (res.size() < at + 2) return;
    for (const auto& row : res[at].rows) {
      if (row.size() < 5) continue;
      stats.conflicts.push_back({row[0].value_or(""), row[1].value_or(""), row[2].value_or(""),
                                 row[3].value_or(""), std::stoll(row[4].value_or("0"))});
    }
    if (!res[at + 1].rows.empty() && res[at + 1].rows[0][0]) {
      stats.conflicts_pending = std::stoll(*res[at + 1].rows[0][0]);
    }
  }

  // Adds the `parked` entries to `counts` (per batch->tables index).
  void CountParked(std::vector<TableRowCounts>* counts) const {
    counts->resize(batch->tables.size());
    for (uint32_t t : parked_tables) ++(*counts)[t].parked;
  }

  // A committed (or savepoint-released) piece of the batch: into `counted`,
  // by index; Finish names them into stats once, not on every chunk.
  void AddCounts(const std::vector<TableRowCounts>& counts) {
    counted.resize(std::max(counted.size(), counts.size()));
    for (size_t t = 0; t < counts.size(); ++t) {
      counted[t].upserts += counts[t].upserts;
      counted[t].deletes += counts[t].deletes;
      counted[t].parked += counts[t].parked;
      counted[t].copied += counts[t].copied;
    }
  }

  // `counted` into stats: per table name (only tables with rows) and in all.
  void NameCounts() {
    for (size_t t = 0; t < counted.size(); ++t) {
      const TableRowCounts& c = counted[t];
      if (c.upserts == 0 && c.deletes == 0 && c.parked == 0) continue;
      TableRowCounts& into = stats.tables[batch->tables[t].name];
      into.upserts += c.upserts;
      into.deletes += c.deletes;
      into.parked += c.parked;
      into.copied += c.copied;
      stats.upserts += c.upserts;
      stats.deletes += c.deletes;
      stats.parked += c.parked;
      stats.copied += c.copied;
    }
    counted.clear();
  }

  void AppendParkStatement(std::vector<PgQuery>* qs) {
    if (parked.empty()) return;
    std::string all = "[";
    for (size_t i = 0; i < parked.size(); ++i) {
      if (i > 0) all += ",";
      all += parked[i];
    }
    all += "]";
    qs->push_back({ParkSql(), {options.deployment, batch->source_id, std::move(all)}});
  }

  // -------------------------------------------------------------- plumbing
  // Submits; on success calls next(results); on error rolls back and either
  // switches to slow mode (a row refused while sending rows) or fails.
  // `tables`: the tables whose rows `qs` writes, named in messages.
  void Submit(std::vector<PgQuery> qs, std::function<void(std::vector<PgResult>)> next,
              bool sends_rows = false, std::string tables = "") {
    SubmitRaw(std::move(qs), [this, next = std::move(next), sends_rows, tables = std::move(tables)](
                                 Status st, std::vector<PgResult> res) {
      stats.round_trips++;
      if (st.ok() && cancelled && !commit_sent) return Fail(Cancelled());
      if (st.ok()) return next(std::move(res));
      if (!tables.empty()) st = st.Wrap("write rows of table(s) " + tables);
      if (st.code() == Status::Code::kDataError && sends_rows && !slow) {
        spdlog::info("sink: {}; applying the batch again row by row to isolate it", st.message());
        return Rollback([this] {
          slow = true;
          ApplyStats keep;
          keep.round_trips = stats.round_trips;
          stats = keep;
          counted.clear();
          Header();
        });
      }
      Fail(st);
    });
  }

  static Status Cancelled() {
    return Status::Unavailable(
        "cancelled (the agent is stopping, or lost the leader lease); the batch is rolled back");
  }

  void SubmitRaw(std::vector<PgQuery> qs, PgConnection::SubmitCallback cb) {
    conn->Submit(std::move(qs), std::move(cb));
  }

  void Rollback(std::function<void()> then) {
    if (!conn->connected()) return then();
    conn->Submit({{"ROLLBACK", {}}}, [this, then = std::move(then)](Status, std::vector<PgResult>) {
      stats.round_trips++;
      then();
    });
  }

  void Fail(Status st) {
    if (st.code() != Status::Code::kConflict && st.code() != Status::Code::kFenced) {
      catalog.clear();  // the sink may have changed under us; re-read next time
    }
    Status wrapped = st.Wrap("apply batch (after " + std::to_string(batch->after_seq) + ", to " +
                             std::to_string(batch->snapshot_seq) + ")");
    Rollback([this, wrapped] { Finish(wrapped); });
  }

  void Finish(Status st) {
    if (st.ok() && !lost.empty()) {
      for (const std::string& name : lost) {
        spdlog::warn(
            "sink: mirror table {}.{} is not the one sluice last filled (dropped, recreated or "
            "truncated at the sink, or never read whole): reading it whole again",
            options.schema, name);
        catalog.erase(name);  // it may be gone: plan it again
      }
      stats.resync_tables = lost;
    }
    lost.clear();
    header_pending = false;
    NameCounts();
    auto cb = std::move(done);
    done = nullptr;
    conn = nullptr;
    batch = nullptr;
    targets.clear();
    changes.clear();
    rows.clear();
    parked.clear();
    pending.reset();
    ranges.clear();
    sweep.clear();
    ddl_groups.clear();
    if (cb) cb(std::move(st), stats);
  }
};

BatchApplier::BatchApplier(SinkOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}
BatchApplier::~BatchApplier() = default;

void BatchApplier::Apply(PgConnection* conn, Batch* batch,
                         std::function<void(Status, ApplyStats)> done) {
  impl_->Start(conn, batch, std::move(done));
}

void BatchApplier::InvalidateCatalog() { impl_->catalog.clear(); }

void BatchApplier::SetLease(std::optional<int64_t> epoch, int idle_timeout_ms) {
  impl_->epoch = epoch;
  impl_->idle_timeout_ms = idle_timeout_ms;
}

void BatchApplier::SetConflictPolicy(ConflictPolicy policy) {
  impl_->options.conflicts = std::move(policy);
}

std::optional<ApplyProgress> BatchApplier::Progress() const {
  const Impl& m = *impl_;
  if (!m.done || m.batch == nullptr) return std::nullopt;
  ApplyProgress p;
  for (uint32_t i = 0; i < m.batch->tables.size(); ++i) {
    int64_t total = static_cast<int64_t>(m.batch->changes.count_of(i));
    if (total == 0) continue;
    ApplyProgress::Table t;
    t.name = m.batch->tables[i].name;
    t.full = std::find(m.batch->full_tables.begin(), m.batch->full_tables.end(), i) !=
             m.batch->full_tables.end();
    t.rows_total = total;
    if (i < m.sent.size()) {
      t.rows_done = m.sent[i].first;
      t.bytes_done = m.sent[i].second;
    }
    p.rows_total += t.rows_total;
    p.rows_done += t.rows_done;
    p.bytes_done += t.bytes_done;
    p.tables.push_back(std::move(t));
  }
  return p;
}

void BatchApplier::Cancel() {
  if (impl_->done) impl_->cancelled = true;
}

void BatchApplier::FindLostMirrors(PgConnection* conn, const std::vector<std::string>& tracked,
                                   std::function<void(Status, std::vector<std::string>)> done) {
  const SinkOptions& o = impl_->options;
  conn->Submit(
      {{LostMirrorsSql(),
        {o.deployment, o.schema, "[]", tracked.empty() ? "null" : JsonStringArray(tracked)}}},
      [done = std::move(done), schema = o.schema](Status st, std::vector<PgResult> res) {
        std::vector<std::string> lost;
        if (!st.ok()) {
          return done(st.Wrap("check mirror tables (sync_metadata.mirror_tables: after "
                              "an upgrade, run `sluice init`)"),
                      lost);
        }
        for (const auto& row : res[0].rows) lost.push_back(row[0].value_or(""));
        for (const std::string& name : lost) {
          spdlog::warn(
              "sink: mirror table {}.{} is not the one sluice last filled (dropped, "
              "recreated or truncated at the sink): reading it whole again",
              schema, name);
        }
        done(Status::Ok(), std::move(lost));
      });
}

}  // namespace sluice
