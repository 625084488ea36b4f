// A mirror made by hand as tests/sql/conflict_functions.sql part B makes it
// (the four per-mirror triggers of sql/01 version 5 and the two conflict
// columns), by default shaped like Open WebUI's chat (or any columns and key,
// e.g. a rowid-keyed one), with a plpgsql stand-in for the agent's apply
// transaction (its transaction-local settings, UpsertSql and DeleteSql
// shapes): pending conflicts without a running agent, for the tests of
// `sluice conflicts` at the sink and through the CLI. Throws on errors.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "tests/sink/sink_test_util.h"

namespace sluice::testing {

class HandMadeConflictMirror {
 public:
  static constexpr const char* kSource = "33333333-3333-4333-8333-333333333333";

  // A mirror's user columns: their DDL ("id text, title text"), names and key.
  struct Shape {
    std::string columns_ddl;
    std::vector<std::string> columns;
    std::vector<std::string> keys;
  };
  static Shape ChatShape() {
    return {"id text, title text, chat jsonb, meta jsonb, archived bigint, updated_at bigint",
            {"id", "title", "chat", "meta", "archived", "updated_at"},
            {"id"}};
  }

  // Schema and deployment are both `name`.
  HandMadeConflictMirror(std::string conninfo, std::string name)
      : pg_(std::move(conninfo)), name_(std::move(name)) {}

  // Creates table `t` (and the schema) plus the position row at 0.
  void Create(const std::string& t, const Shape& shape = ChatShape()) {
    Exec(MirrorDdl(name_, t, shape));
    shapes_[t] = shape;
    Exec(
        "INSERT INTO sync_metadata.source_position (deployment, source_id, applied_seq) "
        "VALUES ('" +
        name_ + "', '" + kSource + "', 0) ON CONFLICT DO NOTHING");
  }

  // The mirror (sluice columns, primary key), the four triggers with the key
  // as their arguments, plus <schema>.apply_<table>(policy, upserts, deletes,
  // batch): one apply transaction's statements as BatchApplier sends them
  // (upserts: [{column: value, ..., "_sluice_seq": seq}, ...], deletes:
  // [{key column: value, ..., "_sluice_seq": seq}, ...]).
  static std::string MirrorDdl(const std::string& s, const std::string& t, const Shape& shape) {
    const std::string q = Ident(s) + "." + Ident(t);
    const std::string w = "'" + s + "'";
    std::string key_args = w;
    std::string key_list;
    std::string key_match;
    for (const std::string& k : shape.keys) {
      key_args += ", '" + k + "'";
      key_list += (key_list.empty() ? "" : ", ") + Ident(k);
      key_match += "t." + Ident(k) + " = r." + Ident(k) + " AND ";
    }
    std::string names;
    std::string values;
    std::string sets;
    for (const std::string& c : shape.columns) {
      names += Ident(c) + ", ";
      values += "r." + Ident(c) + ", ";
      bool key = false;
      for (const std::string& k : shape.keys) key = key || k == c;
      if (!key) sets += Ident(c) + " = EXCLUDED." + Ident(c) + ", ";
    }
    auto trigger = [&](const std::string& name, const std::string& when, const std::string& fn) {
      return "CREATE TRIGGER " + name + when + " EXECUTE FUNCTION sync_metadata." + fn + "(" +
             key_args + ");";
    };
    const std::string not_sluice = "current_setting('sluice.writer', true) IS DISTINCT FROM " + w;
    const std::string sluice = "current_setting('sluice.writer', true) = " + w;
    return "CREATE SCHEMA IF NOT EXISTS " + Ident(s) + "; CREATE TABLE " + q + " (" +
           shape.columns_ddl +
           ", _sluice_seq bigint NOT NULL DEFAULT 0, _sluice_deleted_at timestamptz, "
           "_sluice_updated_at timestamptz NOT NULL DEFAULT now(), _sluice_outside_at "
           "timestamptz DEFAULT clock_timestamp(), _sluice_base jsonb, PRIMARY KEY (" +
           key_list + "));" +
           trigger("sluice_outside",
                   " BEFORE UPDATE ON " + q + " FOR EACH ROW WHEN (" + not_sluice + ")",
                   "sluice_outside_write") +
           trigger("sluice_conflict",
                   " BEFORE UPDATE ON " + q +
                       " FOR EACH ROW WHEN (OLD._sluice_outside_at IS NOT "
                       "NULL AND " +
                       sluice + ")",
                   "sluice_conflict") +
           trigger("sluice_outside_delete",
                   " BEFORE DELETE ON " + q + " FOR EACH ROW WHEN (" + not_sluice + ")",
                   "sluice_outside_delete") +
           trigger("sluice_inserted",
                   " AFTER INSERT ON " + q +
                       " REFERENCING NEW TABLE AS sluice_new FOR EACH STATEMENT WHEN (" + sluice +
                       ")",
                   "sluice_inserted") +
           "CREATE FUNCTION " + Ident(s) + "." + Ident("apply_" + t) +
           "(p_policy jsonb, p_upserts jsonb, p_deletes jsonb, p_batch bigint) RETURNS void "
           "LANGUAGE plpgsql AS $f$ BEGIN "
           "PERFORM set_config('sluice.writer', " +
           w +
           ", true), set_config('sluice.apply', (jsonb_build_object('mode', 'apply', 'epoch', 3, "
           "'batch', p_batch, 'source', '" +
           kSource +
           "') || p_policy)::text, true);"
           "INSERT INTO " +
           q + " AS t (" + names +
           "_sluice_seq, _sluice_deleted_at, _sluice_updated_at, _sluice_outside_at) SELECT " +
           values + "r._sluice_seq, NULL, now(), NULL FROM jsonb_populate_recordset(NULL::" + q +
           ", p_upserts) r ON CONFLICT (" + key_list + ") DO UPDATE SET " + sets +
           "_sluice_seq = EXCLUDED._sluice_seq, _sluice_deleted_at = NULL, _sluice_updated_at = "
           "now();"
           "UPDATE " +
           q +
           " AS t SET _sluice_deleted_at = now(), _sluice_seq = r._sluice_seq, "
           "_sluice_updated_at = now() FROM jsonb_populate_recordset(NULL::" +
           q + ", p_deletes) r WHERE " + key_match + "t._sluice_deleted_at IS NULL; END $f$;";
  }

  void Exec(const std::string& sql) { Pg(pg_).Query(sql); }
  std::string One(const std::string& sql) {
    std::vector<std::string> r = Query(pg_, sql);
    return r.empty() ? "(no row)" : r.front();
  }

  // One chat source row as the apply function takes it.
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
    return "{\"id\": " + str(id) + ", \"title\": " + str(title) + ", \"chat\": " + chat +
           ", \"meta\": " + meta + ", \"archived\": 0, \"updated_at\": " + std::to_string(updated) +
           ", \"_sluice_seq\": " + std::to_string(seq) + "}";
  }

  void Apply(const std::string& table, const std::string& policy,
             const std::vector<std::string>& upserts, const std::string& deletes = "[]",
             int64_t batch = 1) {
    std::string arr = "[";
    for (size_t i = 0; i < upserts.size(); ++i) arr += (i > 0 ? ", " : "") + upserts[i];
    arr += "]";
    Exec("SELECT " + Ident(name_) + "." + Ident("apply_" + table) + "('" + policy + "', '" + arr +
         "', '" + deletes + "', " + std::to_string(batch) + ")");
  }

  // `expr` of the row whose (first) key column is `key`.
  std::string Cell(const std::string& table, const std::string& key, const std::string& expr) {
    const std::vector<std::string>& keys = shapes_.at(table).keys;
    return One("SELECT " + expr + " FROM " + Ident(name_) + "." + Ident(table) + " WHERE " +
               Ident(keys.front()) + " = '" + key + "'");
  }

  // Makes a pending (manual) entry for row `id` of chat: sluice writes it (seq
  // 1), an outside writer renames it and adds message 3 and a tag, the source
  // renames it and adds message 4 (seq `seq`). Returns the entry's id.
  int64_t Pending(const std::string& id, int64_t seq = 10, const std::string& table = "chat") {
    Apply(table, "{}", {Row(id, "base", "12", "x", 1000, 1)});
    Exec("UPDATE " + Ident(name_) + "." + Ident(table) +
         " SET title = 'outside', chat = '{\"messages\": [{\"id\": \"m1\", \"content\": "
         "\"text\"}, {\"id\": \"m2\", \"content\": \"text\"}, {\"id\": \"m3\", \"content\": "
         "\"text\"}]}', meta = '{\"tags\": [\"tx\", \"to\"]}', updated_at = 3000 WHERE id = '" +
         id + "'");
    Apply(table, R"({"default": {"strategy": "manual"}})",
          {Row(id, "source", "124", "xs", 2000, seq)}, "[]", seq);
    return PendingId(table, "[\"" + id + "\"]");
  }

  // The pending entry of `row_key` (a JSON array) in `table`.
  int64_t PendingId(const std::string& table, const std::string& row_key) {
    return std::stoll(One("SELECT id FROM sync_metadata.conflict_log WHERE deployment = '" + name_ +
                          "' AND table_name = '" + table + "' AND row_key = '" + row_key +
                          "' AND status = 'pending'"));
  }

 private:
  static std::string Ident(const std::string& name) { return "\"" + name + "\""; }

  std::string pg_;
  std::string name_;
  std::map<std::string, Shape> shapes_;
};

}  // namespace sluice::testing
