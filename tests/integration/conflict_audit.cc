// The conflict torture's audit (see conflict_audit.h).
#include "tests/integration/conflict_audit.h"

#include <algorithm>
#include <tuple>

namespace sluice::e2e {

using testing::PgRows;
using testing::PgTable;
using testing::QuoteIdent;

namespace {

const char* kBaseState =
    "CASE WHEN {b} IS NULL THEN 'none' WHEN {b} -> '_sluice_deleted_at' = 'null'::jsonb THEN "
    "'live' ELSE 'deleted' END";

std::string BaseState(const std::string& column) {
  std::string s = kBaseState;
  for (size_t p; (p = s.find("{b}")) != std::string::npos;) s.replace(p, 3, column);
  return s;
}

std::string Text(const std::optional<std::string>& v) { return v.value_or(""); }
bool True(const std::optional<std::string>& v) { return v.value_or("") == "t"; }

std::string Name(const RowId& row) { return row.first + " " + row.second; }

std::string StrategyOf(const Strategies& strategies, const std::string& table) {
  auto it = strategies.find(table);
  return it == strategies.end() ? "source_wins" : it->second;
}

bool SurelyFollowed(const TimedWrite& w, const std::vector<TimedWrite>& source) {
  return std::any_of(source.begin(), source.end(),
                     [&](const TimedWrite& s) { return w.SurelyBefore(s); });
}

// An outside delete the source may have agreed with: the source deleted the
// version the outside deleted (a source delete after the source write of the
// image sluice had written, its base; the agent may apply it after the outside delete, whenever it
// was committed). That delete then uses the outside delete up, no conflict.
bool AgreedBySource(const TimedWrite& d, const std::vector<TimedWrite>& source) {
  bool seen = false;
  for (const TimedWrite& s : source) {
    if (s.op != 'd' && s.value == d.base_value) seen = true;
    if (seen && s.op == 'd') return true;
  }
  return false;
}

// A row's writes, log rows and state at the sink, for a failure message.
std::string Describe(const RowId& row, const RowHistory& h, const SinkSnapshot& sink) {
  std::string out;
  auto write = [&](const char* who, const TimedWrite& w) {
    out += std::string("  ") + who + " [" + std::to_string(w.begin) + "," + std::to_string(w.end) +
           "] " + w.op + " " + w.value;
    if (w.op != 'i' && who[0] == 'o') {
      out += " (found " + w.prev_value + (w.prev_marked ? " marked" : "") +
             (w.op == 'd' ? ", base " + w.base_value + (w.provokes ? ", provokes" : "") : "") + ")";
    }
    out += "\n";
  };
  for (const TimedWrite& w : h.source) write("source ", w);
  for (const TimedWrite& w : h.outside) write("outside", w);
  for (const ConflictLogRow& c : sink.log) {
    if (c.row != row) continue;
    out += "  log " + std::to_string(c.id) + " " + c.kind + " epoch " + std::to_string(c.epoch) +
           " batch " + std::to_string(c.batch) + " seq " + std::to_string(c.seq) + ": source " +
           Text(c.source_value) + (c.source_deleted ? " (deleted)" : "") + ", target " +
           (c.target_null ? "none" : Text(c.target_value)) +
           (c.target_deleted ? " (deleted)" : "") + ", base " + c.base + " " + Text(c.base_value) +
           "\n";
  }
  auto k = sink.rows.find(row);
  out += k == sink.rows.end()
             ? "  sink: no row\n"
             : "  sink: " + std::string(k->second.live ? "live " : "tombstone ") + k->second.value +
                   (k->second.marked ? " marked, base " + k->second.base : "") + "\n";
  auto open = sink.open_deletes.find(row);
  if (open != sink.open_deletes.end()) out += "  open outside delete, base " + open->second + "\n";
  return out;
}

}  // namespace

SinkSnapshot ReadSink(Pg& pg, const std::string& deployment, const std::string& schema) {
  SinkSnapshot out;
  for (const TortureTable& t : TortureTables()) {
    std::string col = QuoteIdent(t.text_column);
    PgRows rows = pg.Query("SELECT id, _sluice_deleted_at IS NULL, coalesce(" + col +
                           ", ''), updated_at::text, _sluice_outside_at IS NOT NULL, " +
                           BaseState("_sluice_base") + " FROM " + PgTable(schema, t.name));
    for (const auto& r : rows.rows) {
      SinkRow s{True(r[1]), Text(r[2]), Text(r[3]), True(r[4]), Text(r[5])};
      out.rows[{t.name, Text(r[0])}] = s;
    }
    PgRows log = pg.Query(
        "SELECT l.id, l.row_key ->> 0, l.kind, coalesce(l.strategy, ''), l.status, "
        "coalesce(l.resolved_by, ''), l.source_data ->> $2, "
        "l.source_data ->> '_sluice_deleted_at' IS NOT NULL, l.target_data IS NULL, "
        "l.target_data ->> $2, l.target_data ->> '_sluice_deleted_at' IS NOT NULL, " +
            BaseState("l.base_data") +
            ", l.base_data ->> $2, l.resolved_data IS NOT DISTINCT FROM l.source_data, "
            "l.resolved_data IS NOT DISTINCT FROM l.target_data, coalesce(l.seq, -1), "
            "coalesce(l.epoch, -1), coalesce(l.batch, -1), EXISTS (SELECT 1 FROM "
            "sync_metadata.applied_batches b WHERE b.deployment = l.deployment AND b.epoch = "
            "l.epoch AND b.snapshot_seq = l.batch AND l.seq > b.after_seq AND l.seq <= "
            "b.snapshot_seq) FROM sync_metadata.conflict_log l WHERE l.deployment = $1 AND "
            "l.table_name = $3 AND l.status <> 'parked' ORDER BY l.id",
        {deployment, t.text_column, t.name});
    for (const auto& r : log.rows) {
      ConflictLogRow c;
      c.id = std::stoll(Text(r[0]));
      c.row = {t.name, Text(r[1])};
      c.kind = Text(r[2]);
      c.strategy = Text(r[3]);
      c.status = Text(r[4]);
      c.resolved_by = Text(r[5]);
      c.source_value = r[6];
      c.source_deleted = True(r[7]);
      c.target_null = True(r[8]);
      c.target_value = r[9];
      c.target_deleted = True(r[10]);
      c.base = Text(r[11]);
      c.base_value = r[12];
      c.resolved_is_source = True(r[13]);
      c.resolved_is_target = True(r[14]);
      c.seq = std::stoll(Text(r[15]));
      c.epoch = std::stoll(Text(r[16]));
      c.batch = std::stoll(Text(r[17]));
      c.batch_committed = True(r[18]);
      out.log.push_back(std::move(c));
    }
    PgRows open = pg.Query(
        "SELECT row_key ->> 0, base_data ->> $3 FROM sync_metadata.outside_deletes WHERE "
        "deployment = $1 AND table_name = $2 AND consumed_at IS NULL",
        {deployment, t.name, t.text_column});
    for (const auto& r : open.rows) out.open_deletes[{t.name, Text(r[0])}] = Text(r[1]);
  }
  std::sort(out.log.begin(), out.log.end(),
            [](const ConflictLogRow& a, const ConflictLogRow& b) { return a.id < b.id; });
  out.parked = pg.ScalarInt(
      "SELECT count(*) FROM sync_metadata.conflict_log WHERE deployment = $1 AND status = "
      "'parked'",
      {deployment});
  return out;
}

std::map<RowId, SourceRow> ReadSource(Sqlite& app) {
  std::map<RowId, SourceRow> out;
  for (const TortureTable& t : TortureTables()) {
    for (const auto& r : app.Query("SELECT id, " + QuoteIdent(t.text_column) +
                                   ", updated_at FROM " + QuoteIdent(t.name))) {
      out[{t.name, r[0].bytes}] = SourceRow{r[1].bytes, r[2].i};
    }
  }
  return out;
}

ConflictAudit AuditConflicts(const SinkSnapshot& sink, const std::map<RowId, SourceRow>& source,
                             const std::map<RowId, RowHistory>& history,
                             const Strategies& strategies,
                             const std::map<std::string, int64_t>& full_reads) {
  ConflictAudit a;
  auto full_reads_of = [&](const std::string& table) -> int64_t {
    auto it = full_reads.find(table);
    return it == full_reads.end() ? 0 : it->second;
  };
  static const RowHistory kNone;
  auto history_of = [&](const RowId& row) -> const RowHistory& {
    auto it = history.find(row);
    return it == history.end() ? kNone : it->second;
  };
  std::set<RowId> described;
  auto problem = [&](const RowId& row, const std::string& what) {
    if (a.problems.size() >= 40) return;
    a.problems.push_back(Name(row) + ": " + what);
    if (described.size() < 5 && described.insert(row).second) {
      a.problems.push_back(Name(row) + " in full:\n" + Describe(row, history_of(row), sink));
    }
  };

  // Each log row on its own.
  std::set<std::tuple<RowId, int64_t, int64_t>> batches;  // (row, epoch, batch)
  std::set<std::pair<RowId, std::string>> targets;        // (row, outside image)
  std::map<RowId, std::vector<const ConflictLogRow*>> by_row;
  for (const ConflictLogRow& c : sink.log) {
    const RowHistory& h = history_of(c.row);
    const std::string strategy = StrategyOf(strategies, c.row.first);
    std::string id = "log row " + std::to_string(c.id) + " (" + c.kind + ")";
    ++a.kinds[c.kind];
    static const std::set<std::string> kKinds = {"update_origin_differs", "update_deleted",
                                                 "delete_origin_differs", "insert_exists"};
    if (kKinds.count(c.kind) == 0) problem(c.row, id + ": not a kind the torture provokes");
    by_row[c.row].push_back(&c);
    if (c.strategy != strategy || c.status != "resolved" || c.resolved_by != "automatic") {
      problem(c.row, id + ": strategy/status/resolved_by " + c.strategy + "/" + c.status + "/" +
                         c.resolved_by + ", expected " + strategy + "/resolved/automatic");
    }
    if (!c.batch_committed) {
      problem(c.row, id + ": epoch " + std::to_string(c.epoch) + ", batch " +
                         std::to_string(c.batch) + ", seq " + std::to_string(c.seq) +
                         " is no committed applied_batches row holding its seq");
    }
    if (!batches.insert({c.row, c.epoch, c.batch}).second) {
      problem(c.row, id + ": a second log row for the same batch (epoch " +
                         std::to_string(c.epoch) + ", batch " + std::to_string(c.batch) + ")");
    }
    // The target: what an outside write left (an image, or nothing after a hard delete).
    bool provoking_delete = std::any_of(h.outside.begin(), h.outside.end(),
                                        [](const auto& w) { return w.op == 'd' && w.provokes; });
    if (c.target_null || c.target_deleted) {
      if (c.kind != "update_deleted" || !provoking_delete) {
        problem(c.row, id + ": no target image, but no outside delete of a live row");
      }
    } else {
      bool written = std::any_of(h.outside.begin(), h.outside.end(), [&](const auto& w) {
        return w.op != 'd' && w.value == Text(c.target_value);
      });
      if (!written) problem(c.row, id + ": target " + Text(c.target_value) + " no outside write");
      if (strategy == "source_wins" && !targets.insert({c.row, Text(c.target_value)}).second) {
        problem(c.row, id + ": the outside image " + Text(c.target_value) + " was logged twice");
      }
    }
    // The source: a write the app made to this row.
    if (c.kind == "delete_origin_differs") {
      bool deleted =
          std::any_of(h.source.begin(), h.source.end(), [](const auto& w) { return w.op == 'd'; });
      bool orphan = full_reads_of(c.row.first) > 0;  // a full read did not carry it
      if (!c.source_deleted || (!deleted && !orphan)) {
        problem(c.row, id + ": the source never deleted it");
      }
      if (!deleted) ++a.orphans;
    } else {
      bool written = std::any_of(h.source.begin(), h.source.end(), [&](const auto& w) {
        return w.op == 'u' && w.value == Text(c.source_value);
      });
      if (!written || c.source_deleted) {
        problem(c.row, id + ": source " + Text(c.source_value) + " no source write");
      }
    }
    bool kind_fits = c.kind == "insert_exists"           ? c.base != "live"
                     : c.kind == "update_origin_differs" ? c.base == "live"
                     : c.kind == "update_deleted"        ? c.base == "live"
                                                         : c.kind == "delete_origin_differs";
    if (!kind_fits) problem(c.row, id + ": base " + c.base + " does not fit the kind");
    bool resolved_ok = strategy == "source_wins" ? c.resolved_is_source : c.resolved_is_target;
    if (!resolved_ok) problem(c.row, id + ": resolved_data is not the " + strategy + " image");
  }

  std::set<RowId> rows;
  for (const auto& [row, h] : history) rows.insert(row);
  for (const auto& [row, s] : sink.rows) rows.insert(row);
  for (const RowId& row : rows) {
    const RowHistory& h = history_of(row);
    const std::string strategy = StrategyOf(strategies, row.first);
    const std::vector<const ConflictLogRow*>& logged = by_row[row];
    auto src = source.find(row);
    const bool source_live = src != source.end();
    ++a.rows_checked;

    // At most one log row per batch that carried a change of the row (or read it whole).
    const int64_t carried = static_cast<int64_t>(h.source.size()) + full_reads_of(row.first);
    if (static_cast<int64_t>(logged.size()) > carried) {
      problem(row, std::to_string(logged.size()) + " log rows, " + std::to_string(h.source.size()) +
                       " source writes and " + std::to_string(full_reads_of(row.first)) +
                       " full reads");
    }
    // Accounting: each outside image ends exactly one way — under
    // source_wins logged as a conflict's target (which puts the source's image
    // in its place), else found still in place by the next outside write or at
    // the end (target_wins keeps it through every conflict). Each hard delete
    // of a row sluice had written live is met by the next upsert of the row
    // (update_deleted with its base, no target; the row exists again before
    // the next delete), so those log rows pair with the deletes in order, the
    // last delete possibly still open. (Bases may repeat: a full read writes
    // the image the row had.)
    {
      const bool source_wins = strategy == "source_wins";
      auto sk = sink.rows.find(row);
      std::vector<const TimedWrite*> deletes;
      for (size_t i = 0; i < h.outside.size(); ++i) {
        const TimedWrite& w = h.outside[i];
        if (w.op == 'd') {
          if (w.provokes) deletes.push_back(&w);
          continue;
        }
        int64_t ends = 0;
        std::string how;
        for (const ConflictLogRow* c : logged) {
          if (source_wins && Text(c->target_value) == w.value) {
            ++ends;
            how += " logged as " + std::to_string(c->id) + ";";
          }
        }
        if (i + 1 < h.outside.size()) {
          const TimedWrite& next = h.outside[i + 1];
          if (next.prev_marked && next.prev_value == w.value) {
            ++ends;
            how += " overwritten outside;";
          }
        } else if (sk != sink.rows.end() && sk->second.marked && sk->second.value == w.value) {
          ++ends;
          how += " still in place;";
        }
        ++a.accounted;
        if (ends != 1) {
          problem(row, "outside " + w.value + " ended " + std::to_string(ends) +
                           " ways, not once:" + how);
        }
      }
      std::vector<std::string> met;  // bases of the update_deleted rows without a target
      for (const ConflictLogRow* c : logged) {
        if (c->kind == "update_deleted" && c->target_null) met.push_back(Text(c->base_value));
      }
      auto open = sink.open_deletes.find(row);
      std::vector<std::string> want;
      for (const TimedWrite* d : deletes) want.push_back(d->base_value);
      std::vector<std::string> got = met;
      if (open != sink.open_deletes.end()) got.push_back(open->second);
      a.accounted += static_cast<int64_t>(deletes.size());
      // A source delete that may have come after an outside delete agrees
      // with it: the entry is used up without a conflict. So `got` is `want`
      // in order, less some deletes a source delete may have agreed with.
      size_t matched = 0;
      bool fits = true;
      for (const TimedWrite* d : deletes) {
        if (matched < got.size() && got[matched] == d->base_value) {
          ++matched;
        } else if (!AgreedBySource(*d, h.source)) {
          fits = false;
        }
      }
      fits = fits && matched == got.size();
      if (!fits) {
        std::string w, g;
        for (const std::string& b : want) w += " " + b;
        for (const std::string& b : got) g += " " + b;
        problem(row, "outside deletes of bases" + w + " met (then open) as" + g);
      }
    }
    // Coverage: an outside write that a later source change surely reached
    // was met by it (a hard delete only by an upsert, so the source row ends live).
    for (size_t i = 0; i < h.outside.size(); ++i) {
      const TimedWrite& w = h.outside[i];
      if (!w.provokes || !SurelyFollowed(w, h.source)) continue;
      bool deleted_later = std::any_of(h.outside.begin() + static_cast<long>(i) + 1,
                                       h.outside.end(), [](const auto& x) { return x.op == 'd'; });
      bool met = false;
      if (w.op == 'd') {
        if (!source_live || AgreedBySource(w, h.source)) continue;
        met = std::any_of(logged.begin(), logged.end(),
                          [](const ConflictLogRow* c) { return c->kind == "update_deleted"; });
      } else {
        if (deleted_later) continue;
        for (const ConflictLogRow* c : logged) {
          for (size_t j = i; j < h.outside.size() && !met; ++j) {
            met = !c->target_null && Text(c->target_value) == h.outside[j].value;
          }
        }
      }
      ++a.covered;
      if (!met) {
        problem(row, std::string("outside ") + w.op + " " + w.value +
                         " was surely followed by a source change, but no conflict was logged");
      }
    }

    // The final state.
    auto sk = sink.rows.find(row);
    const TimedWrite* last = h.outside.empty() ? nullptr : &h.outside.back();
    const bool reached_after_last = last != nullptr && SurelyFollowed(*last, h.source);
    if (sk == sink.rows.end()) {
      if (!source_live) continue;
      if (last == nullptr || last->op != 'd' || reached_after_last) {
        problem(row, "live in the source, missing at the sink, not deleted outside since");
      } else if (last->provokes && sink.open_deletes.count(row) == 0) {
        problem(row, "deleted outside, but no open outside_deletes row");
      }
      continue;
    }
    const SinkRow& k = sk->second;
    if (sink.open_deletes.count(row) != 0)
      problem(row, "an open outside_deletes row, the row exists");
    if (!k.marked) {
      bool equal = source_live ? k.live && k.value == src->second.value &&
                                     k.updated_at == std::to_string(src->second.updated_at)
                               : !k.live;
      if (!equal) {
        problem(row, "clean at the sink (" + std::string(k.live ? "live " : "tombstone ") +
                         k.value + "), the source has " +
                         (source_live ? src->second.value : std::string("no row")));
      }
      continue;
    }
    ++a.marked;
    if (k.live) {
      if (last == nullptr || last->op == 'd' || k.value != last->value) {
        problem(row, "marked, holding " + k.value + ", not the last outside write " +
                         (last == nullptr ? std::string("(none)") : last->value));
      }
      if (strategy == "source_wins") {
        if (reached_after_last) {
          problem(row, "still holds the outside write " + k.value +
                           " a later source change surely reached (source_wins)");
        }
        for (const ConflictLogRow* c : logged) {
          if (Text(c->target_value) == k.value) {
            problem(row, "holds " + k.value + ", logged and resolved for the source (source_wins)");
          }
        }
      }
    } else if (strategy == "source_wins" || last == nullptr || last->op != 'd') {
      problem(row, "a marked tombstone, not the kept outside delete of target_wins");
    }
  }
  return a;
}

std::vector<RowId> AbsentFromSource(const SinkSnapshot& sink,
                                    const std::map<RowId, SourceRow>& source) {
  std::vector<RowId> out;
  for (const auto& [row, k] : sink.rows) {
    if (k.live && k.marked && source.count(row) == 0) out.push_back(row);
  }
  return out;
}

std::map<RowId, std::string> TouchConflicts(const SinkSnapshot& sink,
                                            const std::map<RowId, SourceRow>& source) {
  std::map<RowId, std::string> out;
  for (const auto& [row, k] : sink.rows) {
    if (!k.marked) continue;
    if (k.live) {
      out[row] = k.base == "live" ? "update_origin_differs" : "insert_exists";
    } else if (source.count(row) != 0) {
      out[row] = "update_deleted";
    }
  }
  for (const auto& [row, base] : sink.open_deletes) {
    if (source.count(row) != 0) out[row] = "update_deleted";
  }
  return out;
}

}  // namespace sluice::e2e
