// Issue 5 item 15: deadlines on the sink path. A sink that stops answering
// while keeping the TCP session open (a proxy of ours on loopback that stops
// forwarding: the peer's kernel still ACKs, so TCP keepalives see nothing) is
// detected within sink.query_timeout_ms, the agent reconnects once the sink
// answers again, and every row written before and during the stall arrives.
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tests/integration/e2e_support.h"

namespace sluice::e2e {
namespace {

// Forwards loopback TCP connections to `upstream` on its own thread. Stall()
// stops all forwarding (new connections are still accepted) without closing
// anything; Resume() goes on where it stopped.
class StallingProxy {
 public:
  explicit StallingProxy(sockaddr_storage upstream, socklen_t upstream_len)
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
  ~StallingProxy() {
    stop_ = true;
    thread_.join();
    for (auto& [a, b] : pairs_) {
      ::close(a);
      ::close(b);
    }
    ::close(listen_fd_);
  }
  StallingProxy(const StallingProxy&) = delete;
  StallingProxy& operator=(const StallingProxy&) = delete;

  int port() const { return port_; }
  void Stall() { stalled_ = true; }
  void Resume() { stalled_ = false; }
  int accepted() const { return accepted_.load(); }

 private:
  void Run() {
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

  void Accept() {
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

  // Copies what is readable on `from` to `to`; false on EOF or error.
  static bool Forward(int from, int to) {
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

class SinkDeadlines : public E2eTest {
 protected:
  void SetUp() override {
    E2eTest::SetUp();
    catch_up_timeout_ = seconds(40);
  }
};

TEST_F(SinkDeadlines, StalledSinkIsDetectedAndNothingIsLost) {
  if (skipped_) return;
  constexpr int kQueryTimeoutMs = 1500;
  std::string db_path = dir_->file("webui.db");
  CreateOpenWebUiDb(db_path);
  std::string direct = WriteConfig(db_path);  // init and status go straight to PostgreSQL
  Init(direct);

  auto [addr, len] = TcpAddressOf(pg_url_);
  StallingProxy proxy(addr, len);
  std::string via_proxy =
      pg_url_ + " host=127.0.0.1 hostaddr=127.0.0.1 port=" + std::to_string(proxy.port()) +
      " connect_timeout=2";
  std::string agent_config = WriteConfig(db_path, via_proxy, nullptr, "via-proxy.json");
  std::string json = ReadFile(agent_config);
  size_t sink = json.find("\"sink\": {");
  ASSERT_NE(sink, std::string::npos) << json;
  json.insert(sink + 9, "\"query_timeout_ms\": " + std::to_string(kQueryTimeoutMs) + ", ");
  WriteFile(agent_config, json);

  RandomWriter::Options w;
  w.min_changes = 300;
  w.run_until_stopped = false;
  ASSERT_EQ(WriteRandomChanges(db_path, w), std::vector<std::string>{});
  AgentProcess* agent = StartAgent(agent_config);
  ASSERT_TRUE(ExpectCaughtUp(direct, agent));
  int accepted_before = proxy.accepted();

  // The sink stops answering; the app goes on writing.
  proxy.Stall();
  auto stalled_at = Clock::now();
  w.seed = 2;
  w.key_base = 1000000;
  ASSERT_EQ(WriteRandomChanges(db_path, w, true), std::vector<std::string>{});
  const std::string kDetected = "no reply from PostgreSQL";
  bool detected = WaitUntil([&] { return agent->Log().find(kDetected) != std::string::npos; },
                            milliseconds(kQueryTimeoutMs + 4000));
  auto took = std::chrono::duration_cast<milliseconds>(Clock::now() - stalled_at);
  EXPECT_TRUE(detected) << "a stalled sink was not noticed within " << took.count() << " ms";
  EXPECT_LT(took.count(), kQueryTimeoutMs + 4000);
  EXPECT_TRUE(agent->Running()) << "the agent must retry, not exit";
  // It tries to reconnect (through the stalled proxy, which only accepts).
  EXPECT_TRUE(WaitUntil([&] { return proxy.accepted() > accepted_before; }, seconds(10)))
      << "no reconnect attempt";
  w.seed = 3;
  w.key_base = 2000000;
  ASSERT_EQ(WriteRandomChanges(db_path, w, true), std::vector<std::string>{});

  // The sink answers again: the agent reconnects and everything arrives.
  proxy.Resume();
  ASSERT_TRUE(ExpectCaughtUp(direct, agent));
  Sqlite src(db_path);
  ExpectMirrorEqual(src);
  EXPECT_EQ(CheckBatchChain(*pg_, deployment_), "");
  agent->Signal(SIGTERM);
  EXPECT_EQ(agent->WaitExit(seconds(20)), std::optional<int>(0));
}

}  // namespace
}  // namespace sluice::e2e
