// A sink that stops answering while keeping its TCP sessions open: a proxy of
// ours on loopback that stops forwarding (the peer's kernel still ACKs, so TCP
// keepalives see nothing), as a network partition or a hung server looks to
// the agent. Used by the sink-deadline and the lease tests.
#pragma once

#include <sys/socket.h>

#include <atomic>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace sluice::e2e {

// Forwards loopback TCP connections to `upstream` on its own thread. Stall()
// stops all forwarding (new connections are still accepted) without closing
// anything; Resume() goes on where it stopped.
class StallingProxy {
 public:
  StallingProxy(sockaddr_storage upstream, socklen_t upstream_len);
  ~StallingProxy();
  StallingProxy(const StallingProxy&) = delete;
  StallingProxy& operator=(const StallingProxy&) = delete;

  int port() const { return port_; }
  void Stall() { stalled_ = true; }
  void Resume() { stalled_ = false; }
  int accepted() const { return accepted_.load(); }

 private:
  void Run();
  void Accept();
  // Copies what is readable on `from` to `to`; false on EOF or error.
  static bool Forward(int from, int to);

  sockaddr_storage upstream_;
  socklen_t upstream_len_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> stalled_{false};
  std::atomic<int> accepted_{0};
  std::vector<std::pair<int, int>> pairs_;  // (client, server), proxy thread only
};

// host / port of a libpq conninfo, resolved to a TCP address.
std::pair<sockaddr_storage, socklen_t> TcpAddressOf(const std::string& conninfo);

// `conninfo` pointed at `proxy` (loopback), with a short connect_timeout.
std::string ViaProxy(const std::string& conninfo, const StallingProxy& proxy);

}  // namespace sluice::e2e
