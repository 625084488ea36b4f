// A mirror made by hand as tests/sql/conflict_functions.sql part B makes it
// (the four per-mirror triggers of sql/01 version 5 and the two conflict
// columns), shaped like Open WebUI's chat, with a plpgsql stand-in for the
// agent's apply transaction (its transaction-local settings, UpsertSql and
// DeleteSql shapes): pending conflicts without a running agent, for the tests
// of `sluice conflicts` at the sink and through the CLI. Throws on errors.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tests/sink/sink_test_util.h"

namespace sluice::testing {

class HandMadeConflictMirror {
 public:
  static constexpr const char* kSource = "33333333-3333-4333-8333-333333333333";

  // Schema and deployment are both `name`.
  HandMadeConflictMirror(std::string conninfo, std::string name)
      : pg_(std::move(conninfo)), name_(std::move(name)) {}

  // Creates table `t` (and the schema) plus the position row at 0.
  void Create(const std::string& t) {
    Exec(MirrorDdl(name_, t));
    Exec(
        "INSERT INTO sync_metadata.source_position (deployment, source_id, applied_seq) "
        "VALUES ('" +
        name_ + "', '" + kSource + "', 0) ON CONFLICT DO NOTHING");
  }

  // A mirror shaped like Open WebUI's chat, with the four triggers and the
  // two conflict columns, plus <schema>.apply_<table>(policy, upserts,
  // deletes, batch): one apply transaction's statements as BatchApplier
  // sends them (upserts: [[id, title, chat, meta, updated_at, seq], ...],
  // deletes: [[id, seq], ...]).
  static std::string MirrorDdl(const std::string& s, const std::string& t) {
    const std::string q = "\"" + s + "\".\"" + t + "\"";
    const std::string w = "'" + s + "'";
    return "CREATE SCHEMA IF NOT EXISTS \"" + s + "\"; CREATE TABLE " + q +
           " (id text PRIMARY KEY, title text, chat jsonb, meta jsonb, archived bigint, "
           "updated_at bigint, _sluice_seq bigint NOT NULL DEFAULT 0, _sluice_deleted_at "
           "timestamptz, _sluice_updated_at timestamptz NOT NULL DEFAULT now(), "
           "_sluice_outside_at timestamptz DEFAULT clock_timestamp(), _sluice_base jsonb);"
           "CREATE TRIGGER sluice_outside BEFORE UPDATE ON " +
           q + " FOR EACH ROW WHEN (current_setting('sluice.writer', true) IS DISTINCT FROM " + w +
           ") EXECUTE FUNCTION sync_metadata.sluice_outside_write(" + w +
           ", 'id');"
           "CREATE TRIGGER sluice_conflict BEFORE UPDATE ON " +
           q +
           " FOR EACH ROW WHEN (OLD._sluice_outside_at IS NOT NULL AND "
           "current_setting('sluice.writer', true) = " +
           w + ") EXECUTE FUNCTION sync_metadata.sluice_conflict(" + w +
           ", 'id');"
           "CREATE TRIGGER sluice_outside_delete BEFORE DELETE ON " +
           q + " FOR EACH ROW WHEN (current_setting('sluice.writer', true) IS DISTINCT FROM " + w +
           ") EXECUTE FUNCTION sync_metadata.sluice_outside_delete(" + w +
           ", 'id');"
           "CREATE TRIGGER sluice_inserted AFTER INSERT ON " +
           q +
           " REFERENCING NEW TABLE AS sluice_new FOR EACH STATEMENT WHEN "
           "(current_setting('sluice.writer', true) = " +
           w + ") EXECUTE FUNCTION sync_metadata.sluice_inserted(" + w +
           ", 'id');"
           "CREATE FUNCTION \"" +
           s + "\".apply_" + t +
           "(policy jsonb, upserts jsonb, deletes jsonb, batch bigint) RETURNS void "
           "LANGUAGE plpgsql AS $f$ BEGIN "
           "PERFORM set_config('sluice.writer', " +
           w +
           ", true), set_config('sluice.apply', "
           "(jsonb_build_object('mode', 'apply', 'epoch', 3, 'batch', batch, 'source', '" +
           kSource +
           "') || policy)::text, true);"
           "INSERT INTO " +
           q +
           " AS t (id, title, chat, meta, archived, updated_at, _sluice_seq, "
           "_sluice_deleted_at, _sluice_updated_at, _sluice_outside_at) SELECT e->>0, e->>1, "
           "(e->>2)::jsonb, (e->>3)::jsonb, 0, (e->>4)::bigint, (e->>5)::bigint, NULL, now(), "
           "NULL FROM jsonb_array_elements(upserts) e ON CONFLICT (id) DO UPDATE SET title = "
           "EXCLUDED.title, chat = EXCLUDED.chat, meta = EXCLUDED.meta, archived = "
           "EXCLUDED.archived, updated_at = EXCLUDED.updated_at, _sluice_seq = "
           "EXCLUDED._sluice_seq, _sluice_deleted_at = NULL, _sluice_updated_at = now();"
           "UPDATE " +
           q +
           " AS t SET _sluice_deleted_at = now(), _sluice_seq = (e->>1)::bigint, "
           "_sluice_updated_at = now() FROM jsonb_array_elements(deletes) e WHERE t.id = e->>0 "
           "AND t._sluice_deleted_at IS NULL; END $f$;";
  }

  void Exec(const std::string& sql) { Pg(pg_).Query(sql); }
  std::string One(const std::string& sql) {
    std::vector<std::string> r = Query(pg_, sql);
    return r.empty() ? "(no row)" : r.front();
  }

  // One source row as the apply function takes it.
  static std::string Row(const std::string& id, const std::string& title, const std::string& msgs,
                         const std::string& tags, int64_t updated, int64_t seq) {
    std::string chat = "{\"messages\": [";
    std::string sep;
    for (char m : msgs) {
      chat += sep + "{\"id\": \"m" + std::string(1, m) + "\", \"content\": \"text\"}";
      sep = ", ";
    }
    chat += "]}";
    std::string meta = "{\"tags\": [";
    sep.clear();
    for (char t : tags) {
      meta += sep + "\"t" + std::string(1, t) + "\"";
      sep = ", ";
    }
    meta += "]}";
    auto str = [](const std::string& v) {
      std::string o = "\"";
      for (char c : v) o += c == '"' ? std::string("\\\"") : std::string(1, c);
      return o + "\"";
    };
    return "[" + str(id) + ", " + str(title) + ", " + str(chat) + ", " + str(meta) + ", \"" +
           std::to_string(updated) + "\", \"" + std::to_string(seq) + "\"]";
  }

  void Apply(const std::string& table, const std::string& policy,
             const std::vector<std::string>& upserts, const std::string& deletes = "[]",
             int64_t batch = 1) {
    std::string arr = "[";
    for (size_t i = 0; i < upserts.size(); ++i) arr += (i > 0 ? ", " : "") + upserts[i];
    arr += "]";
    Exec("SELECT \"" + name_ + "\".apply_" + table + "('" + policy + "', '" + arr + "', '" +
         deletes + "', " + std::to_string(batch) + ")");
  }

  std::string Cell(const std::string& table, const std::string& id, const std::string& expr) {
    return One("SELECT " + expr + " FROM \"" + name_ + "\".\"" + table + "\" WHERE id = '" + id +
               "'");
  }

  // Makes a pending (manual) entry for row `id` of chat: sluice writes it (seq
  // 1), an outside writer renames it and adds message 3 and a tag, the source
  // renames it and adds message 4 (seq `seq`). Returns the entry's id.
  int64_t Pending(const std::string& id, int64_t seq = 10, const std::string& table = "chat") {
    Apply(table, "{}", {Row(id, "base", "12", "x", 1000, 1)});
    Exec("UPDATE \"" + name_ + "\".\"" + table +
         "\" SET title = 'outside', chat = '{\"messages\": [{\"id\": \"m1\", \"content\": "
         "\"text\"}, {\"id\": \"m2\", \"content\": \"text\"}, {\"id\": \"m3\", \"content\": "
         "\"text\"}]}', meta = '{\"tags\": [\"tx\", \"to\"]}', updated_at = 3000 WHERE id = '" +
         id + "'");
    Apply(table, R"({"default": {"strategy": "manual"}})",
          {Row(id, "source", "124", "xs", 2000, seq)}, "[]", seq);
    return std::stoll(One("SELECT id FROM sync_metadata.conflict_log WHERE deployment = '" + name_ +
                          "' AND row_key = '[\"" + id + "\"]' AND status = 'pending'"));
  }

 private:
  std::string pg_;
  std::string name_;
};

}  // namespace sluice::testing
