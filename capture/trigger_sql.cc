// Trigger SQL generation. Trigger bodies may not qualify table names with a
// schema, so the journal is named bare; the table name appears once quoted as
// an identifier (ON "T") and once as a literal (the journal's tbl value).
#include "capture/trigger_sql.h"

#include <cctype>

namespace sluice {
namespace {

bool EqualsNoCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  }
  return true;
}

std::string ComponentExpr(const std::string& ref) {
  return "CASE typeof(" + ref + ") WHEN 'integer' THEN 'i'||" + ref +
         " WHEN 'text' THEN 't'||hex(" + ref + ") WHEN 'blob' THEN 'b'||hex(" + ref +
         ") WHEN 'real' THEN 'r'||printf('%!.17g'," + ref + ") ELSE 'n' END";
}

std::string JournalInsert(const std::string& table_literal, const char* op,
                          const std::string& key) {
  return "INSERT INTO _sluice_journal(tbl,op,key) VALUES(" + table_literal + ",'" + op + "'," +
         key + ");";
}

}  // namespace

std::string RowidAlias(const TableShape& shape) {
  for (const char* alias : {"rowid", "_rowid_", "oid"}) {
    bool shadowed = false;
    for (const ColumnShape& c : shape.columns) {
      if (c.name != kRowidColumn && EqualsNoCase(c.name, alias)) shadowed = true;
    }
    if (!shadowed) return alias;
  }
  return "";
}

std::string KeyExpr(const TableShape& shape, std::string_view row) {
  std::string prefix = row.empty() ? "" : std::string(row) + ".";
  if (shape.identity == TableShape::Identity::kRowid) {
    return "'i'||" + prefix + RowidAlias(shape);
  }
  std::string out;
  for (size_t idx : shape.KeyColumns()) {
    if (!out.empty()) out += "||'|'||";
    out += ComponentExpr(prefix + QuoteIdent(shape.columns[idx].name));
  }
  return out;
}

std::vector<TriggerSql> CaptureTriggers(const TableShape& shape) {
  const std::string on = " ON " + QuoteIdent(shape.name) + " FOR EACH ROW BEGIN ";
  const std::string lit = QuoteLiteral(shape.name);
  const std::string key_new = KeyExpr(shape, "NEW");
  const std::string key_old = KeyExpr(shape, "OLD");
  const std::string base = "_sluice_" + shape.name;

  std::vector<TriggerSql> out(3);
  out[0].name = base + "_ai";
  out[0].create = "CREATE TRIGGER " + QuoteIdent(out[0].name) + " AFTER INSERT" + on +
                  JournalInsert(lit, "I", key_new) + " END";
  out[1].name = base + "_au";
  // A key change journals a delete of the old key before the upsert of the new one.
  out[1].create = "CREATE TRIGGER " + QuoteIdent(out[1].name) + " AFTER UPDATE" + on +
                  "INSERT INTO _sluice_journal(tbl,op,key) SELECT " + lit + ",'D',k FROM (SELECT " +
                  key_old + " AS k) WHERE k IS NOT " + key_new + "; " +
                  JournalInsert(lit, "U", key_new) + " END";
  out[2].name = base + "_ad";
  out[2].create = "CREATE TRIGGER " + QuoteIdent(out[2].name) + " AFTER DELETE" + on +
                  JournalInsert(lit, "D", key_old) + " END";
  return out;
}

std::string DropTriggerSql(std::string_view trigger_name) {
  return "DROP TRIGGER IF EXISTS main." + QuoteIdent(trigger_name);
}

std::string IdentityText(const TableShape& shape) {
  std::string out = IdentityName(shape.identity);
  out += " (";
  bool first = true;
  for (size_t idx : shape.KeyColumns()) {
    if (!first) out += ", ";
    first = false;
    out += QuoteIdent(shape.columns[idx].name);
  }
  out += ")";
  return out;
}

std::string ColumnDefinitionText(const ColumnShape& column) {
  std::string out;
  if (!column.declared_type.empty()) out += " " + column.declared_type;
  if (column.not_null) out += " NOT NULL";
  return out;
}

std::string ColumnsText(const TableShape& shape) {
  std::string out;
  for (const ColumnShape& c : shape.columns) {
    if (!out.empty()) out += ", ";
    out += QuoteIdent(c.name) + ColumnDefinitionText(c);
  }
  return out;
}

std::string NamesText(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& name : names) {
    if (!out.empty()) out += ", ";
    out += QuoteIdent(name);
  }
  return out;
}

std::vector<RecordedColumn> ColumnsOfText(std::string_view text) {
  std::vector<RecordedColumn> columns;
  size_t i = 0;
  while (i < text.size()) {
    if (text[i] != '"') return {};
    RecordedColumn column;
    for (++i;; ++i) {
      if (i >= text.size()) return {};
      if (text[i] == '"') {
        if (i + 1 < text.size() && text[i + 1] == '"') {
          column.name.push_back('"');
          ++i;
          continue;
        }
        ++i;
        break;
      }
      column.name.push_back(text[i]);
    }
    // The declared type and NOT NULL, up to the next `, "` outside parentheses.
    size_t from = i;
    int depth = 0;
    for (; i < text.size(); ++i) {
      if (text[i] == '(') ++depth;
      if (text[i] == ')') --depth;
      if (depth == 0 && text.substr(i, 3) == ", \"") break;
    }
    column.definition = std::string(text.substr(from, i - from));
    columns.push_back(std::move(column));
    if (i < text.size()) i += 2;
  }
  return columns;
}

std::vector<std::string> ColumnNamesOfText(std::string_view text) {
  std::vector<std::string> names;
  for (RecordedColumn& c : ColumnsOfText(text)) names.push_back(std::move(c.name));
  return names;
}

std::vector<std::string> KeyNamesOfIdentityText(std::string_view text) {
  // "<identity name> (<NamesText>)"; identity names hold no parenthesis.
  size_t open = text.find(" (");
  if (open == std::string_view::npos || text.empty() || text.back() != ')') return {};
  return ColumnNamesOfText(text.substr(open + 2, text.size() - open - 3));
}

std::string TableOfTriggerName(std::string_view trigger_name) {
  constexpr std::string_view kPrefix = "_sluice_";
  if (trigger_name.size() <= kPrefix.size() + 3 ||
      trigger_name.substr(0, kPrefix.size()) != kPrefix)
    return "";
  std::string_view suffix = trigger_name.substr(trigger_name.size() - 3);
  if (suffix != "_ai" && suffix != "_au" && suffix != "_ad") return "";
  return std::string(trigger_name.substr(kPrefix.size(), trigger_name.size() - kPrefix.size() - 3));
}

std::vector<std::string> CaptureTablesDdl() {
  return {
      "CREATE TABLE IF NOT EXISTS _sluice_meta(key TEXT PRIMARY KEY, value TEXT)",
      "CREATE TABLE IF NOT EXISTS _sluice_tables(name TEXT PRIMARY KEY, identity TEXT, columns "
      "TEXT)",
      "CREATE TABLE IF NOT EXISTS _sluice_journal(seq INTEGER PRIMARY KEY AUTOINCREMENT, tbl TEXT "
      "NOT NULL, op TEXT NOT NULL, key TEXT NOT NULL, at INTEGER NOT NULL DEFAULT "
      "(CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)))",
  };
}

}  // namespace sluice
