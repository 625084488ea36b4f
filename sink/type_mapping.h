// Type mapping: which PostgreSQL type mirrors a SQLite column, and how a
// PostgreSQL column type is treated when values are encoded for it. Pure
// functions, any thread. Called by mirror_table (planning) and value_encoder.
//
// A column's type is decided from its declared type AND what it really holds
// (ColumnShape::seen_kinds, text_all_json, integers_all_bool): SQLite lets any
// column hold any storage class, so the declared type alone would make the
// sink refuse rows the source holds. A per-column override (SinkOptions::
// column_types) wins over all of this. Tables with no rows decide by the
// declared type alone.
//
//   declared type (SQLite affinity)  holds (besides NULL)          PostgreSQL type
//   -------------------------------  ----------------------------  ----------------
//   BOOLEAN, BOOL                    integers 0/1 only (or none)   boolean
//                                    other integers only           bigint
//                                    anything else                 text
//   JSON                             valid JSON text only (or none) jsonb
//                                    anything else                 text
//   DATETIME, DATE, TIME, TIMESTAMP  integers only (epoch numbers) bigint
//                                    anything else, or no values   text (kept as written)
//   INT affinity (INTEGER, BIGINT..) integers only (or none)       bigint
//                                    some text                     text
//                                    reals, no text                double precision
//   REAL affinity (REAL, FLOAT, ..)  numbers only (or none)        double precision
//                                    some text                     text
//   TEXT affinity (TEXT, VARCHAR..)  anything                      text
//   BLOB or no declared type         blobs only                    bytea
//                                    integers only                 bigint
//                                    integers and/or reals         double precision
//                                    anything else                 text
//                                    no values: BLOB -> bytea, none -> text
//   NUMERIC affinity (NUMERIC, ..)   numbers only (or none)        numeric
//                                    some text                     text
//   the synthetic _sluice_rowid      -                             bigint
//
// A blob in a column mapped to a textual type, or text that is not valid UTF-8,
// cannot be stored there: such rows are parked in conflict_log (value_encoder).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"
#include "common/table_shape.h"

namespace sluice {

// How values are encoded for a sink column; decided by its PostgreSQL type.
enum class TargetKind : uint8_t {
  kBigint,    // bigint
  kInteger,   // integer (int4)
  kSmallint,  // smallint (int2)
  kBoolean,
  kDouble,  // double precision, real
  kNumeric,
  kText,   // text, character varying(n), character(n), name
  kJsonb,  // jsonb, json
  kBytea,
  kOther,  // anything else (timestamptz, uuid, ...): sent as text, PostgreSQL casts
};

const char* TargetKindName(TargetKind kind);

// The PostgreSQL type mirroring `column` (rules above), without override.
std::string MapColumnType(const ColumnShape& column);

// The kind of a PostgreSQL type name as format_type() prints it, or as a user
// writes it in an override ("int8", "varchar(20)", "timestamp with time zone").
TargetKind KindOfPgType(std::string_view pg_type);

// Ok when `pg_type` is a plain PostgreSQL type name that may be spliced into
// DDL: an identifier with an optional schema qualification, the words of a
// multi-word type (double precision, character varying, timestamp(3) with
// time zone, interval day to second, ...), one optional (n) or (n,m) typmod,
// optional [] / [n] suffixes. Anything else (DEFAULT, a comma, a comment,
// quotes) is InvalidArgument saying what is wrong: the override is config text.
Status CheckPgTypeName(std::string_view pg_type);

}  // namespace sluice
