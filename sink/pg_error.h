// PostgreSQL error → Status mapping for PgConnection, and the table that sorts
// every sink error by what the caller does next (PgAction): pure functions, no
// I/O, so the rules are unit-tested without a server. Any thread. Messages
// never contain the connection password.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace sluice::pg {

// What to do about a failed PostgreSQL call.
enum class PgAction : uint8_t {
  kRetry,     // transient: back off and retry (reconnect first if the connection went)
  kStop,      // retrying cannot help (credentials, missing database, privileges,
              // corruption): stop with the message and a non-zero exit
  kSplit,     // the work was too big for one statement or transaction
              // (statement_timeout, out of shared memory): redo it in smaller pieces
  kRowError,  // the sink rejects a row's data: isolate it (bisect) and park it
};

const char* PgActionName(PgAction action);

// The action for a SQLSTATE (sluice's own SLxxx included; "" = client-side):
//   kRetry    class 08, 40001, 40P01, 55P03, 53300, 53100, 57P01..57P03, 25P03,
//             25006, class 58, XX000, SL001, SL002, "" and anything not below
//             (42P01 / 42703 included: the caller re-reads the catalog first)
//   kStop     class 28, 3D000, 42501, 57P04, 0A000, XX001, XX002, SL003
//   kSplit    57014, 25P04, 53200, 54001, 54023
//   kRowError class 22, class 23, 21000, 54000, P0001
PgAction ActionFor(std::string_view sqlstate);

// The action for a Status from PgConnection or ConnectError, however wrapped:
// kInvalidArgument → kStop; else the SQLSTATE its message carries (as written
// by QueryError, "...: SQLSTATE 42501: ..."); else by code (kDataError →
// kRowError, kCorruption → kStop, anything else → kRetry).
PgAction ActionOf(const Status& status);

// SQLSTATE → what the caller does next: class 08 and 57P01..57P03 →
// kUnavailable, classes 22/23, 21000, 54000 and P0001 → kDataError, SL001 → kConflict, SL002 →
// kFenced, SL003 → kCorruption, anything else (or empty) → kInternal.
Status::Code CodeForSqlState(std::string_view sqlstate);

// "query 3 of 7 failed: SQLSTATE 23505: <primary> (<detail>)". An empty
// sqlstate (a client-side error such as a lost connection) is written "-----"
// and maps to kUnavailable when connection_lost, else kInternal.
Status QueryError(int index, int total, std::string_view sqlstate, std::string_view primary,
                  std::string_view detail, bool connection_lost);

// A failed connection attempt, sorted by libpq's / the server's message (libpq
// exposes no SQLSTATE for it). Permanent problems are kInvalidArgument and say
// what is wrong: "authentication failed for user U on host H: ...",
// "database does not exist on host H:P: ...", "permission denied on host H:P:
// ...", "invalid connection option: ...", "TLS setup failed for host H:P: ...".
// Anything else (refused, timed out, too many clients, starting up, DNS) is
// kUnavailable "cannot reach PostgreSQL at H:P: ...".
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
