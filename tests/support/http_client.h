// A blocking raw HTTP/1.1 client over loopback TCP for tests and bench: sends exactly the
// bytes it is given (malformed ones too) and reads replies and closes. Any thread; each
// HttpConn belongs to the thread using it.
#pragma once

#include <optional>
#include <string>

namespace sluice::testing {

struct HttpReply {
  int status = 0;
  std::string head;  // status line and headers, without the blank line
  std::string body;
  // The value of header `name` (exact case), or "" if absent.
  std::string Header(const std::string& name) const;
};

class HttpConn {
 public:
  // Connects to host:port (IPv4 or IPv6 literal); `timeout_ms` bounds each later read
  // and send. `rcvbuf` > 0 shrinks the receive buffer (a client slow to read).
  HttpConn(const std::string& host, int port, int timeout_ms = 2000, int rcvbuf = 0);
  ~HttpConn();
  HttpConn(const HttpConn&) = delete;
  HttpConn& operator=(const HttpConn&) = delete;

  bool connected() const { return fd_ >= 0; }
  // All of `bytes`, or false (the server closed, or the send timed out).
  bool Send(const std::string& bytes);
  // The next reply (Content-Length framed; `head_request`: no body follows), or nullopt on
  // close, reset, timeout or a reply that is not HTTP.
  std::optional<HttpReply> Read(bool head_request = false);
  // True once the server has closed (EOF or reset) within `timeout_ms`; bytes that arrive
  // meanwhile are dropped.
  bool WaitClosed(int timeout_ms);
  void Close();

 private:
  bool Fill();  // one recv into buffer_; false on EOF, error or timeout
  int fd_ = -1;
  std::string buffer_;
};

// One GET (a fresh connection, "Connection: close"); nullopt when nothing came back.
std::optional<HttpReply> HttpGet(const std::string& host, int port, const std::string& path,
                                 int timeout_ms = 2000);

}  // namespace sluice::testing
