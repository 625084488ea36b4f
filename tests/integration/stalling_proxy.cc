// StallingProxy (see stalling_proxy.h).
#include "tests/integration/stalling_proxy.h"

#include <arpa/inet.h>
#include <libpq-fe.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <unistd.h>

#include <cstring>
#include <stdexcept>

namespace sluice::e2e {

StallingProxy::StallingProxy(sockaddr_storage upstream, socklen_t upstream_len)
    : upstream_(upstream), upstream_len_(upstream_len) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listen_fd_, 16) != 0 ||
      ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    throw std::runtime_error("proxy: cannot listen on loopback");
  }
  port_ = ntohs(addr.sin_port);
  thread_ = std::thread([this] { Run(); });
}

StallingProxy::~StallingProxy() {
  stop_ = true;
  thread_.join();
  for (auto& [a, b] : pairs_) {
    ::close(a);
    ::close(b);
  }
  ::close(listen_fd_);
}

void StallingProxy::Run() {
  while (!stop_) {
    std::vector<pollfd> fds = {{listen_fd_, POLLIN, 0}};
    bool forwarding = !stalled_;
    if (forwarding) {
      for (auto& [a, b] : pairs_) {
        fds.push_back({a, POLLIN, 0});
        fds.push_back({b, POLLIN, 0});
      }
    }
    if (::poll(fds.data(), fds.size(), 20) <= 0) continue;
    if ((fds[0].revents & POLLIN) != 0) Accept();
    if (!forwarding) continue;
    std::vector<size_t> dead;
    for (size_t i = 1; i < fds.size(); ++i) {
      if (fds[i].revents == 0 || stalled_) continue;
      size_t pair = (i - 1) / 2;
      int from = fds[i].fd;
      int to = from == pairs_[pair].first ? pairs_[pair].second : pairs_[pair].first;
      if (!Forward(from, to)) dead.push_back(pair);
    }
    for (auto it = dead.rbegin(); it != dead.rend(); ++it) {
      if (*it >= pairs_.size() || pairs_[*it].first < 0) continue;
      ::close(pairs_[*it].first);
      ::close(pairs_[*it].second);
      pairs_.erase(pairs_.begin() + static_cast<long>(*it));
    }
  }
}

void StallingProxy::Accept() {
  int client = ::accept(listen_fd_, nullptr, nullptr);
  if (client < 0) return;
  int server = ::socket(upstream_.ss_family, SOCK_STREAM, 0);
  if (server < 0 ||
      ::connect(server, reinterpret_cast<const sockaddr*>(&upstream_), upstream_len_) != 0) {
    ::close(client);
    if (server >= 0) ::close(server);
    return;
  }
  pairs_.emplace_back(client, server);
  ++accepted_;
}

bool StallingProxy::Forward(int from, int to) {
  char buf[65536];
  ssize_t n = ::read(from, buf, sizeof buf);
  if (n <= 0) return false;
  for (ssize_t off = 0; off < n;) {
    ssize_t w = ::write(to, buf + off, static_cast<size_t>(n - off));
    if (w <= 0) return false;
    off += w;
  }
  return true;
}

// host / port of a libpq conninfo, resolved to a TCP address.
std::pair<sockaddr_storage, socklen_t> TcpAddressOf(const std::string& conninfo) {
  std::string host = "127.0.0.1";
  std::string port = "5432";
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(conninfo.c_str(), &err);
  if (opts == nullptr) throw std::runtime_error("bad SLUICE_TEST_PG");
  for (PQconninfoOption* o = opts; o->keyword != nullptr; ++o) {
    if (o->val == nullptr || *o->val == '\0') continue;
    if (std::string(o->keyword) == "host") host = o->val;
    if (std::string(o->keyword) == "hostaddr") host = o->val;
    if (std::string(o->keyword) == "port") port = o->val;
  }
  PQconninfoFree(opts);
  if (host[0] == '/')
    throw std::runtime_error("the test server must listen on TCP (pg_virtualenv -t)");
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (::getaddrinfo(host.c_str(), port.c_str(), &hints, &res) != 0 || res == nullptr) {
    throw std::runtime_error("cannot resolve " + host);
  }
  sockaddr_storage out{};
  std::memcpy(&out, res->ai_addr, res->ai_addrlen);
  socklen_t len = res->ai_addrlen;
  ::freeaddrinfo(res);
  return {out, len};
}

std::string ViaProxy(const std::string& conninfo, const StallingProxy& proxy) {
  return conninfo + " host=127.0.0.1 hostaddr=127.0.0.1 port=" + std::to_string(proxy.port()) +
         " connect_timeout=2";
}

}  // namespace sluice::e2e
