// PgConnection: libpq in nonblocking pipeline mode, driven by uv_poll on its socket.
//
// State table (Transition() logs every move at debug level):
//   idle       --Connect-------------------------------> connecting
//   connecting --PQconnectPoll OK----------------------> ready
//   connecting --failure / connect timeout-------------> idle        (Connect may be retried)
//   ready      --Submit--------------------------------> busy
//   busy       --PGRES_PIPELINE_SYNC-------------------> ready
//   ready|busy --connection lost-----------------------> idle
//   any        --Close---------------------------------> closing --handles closed--> idle
//
// Handles live in HandleBox allocations that only their close callback frees;
// `live` counts them (open or closing), so Close's done runs after the last one.
#include "sink/pg_connection.h"

#include <libpq-fe.h>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <cstring>
#include <string_view>
#include <unordered_set>
#include <utility>

#include "sink/pg_error.h"

namespace sluice {

namespace {

enum class State { kIdle, kConnecting, kReady, kBusy, kClosing };

const char* StateName(State s) {
  switch (s) {
    case State::kIdle:
      return "idle";
    case State::kConnecting:
      return "connecting";
    case State::kReady:
      return "ready";
    case State::kBusy:
      return "busy";
    case State::kClosing:
      return "closing";
  }
  return "?";
}

// libpq's connect_timeout is enforced only by its blocking PQconnectdb, so an
// asynchronous caller has to time the attempt itself. Unset → this default,
// because an agent must not hang forever on a black-holed address; an
// explicit connect_timeout=0 keeps libpq's "wait indefinitely".
constexpr int kDefaultConnectTimeoutSec = 15;

// libpq's own limit on the number of parameters of one statement.
constexpr size_t kMaxParams = 65535;

bool LooksLikeConninfo(const std::string& s) {
  return s.find('=') != std::string::npos || s.rfind("postgresql://", 0) == 0 ||
         s.rfind("postgres://", 0) == 0;
}

const char* OrEmpty(const char* s) { return s != nullptr ? s : ""; }

int64_t ParseAffected(const char* s) {
  if (s == nullptr || *s == '\0') return 0;
  return std::strtoll(s, nullptr, 10);
}

}  // namespace

struct PgConnection::Impl {
  // One libuv handle; owned here until its close callback frees it. owner is
  // cleared when the Impl dies first, so late callbacks find nobody home.
  struct HandleBox {
    union {
      uv_handle_t handle;
      uv_poll_t poll;
      uv_timer_t timer;
    } u;
    Impl* owner = nullptr;
  };

  Impl(uv_loop_t* l, std::string ci) : loop(l), conninfo(std::move(ci)) {}
  ~Impl();

  void Connect(ConnectCallback done);
  void Submit(std::vector<PgQuery> queries, SubmitCallback done);
  void Close(std::function<void()> done);
  bool connected() const {
    return (state == State::kReady || state == State::kBusy) && conn != nullptr &&
           PQstatus(conn) == CONNECTION_OK;
  }

  // --- libuv / libpq callbacks (never throw: they return into C code) ---
  static void OnClosed(uv_handle_t* h) noexcept;
  static void OnPollEvent(uv_poll_t* h, int status, int events) noexcept;
  static void OnDeferTimer(uv_timer_t* h) noexcept;
  static void OnConnectTimer(uv_timer_t* h) noexcept;
  static void OnNotice(void* arg, const PGresult* r) noexcept;

  void Transition(State to, std::string_view why);
  HandleBox* NewBox();
  void CloseBox(HandleBox*& box);
  HandleBox* Timer(HandleBox*& slot);
  Status Watch(int events, bool fresh_handle);
  void Defer(std::function<void()> fn);
  void Drop(std::string_view why);

  std::optional<Status> StepConnect(bool first);
  std::optional<Status> FinishConnectOk();
  Status ConnectFailure();
  void CompleteConnect(Status s);
  void StartConnectTimer();

  void OnIo(int status, int events);
  void ProcessResults();
  void CollectResult(PGresult* r);
  void FinishSubmit();
  void FailSubmitLost();
  std::string LostReason() const;

  uv_loop_t* loop;
  std::string conninfo;
  PGconn* conn = nullptr;
  State state = State::kIdle;
  std::string label = "PostgreSQL";  // host:port, for logs
  std::string last_server_error;     // e.g. 57P01 text, seen just before EOF
  std::string disconnect_reason;     // why the last connection went away

  HandleBox* poll = nullptr;  // watches PQsocket(conn)
  int poll_events = 0;
  HandleBox* connect_timer = nullptr;
  HandleBox* defer_timer = nullptr;
  std::unordered_set<HandleBox*> live;

  ConnectCallback connect_cb;
  SubmitCallback submit_cb;
  std::vector<std::function<void()>> deferred;  // completions not run inside the call
  std::vector<std::function<void()>> close_dones;

  // The Submit in flight.
  int total = 0;
  int index = 0;  // queries whose results are complete (NULL seen)
  bool flushing = false;
  std::vector<PgResult> results;
  PgResult current;
  std::optional<Status> first_error;
  bool protocol_lost = false;  // a result Submit cannot drive (COPY): drop at the end
};

// ---------------------------------------------------------------- handles

PgConnection::Impl::~Impl() {
  // Close() was not called (or has not finished): detach the handles so their
  // close callbacks only free memory.
  for (HandleBox* b : live) {
    b->owner = nullptr;
    if (!uv_is_closing(&b->u.handle)) uv_close(&b->u.handle, OnClosed);
  }
  live.clear();
  if (conn != nullptr) PQfinish(conn);
}

void PgConnection::Impl::Transition(State to, std::string_view why) {
  spdlog::debug("pg {}: {} -> {}{}{}", label, StateName(state), StateName(to),
                why.empty() ? "" : ": ", why);
  state = to;
}

PgConnection::Impl::HandleBox* PgConnection::Impl::NewBox() {
  auto* b = new HandleBox();
  b->owner = this;
  live.insert(b);
  return b;
}

void PgConnection::Impl::CloseBox(HandleBox*& box) {
  if (box == nullptr) return;
  if (!uv_is_closing(&box->u.handle)) uv_close(&box->u.handle, OnClosed);
  box = nullptr;
}

void PgConnection::Impl::OnClosed(uv_handle_t* h) noexcept {
  auto* box = static_cast<HandleBox*>(h->data);
  Impl* owner = box->owner;
  if (owner != nullptr) owner->live.erase(box);
  delete box;
  if (owner == nullptr || owner->state != State::kClosing || !owner->live.empty()) return;

  owner->Transition(State::kIdle, "closed");
  // Calls made while closing were answered "connection closed" but held until now.
  auto late = std::move(owner->deferred);
  owner->deferred.clear();
  auto dones = std::move(owner->close_dones);
  owner->close_dones.clear();
  for (auto& f : late) f();
  // A done may destroy the PgConnection: touch only locals from here on.
  for (auto& d : dones) {
    if (d) d();
  }
}

PgConnection::Impl::HandleBox* PgConnection::Impl::Timer(HandleBox*& slot) {
  if (slot == nullptr) {
    slot = NewBox();
    uv_timer_init(loop, &slot->u.timer);  // cannot fail on Unix
    slot->u.handle.data = slot;
  }
  return slot;
}

// Points the poll handle at PQsocket(conn) with the given events. During the
// handshake libpq may close its socket and open another one (next host or
// address, SSL/GSS fallback) that can even reuse the same fd number, which
// libuv cannot tell apart; so each handshake step gets a fresh handle
// (fresh_handle), which is cheap next to a network round trip.
Status PgConnection::Impl::Watch(int events, bool fresh_handle) {
  int fd = PQsocket(conn);
  if (fd < 0) return Status::Unavailable("libpq has no socket");
  if (fresh_handle || poll == nullptr) {
    CloseBox(poll);
    HandleBox* b = NewBox();
    int rc = uv_poll_init(loop, &b->u.poll, fd);
    if (rc != 0) {  // a failed init needs no close
      live.erase(b);
      delete b;
      return Status::Unavailable(std::string("uv_poll_init: ") + uv_strerror(rc));
    }
    b->u.handle.data = b;
    poll = b;
    poll_events = 0;
  }
  if (events != poll_events) {
    int rc = uv_poll_start(&poll->u.poll, events, OnPollEvent);
    if (rc != 0) return Status::Unavailable(std::string("uv_poll_start: ") + uv_strerror(rc));
    poll_events = events;
  }
  return Status::Ok();
}

// Runs fn on a later loop turn, so no callback runs inside the call that
// registered it (a caller that retries from its callback must not recurse).
void PgConnection::Impl::Defer(std::function<void()> fn) {
  deferred.push_back(std::move(fn));
  if (state == State::kClosing) return;  // run when the close completes
  uv_timer_start(&Timer(defer_timer)->u.timer, OnDeferTimer, 0, 0);
}

void PgConnection::Impl::OnDeferTimer(uv_timer_t* h) noexcept {
  Impl* self = static_cast<HandleBox*>(h->data)->owner;
  if (self == nullptr) return;
  auto batch = std::move(self->deferred);
  self->deferred.clear();
  for (auto& f : batch) f();
}

// Forgets the libpq connection. The uv handle is stopped (synchronously, by
// uv_close) before PQfinish closes the fd under it.
void PgConnection::Impl::Drop(std::string_view why) {
  CloseBox(poll);
  poll_events = 0;
  flushing = false;
  if (connect_timer != nullptr) uv_timer_stop(&connect_timer->u.timer);
  if (conn != nullptr) {
    PQfinish(conn);
    conn = nullptr;
  }
  disconnect_reason = std::string(why);
  Transition(State::kIdle, why);
}

// ---------------------------------------------------------------- connect

void PgConnection::Impl::Connect(ConnectCallback done) {
  if (state != State::kIdle) {
    Status s = state == State::kClosing
                   ? Status::Unavailable("connection closed")
                   : Status::Internal(std::string("Connect called while ") + StateName(state));
    Defer([done = std::move(done), s] { done(s); });
    return;
  }
  if (LooksLikeConninfo(conninfo)) {
    // Parse errors are configuration errors, not outages; libpq quotes pieces
    // of the string in them, so those are blanked (they may be a password).
    char* err = nullptr;
    PQconninfoOption* opts = PQconninfoParse(conninfo.c_str(), &err);
    if (opts == nullptr) {
      std::string m = err != nullptr ? pg::RedactQuoted(pg::OneLine(err)) : "out of memory";
      if (err != nullptr) PQfreemem(err);
      Status s = Status::InvalidArgument("invalid connection string: " + m);
      Defer([done = std::move(done), s] { done(s); });
      return;
    }
    PQconninfoFree(opts);
  }
  // Keywords before "dbname" are defaults that the expanded conninfo overrides.
  const char* keywords[] = {"client_encoding", "fallback_application_name", "dbname", nullptr};
  const char* values[] = {"UTF8", "sluice", conninfo.c_str(), nullptr};
  conn = PQconnectStartParams(keywords, values, /*expand_dbname=*/1);
  if (conn == nullptr) {
    Defer([done = std::move(done)] { done(Status::Unavailable("libpq: out of memory")); });
    return;
  }
  PQsetNoticeReceiver(conn, OnNotice, this);
  label = std::string(OrEmpty(PQhost(conn))) + ":" + OrEmpty(PQport(conn));
  last_server_error.clear();
  connect_cb = std::move(done);
  Transition(State::kConnecting, "");
  std::optional<Status> finished;
  if (PQstatus(conn) == CONNECTION_BAD) {
    finished = ConnectFailure();
  } else {
    StartConnectTimer();
    finished = StepConnect(/*first=*/true);
  }
  if (finished) {
    // Failed before any I/O (refused on loopback, bad host name): answer from
    // the loop, with the callback taken out of the slot so a new Connect from
    // elsewhere cannot receive this answer.
    spdlog::warn("pg {}: {}", label, finished->ToString());
    auto cb = std::move(connect_cb);
    connect_cb = nullptr;
    Defer([cb = std::move(cb), s = *finished] { cb(s); });
  }
}

void PgConnection::Impl::StartConnectTimer() {
  int seconds = kDefaultConnectTimeoutSec;
  if (PQconninfoOption* opts = PQconninfo(conn)) {
    for (PQconninfoOption* o = opts; o->keyword != nullptr; ++o) {
      if (std::strcmp(o->keyword, "connect_timeout") == 0 && o->val != nullptr && *o->val) {
        seconds = std::atoi(o->val);
        if (seconds > 0 && seconds < 2) seconds = 2;  // as libpq does
      }
    }
    PQconninfoFree(opts);
  }
  if (seconds <= 0) return;
  uv_timer_start(&Timer(connect_timer)->u.timer, OnConnectTimer, uint64_t(seconds) * 1000, 0);
}

void PgConnection::Impl::OnConnectTimer(uv_timer_t* h) noexcept {
  Impl* self = static_cast<HandleBox*>(h->data)->owner;
  if (self == nullptr || self->state != State::kConnecting) return;
  std::string where = self->label;
  self->Drop("connect timeout");
  self->CompleteConnect(
      Status::Unavailable("cannot reach PostgreSQL at " + where + ": connect timed out"));
}

// One handshake step. first: libpq wants "writable" before its first poll.
std::optional<Status> PgConnection::Impl::StepConnect(bool first) {
  PostgresPollingStatusType st = first ? PGRES_POLLING_WRITING : PQconnectPoll(conn);
  switch (st) {
    case PGRES_POLLING_OK:
      return FinishConnectOk();
    case PGRES_POLLING_READING:
    case PGRES_POLLING_WRITING: {
      Status s = Watch(st == PGRES_POLLING_READING ? UV_READABLE : UV_WRITABLE, true);
      if (s.ok()) return std::nullopt;
      std::string where = label;
      Drop(s.message());
      return Status::Unavailable("cannot reach PostgreSQL at " + where + ": " + s.message());
    }
    default:
      return ConnectFailure();
  }
}

std::optional<Status> PgConnection::Impl::FinishConnectOk() {
  if (connect_timer != nullptr) uv_timer_stop(&connect_timer->u.timer);
  label = std::string(OrEmpty(PQhost(conn))) + ":" + OrEmpty(PQport(conn));
  if (PQsetnonblocking(conn, 1) != 0 || PQenterPipelineMode(conn) != 1) {
    std::string m = pg::OneLine(PQerrorMessage(conn));
    Drop("cannot enter pipeline mode");
    return Status::Internal("cannot enter libpq pipeline mode: " + m);
  }
  Status s = Watch(UV_READABLE, false);  // idle: notice a server hang-up early
  if (!s.ok()) {
    Drop(s.message());
    return Status::Unavailable(s.message());
  }
  disconnect_reason.clear();
  Transition(State::kReady, "connected, server pid " + std::to_string(PQbackendPID(conn)));
  return Status::Ok();
}

Status PgConnection::Impl::ConnectFailure() {
  Status s = pg::ConnectError(OrEmpty(PQerrorMessage(conn)), OrEmpty(PQuser(conn)),
                              OrEmpty(PQhost(conn)), OrEmpty(PQport(conn)));
  std::string m = pg::Redact(s.message(), OrEmpty(PQpass(conn)));
  s = s.code() == Status::Code::kInvalidArgument ? Status::InvalidArgument(m)
                                                 : Status::Unavailable(m);
  Drop("connect failed");
  return s;
}

void PgConnection::Impl::CompleteConnect(Status s) {
  if (!s.ok()) spdlog::warn("pg {}: {}", label, s.ToString());
  auto cb = std::move(connect_cb);
  connect_cb = nullptr;
  if (cb) cb(std::move(s));
}

// ---------------------------------------------------------------- I/O

void PgConnection::Impl::OnPollEvent(uv_poll_t* h, int status, int events) noexcept {
  auto* box = static_cast<HandleBox*>(h->data);
  Impl* self = box->owner;
  if (self == nullptr || box != self->poll) return;
  if (status < 0) {
    // POLLERR (e.g. a reset after the server hung up): libuv has already
    // stopped this handle, so nothing would wake us again. Read what arrived
    // (the server's goodbye) and then treat the connection as lost.
    self->poll_events = 0;
    events = UV_READABLE | UV_WRITABLE;
  }
  self->OnIo(status, events);
}

void PgConnection::Impl::OnIo(int status, int events) {
  switch (state) {
    case State::kConnecting: {
      std::optional<Status> finished = StepConnect(false);
      if (finished) CompleteConnect(*finished);
      return;
    }
    case State::kReady:
      // Nothing was asked: a notice, a parameter change, or the server saying
      // goodbye (57P01) before closing. Read it so the level-triggered poll
      // stops firing, and drop the connection on EOF.
      // PQisBusy parses what was read (consuming alone does not), so the
      // goodbye reaches OnNotice before EOF discards the input buffer.
      if (PQconsumeInput(conn) != 0) PQisBusy(conn);
      if (PQstatus(conn) == CONNECTION_BAD || status < 0) {
        std::string why = LostReason();
        spdlog::warn("pg {}: connection lost while idle: {}", label, why);
        Drop(why);
      }
      return;
    case State::kBusy:
      if ((events & UV_READABLE) != 0) PQconsumeInput(conn);  // failure shows in PQstatus
      if (flushing && PQstatus(conn) != CONNECTION_BAD) {
        int rc = PQflush(conn);
        flushing = rc == 1;
        if (rc >= 0) {
          Status s = Watch(flushing ? UV_READABLE | UV_WRITABLE : UV_READABLE, false);
          if (!s.ok()) spdlog::warn("pg {}: {}", label, s.message());
        }
      }
      ProcessResults();
      if (status < 0 && state == State::kBusy) FailSubmitLost();
      return;
    case State::kIdle:
    case State::kClosing:
      return;
  }
}

std::string PgConnection::Impl::LostReason() const {
  std::string m = conn != nullptr ? pg::OneLine(PQerrorMessage(conn)) : "";
  if (!last_server_error.empty()) return last_server_error + (m.empty() ? "" : "; " + m);
  return m.empty() ? "connection lost" : m;
}

void PgConnection::Impl::OnNotice(void* arg, const PGresult* r) noexcept {
  auto* self = static_cast<Impl*>(arg);
  std::string_view severity = OrEmpty(PQresultErrorField(r, PG_DIAG_SEVERITY_NONLOCALIZED));
  std::string_view sqlstate = OrEmpty(PQresultErrorField(r, PG_DIAG_SQLSTATE));
  std::string msg = pg::OneLine(OrEmpty(PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY)));
  if (severity == "FATAL" || severity == "PANIC" || severity == "ERROR") {
    // Outside a query this is the server explaining why it hangs up.
    self->last_server_error = "SQLSTATE " + std::string(sqlstate) + ": " + msg;
    spdlog::warn("pg {}: server {}: {}", self->label, severity, self->last_server_error);
  } else {
    spdlog::debug("pg {}: server {}: {}", self->label, severity, msg);
  }
}

// ---------------------------------------------------------------- submit

void PgConnection::Impl::Submit(std::vector<PgQuery> queries, SubmitCallback done) {
  auto reject = [this, &done](Status s) {
    Defer([done = std::move(done), s = std::move(s)] { done(s, {}); });
  };
  if (state == State::kReady && PQstatus(conn) == CONNECTION_BAD) Drop(LostReason());
  if (state != State::kReady) {
    if (state == State::kBusy) {
      return reject(Status::Internal("Submit called while another Submit is in flight"));
    }
    if (state == State::kClosing) return reject(Status::Unavailable("connection closed"));
    std::string m = state == State::kConnecting ? "not connected yet" : "not connected";
    if (state == State::kIdle && !disconnect_reason.empty()) m += ": " + disconnect_reason;
    return reject(Status::Unavailable(m));
  }

  const int n = static_cast<int>(queries.size());
  // Text parameters cannot carry NUL (and a c_str() would cut them short
  // silently): reject here, worded as the server's 22021 so callers park it.
  for (int i = 0; i < n; ++i) {
    const PgQuery& q = queries[i];
    if (q.params.size() > kMaxParams) {
      return reject(Status::Internal("query " + std::to_string(i + 1) + " of " + std::to_string(n) +
                                     " has " + std::to_string(q.params.size()) +
                                     " parameters (max 65535)"));
    }
    if (q.sql.find('\0') != std::string::npos) {
      return reject(
          pg::QueryError(i + 1, n, "22021", "query text contains a NUL byte", "not sent", false));
    }
    for (size_t j = 0; j < q.params.size(); ++j) {
      if (q.params[j] && q.params[j]->find('\0') != std::string::npos) {
        return reject(pg::QueryError(i + 1, n, "22021",
                                     "parameter $" + std::to_string(j + 1) + " contains a NUL byte",
                                     "not sent", false));
      }
    }
  }

  std::vector<const char*> values;
  for (int i = 0; i < n; ++i) {
    const PgQuery& q = queries[i];
    values.clear();
    for (const auto& p : q.params) values.push_back(p ? p->c_str() : nullptr);
    if (PQsendQueryParams(conn, q.sql.c_str(), static_cast<int>(values.size()), nullptr,
                          values.data(), nullptr, nullptr, /*resultFormat=*/0) == 0) {
      std::string m = pg::OneLine(PQerrorMessage(conn));
      // Part of the pipeline may be queued already: the connection's state is
      // unknown, so it is dropped rather than reused.
      Drop("send failed: " + m);
      return reject(Status::Unavailable("cannot send query " + std::to_string(i + 1) + " of " +
                                        std::to_string(n) + ": " + m));
    }
  }
  if (PQpipelineSync(conn) == 0) {
    std::string m = pg::OneLine(PQerrorMessage(conn));
    Drop("send failed: " + m);
    return reject(Status::Unavailable("cannot send pipeline sync: " + m));
  }

  total = n;
  index = 0;
  results.clear();
  results.reserve(n);
  current = PgResult();
  first_error.reset();
  submit_cb = std::move(done);
  Transition(State::kBusy, "");
  int rc = PQflush(conn);  // a large pipeline may need several writable turns
  flushing = rc == 1;
  Status s = Watch(flushing ? UV_READABLE | UV_WRITABLE : UV_READABLE, false);
  if (rc < 0 || !s.ok()) {
    // Reported from the loop (ProcessResults sees CONNECTION_BAD or a dead poll).
    spdlog::warn("pg {}: flush failed: {}", label, pg::OneLine(PQerrorMessage(conn)));
    Defer([this] {
      if (state == State::kBusy) FailSubmitLost();
    });
  }
}

void PgConnection::Impl::ProcessResults() {
  // With the connection broken libpq reports the error as one result, then
  // NULLs; the bound keeps a confused libpq from looping here forever.
  int after_bad = 0;
  while (state == State::kBusy) {
    bool bad = PQstatus(conn) == CONNECTION_BAD;
    if (bad && ++after_bad > 2) return FailSubmitLost();
    if (!bad && PQisBusy(conn)) return;  // wait for more input
    PGresult* r = PQgetResult(conn);
    if (r == nullptr) {
      if (bad) return FailSubmitLost();
      if (index < total) results.push_back(std::move(current));
      current = PgResult();
      ++index;
      continue;
    }
    if (PQresultStatus(r) == PGRES_PIPELINE_SYNC) {
      PQclear(r);
      return FinishSubmit();
    }
    CollectResult(r);
    PQclear(r);
  }
}

void PgConnection::Impl::CollectResult(PGresult* r) {
  const int q = index + 1;
  switch (PQresultStatus(r)) {
    case PGRES_TUPLES_OK: {
      const int rows = PQntuples(r);
      const int cols = PQnfields(r);
      current.rows.reserve(current.rows.size() + rows);
      for (int i = 0; i < rows; ++i) {
        std::vector<std::optional<std::string>> row;
        row.reserve(cols);
        for (int c = 0; c < cols; ++c) {
          if (PQgetisnull(r, i, c)) {
            row.emplace_back(std::nullopt);
          } else {
            row.emplace_back(std::string(PQgetvalue(r, i, c), PQgetlength(r, i, c)));
          }
        }
        current.rows.push_back(std::move(row));
      }
      current.affected = ParseAffected(PQcmdTuples(r));
      return;
    }
    case PGRES_COMMAND_OK:
      current.affected = ParseAffected(PQcmdTuples(r));
      return;
    case PGRES_EMPTY_QUERY:
      return;
    case PGRES_FATAL_ERROR:
      if (!first_error) {
        first_error = pg::QueryError(std::min(q, total), total,
                                     OrEmpty(PQresultErrorField(r, PG_DIAG_SQLSTATE)),
                                     PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) != nullptr
                                         ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY)
                                         : OrEmpty(PQresultErrorMessage(r)),
                                     OrEmpty(PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL)),
                                     PQstatus(conn) == CONNECTION_BAD);
      }
      return;
    case PGRES_PIPELINE_ABORTED:
      return;  // skipped after the first error
    default:
      // COPY and the like cannot be driven through Submit; the protocol state
      // is then unknown, so the connection is given up.
      protocol_lost = true;
      if (!first_error) {
        first_error =
            Status::Internal("query " + std::to_string(q) + " of " + std::to_string(total) +
                             ": unsupported result " + PQresStatus(PQresultStatus(r)));
      }
      return;
  }
}

void PgConnection::Impl::FinishSubmit() {
  std::vector<PgResult> out;
  Status s = Status::Ok();
  if (first_error) {
    s = *first_error;
  } else if (index != total) {
    s = Status::Internal("pipeline ended after " + std::to_string(index) + " of " +
                         std::to_string(total) + " queries");
  } else {
    out = std::move(results);
  }
  results.clear();
  first_error.reset();
  flushing = false;
  if (protocol_lost) {
    protocol_lost = false;
    Drop("unsupported result");
  } else {
    Transition(State::kReady, "");
    Status w = Watch(UV_READABLE, false);
    if (!w.ok()) Drop(w.message());
  }
  auto cb = std::move(submit_cb);
  submit_cb = nullptr;
  if (cb) cb(std::move(s), std::move(out));
}

void PgConnection::Impl::FailSubmitLost() {
  Status s = first_error && first_error->code() == Status::Code::kUnavailable
                 ? *first_error
                 : Status::Unavailable("connection lost during query " +
                                       std::to_string(std::min(index + 1, total)) + " of " +
                                       std::to_string(total) + ": " + LostReason());
  spdlog::warn("pg {}: {}", label, s.message());
  results.clear();
  first_error.reset();
  protocol_lost = false;
  Drop(s.message());
  auto cb = std::move(submit_cb);
  submit_cb = nullptr;
  if (cb) cb(std::move(s), {});
}

// ---------------------------------------------------------------- close

void PgConnection::Impl::Close(std::function<void()> done) {
  close_dones.push_back(std::move(done));
  if (state == State::kClosing) return;
  Transition(State::kClosing, "Close");
  auto ccb = std::move(connect_cb);
  connect_cb = nullptr;
  auto scb = std::move(submit_cb);
  submit_cb = nullptr;
  auto early = std::move(deferred);
  deferred.clear();
  if (ccb) ccb(Status::Unavailable("connection closed"));
  if (scb) scb(Status::Unavailable("connection closed"), {});
  for (auto& f : early) f();

  CloseBox(poll);
  CloseBox(connect_timer);
  CloseBox(defer_timer);
  if (conn != nullptr) {
    PQfinish(conn);
    conn = nullptr;
  }
  if (live.empty()) {
    // Nothing to wait for; a throwaway handle still makes done asynchronous.
    HandleBox* b = NewBox();
    uv_timer_init(loop, &b->u.timer);
    b->u.handle.data = b;
    CloseBox(b);
  }
}

// ---------------------------------------------------------------- facade

PgConnection::PgConnection(uv_loop_t* loop, std::string conninfo)
    : impl_(std::make_unique<Impl>(loop, std::move(conninfo))) {}
PgConnection::~PgConnection() = default;
void PgConnection::Connect(ConnectCallback done) { impl_->Connect(std::move(done)); }
void PgConnection::Submit(std::vector<PgQuery> queries, SubmitCallback done) {
  impl_->Submit(std::move(queries), std::move(done));
}
bool PgConnection::connected() const { return impl_->connected(); }
void PgConnection::Close(std::function<void()> done) { impl_->Close(std::move(done)); }

}  // namespace sluice
