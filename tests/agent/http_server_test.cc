// HttpServer (agent/http_server.h) on a real libuv loop in a thread, with real loopback
// sockets: keep-alive, pipelining, the error answers, every limit, Listen errors, Close
// with clients connected, and a stress run of hostile clients while a timer on the same
// loop measures how long the loop ever went without running it.
#include "agent/http_server.h"

#include <gtest/gtest.h>
#include <uv.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <random>
#include <stdexcept>
#include <thread>
#include <vector>

#include "agent/http_routes.h"
#include "tests/support/http_client.h"

namespace sluice {
namespace {

using testing::HttpConn;
using testing::HttpGet;
using testing::HttpReply;

constexpr const char* kHost = "127.0.0.1";

// Echoes what the handler saw; /big is a large body, /throw throws.
HttpResponse Echo(const HttpRequest& r) {
  if (r.path == "/throw") throw std::runtime_error("boom");
  HttpResponse out;
  if (r.path == "/big") {
    out.body.assign(4 << 20, 'x');
    return out;
  }
  if (r.path == "/missing") out.status = 404;
  out.body = r.method + " " + r.target + " " + r.path + "\n";
  return out;
}

std::string Get(const std::string& path, const std::string& extra = "") {
  return "GET " + path + " HTTP/1.1\r\nHost: t\r\n" + extra + "\r\n";
}

// Runs a loop in a thread with one HttpServer on it (listening on 127.0.0.1:0).
class HttpServerTest : public ::testing::Test {
 protected:
  static HttpLimits ShortLimits() {
    HttpLimits l;
    l.max_header_bytes = 1024;
    l.max_body_bytes = 256;
    l.max_connections = 8;
    l.idle_timeout_ms = 3000;
    l.request_timeout_ms = 3000;
    l.max_pending_write_bytes = 64 << 10;
    return l;
  }

  void Start(HttpLimits limits = ShortLimits(), HttpServer::Handler handler = Echo) {
    std::signal(SIGPIPE, SIG_IGN);  // as agent/main.cc: a write to a reset peer is EPIPE
    ASSERT_EQ(uv_loop_init(&loop_), 0);
    ASSERT_EQ(uv_async_init(&loop_, &async_, OnAsync), 0);
    async_.data = this;
    server_ = std::make_unique<HttpServer>(&loop_, limits, std::move(handler));
    Status st = server_->Listen("127.0.0.1:0");
    ASSERT_TRUE(st.ok()) << st.ToString();
    port_ = server_->port();
    ASSERT_GT(port_, 0);
    if (before_run_) before_run_();
    thread_ = std::thread([this] { uv_run(&loop_, UV_RUN_DEFAULT); });
    started_ = true;
  }

  // Runs `f` on the loop thread and waits for it.
  void OnLoop(std::function<void()> f) {
    std::promise<void> ran;
    {
      std::lock_guard<std::mutex> lock(mu_);
      queue_.push_back([&] {
        f();
        ran.set_value();
      });
    }
    uv_async_send(&async_);
    ran.get_future().wait();
  }

  int Connections() {
    int n = 0;
    OnLoop([&] { n = server_->connections(); });
    return n;
  }

  // Closes the server, waits for its `done`, stops the loop: every handle must be closed.
  void Stop() {
    if (!started_) return;
    started_ = false;
    std::promise<void> done;
    OnLoop([&] { server_->Close([&] { done.set_value(); }); });
    ASSERT_EQ(done.get_future().wait_for(std::chrono::seconds(5)), std::future_status::ready)
        << "Close never called done";
    OnLoop([&] {
      server_.reset();
      if (after_close_) after_close_();
      uv_close(reinterpret_cast<uv_handle_t*>(&async_), nullptr);
    });
    thread_.join();
    EXPECT_EQ(uv_loop_close(&loop_), 0) << "a libuv handle was left open";
  }

  void TearDown() override { Stop(); }

  static void OnAsync(uv_async_t* a) {
    auto* self = static_cast<HttpServerTest*>(a->data);
    std::vector<std::function<void()>> work;
    {
      std::lock_guard<std::mutex> lock(self->mu_);
      work.swap(self->queue_);
    }
    for (auto& f : work) f();
  }

  HttpConn Connect(int timeout_ms = 2000, int rcvbuf = 0) {
    return HttpConn(kHost, port_, timeout_ms, rcvbuf);
  }

  uv_loop_t loop_{};
  uv_async_t async_{};
  std::unique_ptr<HttpServer> server_;
  int port_ = 0;
  bool started_ = false;
  std::function<void()> before_run_;   // on the test thread, before the loop runs
  std::function<void()> after_close_;  // on the loop, after the server closed
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::function<void()>> queue_;
};

using Clock = std::chrono::steady_clock;

int64_t MsSince(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count();
}

TEST_F(HttpServerTest, KeepAliveServesTwoRequestsOnOneConnection) {
  Start();
  HttpConn c = Connect();
  ASSERT_TRUE(c.Send(Get("/a?x=1")));
  std::optional<HttpReply> r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "GET /a?x=1 /a\n");
  EXPECT_EQ(r->Header("Content-Length"), "14");
  EXPECT_EQ(r->Header("Connection"), "");
  ASSERT_TRUE(c.Send(Get("/b")));
  r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "GET /b /b\n");
  EXPECT_EQ(Connections(), 1);
}

TEST_F(HttpServerTest, PipelinedRequestsAreAnsweredInOrder) {
  Start();
  HttpConn c = Connect();
  // One send: the second request's headers end mid-buffer, a HEAD in the middle, a body.
  ASSERT_TRUE(c.Send(Get("/1") + "HEAD /2 HTTP/1.1\r\nHost: t\r\n\r\n" +
                     "GET /3 HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello" + Get("/4")));
  std::optional<HttpReply> r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "GET /1 /1\n");
  r = c.Read(/*head_request=*/true);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->Header("Content-Length"), "11");  // the length of "HEAD /2 /2\n", not sent
  EXPECT_EQ(r->body, "");
  r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "GET /3 /3\n");
  r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "GET /4 /4\n");
}

TEST_F(HttpServerTest, ByteByByteRequestIsParsed) {
  Start();
  HttpConn c = Connect();
  std::string req = Get("/slow-but-fine", "X-A: b\r\n");
  for (char ch : req) ASSERT_TRUE(c.Send(std::string(1, ch)));
  std::optional<HttpReply> r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "GET /slow-but-fine /slow-but-fine\n");
}

TEST_F(HttpServerTest, HandlerStatusAndExceptions) {
  Start();
  HttpConn c = Connect();
  ASSERT_TRUE(c.Send(Get("/missing") + Get("/throw") + Get("/after")));
  std::optional<HttpReply> r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 500);
  r = c.Read();  // an exception in the handler costs only that request
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST_F(HttpServerTest, OtherMethodsGet405WithAllow) {
  Start();
  HttpConn c = Connect();
  ASSERT_TRUE(c.Send("POST /health HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"));
  std::optional<HttpReply> r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 405);
  EXPECT_EQ(r->Header("Allow"), "GET, HEAD");
  ASSERT_TRUE(c.Send("DELETE / HTTP/1.1\r\n\r\n" + Get("/still-open")));
  r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 405);
  r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST_F(HttpServerTest, ConnectionCloseAndHttp10CloseAfterTheResponse) {
  Start();
  HttpConn c = Connect();
  ASSERT_TRUE(c.Send(Get("/a", "Connection: close\r\n") + Get("/never")));
  std::optional<HttpReply> r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->Header("Connection"), "close");
  EXPECT_TRUE(c.WaitClosed(1000));

  HttpConn old = Connect();
  ASSERT_TRUE(old.Send("GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
  r = old.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(old.WaitClosed(1000));

  // No protocol switch: the request is answered, then the connection ends.
  HttpConn upgrade = Connect();
  ASSERT_TRUE(upgrade.Send(Get("/a", "Connection: Upgrade\r\nUpgrade: websocket\r\n") +
                           "\x81\x85websocket bytes"));
  r = upgrade.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->Header("Connection"), "close");
  EXPECT_TRUE(upgrade.WaitClosed(1000));
}

TEST_F(HttpServerTest, MalformedRequestGets400AndClose) {
  Start();
  for (std::string bad : {std::string("GARBAGE\r\n\r\n"), std::string("GET / HTTP/9.9\r\n\r\n"),
                          std::string("GET / HTTP/1.1\r\nNo colon here\r\n\r\n"),
                          std::string("GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n"),
                          std::string("GET /\0 HTTP/1.1\r\n\r\n", 19),
                          std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11)}) {
    HttpConn c = Connect();
    ASSERT_TRUE(c.Send(bad));
    std::optional<HttpReply> r = c.Read();
    ASSERT_TRUE(r) << bad;
    EXPECT_EQ(r->status, 400) << bad;
    EXPECT_EQ(r->Header("Connection"), "close");
    EXPECT_TRUE(c.WaitClosed(1000)) << bad;
  }
}

TEST_F(HttpServerTest, OversizedHeaderGets431) {
  Start();
  HttpConn c = Connect();
  ASSERT_TRUE(c.Send(Get("/a", "X-Big: " + std::string(2000, 'a') + "\r\n")));
  std::optional<HttpReply> r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 431);
  EXPECT_TRUE(c.WaitClosed(1000));

  // Many small headers count as much as one big one; a header section that never ends
  // is cut as soon as it passes the limit.
  HttpConn many = Connect();
  std::string headers;
  for (int i = 0; i < 200; ++i) headers += "X-" + std::to_string(i) + ": v\r\n";
  ASSERT_TRUE(many.Send("GET / HTTP/1.1\r\n" + headers));
  r = many.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 431);

  // Just under the limit is fine.
  HttpConn fits = Connect();
  std::string req = Get("/a", "X-Fill: ");
  std::string fill(1024 - req.size() - 2, 'f');
  ASSERT_TRUE(fits.Send(Get("/a", "X-Fill: " + fill + "\r\n")));
  r = fits.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST_F(HttpServerTest, LongUriGets414) {
  Start();
  HttpConn c = Connect();
  ASSERT_TRUE(c.Send(Get("/" + std::string(3000, 'u'))));
  std::optional<HttpReply> r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 414);
  EXPECT_TRUE(c.WaitClosed(1000));
}

TEST_F(HttpServerTest, OversizedBodyGets413) {
  Start();
  HttpConn c = Connect();
  // Refused on the declared length, before any body byte arrives.
  ASSERT_TRUE(c.Send(Get("/a", "Content-Length: 100000\r\n")));
  std::optional<HttpReply> r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
  EXPECT_TRUE(c.WaitClosed(1000));

  // A chunked body has no declared length: refused once it passes the limit.
  HttpConn chunked = Connect();
  std::string body;
  for (int i = 0; i < 10; ++i) body += "40\r\n" + std::string(64, 'b') + "\r\n";
  ASSERT_TRUE(chunked.Send(Get("/a", "Transfer-Encoding: chunked\r\n") + body));
  r = chunked.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);

  HttpConn fits = Connect();
  ASSERT_TRUE(fits.Send(Get("/a", "Content-Length: 256\r\n") + std::string(256, 'b')));
  r = fits.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST_F(HttpServerTest, ConnectionsBeyondTheLimitAreClosedAndEarlierOnesStillWork) {
  HttpLimits limits = ShortLimits();
  limits.max_connections = 2;
  Start(limits);
  HttpConn a = Connect(), b = Connect();
  ASSERT_TRUE(a.Send(Get("/a")));
  ASSERT_TRUE(a.Read());
  ASSERT_TRUE(b.Send(Get("/b")));
  ASSERT_TRUE(b.Read());
  HttpConn extra = Connect();
  // Accepted and closed at once (after a 503 when the client is quick enough to read it).
  EXPECT_TRUE(extra.WaitClosed(1000));
  EXPECT_EQ(Connections(), 2);
  ASSERT_TRUE(a.Send(Get("/a2")));
  std::optional<HttpReply> r = a.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "GET /a2 /a2\n");
  ASSERT_TRUE(b.Send(Get("/b2")));
  ASSERT_TRUE(b.Read());
  a.Close();  // a slot frees up once the server saw the close
  for (int i = 0; i < 100 && Connections() > 1; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  HttpConn later = Connect();
  ASSERT_TRUE(later.Send(Get("/later")));
  r = later.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST_F(HttpServerTest, SlowlorisIsClosedAfterTheRequestTimeout) {
  HttpLimits limits = ShortLimits();
  limits.request_timeout_ms = 300;
  limits.idle_timeout_ms = 5000;
  Start(limits);
  HttpConn c = Connect(200);
  std::string req = Get("/never-complete", "X-Pad: " + std::string(200, 'p') + "\r\n");
  auto start = Clock::now();
  bool closed = false;
  // One byte every 50 ms: each byte would reset an inactivity timer, not this one.
  for (size_t i = 0; i < req.size() && MsSince(start) < 3000; ++i) {
    if (!c.Send(std::string(1, req[i])) || c.WaitClosed(50)) {
      closed = true;
      break;
    }
  }
  EXPECT_TRUE(closed) << "still open after " << MsSince(start) << " ms";
  EXPECT_LT(MsSince(start), 1500);
  EXPECT_GE(MsSince(start), 250);
}

TEST_F(HttpServerTest, IdleKeepAliveIsClosedAfterTheIdleTimeout) {
  HttpLimits limits = ShortLimits();
  limits.idle_timeout_ms = 300;
  Start(limits);
  HttpConn c = Connect();
  ASSERT_TRUE(c.Send(Get("/a")));
  ASSERT_TRUE(c.Read());
  auto start = Clock::now();
  EXPECT_TRUE(c.WaitClosed(2000));
  EXPECT_GE(MsSince(start), 250);
  EXPECT_LT(MsSince(start), 1500);

  // A connection that never sends anything is idle too.
  HttpConn silent = Connect();
  EXPECT_TRUE(silent.WaitClosed(2000));
}

TEST_F(HttpServerTest, ClientThatDoesNotReadIsClosed) {
  HttpLimits limits = ShortLimits();
  limits.idle_timeout_ms = 20000;  // only the write limit may close it here
  limits.request_timeout_ms = 20000;
  Start(limits);
  HttpConn c = Connect(2000, /*rcvbuf=*/4096);
  ASSERT_TRUE(c.Send(Get("/big")));  // 4 MiB, not read for 300 ms
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(Connections(), 0) << "the server still holds the unread response";
  // The client sees the cut: far less than the 4 MiB, then a reset.
  EXPECT_TRUE(c.WaitClosed(2000));
}

TEST(HttpServerListen, BadAddressesAreInvalidArgument) {
  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  for (const char* address :
       {"", "nonsense", "127.0.0.1", "127.0.0.1:", "127.0.0.1:99999", "127.0.0.1:-1",
        "127.0.0.1:80x", "300.1.1.1:80", "::1:80", "[::1:80", "[nope]:80", "localhost:80"}) {
    HttpServer s(&loop, HttpLimits{}, Echo);
    Status st = s.Listen(address);
    EXPECT_EQ(st.code(), Status::Code::kInvalidArgument) << address << ": " << st.ToString();
    EXPECT_NE(st.message().find(std::string("\"") + address + "\""), std::string::npos)
        << st.message();
    EXPECT_EQ(s.port(), 0);
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  EXPECT_EQ(uv_loop_close(&loop), 0);
}

TEST(HttpServerListen, PortInUseIsUnavailableAndIpv6Works) {
  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  {
    HttpServer first(&loop, HttpLimits{}, Echo);
    ASSERT_TRUE(first.Listen("127.0.0.1:0").ok());
    HttpServer second(&loop, HttpLimits{}, Echo);
    Status st = second.Listen("127.0.0.1:" + std::to_string(first.port()));
    EXPECT_EQ(st.code(), Status::Code::kUnavailable) << st.ToString();
    EXPECT_NE(st.message().find("address already in use"), std::string::npos) << st.message();

    HttpServer v6(&loop, HttpLimits{}, Echo);
    st = v6.Listen("[::1]:0");
    EXPECT_TRUE(st.ok()) << st.ToString();
    EXPECT_GT(v6.port(), 0);
    bool closed = false;
    v6.Close([&] { closed = true; });
    uv_run(&loop, UV_RUN_NOWAIT);  // `first` still listens: one turn runs the close
    EXPECT_TRUE(closed);
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  EXPECT_EQ(uv_loop_close(&loop), 0);
}

TEST_F(HttpServerTest, CloseWithClientsConnected) {
  Start();
  HttpConn idle = Connect(), partial = Connect(), unread = Connect(2000, 4096);
  ASSERT_TRUE(idle.Send(Get("/a")));
  ASSERT_TRUE(idle.Read());
  ASSERT_TRUE(partial.Send("GET /half HTTP/1.1\r\nHost:"));
  ASSERT_TRUE(unread.Send(Get("/big")));
  for (int i = 0; i < 100 && Connections() < 3; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  Stop();  // asserts done ran and that no handle is left
  EXPECT_TRUE(idle.WaitClosed(1000));
  EXPECT_TRUE(partial.WaitClosed(1000));
  EXPECT_TRUE(unread.WaitClosed(1000));
}

// Several hundred hostile requests from client threads while a 10 ms timer on the
// server's loop records its longest gap; the server must keep its loop turning and
// answer a plain GET /livez afterwards.
TEST_F(HttpServerTest, HostileClientsNeverStallTheLoop) {
  HttpLimits limits = ShortLimits();
  limits.max_connections = 32;
  limits.request_timeout_ms = 200;
  limits.idle_timeout_ms = 300;
  struct Ticker {
    uv_timer_t timer;
    uint64_t last_ns = 0;                 // loop thread only
    std::atomic<uint64_t> max_gap_ns{0};  // read by the test thread
  } ticker;
  before_run_ = [&] {
    ASSERT_EQ(uv_timer_init(&loop_, &ticker.timer), 0);
    ticker.timer.data = &ticker;
    ticker.last_ns = uv_hrtime();
    uv_timer_start(
        &ticker.timer,
        [](uv_timer_t* t) {
          auto* k = static_cast<Ticker*>(t->data);
          uint64_t now = uv_hrtime();
          uint64_t gap = now - k->last_ns;
          k->last_ns = now;
          if (gap > k->max_gap_ns.load()) k->max_gap_ns.store(gap);
        },
        10, 10);
  };
  after_close_ = [&] { uv_close(reinterpret_cast<uv_handle_t*>(&ticker.timer), nullptr); };
  AgentView view;
  view.role = "leader";
  Start(limits, [&](const HttpRequest& r) { return Route(r, view, [] { return "m 1\n"; }); });

  const std::vector<std::string> kinds = {
      "GARBAGE GARBAGE GARBAGE\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: x\r\n",  // truncated, then closed
      Get("/", "X-Big: " + std::string(4000, 'a') + "\r\n"),
      Get("/" + std::string(5000, 'u')),
      Get("/", "Content-Length: 100000\r\n") + std::string(1000, 'b'),
      Get("/", "Transfer-Encoding: chunked\r\n") + "zz\r\n",
      std::string("GET /\0\0 HTTP/1.1\r\n\r\n", 20),
      "GET /\r\n",  // HTTP/0.9
      "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
      "POST /x HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789",
      Get("/health") + Get("/metrics") + Get("/livez") + "GET /bad\x01 HTTP/1.1\r\n\r\n",
  };
  std::atomic<int> sent{0};
  auto client = [&](int seed) {
    std::mt19937 rng(seed);
    std::vector<std::unique_ptr<HttpConn>> slow;  // held open, fed a byte now and then
    for (int i = 0; i < 100; ++i) {
      int kind = static_cast<int>(rng() % (kinds.size() + 3));
      if (kind >= static_cast<int>(kinds.size()) + 1) {
        auto c = std::make_unique<HttpConn>(kHost, port_, 300);
        if (c->Send("GET /livez HTTP/1.1\r\n")) slow.push_back(std::move(c));
      } else if (kind == static_cast<int>(kinds.size())) {
        HttpConn c(kHost, port_, 300);  // random bytes
        std::string junk(static_cast<size_t>(rng() % 3000), '\0');
        for (char& ch : junk) ch = static_cast<char>(rng());
        c.Send(junk);
        c.WaitClosed(20);
      } else {
        HttpConn c(kHost, port_, 300);
        c.Send(kinds[static_cast<size_t>(kind)]);
        if (rng() % 2 == 0) c.WaitClosed(30);  // else: close at once, unread
      }
      ++sent;
      for (auto& s : slow) s->Send("X");
    }
  };
  // A probe alongside: answered (200, or 503 while every slot is taken) or refused, never
  // left hanging.
  std::atomic<bool> stressing{true};
  int probes = 0, probe_ok = 0;
  std::thread probe([&] {
    while (stressing) {
      std::optional<HttpReply> r = HttpGet(kHost, port_, "/livez", 2000);
      ++probes;
      if (r && r->status == 200) ++probe_ok;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  std::vector<std::thread> clients;
  for (int t = 0; t < 4; ++t) clients.emplace_back(client, t + 1);
  for (auto& t : clients) t.join();
  stressing = false;
  probe.join();

  EXPECT_GE(sent.load(), 400);
  std::optional<HttpReply> r = HttpGet(kHost, port_, "/livez");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "ok\n");
  uint64_t gap_ms = ticker.max_gap_ns.load() / 1000000;
  EXPECT_LT(gap_ms, 500u) << "the loop stalled";
  std::printf("stress: %d requests, %d/%d probes answered 200, largest loop gap %llu ms\n",
              sent.load(), probe_ok, probes, static_cast<unsigned long long>(gap_ms));
  Stop();  // before `ticker` and `view` go
}

}  // namespace
}  // namespace sluice
