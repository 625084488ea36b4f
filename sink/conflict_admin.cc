// ConflictAdmin: conflict_log listing and the resolve transaction of
// `sluice conflicts` (docs/design-conflicts.md section 4; the prototype is
// pg_temp.resolve in tests/sql/conflict_functions.sql).
#include "sink/conflict_admin.h"

#include <fmt/format.h>
#include <simdjson.h>

#include <algorithm>
#include <set>

#include "common/hex.h"
#include "common/json_text.h"
#include "common/sql_quote.h"
#include "sink/conflict_policy.h"
#include "sink/pg_sql.h"

namespace sluice {
namespace {

using Params = std::vector<std::optional<std::string>>;

// UTC ISO-8601 with milliseconds, as the CLI prints times.
std::string IsoSql(const std::string& column) {
  return "to_char(" + column + " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')";
}

// The columns ReadEntry parses, in order; images only when `images`.
std::string EntryColumns(const std::string& images) {
  return "id, table_name, row_key::text, kind, strategy, status, reason, seq, epoch, batch, " +
         IsoSql("created_at") + ", resolved_by, " + IsoSql("resolved_at") + ", CASE WHEN " +
         images + " THEN source_data::text END, CASE WHEN " + images +
         " THEN target_data::text END, CASE WHEN " + images +
         " THEN base_data::text END, CASE WHEN " + images + " THEN resolved_data::text END";
}

std::optional<int64_t> Int(const std::optional<std::string>& v) {
  if (!v) return std::nullopt;
  return std::stoll(*v);
}

ConflictEntry ReadEntry(const SinkRow& row) {
  auto text = [&](size_t i) { return row[i].value_or(""); };
  ConflictEntry e;
  e.id = std::stoll(text(0));
  e.table = text(1);
  e.key = text(2);
  e.kind = text(3);
  e.strategy = text(4);
  e.status = text(5);
  e.reason = text(6);
  e.seq = Int(row[7]);
  e.epoch = Int(row[8]);
  e.batch = Int(row[9]);
  e.created_at = text(10);
  e.resolved_by = text(11);
  e.resolved_at = text(12);
  e.source_image = text(13);
  e.target_image = text(14);
  e.base_image = text(15);
  e.resolved_image = text(16);
  return e;
}

bool IsSqlState(const Status& st, std::string_view state) {
  return st.message().find("SQLSTATE " + std::string(state)) != std::string::npos;
}

// A sink without the version-5 control plane (no sync_metadata at all, or
// conflict_log without its conflict columns): say what fixes it.
Status ControlPlaneHint(const Status& st, const std::string& context) {
  if (IsSqlState(st, "42P01") || IsSqlState(st, "42703") || IsSqlState(st, "3F000")) {
    return Status::InvalidArgument(
        context + ": the sink's control plane has no conflict log of version 5 (" + st.message() +
        "): it is older than this binary or missing; run `sluice init`");
  }
  return st.Wrap(context);
}

std::optional<std::string> Opt(const std::string& json) {
  if (json.empty()) return std::nullopt;
  return json;
}

// jsonb_build_object('k1', <json> -> 0, ...): the key image from a row_key array.
std::string KeyImageSql(const std::vector<std::string>& keys, const std::string& json) {
  std::string out = "jsonb_build_object(";
  for (size_t i = 0; i < keys.size(); ++i) {
    if (i > 0) out += ", ";
    out += QuoteLiteral(keys[i]) + ", " + json + " -> " + std::to_string(i);
  }
  return out + ")";
}

// jsonb_build_array(<image> -> 'k1', ...): the row_key of an image.
std::string KeyOfImageSql(const std::vector<std::string>& keys, const std::string& image) {
  std::string out = "jsonb_build_array(";
  for (size_t i = 0; i < keys.size(); ++i) {
    if (i > 0) out += ", ";
    out += image + " -> " + QuoteLiteral(keys[i]);
  }
  return out + ")";
}

std::string KeyMatchSql(const std::vector<std::string>& keys) {
  std::string out;
  for (const std::string& k : keys) {
    if (!out.empty()) out += " AND ";
    out += "t." + QuoteIdent(k) + " = r." + QuoteIdent(k);
  }
  return out;
}

std::string Describe(const ConflictEntry& e) {
  return "conflict " + std::to_string(e.id) + " (" + e.table + " " + e.key + ")";
}

// One resolve, inside the caller's transaction.
class Resolver {
 public:
  Resolver(SinkAdmin& admin, const SinkOptions& options, const ResolveRequest& request)
      : admin_(admin), options_(options), request_(request) {}

  Result<ResolveOutcome> Run() {
    SLUICE_RETURN_IF_ERROR(Settings());
    SLUICE_RETURN_IF_ERROR(LockPosition());
    SLUICE_RETURN_IF_ERROR(LockEntry());
    SLUICE_RETURN_IF_ERROR(ReadMirror());
    SLUICE_RETURN_IF_ERROR(LockRow());
    Result<std::optional<std::string>> image = Image();
    if (!image.ok()) return image.status();
    SLUICE_RETURN_IF_ERROR(Write(*image));
    SLUICE_RETURN_IF_ERROR(MarkResolved());
    return std::move(outcome_);
  }

 private:
  int WaitMs() const { return request_.lock_timeout_ms + options_.query_timeout_ms; }

  Result<std::vector<SinkRow>> Query(const std::string& sql, const Params& params,
                                     int timeout_ms = 0) {
    return admin_.Query(sql, params, timeout_ms);
  }

  // Transaction-local (SET LOCAL semantics): nothing outlives this transaction,
  // so a transaction-mode pooler is fine. Mode "resolve": sluice_conflict and
  // sluice_inserted pass this write through; writer: it is no outside write.
  Status Settings() {
    return Query(
               "SELECT set_config('lock_timeout', $1, true), set_config('sluice.writer', $2, "
               "true), set_config('sluice.apply', '{\"mode\": \"resolve\"}', true)",
               {std::to_string(request_.lock_timeout_ms) + "ms", options_.deployment})
        .status();
  }

  // The row lock sluice_advance takes first in every apply transaction: waits
  // for a batch in flight, and a batch starting meanwhile waits for this one.
  Status LockPosition() {
    Result<std::vector<SinkRow>> r =
        Query("SELECT 1 FROM sync_metadata.source_position WHERE deployment = $1 FOR UPDATE",
              {options_.deployment}, WaitMs());
    if (r.ok()) return Status::Ok();
    if (IsSqlState(r.status(), "55P03")) {
      return Status::Busy(fmt::format(
          "the agent is applying a batch; try again (waited {:g} s for the position row of "
          "deployment {})",
          request_.lock_timeout_ms / 1000.0, options_.deployment));
    }
    return ControlPlaneHint(r.status(), "lock the position of deployment " + options_.deployment);
  }

  Status LockEntry() {
    const std::string id = std::to_string(request_.id);
    Result<std::vector<SinkRow>> r =
        Query("SELECT " + EntryColumns("true") +
                  ", source_data -> '_sluice_deleted_at' IS DISTINCT FROM 'null' FROM "
                  "sync_metadata.conflict_log WHERE id = $1 AND deployment = $2 FOR UPDATE",
              {id, options_.deployment}, WaitMs());
    if (!r.ok()) {
      if (IsSqlState(r.status(), "55P03")) {
        return Status::Busy("conflict " + id + " is being resolved by another session; try again");
      }
      return ControlPlaneHint(r.status(), "read conflict " + id);
    }
    if (r->empty()) {
      return Status::NotFound("conflict " + id + " does not exist in deployment " +
                              options_.deployment + " (`sluice conflicts list` shows its entries)");
    }
    entry_ = ReadEntry(r->front());
    source_deletes_ = r->front()[17] == "t";
    if (entry_.status == "resolved") {
      return Status::Conflict("conflict " + id + " is resolved (by " + entry_.resolved_by +
                              ", at " + entry_.resolved_at + "), not pending");
    }
    if (entry_.status == "parked") {
      return Status::Conflict(
          "conflict " + id + " is a parked row (the sink rejected it: " + entry_.reason +
          "), not a pending conflict; parked rows cannot be resolved with `conflicts resolve`");
    }
    if (entry_.status != "pending") {
      return Status::Conflict("conflict " + id + " has status " + entry_.status + ", not pending");
    }
    return Status::Ok();
  }

  // The mirror's user columns (catalog) and key columns (the sluice_conflict
  // trigger's arguments, else the primary key).
  Status ReadMirror() {
    SLUICE_RETURN_IF_ERROR(CheckIdentifier(options_.schema, "schema"));
    SLUICE_RETURN_IF_ERROR(CheckIdentifier(entry_.table, "table"));
    qualified_ = QualifiedName(options_.schema, entry_.table);
    Result<std::vector<SinkRow>> cols = Query(CatalogColumnsSql(), {qualified_});
    if (!cols.ok()) return cols.status().Wrap("read the columns of " + qualified_);
    if (cols->empty()) {
      return Status::Conflict(Describe(entry_) + ": mirror table " + qualified_ +
                              " does not exist");
    }
    std::set<std::string> sluice_columns;
    std::vector<std::string> names;
    for (const SinkRow& c : *cols) {
      const std::string& name = *c[0];
      names.push_back(name);
      if (name.rfind("_sluice_", 0) == 0) sluice_columns.insert(name);
    }
    if (!sluice_columns.contains("_sluice_outside_at") ||
        !sluice_columns.contains("_sluice_base")) {
      return Status::Conflict("mirror " + qualified_ +
                              " has no conflict columns (_sluice_outside_at, _sluice_base): it "
                              "predates conflict detection; run `sluice init`");
    }
    Result<std::vector<SinkRow>> trig = Query(
        "SELECT tgargs FROM pg_trigger WHERE tgrelid = to_regclass($1) AND tgname = "
        "'sluice_conflict'",
        {qualified_});
    if (!trig.ok()) return trig.status().Wrap("read the triggers of " + qualified_);
    if (!trig->empty() && trig->front()[0]) {
      std::optional<std::vector<std::string>> args = ParseTriggerArgs(*trig->front()[0]);
      if (args && args->size() > 1) keys_.assign(args->begin() + 1, args->end());
    }
    if (keys_.empty()) {
      Result<std::vector<SinkRow>> pk = Query(
          "SELECT a.attname FROM pg_index i, unnest(i.indkey::int2[]) WITH ORDINALITY k(attnum, "
          "o), pg_attribute a WHERE i.indrelid = to_regclass($1) AND i.indisprimary AND "
          "a.attrelid = i.indrelid AND a.attnum = k.attnum ORDER BY k.o",
          {qualified_});
      if (!pk.ok()) return pk.status().Wrap("read the primary key of " + qualified_);
      for (const SinkRow& k : *pk) keys_.push_back(*k[0]);
    }
    if (keys_.empty()) {
      return Status::Conflict("mirror " + qualified_ +
                              " has neither a sluice_conflict trigger nor a primary key: run "
                              "`sluice init`");
    }
    // The written columns: the user columns and the key, which may be a
    // sluice column (_sluice_rowid of a table SQLite keys by its rowid).
    for (const std::string& name : names) {
      if (name.rfind("_sluice_", 0) != 0 ||
          std::find(keys_.begin(), keys_.end(), name) != keys_.end()) {
        columns_.push_back(name);
      }
    }
    return Status::Ok();
  }

  // Locks the mirror row (an outside writer holding it makes us wait, at most
  // lock_timeout) and reads what the target holds now.
  Status LockRow() {
    Result<std::vector<SinkRow>> r = Query(
        "SELECT sync_metadata.sluice_image(to_jsonb(t.*))::text, t._sluice_deleted_at IS NOT NULL, "
        "sync_metadata.sluice_image(to_jsonb(t.*)) IS DISTINCT FROM $2::jsonb, "
        "sync_metadata.sluice_image(to_jsonb(t.*)) = $3::jsonb, t._sluice_seq, "
        "t._sluice_outside_at IS NOT NULL FROM " +
            qualified_ + " t, jsonb_populate_record(NULL::" + qualified_ + ", " +
            KeyImageSql(keys_, "$1::jsonb") + ") r WHERE " + KeyMatchSql(keys_) +
            " FOR UPDATE OF t",
        {entry_.key, Opt(entry_.target_image), Opt(entry_.source_image)}, WaitMs());
    if (!r.ok()) {
      if (IsSqlState(r.status(), "55P03")) {
        return Status::Busy(Describe(entry_) +
                            ": the mirror row is locked by another session "
                            "(an outside writer?); try again");
      }
      return r.status().Wrap(Describe(entry_) + ": read the mirror row");
    }
    if (r->empty()) {
      row_state_ = "missing";
      outcome_.target_changed_since = !entry_.target_image.empty();
      return Status::Ok();
    }
    current_ = r->front()[0].value_or("");
    row_state_ = *r->front()[1] == "t" ? "deleted" : "live";
    outcome_.target_changed_since = *r->front()[2] == "t";
    current_is_source_ = r->front()[3] == "t";
    return CheckStale(std::stoll(r->front()[4].value_or("0")), r->front()[5] == "t");
  }

  // A pending entry follows its row: every later source change that meets
  // the marked row under `manual` updates it (seq, source image), and the
  // row's _sluice_seq takes that seq. A row past the entry's seq was reached
  // by later source changes the entry does not hold (the policy changed by
  // SIGHUP and the conflict was resolved by it as a new entry; or the row was
  // clean again, put back to its base outside, and the source wrote it as
  // usual): the entry's source image is older than what the source sent
  // since. Writing it (source, merged) would roll the row back, so only
  // target is allowed: it closes the entry and leaves the row as it is.
  Status CheckStale(int64_t row_seq, bool marked) {
    if (!entry_.seq || row_seq <= *entry_.seq) return Status::Ok();
    stale_ = true;
    outcome_.stale = true;
    outcome_.target_changed_since = false;  // the source changed it, not an outside writer
    if (request_.take == ConflictTake::kTarget) return Status::Ok();
    return Status::Conflict(fmt::format(
        "conflict {} is stale: the source moved on (row now at seq {}, the entry holds seq {}); "
        "{}; taking the entry's older source image would roll the row back. `--take target` "
        "closes it and leaves the row as it is",
        entry_.id, row_seq, *entry_.seq,
        marked ? "a later source change reached the row and was resolved by the table's policy "
                 "(see the row's newer conflict_log entries)"
               : "the row already holds a newer source version"));
  }

  // The image to write (nullopt: keep the target row as it is).
  Result<std::optional<std::string>> Image() {
    switch (request_.take) {
      case ConflictTake::kSource:
        if (entry_.source_image.empty()) {
          return Status::Internal(Describe(entry_) + " has no source image");
        }
        return Normalize(entry_.source_image, false);
      case ConflictTake::kTarget:
        return std::optional<std::string>();
      case ConflictTake::kMerged:
        break;
    }
    if (request_.row) return RowImage();
    if (row_state_ != "live" || source_deletes_) {
      return Status::InvalidArgument(
          Describe(entry_) + " is " + entry_.kind + ": " +
          (source_deletes_ ? "the source deleted the row" : "the row is deleted at the target") +
          ", there is nothing to merge; take source or target, or give the row with --row");
    }
    Result<std::vector<SinkRow>> m =
        Query("SELECT sync_metadata.sluice_merge($1::jsonb, $2::jsonb, $3::jsonb, $4::jsonb)::text",
              {entry_.source_image, current_, Opt(entry_.base_image),
               PolicyJson(options_.conflicts.For(entry_.table))});
    if (!m.ok()) return m.status().Wrap(Describe(entry_) + ": merge");
    return Normalize(m->front()[0].value_or("{}"), false);
  }

  // --row over the target row (the source's when the target is not live).
  Result<std::optional<std::string>> RowImage() {
    Result<std::vector<std::string>> names = JsonObjectKeys(*request_.row, "--row");
    if (!names.ok()) return names.status();
    SLUICE_RETURN_IF_ERROR(CheckRowColumns(*names, columns_, entry_.table));
    const std::string& under = row_state_ == "live" ? current_ : entry_.source_image;
    Result<std::vector<SinkRow>> m =
        Query("SELECT ($1::jsonb || $2::jsonb || '{\"_sluice_deleted_at\": null}')::text",
              {under, *request_.row});
    if (!m.ok()) return m.status().Wrap(Describe(entry_) + ": --row");
    return Normalize(m->front()[0].value_or("{}"), true);
  }

  // The image as the mirror's types write it (what jsonb_populate_record then
  // to_jsonb make of it), checked to keep the entry's key.
  Result<std::optional<std::string>> Normalize(const std::string& image, bool from_user) {
    const std::string n =
        "sync_metadata.sluice_image(to_jsonb(jsonb_populate_record(NULL::" + qualified_ +
        ", $1::jsonb)))";
    Result<std::vector<SinkRow>> r =
        Query("SELECT x::text, " + KeyOfImageSql(keys_, "x") +
                  " = $2::jsonb, x = $3::jsonb FROM (SELECT " + n + " AS x) s",
              {image, entry_.key, entry_.source_image});
    if (!r.ok()) {
      if (from_user && r.status().code() == Status::Code::kDataError) {
        return Status::InvalidArgument("--row: " + r.status().message());
      }
      return r.status().Wrap(Describe(entry_) + ": image");
    }
    const SinkRow& row = r->front();
    if (*row[1] != "t") {
      return Status::InvalidArgument(
          Describe(entry_) + ": " +
          (from_user ? "--row changes the key" : "the image's key differs") +
          "; the key columns (" + JsonStringArray(keys_) + ") must keep " + entry_.key);
    }
    equals_source_ = *row[2] == "t";
    return std::optional<std::string>(*row[0]);
  }

  Status Write(const std::optional<std::string>& image) {
    // Clean (as sluice wrote it) when the row ends as the source's image:
    // later source changes apply as usual. Otherwise the mark stays and the
    // source image becomes the base: the next source change is a conflict
    // again, merged against what the source had (design section 3).
    if (!image) {
      if (row_state_ == "missing") return Status::Ok();  // the target's delete stands
      if (stale_) {  // the row is past the entry: nothing of the entry applies to it
        resolved_ = current_;
        return Status::Ok();
      }
      bool clean = current_is_source_;
      Result<std::vector<SinkRow>> r = Query(
          "UPDATE " + qualified_ +
              " t SET _sluice_outside_at = CASE WHEN $2::boolean THEN NULL ELSE "
              "coalesce(t._sluice_outside_at, clock_timestamp()) END, _sluice_base = CASE WHEN "
              "$2::boolean THEN NULL ELSE $3::jsonb END FROM jsonb_populate_record(NULL::" +
              qualified_ + ", " + KeyImageSql(keys_, "$1::jsonb") + ") r WHERE " +
              KeyMatchSql(keys_) + " RETURNING sync_metadata.sluice_image(to_jsonb(t.*))::text",
          {entry_.key, clean ? "true" : "false", entry_.source_image});
      if (!r.ok()) return r.status().Wrap(Describe(entry_) + ": keep the target row");
      if (!r->empty()) resolved_ = r->front()[0].value_or("");
      return Status::Ok();
    }
    bool clean = request_.take == ConflictTake::kSource || equals_source_;
    Result<std::vector<SinkRow>> r =
        Query(ResolveWriteSql(qualified_, columns_, keys_),
              {*image, entry_.seq ? std::optional(std::to_string(*entry_.seq)) : std::nullopt,
               clean ? "true" : "false", clean ? std::nullopt : Opt(entry_.source_image)});
    if (!r.ok()) {
      if (request_.row && r.status().code() == Status::Code::kDataError) {
        return Status::InvalidArgument("--row: " + r.status().message());
      }
      return r.status().Wrap(Describe(entry_) + ": write the mirror row");
    }
    resolved_ = r->front()[0].value_or("");
    row_state_ = r->front()[1] == "t" ? "deleted" : "live";
    // The row is back: an outside DELETE recorded for it is met.
    Result<std::vector<SinkRow>> d = Query(
        "UPDATE sync_metadata.outside_deletes SET consumed_at = now() WHERE deployment = $1 "
        "AND table_name = $2 AND row_key = $3::jsonb AND consumed_at IS NULL",
        {options_.deployment, entry_.table, entry_.key});
    if (!d.ok()) return d.status().Wrap(Describe(entry_) + ": outside_deletes");
    return Status::Ok();
  }

  // Exactly once: only a pending entry turns resolved (the row lock above
  // makes a second resolve wait, then see it resolved).
  Status MarkResolved() {
    Result<std::vector<SinkRow>> r = Query(
        "UPDATE sync_metadata.conflict_log SET status = 'resolved', resolved_data = $2::jsonb, "
        "resolved_by = $3, resolved_at = now() WHERE id = $1 AND status = 'pending' RETURNING " +
            EntryColumns("true"),
        {std::to_string(entry_.id), Opt(resolved_), request_.by});
    if (!r.ok()) return r.status().Wrap(Describe(entry_) + ": record the resolution");
    if (r->empty()) return Status::Internal(Describe(entry_) + " changed while it was resolved");
    outcome_.entry = ReadEntry(r->front());
    outcome_.row_state = row_state_;
    return Status::Ok();
  }

  SinkAdmin& admin_;
  const SinkOptions& options_;
  const ResolveRequest& request_;
  ConflictEntry entry_;
  std::string qualified_;
  std::vector<std::string> columns_;  // user columns, catalog order
  std::vector<std::string> keys_;
  std::string current_;             // the target row's image now ("" when missing)
  std::string row_state_;           // live, deleted, missing
  std::string resolved_;            // the image written ("" = none)
  bool equals_source_ = false;      // the image to write is the source's
  bool source_deletes_ = false;     // the source image is a tombstone
  bool current_is_source_ = false;  // the target row already holds the source image
  bool stale_ = false;              // the row is past the entry's seq (CheckStale)
  ResolveOutcome outcome_;
};

}  // namespace

const char* ConflictTakeName(ConflictTake take) {
  switch (take) {
    case ConflictTake::kSource:
      return "source";
    case ConflictTake::kTarget:
      return "target";
    case ConflictTake::kMerged:
      return "merged";
  }
  return "?";
}

Result<std::vector<ConflictEntry>> ListConflicts(SinkAdmin& admin, const SinkOptions& options,
                                                 const ConflictFilter& filter, bool images) {
  Result<std::vector<SinkRow>> r = admin.Query(
      "SELECT " + EntryColumns("$4::boolean") +
          " FROM sync_metadata.conflict_log WHERE deployment = $1 AND ($2 = '' OR table_name = "
          "$2) AND ($3 = '' OR status = $3) ORDER BY id",
      {options.deployment, filter.table, filter.status, images ? "true" : "false"}, 0);
  if (!r.ok())
    return ControlPlaneHint(r.status(), "list conflicts of deployment " + options.deployment);
  std::vector<ConflictEntry> out;
  out.reserve(r->size());
  for (const SinkRow& row : *r) out.push_back(ReadEntry(row));
  return out;
}

Result<ResolveOutcome> ResolveConflict(SinkAdmin& admin, const SinkOptions& options,
                                       const ResolveRequest& request) {
  Result<std::vector<SinkRow>> begin = admin.Query("BEGIN", {}, 0);
  if (!begin.ok()) return begin.status();
  Result<ResolveOutcome> out = Resolver(admin, options, request).Run();
  if (!out.ok()) {
    admin.Query("ROLLBACK", {}, 0);  // nothing changed; a lost connection rolled back already
    return out.status();
  }
  Result<std::vector<SinkRow>> commit = admin.Query("COMMIT", {}, 0);
  if (!commit.ok()) return commit.status().Wrap("commit the resolution");
  return out;
}

std::optional<std::vector<std::string>> ParseTriggerArgs(std::string_view hex) {
  if (hex.substr(0, 2) != "\\x") return std::nullopt;
  std::optional<std::string> bytes = Unhex(hex.substr(2));
  if (!bytes) return std::nullopt;
  std::vector<std::string> args;
  size_t start = 0;
  for (size_t nul = bytes->find('\0'); nul != std::string::npos; nul = bytes->find('\0', start)) {
    args.push_back(bytes->substr(start, nul - start));
    start = nul + 1;
  }
  if (start != bytes->size()) return std::nullopt;  // every argument ends with a NUL
  return args;
}

Result<std::vector<std::string>> JsonObjectKeys(std::string_view json, std::string_view what) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  simdjson::padded_string padded(json);
  if (simdjson::error_code err = parser.parse(padded).get(doc); err != simdjson::SUCCESS) {
    return Status::InvalidArgument(std::string(what) + ": not valid JSON (" +
                                   simdjson::error_message(err) + ")");
  }
  simdjson::dom::object object;
  if (doc.get_object().get(object) != simdjson::SUCCESS) {
    return Status::InvalidArgument(std::string(what) + ": not a JSON object");
  }
  std::vector<std::string> names;
  for (auto field : object) {
    std::string name(field.key);
    if (std::find(names.begin(), names.end(), name) != names.end()) {
      return Status::InvalidArgument(std::string(what) + ": column \"" + name + "\" appears twice");
    }
    names.push_back(std::move(name));
  }
  return names;
}

Status CheckRowColumns(const std::vector<std::string>& names,
                       const std::vector<std::string>& columns, const std::string& table) {
  for (const std::string& name : names) {
    if (name.rfind("_sluice_", 0) == 0) {
      return Status::InvalidArgument("--row: \"" + name +
                                     "\" is a sluice column; name only the mirror's own columns");
    }
    if (std::find(columns.begin(), columns.end(), name) == columns.end()) {
      return Status::InvalidArgument("--row: mirror \"" + table + "\" has no column \"" + name +
                                     "\"");
    }
  }
  return Status::Ok();
}

std::string ResolveWriteSql(const std::string& qualified, const std::vector<std::string>& columns,
                            const std::vector<std::string>& keys) {
  std::string names;
  std::string values;
  std::string sets;
  for (const std::string& c : columns) {
    names += QuoteIdent(c) + ", ";
    values += "r." + QuoteIdent(c) + ", ";
    if (std::find(keys.begin(), keys.end(), c) == keys.end()) {
      sets += QuoteIdent(c) + " = EXCLUDED." + QuoteIdent(c) + ", ";
    }
  }
  std::string key_list;
  for (const std::string& k : keys) key_list += (key_list.empty() ? "" : ", ") + QuoteIdent(k);
  return "INSERT INTO " + qualified + " AS t (" + names +
         "_sluice_deleted_at, _sluice_seq, _sluice_updated_at, _sluice_outside_at, "
         "_sluice_base) SELECT " +
         values +
         "r._sluice_deleted_at, $2::bigint, now(), CASE WHEN $3::boolean THEN NULL ELSE "
         "clock_timestamp() END, $4::jsonb FROM jsonb_populate_record(NULL::" +
         qualified + ", $1::jsonb) r ON CONFLICT (" + key_list + ") DO UPDATE SET " + sets +
         "_sluice_deleted_at = EXCLUDED._sluice_deleted_at, _sluice_seq = CASE WHEN "
         "$3::boolean THEN EXCLUDED._sluice_seq ELSE t._sluice_seq END, _sluice_updated_at = "
         "now(), _sluice_outside_at = CASE WHEN $3::boolean THEN NULL ELSE "
         "coalesce(t._sluice_outside_at, clock_timestamp()) END, _sluice_base = "
         "EXCLUDED._sluice_base RETURNING sync_metadata.sluice_image(to_jsonb(t.*))::text, "
         "t._sluice_deleted_at IS NOT NULL";
}

}  // namespace sluice
