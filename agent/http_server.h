// HttpServer: a small HTTP/1.1 server (GET and HEAD only) on the agent's own libuv
// loop, parsing with llhttp, for /health, /metrics and the probes. Built to face hostile
// clients: every request, connection and queued byte is bounded (HttpLimits), slow and
// idle clients are timed out, and nothing it does blocks the loop.
//
// Loop thread only: construct, Listen, Close and destroy it on the thread that runs
// `loop` (or before that loop runs). The loop must outlive the server's handles: call
// Close and let its `done` run before closing the loop. Destroying the server without
// Close closes everything the same way, without a callback. The process must ignore
// SIGPIPE (agent/main.cc does): libuv writes with write(2), and clients hang up.
#pragma once

#include <uv.h>

#include <cstddef>
#include <functional>
#include <string>

#include "common/status.h"

namespace sluice {

struct HttpRequest {
  std::string method;  // "GET" or "HEAD" (the server answers others itself, 405)
  std::string target;  // as sent: "/health?x=1"
  std::string path;    // the target without query or fragment: "/health"
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;  // sent for GET; for HEAD only its length is
};

struct HttpLimits {
  size_t max_header_bytes = 8192;  // request line + headers; a longer URI gets 414
  size_t max_body_bytes = 4096;    // a request body beyond this gets 413
  int max_connections = 64;        // connections beyond this are accepted and closed (503)
  int idle_timeout_ms = 10000;     // a keep-alive connection with no request is closed
  int request_timeout_ms = 5000;   // a started request must be complete within this
  // A client that lets more than this pile up unread (its responses not yet taken by the
  // kernel) is closed. Keep it well above the largest response (a /metrics scrape).
  size_t max_pending_write_bytes = 1 << 20;
};

class HttpServer {
 public:
  // Called on the loop thread for each complete GET or HEAD request, in order per
  // connection; must not block. An exception it throws becomes a 500.
  using Handler = std::function<HttpResponse(const HttpRequest&)>;

  HttpServer(uv_loop_t* loop, HttpLimits limits, Handler handler);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and listens on "host:port": an IPv4 literal ("127.0.0.1:9443") or a bracketed
  // IPv6 literal ("[::1]:9443"); port 0 picks a free port (see port()). InvalidArgument
  // for an address it cannot read, Unavailable when the bind or listen fails (in use).
  // At most once per server.
  Status Listen(const std::string& address);

  // The bound port once Listen succeeded, else 0.
  int port() const { return port_; }

  // Connections open now (accepted and not yet fully closed), for tests and metrics.
  int connections() const;

  // Stops listening and closes every client at once (responses not yet sent are
  // dropped); `done` (may be empty) runs once all the server's libuv handles are closed,
  // before Close returns if none is open. Call at most once; the server serves nothing
  // afterwards, and may be destroyed before `done` runs.
  void Close(std::function<void()> done);

 private:
  class Core;   // the listener and its connections; frees itself once all are closed
  Core* core_;  // null once Close handed it to its own close callbacks
  int port_ = 0;
};

}  // namespace sluice
