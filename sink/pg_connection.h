// PgConnection: one libpq connection driven asynchronously on a libuv loop
// (PQconnectStart/PQconnectPoll, nonblocking pipeline mode, uv_poll on the
// socket). Loop thread only. Unnamed statements only, so it works through a
// transaction-mode pooler (pgbouncer, Supabase port 6543). One Submit at a time.
// Close() is asynchronous; the object may be destroyed only after its callback.
#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace sluice {

struct PgQuery {
  PgQuery() = default;
  PgQuery(std::string s, std::vector<std::optional<std::string>> p = {})
      : sql(std::move(s)), params(std::move(p)) {}
  // COPY ... FROM STDIN with all of its data (text format, lines ending in \n).
  static PgQuery Copy(std::string s, std::string data) {
    PgQuery q(std::move(s));
    q.copy_data = std::move(data);
    return q;
  }

  std::string sql;
  std::vector<std::optional<std::string>> params;  // text format; nullopt = NULL
  // Set: `sql` is a COPY ... FROM STDIN (no params) and this is all of its
  // data, sent in one go (see Submit).
  std::optional<std::string> copy_data;
};

struct PgResult {
  std::vector<std::vector<std::optional<std::string>>> rows;  // text format
  int64_t affected = 0;                                       // PQcmdTuples, 0 when none
};

class PgConnection {
 public:
  static constexpr int kDefaultQueryTimeoutMs = 30000;

  using ConnectCallback = std::function<void(Status)>;
  using SubmitCallback = std::function<void(Status, std::vector<PgResult>)>;

  // conninfo: a libpq keyword/value string or URI; PG* variables and .pgpass
  // apply, and sluice's defaults (TCP keepalives, tcp_user_timeout =
  // query_timeout_ms, see pg_conninfo.h) fill what the user left unset.
  // query_timeout_ms: a Submit that gets no byte from the server for this
  // long fails with kUnavailable ("no reply from PostgreSQL ...") and the
  // connection is dropped (0 = never). PostgreSQL sends a pipeline's results
  // when it reaches the Sync (or when they overflow its output buffer), so in
  // practice one Submit must complete within the deadline: keep Submits
  // small (the applier's chunks are).
  PgConnection(uv_loop_t* loop, std::string conninfo,
               int query_timeout_ms = kDefaultQueryTimeoutMs);
  ~PgConnection();
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;

  // Connects (or reconnects after a failure). Host names are resolved off the
  // loop. Errors: kUnavailable (network, server down, DNS, connect timeout:
  // retry), kInvalidArgument (bad conninfo or option, authentication failed,
  // database does not exist, no CONNECT privilege, TLS setup: stop); see
  // pg::ConnectError.
  void Connect(ConnectCallback done);

  // Sends all queries in one pipeline ending with a single Sync, then calls
  // done with one PgResult per query, or the first error mapped to a Status:
  // SQLSTATE class 08/57P → kUnavailable, 22/23 → kDataError, 'SL001' →
  // kConflict, 'SL002' → kFenced, others → kInternal; the message names the
  // SQLSTATE and the index of the failing query, and pg::ActionOf(status)
  // tells the caller what to do next (retry, stop, split, park the row). Without an explicit BEGIN
  // the queries form one implicit transaction (all or nothing); an explicit BEGIN keeps the
  // transaction open across Submits. A query with copy_data is a COPY FROM STDIN: libpq allows no
  // COPY in pipeline mode, so the queries before it go as one pipeline (with its Sync), the COPY
  // alone outside pipeline mode, then the rest; its result's `affected` is the rows copied. Each
  // part is then an implicit transaction of its own: put COPYs inside an explicit BEGIN. Nothing
  // after a failed part is sent.
  void Submit(std::vector<PgQuery> queries, SubmitCallback done);

  // Asks the server to cancel the statement it runs for this connection
  // (PQcancel over a connection of its own, on a detached thread, so that a
  // dead network holds up neither the loop nor the process's exit). The
  // Submit in flight then fails (SQLSTATE 57014) unless it completed first;
  // a transaction it was in is aborted. No-op when no Submit is in flight.
  void CancelRunning();

  bool connected() const;
  // Closes the socket and frees libpq state; done runs from the loop once the
  // uv handle is closed. Pending callbacks get kUnavailable first.
  void Close(std::function<void()> done);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice
