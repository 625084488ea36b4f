// Value encoding: the text a PostgreSQL parameter carries for one SQLite value
// in a column of a given TargetKind, or a DataError saying why it cannot be
// stored there (the row is then parked, not sent). Also the JSON helpers that
// build the statements' jsonb parameters and conflict_log images. Pure
// functions, any thread (the JSON validator keeps a thread-local parser).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/json_text.h"  // AppendJsonString
#include "common/status.h"
#include "common/value.h"
#include "sink/type_mapping.h"

namespace sluice {

// nullopt for NULL. Rules per kind:
//  text/other: TEXT must be valid UTF-8 without NUL; integers in decimal; reals
//    in shortest round-trip form ("1.0", "NaN", "Infinity"); BLOB refused.
//  bigint/integer/smallint: integers (range-checked), integral reals, canonical
//    integer text ("-12", not "012" or "1e3").
//  boolean: integers 0 and 1 only.
//  double: integers, reals ("NaN", "Infinity", "-Infinity"), numeric text.
//  numeric: integers, reals, numeric literal text; NaN and ±Infinity allowed.
//  jsonb: TEXT that is valid JSON without \u0000 (jsonb refuses it); integers
//    and finite reals as JSON numbers.
//  bytea: BLOB or TEXT bytes as "\x<hex>".
Result<std::optional<std::string>> EncodeValue(const Value& value, TargetKind kind);

bool IsValidUtf8(std::string_view bytes);

// Ok when `text` can be stored as jsonb, else DataError with the reason.
Status CheckJsonbText(std::string_view text);

// Appends a lossless JSON image of `value` for conflict_log: null, a number
// (integer exactly; NaN/±Infinity as strings), a string, or
// {"$text_hex": "..."} for TEXT that is not valid UTF-8 or holds NUL, and
// {"$blob_hex": "..."} for a BLOB.
void AppendValueJson(std::string* out, const Value& value);

// A short printable rendering of some bytes for error messages.
std::string PreviewBytes(std::string_view bytes);

// Shortest text that reads back as exactly `v` ("NaN", "Infinity", "-Infinity"
// for the special values).
std::string FormatDouble(double v);

}  // namespace sluice
