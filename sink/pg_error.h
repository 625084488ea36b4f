// PostgreSQL error → Status mapping for PgConnection: pure functions, no I/O, so
// the rules (which SQLSTATE means retry, park, give up) are unit-tested without
// a server. Any thread. Messages never contain the connection password.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace sluice::pg {

// SQLSTATE → what the caller does next: class 08 and 57P01..57P03 →
// kUnavailable, classes 22/23, 21000, 54000 and P0001 → kDataError, SL001 → kConflict, SL002 →
// kFenced, SL003 → kCorruption, anything else (or empty) → kInternal.
Status::Code CodeForSqlState(std::string_view sqlstate);

// "query 3 of 7 failed: SQLSTATE 23505: <primary> (<detail>)". An empty
// sqlstate (a client-side error such as a lost connection) is written "-----"
// and maps to kUnavailable when connection_lost, else kInternal.
Status QueryError(int index, int total, std::string_view sqlstate, std::string_view primary,
                  std::string_view detail, bool connection_lost);

// A failed connection attempt: authentication / authorization problems →
// kInvalidArgument "authentication failed for user U on host H: ...", anything
// else → kUnavailable "cannot reach PostgreSQL at H:P: ...".
Status ConnectError(std::string_view libpq_message, std::string_view user, std::string_view host,
                    std::string_view port);

// libpq messages end with '\n' and may span lines (one per host tried):
// joins lines with "; " and trims.
std::string OneLine(std::string_view libpq_message);

// Replaces every occurrence of secret (when at least 4 bytes long, so short
// values don't mangle messages) with "********".
std::string Redact(std::string message, std::string_view secret);

// For conninfo parse errors, which quote pieces of the string (possibly a
// password): replaces the contents of each "..." span except "=" with "...".
std::string RedactQuoted(std::string_view message);

}  // namespace sluice::pg
