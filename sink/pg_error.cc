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

Status ConnectError(std::string_view libpq_message, std::string_view user, std::string_view host,
                    std::string_view port) {
  std::string msg = OneLine(libpq_message);
  // libpq (PG 15) exposes no SQLSTATE for a failed connection attempt, so the
  // server's 28P01 / 28000 are recognised by their message text (server and
  // pgbouncer use the same wording); the client-side "no password supplied"
  // is the same misconfiguration seen from the other end.
  static constexpr std::array<std::string_view, 7> kAuth = {"password authentication failed",
                                                            "no pg_hba.conf entry",
                                                            "pg_hba.conf rejects",
                                                            "is not permitted to log in",
                                                            "no password supplied",
                                                            "SCRAM authentication",
                                                            "SASL authentication"};
  bool auth = false;
  for (std::string_view a : kAuth) auth = auth || Contains(msg, a);
  if (!auth && Contains(msg, "role \"") && Contains(msg, "\" does not exist")) auth = true;
  std::string h = host.empty() ? "(default)" : std::string(host);
  if (auth) {
    return Status::InvalidArgument("authentication failed for user " + std::string(user) +
                                   " on host " + h + ": " + msg);
  }
  std::string where = h;
  if (!port.empty()) where += ":" + std::string(port);
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
