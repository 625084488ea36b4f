// PostgreSQL error classification for PgConnection (see pg_error.h).
#include "sink/pg_error.h"

#include <algorithm>
#include <array>

namespace sluice::pg {

namespace {

bool Contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

}  // namespace

Status::Code CodeForSqlState(std::string_view s) {
  if (s.size() != 5) return Status::Code::kInternal;
  std::string_view cls = s.substr(0, 2);
  if (cls == "08" || s == "57P01" || s == "57P02" || s == "57P03") {
    return Status::Code::kUnavailable;
  }
  // 21000 (cardinality violation): an upsert touched one row twice, i.e. two
  // source keys collided at the sink; the applier's slow path isolates them.
  // 54000 (program limit exceeded): e.g. "index row requires 1048592 bytes",
  // a key too large for a btree entry. P0001 (RAISE EXCEPTION): a trigger on
  // an adopted table rejecting a row. Either way that row is parked.
  if (cls == "22" || cls == "23" || s == "21000" || s == "54000" || s == "P0001") {
    return Status::Code::kDataError;
  }
  if (s == "SL001") return Status::Code::kConflict;
  if (s == "SL002") return Status::Code::kFenced;
  if (s == "SL003") return Status::Code::kCorruption;
  return Status::Code::kInternal;
}

const char* PgActionName(PgAction action) {
  switch (action) {
    case PgAction::kRetry:
      return "retry";
    case PgAction::kStop:
      return "stop";
    case PgAction::kSplit:
      return "split";
    case PgAction::kRowError:
      return "row-error";
  }
  return "?";
}

PgAction ActionFor(std::string_view s) {
  if (s.size() != 5) return PgAction::kRetry;  // client-side: the connection is judged
  std::string_view cls = s.substr(0, 2);
  // Exact codes first: some of them sit in classes that mean something else.
  if (s == "57014" || s == "25P04" || s == "53200" || s == "54001" || s == "54023") {
    return PgAction::kSplit;
  }
  if (s == "3D000" || s == "42501" || s == "57P04" || s == "0A000" || s == "XX001" ||
      s == "XX002" || s == "SL003") {
    return PgAction::kStop;
  }
  if (s == "21000" || s == "54000" || s == "P0001") return PgAction::kRowError;
  if (cls == "28") return PgAction::kStop;
  if (cls == "22" || cls == "23") return PgAction::kRowError;
  return PgAction::kRetry;
}

namespace {

bool IsSqlStateChar(char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z'); }

// The first "SQLSTATE XXXXX: " that QueryError / PgConnection wrote: at the
// start of the message or after ": ", so a value quoted in a message is not
// mistaken for one.
std::string_view SqlStateIn(std::string_view m) {
  constexpr std::string_view kTag = "SQLSTATE ";
  size_t pos = 0;
  while ((pos = m.find(kTag, pos)) != std::string_view::npos) {
    bool starts = pos == 0 || (pos >= 2 && m.substr(pos - 2, 2) == ": ");
    size_t code = pos + kTag.size();
    if (starts && code + 6 <= m.size() && m[code + 5] == ':' &&
        std::all_of(m.begin() + code, m.begin() + code + 5, IsSqlStateChar)) {
      return m.substr(code, 5);
    }
    pos = code;
  }
  return {};
}

}  // namespace

PgAction ActionOf(const Status& status) {
  switch (status.code()) {
    case Status::Code::kOk:
      return PgAction::kRetry;
    case Status::Code::kInvalidArgument:
      return PgAction::kStop;
    default:
      break;
  }
  std::string_view sqlstate = SqlStateIn(status.message());
  if (!sqlstate.empty()) return ActionFor(sqlstate);
  switch (status.code()) {
    case Status::Code::kDataError:
      return PgAction::kRowError;
    case Status::Code::kCorruption:
      return PgAction::kStop;
    default:
      return PgAction::kRetry;
  }
}

Status QueryError(int index, int total, std::string_view sqlstate, std::string_view primary,
                  std::string_view detail, bool connection_lost) {
  std::string m = "query " + std::to_string(index) + " of " + std::to_string(total) +
                  " failed: SQLSTATE " + std::string(sqlstate.empty() ? "-----" : sqlstate) + ": " +
                  OneLine(primary);
  if (!detail.empty()) m += " (" + OneLine(detail) + ")";
  Status::Code code = CodeForSqlState(sqlstate);
  if (sqlstate.empty() && connection_lost) code = Status::Code::kUnavailable;
  switch (code) {
    case Status::Code::kUnavailable:
      return Status::Unavailable(std::move(m));
    case Status::Code::kDataError:
      return Status::DataError(std::move(m));
    case Status::Code::kConflict:
      return Status::Conflict(std::move(m));
    case Status::Code::kFenced:
      return Status::Fenced(std::move(m));
    case Status::Code::kCorruption:
      return Status::Corruption(std::move(m));
    default:
      return Status::Internal(std::move(m));
  }
}

namespace {

enum class ConnectProblem { kAuth, kNoDatabase, kPermission, kBadOption, kTls, kUnreachable };

// Message fragments of permanent connect failures, from libpq (client-side
// option checks, TLS setup) and from the server or pgbouncer (FATAL before
// the session starts), in the English wording both use. Order matters: the
// first match wins, and "does not exist" alone is too vague to match.
struct ConnectRule {
  std::string_view fragment;
  ConnectProblem problem;
};
constexpr std::array<ConnectRule, 27> kConnectRules = {{
    {"password authentication failed", ConnectProblem::kAuth},
    {"no pg_hba.conf entry", ConnectProblem::kAuth},
    {"pg_hba.conf rejects", ConnectProblem::kAuth},
    {"is not permitted to log in", ConnectProblem::kAuth},
    {"no password supplied", ConnectProblem::kAuth},
    {"SCRAM authentication", ConnectProblem::kAuth},
    {"SASL authentication", ConnectProblem::kAuth},
    {"no such user", ConnectProblem::kAuth},            // pgbouncer
    {"no such database", ConnectProblem::kNoDatabase},  // pgbouncer
    {"permission denied for database", ConnectProblem::kPermission},
    {"does not have CONNECT privilege", ConnectProblem::kPermission},
    {"for connection option", ConnectProblem::kBadOption},  // invalid integer value ...
    {"invalid connection option", ConnectProblem::kBadOption},
    {"invalid port number", ConnectProblem::kBadOption},
    {"could not match", ConnectProblem::kBadOption},  // host / hostaddr / port list lengths
    {"could not parse network address", ConnectProblem::kBadOption},
    {"invalid value for parameter", ConnectProblem::kBadOption},  // options=-c ...
    {"unrecognized configuration parameter", ConnectProblem::kBadOption},
    {"invalid SSL protocol version", ConnectProblem::kBadOption},
    {"invalid when SSL support is not compiled in", ConnectProblem::kBadOption},
    {"server does not support SSL", ConnectProblem::kTls},
    {"certificate file", ConnectProblem::kTls},  // root / client certificate missing or unreadable
    {"private key file", ConnectProblem::kTls},
    {"certificate verify failed", ConnectProblem::kTls},
    {"does not match host name", ConnectProblem::kTls},
    {"certificate present, but not private key", ConnectProblem::kTls},
    {"SSL certificate revocation list", ConnectProblem::kTls},
}};

ConnectProblem ClassifyConnect(std::string_view msg) {
  for (const ConnectRule& r : kConnectRules) {
    if (Contains(msg, r.fragment)) return r.problem;
  }
  if (Contains(msg, "role \"") && Contains(msg, "\" does not exist")) return ConnectProblem::kAuth;
  if (Contains(msg, "database \"") && Contains(msg, "\" does not exist")) {
    return ConnectProblem::kNoDatabase;
  }
  // libpq's own option checks: 'invalid sslmode value: "x"', 'invalid
  // target_session_attrs value: ...' and the like.
  if (msg.rfind("invalid ", 0) == 0 && Contains(msg, " value")) return ConnectProblem::kBadOption;
  return ConnectProblem::kUnreachable;
}

}  // namespace

Status ConnectError(std::string_view libpq_message, std::string_view user, std::string_view host,
                    std::string_view port) {
  std::string msg = OneLine(libpq_message);
  std::string h = host.empty() ? "(default)" : std::string(host);
  std::string where = h;
  if (!port.empty()) where += ":" + std::string(port);
  switch (ClassifyConnect(msg)) {
    case ConnectProblem::kAuth:
      return Status::InvalidArgument("authentication failed for user " + std::string(user) +
                                     " on host " + h + ": " + msg);
    case ConnectProblem::kNoDatabase:
      return Status::InvalidArgument("database does not exist on host " + where +
                                     " (check the database name in sink.url): " + msg);
    case ConnectProblem::kPermission:
      return Status::InvalidArgument("permission denied on host " + where + " for user " +
                                     std::string(user) + ": " + msg);
    case ConnectProblem::kBadOption:
      return Status::InvalidArgument(
          "invalid connection option (check sink.url and PG* "
          "variables): " +
          msg);
    case ConnectProblem::kTls:
      return Status::InvalidArgument("TLS setup failed for host " + where +
                                     " (check sslmode / sslrootcert in sink.url): " + msg);
    case ConnectProblem::kUnreachable:
      break;
  }
  return Status::Unavailable("cannot reach PostgreSQL at " + where + ": " + msg);
}

std::string OneLine(std::string_view m) {
  std::string out;
  size_t start = 0;
  while (start <= m.size()) {
    size_t end = m.find('\n', start);
    if (end == std::string_view::npos) end = m.size();
    std::string_view line = m.substr(start, end - start);
    while (!line.empty() && (line.back() == ' ' || line.back() == '\r' || line.back() == '\t')) {
      line.remove_suffix(1);
    }
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
    if (!line.empty()) {
      if (!out.empty()) out += "; ";
      out += line;
    }
    start = end + 1;
  }
  return out;
}

std::string Redact(std::string message, std::string_view secret) {
  if (secret.size() < 4) return message;
  size_t pos = 0;
  while ((pos = message.find(secret, pos)) != std::string::npos) {
    message.replace(pos, secret.size(), "********");
    pos += 8;
  }
  return message;
}

std::string RedactQuoted(std::string_view m) {
  std::string out;
  size_t i = 0;
  while (i < m.size()) {
    size_t open = m.find('"', i);
    if (open == std::string_view::npos) break;
    size_t close = m.find('"', open + 1);
    if (close == std::string_view::npos) break;
    out.append(m.substr(i, open + 1 - i));
    std::string_view inner = m.substr(open + 1, close - open - 1);
    out.append(inner == "=" ? inner : std::string_view("..."));
    out.push_back('"');
    i = close + 1;
  }
  out.append(m.substr(std::min(i, m.size())));
  return out;
}

}  // namespace sluice::pg
