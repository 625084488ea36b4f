// SQL text for sluice's objects in the app's file: quoting, the row-identity
// key expression and the three capture triggers per table. Pure string
// building, no I/O; any thread. Called by table_tracker.cc and the tests.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/sql_quote.h"  // QuoteIdent, QuoteLiteral
#include "common/table_shape.h"

namespace sluice {

// The rowid name usable on this table ("rowid", "_rowid_" or "oid": the first
// that is not a real column); empty if every one is shadowed by a column.
std::string RowidAlias(const TableShape& shape);

// The SQL expression (built-in functions only) that yields the encoded key
// (see key_codec.h) of the row `row` ("NEW", "OLD", or "" for a bare column
// reference inside a SELECT on the table).
std::string KeyExpr(const TableShape& shape, std::string_view row);

struct TriggerSql {
  std::string name;    // e.g. _sluice_<table>_ai (unquoted)
  std::string create;  // the CREATE TRIGGER statement
};

// The three triggers (_ai, _au, _ad) in that order.
std::vector<TriggerSql> CaptureTriggers(const TableShape& shape);
std::string DropTriggerSql(std::string_view trigger_name);

// Text recorded in _sluice_tables to notice later changes.
std::string IdentityText(const TableShape& shape);
std::string ColumnsText(const TableShape& shape);
// Names as quoted identifiers separated by ", " ("" for none).
std::string NamesText(const std::vector<std::string>& names);
// What ColumnsText records of one column after its name: " <declared type>"
// (if any) and " NOT NULL" (if so); "" for neither.
std::string ColumnDefinitionText(const ColumnShape& column);
// A column of a ColumnsText: its name and its ColumnDefinitionText.
struct RecordedColumn {
  std::string name;
  std::string definition;
};
// The columns, in order, of a ColumnsText (a NamesText gives empty
// definitions); empty if `text` is neither.
std::vector<RecordedColumn> ColumnsOfText(std::string_view text);
// Their names only.
std::vector<std::string> ColumnNamesOfText(std::string_view text);
// The key column names, in key order, of an IdentityText; empty if none.
std::vector<std::string> KeyNamesOfIdentityText(std::string_view text);
// The table a capture trigger name was made for ("_sluice_<table>_ai" ->
// "<table>"), or "" if `trigger_name` is not one: ALTER TABLE ... RENAME keeps
// trigger names, so this names the table a renamed one was.
std::string TableOfTriggerName(std::string_view trigger_name);

// DDL of sluice's own tables, IF NOT EXISTS.
std::vector<std::string> CaptureTablesDdl();

}  // namespace sluice
