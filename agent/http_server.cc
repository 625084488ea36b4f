// HttpServer: the listener, one Connection per client, llhttp driving each.
//
// Ownership: Core owns the listening handle and every Connection; a Connection owns its
// TCP handle and its timer and frees itself in the close callback of the last of them;
// Core frees itself once Close was called and its last handle is closed. Every uv_write
// carries its own buffer and frees it in its callback (called, with UV_ECANCELED, before
// the stream's close callback).
#include "agent/http_server.h"

#include <llhttp.h>
#include <spdlog/spdlog.h>

#include <charconv>
#include <set>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice {
namespace {

const char* ReasonPhrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    default:
      return status < 300 ? "OK" : status < 500 ? "Client Error" : "Server Error";
  }
}

// A header value the handler chose must not break the header block.
std::string HeaderSafe(std::string_view value) {
  std::string out;
  for (char c : value) out.push_back(static_cast<unsigned char>(c) < 0x20 ? ' ' : c);
  return out;
}

// The bytes of one response. `body_sent` is false for HEAD (Content-Length stays that of
// the body a GET would get).
std::string Serialize(const HttpResponse& r, bool body_sent, bool closing,
                      std::string_view extra_headers = {}) {
  std::string out = "HTTP/1.1 " + std::to_string(r.status) + " " + ReasonPhrase(r.status) +
                    "\r\nContent-Type: " + HeaderSafe(r.content_type) +
                    "\r\nContent-Length: " + std::to_string(r.body.size()) + "\r\n";
  out += extra_headers;
  if (closing) out += "Connection: close\r\n";
  out += "Cache-Control: no-store\r\n\r\n";
  if (body_sent) out += r.body;
  return out;
}

HttpResponse ErrorResponse(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

// "127.0.0.1:9443" or "[::1]:9443" into a socket address.
Status ParseListenAddress(const std::string& address, sockaddr_storage* out) {
  auto bad = [&](std::string_view why) {
    return Status::InvalidArgument("http listen address \"" + address + "\": " + std::string(why) +
                                   " (expected host:port, e.g. 127.0.0.1:9443 or [::1]:9443)");
  };
  size_t colon = address.rfind(':');
  if (colon == std::string::npos) return bad("no port");
  std::string host = address.substr(0, colon);
  std::string_view port_text = std::string_view(address).substr(colon + 1);
  int port = -1;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc() || end != port_text.data() + port_text.size() ||
      port < 0 || port > 65535) {
    return bad("the port is not a number from 0 to 65535");
  }
  bool v6 = host.size() >= 2 && host.front() == '[' && host.back() == ']';
  if (v6) {
    host = host.substr(1, host.size() - 2);
    if (uv_ip6_addr(host.c_str(), port, reinterpret_cast<sockaddr_in6*>(out)) != 0) {
      return bad("not an IPv6 address in brackets");
    }
  } else if (host.find(':') != std::string::npos) {
    return bad("an IPv6 address needs brackets");
  } else if (uv_ip4_addr(host.c_str(), port, reinterpret_cast<sockaddr_in*>(out)) != 0) {
    return bad("not an IPv4 address");
  }
  return Status::Ok();
}

}  // namespace

class HttpServer::Core {
 public:
  Core(uv_loop_t* loop, HttpLimits limits, Handler handler)
      : loop_(loop), limits_(limits), handler_(std::move(handler)) {}

  Result<int> Listen(const std::string& address);
  void Close(std::function<void()> done);
  int connections() const { return static_cast<int>(connections_.size()); }

 private:
  class Connection;
  friend class Connection;

  static void OnConnection(uv_stream_t* listener, int status) noexcept;
  void Accept();
  // Accepts the pending client and closes it at once, after a 503 if the kernel takes it
  // without waiting: beyond max_connections a client costs one accept and one close.
  void Reject();
  // A handle of ours finished closing; the last one after Close frees the Core.
  void HandleClosed();

  uv_loop_t* loop_;
  HttpLimits limits_;
  Handler handler_;
  uv_tcp_t* listener_ = nullptr;
  std::set<Connection*> connections_;
  int open_handles_ = 0;  // the listener, every connection (one count each), rejected sockets
  bool closing_ = false;
  std::function<void()> done_;
};

// One client: reads, feeds llhttp, answers each complete request in order.
class HttpServer::Core::Connection {
 public:
  explicit Connection(Core* core) : core_(core) {
    tcp_.data = this;
    timer_.data = this;
    static const llhttp_settings_t settings = [] {
      llhttp_settings_t s;
      llhttp_settings_init(&s);
      s.on_url = OnUrl;
      s.on_headers_complete = OnHeadersComplete;
      s.on_body = OnBody;
      s.on_message_complete = OnMessageComplete;
      return s;
    }();
    llhttp_init(&parser_, HTTP_REQUEST, &settings);
    parser_.data = this;
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Accepts the pending client of `listener` and starts reading it. The Connection is
  // registered with the Core already; it frees itself if anything fails.
  void Start(uv_stream_t* listener);
  // Closes both handles now; pending writes are cancelled. With `reset`, the client gets
  // RST and the kernel drops what it still holds for it (a client that does not read
  // would otherwise keep that memory and see its FIN only after it). Idempotent.
  void Abort(std::string_view reason, bool reset = false);

 private:
  enum class Mode { kParsing, kDraining, kClosed };
  enum class Pause { kNone, kHeadersDone, kMessageDone };

  static void OnAlloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf) noexcept;
  static void OnRead(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) noexcept;
  static void OnWrite(uv_write_t* req, int status) noexcept;
  static void OnShutdown(uv_shutdown_t* req, int status) noexcept;
  static void OnTimer(uv_timer_t* t) noexcept;
  static void OnClose(uv_handle_t* h) noexcept;

  static int OnUrl(llhttp_t* p, const char* at, size_t len) noexcept;
  static int OnHeadersComplete(llhttp_t* p) noexcept;
  static int OnBody(llhttp_t* p, const char* at, size_t len) noexcept;
  static int OnMessageComplete(llhttp_t* p) noexcept;

  void Feed(const char* p, const char* end);
  void StartMessage();
  void Respond();
  // Answers with `status` and closes after it: the request cannot be read on.
  void Fail(int status, std::string body);
  void Send(std::string bytes);
  // No more requests: send what is queued, shut the write side, then close.
  void FinishWrites();
  void OnEof();
  void ArmTimer(int ms);
  // Unregisters from the Core and frees this; every handle is closed.
  void Release();

  Core* core_;
  uv_tcp_t tcp_{};
  uv_timer_t timer_{};
  uv_shutdown_t shutdown_{};
  int open_handles_ = 0;
  Mode mode_ = Mode::kParsing;
  bool shutting_down_ = false;
  bool shut_down_ = false;
  bool read_eof_ = false;
  int writes_in_flight_ = 0;

  llhttp_t parser_;
  Pause pause_ = Pause::kNone;
  bool in_message_ = false;
  bool headers_done_ = false;
  size_t header_bytes_ = 0;
  size_t body_bytes_ = 0;
  int error_status_ = 0;  // set by a callback that stops the parse with HPE_USER
  std::string url_;

  char read_buf_[8192];
};

namespace {
struct WriteReq {
  uv_write_t req;
  std::string bytes;
};
}  // namespace

void HttpServer::Core::Connection::Start(uv_stream_t* listener) {
  if (uv_tcp_init(core_->loop_, &tcp_) != 0) {
    return Release();  // nothing is open
  }
  ++open_handles_;
  if (uv_timer_init(core_->loop_, &timer_) != 0) {
    mode_ = Mode::kClosed;
    return uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), OnClose);
  }
  ++open_handles_;
  if (uv_accept(listener, reinterpret_cast<uv_stream_t*>(&tcp_)) != 0 ||
      uv_read_start(reinterpret_cast<uv_stream_t*>(&tcp_), OnAlloc, OnRead) != 0) {
    return Abort("accept failed");
  }
  uv_tcp_nodelay(&tcp_, 1);
  ArmTimer(core_->limits_.idle_timeout_ms);
}

void HttpServer::Core::Connection::Abort(std::string_view reason, bool reset) {
  if (mode_ == Mode::kClosed) return;
  mode_ = Mode::kClosed;
  spdlog::debug("http: closing a connection{}: {}", reset ? " (reset)" : "", reason);
  // libuv refuses a reset once a shutdown was asked for; a plain close then.
  if (!reset || shutting_down_ || uv_tcp_close_reset(&tcp_, OnClose) != 0) {
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), OnClose);
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), OnClose);
}

void HttpServer::Core::Connection::OnClose(uv_handle_t* h) noexcept {
  auto* c = static_cast<Connection*>(h->data);
  if (--c->open_handles_ == 0) c->Release();
}

void HttpServer::Core::Connection::Release() {
  Core* core = core_;
  core->connections_.erase(this);
  delete this;
  core->HandleClosed();
}

void HttpServer::Core::Connection::ArmTimer(int ms) {
  uv_timer_start(&timer_, OnTimer, static_cast<uint64_t>(ms < 1 ? 1 : ms), 0);
}

void HttpServer::Core::Connection::OnTimer(uv_timer_t* t) noexcept {
  auto* c = static_cast<Connection*>(t->data);
  c->Abort(c->mode_ != Mode::kParsing ? "did not take its last response in time"
           : c->in_message_           ? "request not complete in time"
                                      : "idle");
}

void HttpServer::Core::Connection::OnAlloc(uv_handle_t* h, size_t, uv_buf_t* buf) noexcept {
  auto* c = static_cast<Connection*>(h->data);
  *buf = uv_buf_init(c->read_buf_, sizeof(c->read_buf_));
}

void HttpServer::Core::Connection::OnRead(uv_stream_t* s, ssize_t nread,
                                          const uv_buf_t* buf) noexcept {
  auto* c = static_cast<Connection*>(s->data);
  if (nread == UV_EOF) return c->OnEof();
  if (nread < 0) return c->Abort(uv_strerror(static_cast<int>(nread)));
  if (nread == 0 || c->mode_ != Mode::kParsing) return;  // draining: the rest is dropped
  try {
    c->Feed(buf->base, buf->base + nread);
  } catch (const std::exception& e) {  // out of memory: this client goes, the loop stays
    c->Abort(e.what());
  }
}

void HttpServer::Core::Connection::OnEof() {
  read_eof_ = true;
  uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp_));
  // The client sent all it will; what it asked for so far still goes out.
  if (writes_in_flight_ == 0 || shut_down_) return Abort("client closed");
  FinishWrites();
}

void HttpServer::Core::Connection::StartMessage() {
  in_message_ = true;
  headers_done_ = false;
  header_bytes_ = 0;
  body_bytes_ = 0;
  error_status_ = 0;
  url_.clear();
  ArmTimer(core_->limits_.request_timeout_ms);
}

// Runs llhttp over [p, end). The callbacks pause it at the end of the headers (to count
// their bytes exactly) and at the end of each message (to answer it before parsing the
// next one: pipelined responses go out in order).
void HttpServer::Core::Connection::Feed(const char* p, const char* end) {
  bool resume = false;  // llhttp has work to do without new bytes (after a pause)
  while (mode_ == Mode::kParsing && (p < end || resume)) {
    if (!in_message_) StartMessage();
    resume = false;
    pause_ = Pause::kNone;
    llhttp_errno_t err = llhttp_execute(&parser_, p, static_cast<size_t>(end - p));
    const char* stop = err == HPE_OK ? end : llhttp_get_error_pos(&parser_);
    if (stop == nullptr || stop < p || stop > end) stop = end;
    if (err != HPE_OK && err != HPE_PAUSED) {
      if (error_status_ == 413) return Fail(413, "request body too large\n");
      if (error_status_ == 414) return Fail(414, "URI too long\n");
      return Fail(400, std::string("bad request: ") + llhttp_errno_name(err) + "\n");
    }
    // Every byte before the end of the headers is request line or header, however
    // llhttp splits it into spans (it skips some, such as whitespace, without a call).
    if (!headers_done_ || pause_ == Pause::kHeadersDone) {
      header_bytes_ += static_cast<size_t>(stop - p);
      if (header_bytes_ > core_->limits_.max_header_bytes) {
        return Fail(431, "request headers too large\n");
      }
    }
    p = stop;
    if (err == HPE_OK) return;
    llhttp_resume(&parser_);
    if (pause_ == Pause::kHeadersDone) {
      resume = true;
    } else if (pause_ == Pause::kMessageDone) {
      in_message_ = false;
      Respond();
      if (mode_ == Mode::kParsing && p == end) ArmTimer(core_->limits_.idle_timeout_ms);
    }
  }
}

int HttpServer::Core::Connection::OnUrl(llhttp_t* p, const char* at, size_t len) noexcept {
  auto* c = static_cast<Connection*>(p->data);
  if (c->url_.size() + len > c->core_->limits_.max_header_bytes) {
    c->error_status_ = 414;
    return HPE_USER;
  }
  c->url_.append(at, len);
  return 0;
}

int HttpServer::Core::Connection::OnHeadersComplete(llhttp_t* p) noexcept {
  auto* c = static_cast<Connection*>(p->data);
  if ((p->flags & F_CONTENT_LENGTH) && p->content_length > c->core_->limits_.max_body_bytes) {
    c->error_status_ = 413;  // refused on the declared length, before the body comes
    return -1;
  }
  c->headers_done_ = true;
  c->pause_ = Pause::kHeadersDone;
  return HPE_PAUSED;
}

int HttpServer::Core::Connection::OnBody(llhttp_t* p, const char*, size_t len) noexcept {
  auto* c = static_cast<Connection*>(p->data);
  c->body_bytes_ += len;  // read and dropped: no route takes a body
  if (c->body_bytes_ > c->core_->limits_.max_body_bytes) {  // chunked: no declared length
    c->error_status_ = 413;
    return HPE_USER;
  }
  return 0;
}

int HttpServer::Core::Connection::OnMessageComplete(llhttp_t* p) noexcept {
  auto* c = static_cast<Connection*>(p->data);
  c->pause_ = Pause::kMessageDone;
  return HPE_PAUSED;
}

void HttpServer::Core::Connection::Respond() {
  auto method = static_cast<llhttp_method_t>(llhttp_get_method(&parser_));
  bool keep_alive = llhttp_get_http_major(&parser_) == 1 && llhttp_get_http_minor(&parser_) >= 1 &&
                    llhttp_should_keep_alive(&parser_) && !llhttp_get_upgrade(&parser_);
  HttpResponse response;
  std::string extra;
  if (method != HTTP_GET && method != HTTP_HEAD) {
    response = ErrorResponse(405, "method not allowed\n");
    extra = "Allow: GET, HEAD\r\n";
  } else {
    HttpRequest request;
    request.method = method == HTTP_GET ? "GET" : "HEAD";
    request.target = url_;
    request.path = url_.substr(0, url_.find_first_of("?#"));
    try {
      response = core_->handler_(request);
    } catch (const std::exception& e) {
      spdlog::warn("http: {} {} failed: {}", request.method, request.path, e.what());
      response = ErrorResponse(500, "internal error\n");
    } catch (...) {
      response = ErrorResponse(500, "internal error\n");
    }
  }
  Send(Serialize(response, method != HTTP_HEAD, !keep_alive, extra));
  if (!keep_alive) FinishWrites();
}

void HttpServer::Core::Connection::Fail(int status, std::string body) {
  Send(Serialize(ErrorResponse(status, std::move(body)), true, true));
  FinishWrites();
}

void HttpServer::Core::Connection::Send(std::string bytes) {
  if (mode_ == Mode::kClosed) return;
  auto* w = new WriteReq{{}, std::move(bytes)};
  w->req.data = this;
  uv_buf_t buf = uv_buf_init(w->bytes.data(), static_cast<unsigned>(w->bytes.size()));
  int rc = uv_write(&w->req, reinterpret_cast<uv_stream_t*>(&tcp_), &buf, 1, OnWrite);
  if (rc != 0) {
    delete w;
    return Abort(uv_strerror(rc));
  }
  ++writes_in_flight_;
  // What the kernel did not take at once waits in libuv's queue, in our memory.
  if (uv_stream_get_write_queue_size(reinterpret_cast<uv_stream_t*>(&tcp_)) >
      core_->limits_.max_pending_write_bytes) {
    Abort("does not read its responses", /*reset=*/true);
  }
}

void HttpServer::Core::Connection::OnWrite(uv_write_t* req, int status) noexcept {
  auto* w = reinterpret_cast<WriteReq*>(req);
  auto* c = static_cast<Connection*>(req->data);
  delete w;
  --c->writes_in_flight_;
  if (status < 0) c->Abort(uv_strerror(status));  // a no-op for UV_ECANCELED (closing)
}

void HttpServer::Core::Connection::FinishWrites() {
  if (mode_ == Mode::kClosed) return;
  mode_ = Mode::kDraining;
  ArmTimer(core_->limits_.request_timeout_ms);
  if (shutting_down_) return;
  shutting_down_ = true;
  shutdown_.data = this;
  // uv_shutdown waits for the queued writes, then sends FIN.
  if (uv_shutdown(&shutdown_, reinterpret_cast<uv_stream_t*>(&tcp_), OnShutdown) != 0) {
    Abort("shutdown failed");
  }
}

// After FIN, read (and drop) until the client closes: closing with its bytes unread would
// send RST, and an RST can destroy the response before the client read it.
void HttpServer::Core::Connection::OnShutdown(uv_shutdown_t* req, int status) noexcept {
  auto* c = static_cast<Connection*>(req->data);
  c->shut_down_ = true;
  if (status < 0) return c->Abort(uv_strerror(status));
  if (c->read_eof_) c->Abort("response sent, client closed");
}

void HttpServer::Core::OnConnection(uv_stream_t* listener, int status) noexcept {
  auto* core = static_cast<Core*>(listener->data);
  if (status < 0) {
    spdlog::warn("http: accept: {}", uv_strerror(status));
    return;
  }
  try {
    core->Accept();
  } catch (const std::exception& e) {
    spdlog::warn("http: accept: {}", e.what());
  }
}

void HttpServer::Core::Accept() {
  if (static_cast<int>(connections_.size()) >= limits_.max_connections) return Reject();
  auto* c = new Connection(this);
  connections_.insert(c);
  ++open_handles_;
  c->Start(reinterpret_cast<uv_stream_t*>(listener_));
}

void HttpServer::Core::Reject() {
  static const std::string k503 =
      Serialize(ErrorResponse(503, "too many connections\n"), true, true);
  auto* tcp = new uv_tcp_t{};
  if (uv_tcp_init(loop_, tcp) != 0) {
    delete tcp;
    return;
  }
  tcp->data = this;
  ++open_handles_;
  if (uv_accept(reinterpret_cast<uv_stream_t*>(listener_), reinterpret_cast<uv_stream_t*>(tcp)) ==
      0) {
    uv_buf_t buf = uv_buf_init(const_cast<char*>(k503.data()), static_cast<unsigned>(k503.size()));
    uv_try_write(reinterpret_cast<uv_stream_t*>(tcp), &buf, 1);
    spdlog::debug("http: refused a connection: {} open already", connections_.size());
  }
  uv_close(reinterpret_cast<uv_handle_t*>(tcp), [](uv_handle_t* h) {
    auto* core = static_cast<Core*>(h->data);
    delete reinterpret_cast<uv_tcp_t*>(h);
    core->HandleClosed();
  });
}

Result<int> HttpServer::Core::Listen(const std::string& address) {
  if (listener_ != nullptr || closing_) {
    return Status::Internal("http: Listen called twice or after Close");
  }
  sockaddr_storage addr{};
  SLUICE_RETURN_IF_ERROR(ParseListenAddress(address, &addr));
  listener_ = new uv_tcp_t{};
  listener_->data = this;
  int rc = uv_tcp_init(loop_, listener_);
  if (rc != 0) {
    delete listener_;
    listener_ = nullptr;
    return Status::Internal(std::string("http: uv_tcp_init: ") + uv_strerror(rc));
  }
  ++open_handles_;
  rc = uv_tcp_bind(listener_, reinterpret_cast<const sockaddr*>(&addr), 0);
  // libuv may report a bind failure (address in use) only from listen.
  if (rc == 0) rc = uv_listen(reinterpret_cast<uv_stream_t*>(listener_), 128, OnConnection);
  if (rc != 0) {
    return Status::Unavailable("http: cannot listen on " + address + ": " + uv_strerror(rc));
  }
  sockaddr_storage bound{};
  int len = sizeof(bound);
  rc = uv_tcp_getsockname(listener_, reinterpret_cast<sockaddr*>(&bound), &len);
  if (rc != 0) return Status::Internal(std::string("http: getsockname: ") + uv_strerror(rc));
  if (bound.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
  return ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
}

void HttpServer::Core::Close(std::function<void()> done) {
  closing_ = true;
  done_ = std::move(done);
  if (listener_ != nullptr && !uv_is_closing(reinterpret_cast<uv_handle_t*>(listener_))) {
    uv_close(reinterpret_cast<uv_handle_t*>(listener_), [](uv_handle_t* h) {
      auto* core = static_cast<Core*>(h->data);
      delete reinterpret_cast<uv_tcp_t*>(h);
      core->listener_ = nullptr;
      core->HandleClosed();
    });
  }
  std::vector<Connection*> open(connections_.begin(), connections_.end());
  for (Connection* c : open) c->Abort("server closing");
  ++open_handles_;  // held across the check so that a server with nothing open ends here
  HandleClosed();
}

void HttpServer::Core::HandleClosed() {
  if (--open_handles_ > 0 || !closing_) return;
  std::function<void()> done = std::move(done_);
  delete this;
  if (done) done();
}

HttpServer::HttpServer(uv_loop_t* loop, HttpLimits limits, Handler handler)
    : core_(new Core(loop, limits, std::move(handler))) {}

HttpServer::~HttpServer() {
  if (core_ != nullptr) Close(nullptr);
}

Status HttpServer::Listen(const std::string& address) {
  if (core_ == nullptr) return Status::Internal("http: Listen after Close");
  Result<int> port = core_->Listen(address);
  if (!port.ok()) return port.status();
  port_ = *port;
  return Status::Ok();
}

int HttpServer::connections() const { return core_ == nullptr ? 0 : core_->connections(); }

void HttpServer::Close(std::function<void()> done) {
  Core* core = core_;
  core_ = nullptr;
  port_ = 0;
  if (core != nullptr) {
    core->Close(std::move(done));
  } else if (done) {
    done();
  }
}

}  // namespace sluice
