// PgConnection: libpq in nonblocking pipeline mode, driven by uv_poll on its socket.
//
// State table (Transition() logs every move at debug level):
//   idle       --Connect, host names to resolve--------> resolving
//   idle       --Connect, nothing to resolve-----------> connecting
//   resolving  --every name answered-------------------> connecting
//   resolving  --no address / connect timeout----------> idle
//   connecting --PQconnectPoll OK----------------------> ready
//   connecting --failure / connect timeout-------------> idle        (Connect may be retried)
//   ready      --Submit--------------------------------> busy
//   busy       --PGRES_PIPELINE_SYNC-------------------> ready
//   busy       --no byte for query_timeout_ms----------> idle        (Submit gets kUnavailable)
//   ready|busy --connection lost-----------------------> idle
//   any        --Close---------------------------------> closing --handles closed--> idle
//
// Host names are resolved with uv_getaddrinfo (libuv's thread pool) and given
// to libpq as hostaddr, because libpq resolves them synchronously inside
// PQconnectStart / PQconnectPoll, i.e. on the loop: a slow DNS server would
// stall the whole agent. (Running the handshake in the pool instead would
// hold a pool thread, which the SQLite reads need, for a whole connect
// timeout and could not be cancelled by Close.)
//
// Handles live in HandleBox allocations that only their close callback frees;
// `live` counts them (open or closing) and `resolves` the getaddrinfo requests
// in flight, so Close's done runs after the last of either.
#include "sink/pg_connection.h"

#include <libpq-fe.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string_view>
#include <thread>
#include <unordered_set>
#include <utility>

#include "common/fault_point.h"
#include "sink/pg_conninfo.h"
#include "sink/pg_error.h"

namespace sluice {

namespace {

enum class State { kIdle, kResolving, kConnecting, kReady, kBusy, kClosing };

const char* StateName(State s) {
  switch (s) {
    case State::kIdle:
      return "idle";
    case State::kResolving:
      return "resolving";
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

  // One uv_getaddrinfo request; freed by its callback, which ignores answers
  // for an older attempt or a dead owner.
  struct ResolveReq {
    uv_getaddrinfo_t req;
    Impl* owner = nullptr;
    uint64_t attempt = 0;
    std::string name;
  };

  Impl(uv_loop_t* l, std::string ci, int timeout_ms)
      : loop(l), conninfo(std::move(ci)), query_timeout_ms(timeout_ms) {}
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
  static void OnQueryTimer(uv_timer_t* h) noexcept;
  static void OnResolved(uv_getaddrinfo_t* req, int status, struct addrinfo* res) noexcept;
  static void OnNotice(void* arg, const PGresult* r) noexcept;

  void Transition(State to, std::string_view why);
  HandleBox* NewBox();
  void CloseBox(HandleBox*& box);
  HandleBox* Timer(HandleBox*& slot);
  Status Watch(int events, bool fresh_handle);
  void Defer(std::function<void()> fn);
  void Drop(std::string_view why);

  void FinishCloseIfDone();
  void Resolve(const std::vector<std::string>& names);
  void OnAddresses(const std::string& name, std::vector<std::string> addrs, int status);
  std::optional<Status> StartLibpq(const pg::ConnParams& params);
  void ArmQueryTimer();
  std::optional<Status> StepConnect(bool first);
  std::optional<Status> FinishConnectOk();
  Status ConnectFailure();
  void CompleteConnect(Status s);
  void StartConnectTimer();

  void OnIo(int status, int events);
  // Sends the next part of the Submit in flight: the queries up to the next
  // COPY as one pipeline, or that COPY alone (see PgConnection::Submit).
  bool SendPart();
  void ProcessResults();
  void ProcessCopyResults();
  void PartDone();
  void CollectResult(PGresult* r);
  void FinishSubmit();
  void FailSubmitLost();
  void FailSubmit(Status s);
  std::string LostReason() const;

  uv_loop_t* loop;
  std::string conninfo;
  int query_timeout_ms;
  PGconn* conn = nullptr;
  State state = State::kIdle;
  std::string label = "PostgreSQL";  // host:port, for logs
  std::string last_server_error;     // e.g. 57P01 text, seen just before EOF
  std::string disconnect_reason;     // why the last connection went away

  HandleBox* poll = nullptr;  // watches PQsocket(conn)
  int poll_events = 0;
  HandleBox* connect_timer = nullptr;
  HandleBox* defer_timer = nullptr;
  HandleBox* query_timer = nullptr;  // reply deadline of the Submit in flight
  std::unordered_set<HandleBox*> live;
  std::unordered_set<ResolveReq*> resolves;  // in flight, for Close and the destructor

  // The Connect in flight: its parameters and the answers of its lookups.
  uint64_t attempt = 0;  // bumped by Connect and Drop: stale lookups are ignored
  pg::ConnParams params;
  std::map<std::string, std::vector<std::string>> addresses;
  std::map<std::string, std::string> resolve_errors;
  size_t resolves_left = 0;

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
  bool protocol_lost = false;    // a result Submit cannot drive (COPY): drop at the end
  std::vector<PgQuery> queries;  // of the Submit in flight, for the parts not sent yet
  int sent = 0;                  // queries sent so far
  bool in_copy = false;          // the part in flight is a COPY (outside pipeline mode)
  bool copy_data_sent = false;
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
  for (ResolveReq* r : resolves) {
    r->owner = nullptr;
    uv_cancel(reinterpret_cast<uv_req_t*>(&r->req));
  }
  resolves.clear();
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
  if (owner != nullptr) owner->FinishCloseIfDone();
}

void PgConnection::Impl::FinishCloseIfDone() {
  if (state != State::kClosing || !live.empty() || !resolves.empty()) return;
  Transition(State::kIdle, "closed");
  // Calls made while closing were answered "connection closed" but held until now.
  auto late = std::move(deferred);
  deferred.clear();
  auto dones = std::move(close_dones);
  close_dones.clear();
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
  if (query_timer != nullptr) uv_timer_stop(&query_timer->u.timer);
  ++attempt;
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
  // A conninfo that does not parse, or an option libpq would ignore, is a
  // configuration error, not an outage: the caller stops instead of retrying.
  const pg::EnvLookup env = pg::ProcessEnv();
  Result<pg::ConnParams> built = pg::BuildConnParams(conninfo, query_timeout_ms, env);
  if (!built.ok()) {
    Defer([done = std::move(done), s = built.status()] { done(s); });
    return;
  }
  params = std::move(built.value());
  ++attempt;
  last_server_error.clear();
  label = pg::EffectiveValue(params, "host", env) + ":" + pg::EffectiveValue(params, "port", env);
  connect_cb = std::move(done);
  StartConnectTimer();  // covers resolution and handshake
  std::vector<std::string> names = pg::NamesToResolve(params, env);
  if (!names.empty()) {
    Transition(State::kResolving, "");
    Resolve(names);
    return;
  }
  Transition(State::kConnecting, "");
  std::optional<Status> finished = StartLibpq(params);
  if (finished) {
    // Failed before any I/O (refused on loopback): answer from the loop, with
    // the callback taken out of the slot so a new Connect from elsewhere
    // cannot receive this answer.
    // Debug only: the caller reports it (the agent escalates repeats).
    spdlog::debug("pg {}: {}", label, finished->ToString());
    auto cb = std::move(connect_cb);
    connect_cb = nullptr;
    Defer([cb = std::move(cb), s = *finished] { cb(s); });
  }
}

void PgConnection::Impl::Resolve(const std::vector<std::string>& names) {
  addresses.clear();
  resolve_errors.clear();
  resolves_left = names.size();
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  for (const std::string& name : names) {
    auto* r = new ResolveReq();
    r->owner = this;
    r->attempt = attempt;
    r->name = name;
    int rc = uv_getaddrinfo(loop, &r->req, OnResolved, r->name.c_str(), nullptr, &hints);
    if (rc != 0) {
      delete r;
      resolve_errors[name] = uv_strerror(rc);
      addresses[name] = {};
      --resolves_left;
      continue;
    }
    resolves.insert(r);
  }
  if (resolves_left == 0) {  // every request failed to start: answer from the loop
    uint64_t a = attempt;
    Defer([this, a] {
      if (attempt == a && state == State::kResolving) OnAddresses("", {}, 0);
    });
  }
}

void PgConnection::Impl::OnResolved(uv_getaddrinfo_t* req, int status,
                                    struct addrinfo* res) noexcept {
  auto* r = reinterpret_cast<ResolveReq*>(req);
  Impl* self = r->owner;
  std::vector<std::string> addrs;
  for (addrinfo* ai = status == 0 ? res : nullptr; ai != nullptr; ai = ai->ai_next) {
    char buf[64] = {0};
    int rc = -1;
    if (ai->ai_family == AF_INET) {
      rc = uv_ip4_name(reinterpret_cast<const sockaddr_in*>(ai->ai_addr), buf, sizeof buf);
    } else if (ai->ai_family == AF_INET6) {
      rc = uv_ip6_name(reinterpret_cast<const sockaddr_in6*>(ai->ai_addr), buf, sizeof buf);
    }
    if (rc == 0 && std::find(addrs.begin(), addrs.end(), buf) == addrs.end()) addrs.push_back(buf);
  }
  uv_freeaddrinfo(res);
  std::string name = std::move(r->name);
  bool current = self != nullptr && r->attempt == self->attempt;
  if (self != nullptr) self->resolves.erase(r);
  delete r;
  if (self == nullptr) return;
  if (self->state == State::kClosing) return self->FinishCloseIfDone();
  if (current && self->state == State::kResolving) {
    self->OnAddresses(name, std::move(addrs), status);
  }
}

void PgConnection::Impl::OnAddresses(const std::string& name, std::vector<std::string> addrs,
                                     int status) {
  if (!name.empty()) {
    if (status != 0) resolve_errors[name] = uv_strerror(status);
    addresses[name] = std::move(addrs);
    if (--resolves_left > 0) return;
  }
  Result<pg::ConnParams> resolved = pg::WithResolvedAddresses(params, pg::ProcessEnv(), addresses);
  if (!resolved.ok()) {
    std::string why;
    for (const auto& [n, e] : resolve_errors) why += (why.empty() ? "" : "; ") + n + ": " + e;
    std::string m = "cannot reach PostgreSQL at " + label + ": " + resolved.status().message() +
                    (why.empty() ? "" : " (" + why + ")");
    Drop("host name resolution failed");
    return CompleteConnect(Status::Unavailable(m));
  }
  for (const auto& [n, e] : resolve_errors) {
    spdlog::warn("pg {}: cannot resolve host name {}: {}; trying the other hosts", label, n, e);
  }
  Transition(State::kConnecting, "host names resolved");
  std::optional<Status> finished = StartLibpq(*resolved);
  if (finished) CompleteConnect(*finished);
}

std::optional<Status> PgConnection::Impl::StartLibpq(const pg::ConnParams& p) {
  std::vector<const char*> keywords;
  std::vector<const char*> values;
  for (const auto& [k, v] : p) {
    keywords.push_back(k.c_str());
    values.push_back(v.c_str());
  }
  keywords.push_back(nullptr);
  values.push_back(nullptr);
  // expand_dbname=0: the user's conninfo was expanded into p already.
  conn = PQconnectStartParams(keywords.data(), values.data(), /*expand_dbname=*/0);
  if (conn == nullptr) {
    Drop("libpq: out of memory");
    return Status::Unavailable("libpq: out of memory");
  }
  PQsetNoticeReceiver(conn, OnNotice, this);
  label = std::string(OrEmpty(PQhost(conn))) + ":" + OrEmpty(PQport(conn));
  if (PQstatus(conn) == CONNECTION_BAD) return ConnectFailure();
  return StepConnect(/*first=*/true);
}

void PgConnection::Impl::StartConnectTimer() {
  int seconds = pg::ConnectTimeoutSeconds(params, pg::ProcessEnv(), kDefaultConnectTimeoutSec);
  if (seconds <= 0) return;
  uv_timer_start(&Timer(connect_timer)->u.timer, OnConnectTimer, uint64_t(seconds) * 1000, 0);
}

void PgConnection::Impl::OnConnectTimer(uv_timer_t* h) noexcept {
  Impl* self = static_cast<HandleBox*>(h->data)->owner;
  if (self == nullptr) return;
  if (self->state != State::kConnecting && self->state != State::kResolving) return;
  std::string where = self->label;
  bool resolving = self->state == State::kResolving;
  self->Drop("connect timeout");
  self->CompleteConnect(
      Status::Unavailable("cannot reach PostgreSQL at " + where + ": " +
                          (resolving ? "host name resolution timed out" : "connect timed out")));
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
  // Debug only: the caller reports it (the agent escalates repeats).
  if (!s.ok()) spdlog::debug("pg {}: {}", label, s.ToString());
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
      // Any event is the server (or the socket) moving: the reply deadline
      // restarts, so a long pipeline that keeps answering is never cut.
      ArmQueryTimer();
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
    case State::kResolving:
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

void PgConnection::Impl::Submit(std::vector<PgQuery> qs, SubmitCallback done) {
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

  const int n = static_cast<int>(qs.size());
  // Text parameters cannot carry NUL (and a c_str() would cut them short
  // silently): reject here, worded as the server's 22021 so callers park it.
  for (int i = 0; i < n; ++i) {
    const PgQuery& q = qs[i];
    if (q.params.size() > kMaxParams) {
      return reject(Status::Internal("query " + std::to_string(i + 1) + " of " + std::to_string(n) +
                                     " has " + std::to_string(q.params.size()) +
                                     " parameters (max 65535)"));
    }
    if (q.copy_data && !q.params.empty()) {
      return reject(Status::Internal("query " + std::to_string(i + 1) + " of " + std::to_string(n) +
                                     " is a COPY with parameters"));
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

  total = n;
  index = 0;
  sent = 0;
  queries = std::move(qs);
  results.clear();
  results.reserve(n);
  current = PgResult();
  first_error.reset();
  if (!SendPart()) {
    queries.clear();
    return reject(*std::exchange(first_error, std::nullopt));
  }
  submit_cb = std::move(done);
  Transition(State::kBusy, "");
  ArmQueryTimer();
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

bool PgConnection::Impl::SendPart() {
  const int n = total;
  auto lost = [this](std::string what) {
    std::string m = pg::OneLine(PQerrorMessage(conn));
    // Part of it may be queued already: the connection's state is unknown,
    // so it is dropped rather than reused.
    Drop("send failed: " + m);
    first_error = Status::Unavailable(what + ": " + m);
    return false;
  };
  if (sent < n && queries[sent].copy_data) {
    if (PQexitPipelineMode(conn) != 1) return lost("cannot leave pipeline mode for a COPY");
    in_copy = true;
    copy_data_sent = false;
    if (PQsendQuery(conn, queries[sent].sql.c_str()) == 0) {
      return lost("cannot send query " + std::to_string(sent + 1) + " of " + std::to_string(n));
    }
    ++sent;
    return true;
  }
  in_copy = false;
  std::vector<const char*> values;
  size_t queued_bytes = 0;
  for (; sent < n && !queries[sent].copy_data; ++sent) {
    const PgQuery& q = queries[sent];
    queued_bytes += q.sql.size();
    for (const auto& p : q.params) queued_bytes += p ? p->size() : 0;
    values.clear();
    for (const auto& p : q.params) values.push_back(p ? p->c_str() : nullptr);
    if (PQsendQueryParams(conn, q.sql.c_str(), static_cast<int>(values.size()), nullptr,
                          values.data(), nullptr, nullptr, /*resultFormat=*/0) == 0) {
      return lost("cannot send query " + std::to_string(sent + 1) + " of " + std::to_string(n));
    }
  }
  // Tests freeze the process here: past 64 kB libpq has sent the start of the
  // pipeline already, and the server runs it and then waits for the rest, holding
  // its locks (not idle in transaction: no Sync came).
  if (queued_bytes >= 65536) FaultPoint("pipeline-before-sync");
  if (PQpipelineSync(conn) == 0) return lost("cannot send pipeline sync");
  return true;
}

// A part is complete: the next one, or the end of the Submit.
void PgConnection::Impl::PartDone() {
  if (first_error || sent >= total) return FinishSubmit();
  if (!SendPart()) return FailSubmit(*std::exchange(first_error, std::nullopt));
  int rc = PQflush(conn);
  flushing = rc == 1;
  Status s = Watch(flushing ? UV_READABLE | UV_WRITABLE : UV_READABLE, false);
  if (rc < 0 || !s.ok()) return FailSubmitLost();
  if (!in_copy) ProcessResults();
}

// A COPY outside pipeline mode: CopyInResponse, then the data and its end
// are queued and flushed, then the command's result and NULL.
void PgConnection::Impl::ProcessCopyResults() {
  int after_bad = 0;
  while (state == State::kBusy && in_copy) {
    bool bad = PQstatus(conn) == CONNECTION_BAD;
    if (bad && ++after_bad > 2) return FailSubmitLost();
    if (!bad && PQisBusy(conn)) return;
    PGresult* r = PQgetResult(conn);
    if (r == nullptr) {
      if (bad) return FailSubmitLost();
      in_copy = false;
      results.push_back(std::move(current));
      current = PgResult();
      ++index;
      if (PQenterPipelineMode(conn) != 1) {
        protocol_lost = true;
        if (!first_error) first_error = Status::Internal("cannot enter pipeline mode after a COPY");
        return FinishSubmit();
      }
      return PartDone();
    }
    if (PQresultStatus(r) == PGRES_COPY_IN && !copy_data_sent) {
      PQclear(r);
      copy_data_sent = true;
      // In CopyData messages of at most 1 MiB: the server refuses a message
      // past 1 GiB, and libpq takes an int length.
      const std::string& data = *queries[sent - 1].copy_data;
      constexpr size_t kPiece = 1 << 20;
      bool queued = true;
      for (size_t at = 0; queued && at < data.size(); at += kPiece) {
        int n = static_cast<int>(std::min(kPiece, data.size() - at));
        queued = PQputCopyData(conn, data.data() + at, n) == 1;
      }
      if (!queued || PQputCopyEnd(conn, nullptr) != 1) {
        return FailSubmit(
            Status::Unavailable("cannot send COPY data: " + pg::OneLine(PQerrorMessage(conn))));
      }
      int rc = PQflush(conn);
      flushing = rc == 1;
      Status s = Watch(flushing ? UV_READABLE | UV_WRITABLE : UV_READABLE, false);
      if (rc < 0 || !s.ok()) return FailSubmitLost();
      continue;
    }
    ExecStatusType status = PQresultStatus(r);
    if (status == PGRES_COPY_IN || status == PGRES_COPY_OUT || status == PGRES_COPY_BOTH) {
      // Not a COPY FROM STDIN (or a second CopyInResponse): libpq would
      // answer the same forever; the protocol state is lost.
      PQclear(r);
      return FailSubmit(Status::Internal("query " + std::to_string(sent) + " of " +
                                         std::to_string(total) + " is not a COPY FROM STDIN (" +
                                         PQresStatus(status) + ")"));
    }
    CollectResult(r);
    PQclear(r);
  }
}

void PgConnection::Impl::ProcessResults() {
  if (in_copy) return ProcessCopyResults();
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
      return PartDone();
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
  queries.clear();
  first_error.reset();
  flushing = false;
  if (query_timer != nullptr) uv_timer_stop(&query_timer->u.timer);
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
  FailSubmit(first_error && first_error->code() == Status::Code::kUnavailable
                 ? *first_error
                 : Status::Unavailable("connection lost during query " +
                                       std::to_string(std::min(index + 1, total)) + " of " +
                                       std::to_string(total) + ": " + LostReason()));
}

// The reply deadline: a server (or a middlebox) that keeps the TCP session
// open but sends nothing would otherwise hold the Submit, and the agent,
// forever; TCP keepalives cannot see it because the peer's kernel still ACKs.
void PgConnection::Impl::ArmQueryTimer() {
  if (query_timeout_ms <= 0) return;
  uv_timer_start(&Timer(query_timer)->u.timer, OnQueryTimer,
                 static_cast<uint64_t>(query_timeout_ms), 0);
}

void PgConnection::Impl::OnQueryTimer(uv_timer_t* h) noexcept {
  Impl* self = static_cast<HandleBox*>(h->data)->owner;
  if (self == nullptr || self->state != State::kBusy) return;
  self->FailSubmit(Status::Unavailable(
      "no reply from PostgreSQL at " + self->label + " within " +
      std::to_string(self->query_timeout_ms) + " ms (sink.query_timeout_ms) during query " +
      std::to_string(std::min(self->index + 1, self->total)) + " of " +
      std::to_string(self->total) + "; connection dropped"));
}

void PgConnection::Impl::FailSubmit(Status s) {
  // Debug only: the caller reports it (the agent escalates repeats).
  spdlog::debug("pg {}: {}", label, s.message());
  results.clear();
  queries.clear();
  in_copy = false;
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
  CloseBox(query_timer);
  for (ResolveReq* r : resolves) uv_cancel(reinterpret_cast<uv_req_t*>(&r->req));
  if (conn != nullptr) {
    PQfinish(conn);
    conn = nullptr;
  }
  if (live.empty() && resolves.empty()) {
    // Nothing to wait for; a throwaway handle still makes done asynchronous.
    HandleBox* b = NewBox();
    uv_timer_init(loop, &b->u.timer);
    b->u.handle.data = b;
    CloseBox(b);
  }
}

// ---------------------------------------------------------------- facade

PgConnection::PgConnection(uv_loop_t* loop, std::string conninfo, int query_timeout_ms)
    : impl_(std::make_unique<Impl>(loop, std::move(conninfo), query_timeout_ms)) {}
PgConnection::~PgConnection() = default;
void PgConnection::Connect(ConnectCallback done) { impl_->Connect(std::move(done)); }
void PgConnection::Submit(std::vector<PgQuery> queries, SubmitCallback done) {
  impl_->Submit(std::move(queries), std::move(done));
}
bool PgConnection::connected() const { return impl_->connected(); }
void PgConnection::CancelRunning() {
  if (impl_->state != State::kBusy || impl_->conn == nullptr) return;
  PGcancel* cancel = PQgetCancel(impl_->conn);
  if (cancel == nullptr) return;
  std::thread([cancel] {
    char err[256] = {0};
    if (PQcancel(cancel, err, sizeof err) == 0) {
      spdlog::warn("sink: cancel request failed: {}", pg::OneLine(err));
    }
    PQfreeCancel(cancel);
  }).detach();
}
void PgConnection::Close(std::function<void()> done) { impl_->Close(std::move(done)); }

}  // namespace sluice
