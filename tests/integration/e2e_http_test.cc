// Issue #6, "HTTP on the agent's own loop", against real agents and a real
// PostgreSQL: the probes and /health on a leader and a standby (and after the
// leader is SIGKILLed), /metrics of a live pair (promtool, every family in the
// first scrape, exact row counts), hostile clients while the agent syncs, and a
// real Prometheus server scraping the pair through the agents' ephemeral ports.
#include <netinet/in.h>
#include <signal.h>
#include <simdjson.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "tests/agent/exposition.h"
#include "tests/integration/e2e_support.h"
#include "tests/support/http_client.h"

namespace sluice::e2e {
namespace {

using testing::Exposition;
using testing::HttpConn;
using testing::HttpReply;
using testing::ParseExposition;

// Every family issue #6 names; each must be in the first scrape.
const std::vector<std::string> kFamilies = {
    "sluice_build_info",
    "sluice_leader",
    "sluice_lease_epoch",
    "sluice_lease_expiry_seconds",
    "sluice_lease_renewals_total",
    "sluice_lease_renewal_failures_total",
    "sluice_changes_captured_total",
    "sluice_rows_applied_total",
    "sluice_batches_total",
    "sluice_batch_rows",
    "sluice_apply_duration_seconds",
    "sluice_lag_seconds",
    "sluice_journal_backlog_rows",
    "sluice_position",
    "sluice_sink_errors_total",
    "sluice_reconnects_total",
    "sluice_rows_parked_total",
};
const std::vector<std::string> kErrorKinds = {"connection", "timeout",      "position_conflict",
                                              "fenced",     "rejected_row", "permission",
                                              "schema",     "other"};

std::string EnvOr(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v == nullptr ? fallback : v;
}

// A port nothing listens on now (bound, read, closed: the kernel rarely hands it out again
// within the second the caller needs it).
int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  ::close(fd);
  return port;
}

std::string UrlEncode(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

// The /health body, read with a real JSON parser (a body that is not JSON fails).
struct Health {
  std::string status, role, node, deployment;
  int64_t epoch = -1, position = -2;
  std::optional<int64_t> backlog;  // null
  bool last_error_null = false;
};

std::optional<Health> ParseHealth(const std::string& body) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(body).get(doc) != simdjson::SUCCESS) return std::nullopt;
  Health h;
  std::string_view sv;
  if (doc["status"].get(sv) != simdjson::SUCCESS) return std::nullopt;
  h.status = sv;
  if (doc["role"].get(sv) != simdjson::SUCCESS) return std::nullopt;
  h.role = sv;
  if (doc["node"].get(sv) != simdjson::SUCCESS) return std::nullopt;
  h.node = sv;
  if (doc["deployment"].get(sv) != simdjson::SUCCESS) return std::nullopt;
  h.deployment = sv;
  if (doc["epoch"].get(h.epoch) != simdjson::SUCCESS) return std::nullopt;
  if (doc["position"].get(h.position) != simdjson::SUCCESS) return std::nullopt;
  int64_t backlog = 0;
  if (doc["backlog"].get(backlog) == simdjson::SUCCESS) h.backlog = backlog;
  h.last_error_null = doc["last_error"].is_null();
  return h;
}

// Inserts chats `first`..`first+n-1` in transactions of up to 10 rows.
void InsertChats(Sqlite& db, int first, int n) {
  for (int done = 0; done < n;) {
    db.Exec("BEGIN");
    for (int k = 0; k < 10 && done < n; ++k, ++done) {
      std::string id = "chat-" + std::to_string(first + done);
      db.Query(
          "INSERT INTO chat (id, user_id, title, share_id, archived, created_at, updated_at, "
          "chat, pinned, meta, folder_id) VALUES (?, 'u1', ?, NULL, 0, 1730000000, 1730000001, "
          "'{}', 0, '{}', NULL)",
          {SqlValue::Text(id), SqlValue::Text("title " + id)});
    }
    db.Exec("COMMIT");
  }
}

class HttpE2e : public E2eTest {
 protected:
  struct Node {
    std::string name;
    std::string config;
    AgentProcess* agent = nullptr;
    HttpAddress http;
  };

  void SetUp() override {
    E2eTest::SetUp();
    if (skipped_) return;
    catch_up_timeout_ = seconds(30);
    db_path_ = dir_->file("app.db");
    CreateOpenWebUiDb(db_path_);
    app_ = std::make_unique<Sqlite>(db_path_);
  }

  // Writes node `name`'s config (1-second lease, an ephemeral HTTP port), runs init for the
  // first node, starts it and waits for its HTTP address.
  Node StartNode(const std::string& name, const std::function<void(AgentConfig&)>& tweak = {}) {
    Node n;
    n.name = name;
    n.config = WriteConfig(
        db_path_, "",
        [&](AgentConfig& c) {
          c.node = name;
          c.lease_json = "{\"duration_ms\": 1000}";
          if (tweak) tweak(c);
        },
        name + ".json");
    if (!initialized_) {
      EXPECT_EQ(Init(n.config).exit_code, 0);
      initialized_ = true;
    }
    n.agent = StartAgent(n.config, name);
    std::optional<HttpAddress> a = WaitHttpAddress(db_path_, deployment_, name, *n.agent);
    EXPECT_TRUE(a.has_value()) << "node " << name << " never wrote its HTTP address";
    if (a) n.http = *a;
    return n;
  }

  // Node a, the leader (its /leader says 200), then node b, the standby.
  void StartPair() {
    a_ = StartNode("a");
    ASSERT_TRUE(WaitLeader(a_, seconds(15))) << "node a never led";
    b_ = StartNode("b");
    ASSERT_GT(b_.http.port, 0);
    ASSERT_NE(a_.http.port, b_.http.port);
  }

  static std::optional<HttpReply> Get(const Node& n, const std::string& path,
                                      int timeout_ms = 2000) {
    return testing::HttpGet(n.http.host, n.http.port, path, timeout_ms);
  }
  static int Status(const Node& n, const std::string& path) {
    std::optional<HttpReply> r = Get(n, path);
    return r ? r->status : 0;
  }
  static bool WaitLeader(const Node& n, milliseconds timeout) {
    return WaitUntil([&] { return Status(n, "/leader") == 200; }, timeout);
  }
  static std::optional<Health> GetHealth(const Node& n) {
    std::optional<HttpReply> r = Get(n, "/health");
    if (!r || r->status != 200) return std::nullopt;
    return ParseHealth(r->body);
  }
  // A /metrics scrape, parsed strictly; empty (with a failure recorded) when it is not one.
  Exposition Scrape(const Node& n, std::string* raw = nullptr) {
    std::optional<HttpReply> r = Get(n, "/metrics", 5000);
    EXPECT_TRUE(r && r->status == 200) << "GET /metrics on " << n.name;
    if (!r) return {};
    EXPECT_EQ(r->Header("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
    if (raw != nullptr) *raw = r->body;
    Result<Exposition> e = ParseExposition(r->body);
    EXPECT_TRUE(e.ok()) << e.status().ToString() << "\n" << r->body;
    return e.ok() ? *e : Exposition{};
  }
  int64_t SinkPosition() {
    return pg_->ScalarInt(
        "SELECT applied_seq FROM sync_metadata.source_position WHERE deployment = $1",
        {deployment_});
  }

  std::string db_path_;
  std::unique_ptr<Sqlite> app_;
  bool initialized_ = false;
  Node a_, b_;
};

// ---------------------------------------------------------------- endpoints

TEST_F(HttpE2e, ProbesAndHealthOnLeaderAndStandbyThenFailover) {
  if (skipped_) return;
  ASSERT_NO_FATAL_FAILURE(StartPair());
  InsertChats(*app_, 0, 25);  // through the journal: the position moves
  ASSERT_TRUE(ExpectCaughtUp(a_.config, a_.agent));
  int64_t applied = SinkPosition();
  ASSERT_GT(applied, 0);

  // The leader.
  EXPECT_EQ(Status(a_, "/leader"), 200);
  EXPECT_EQ(Status(a_, "/readyz"), 200);
  EXPECT_EQ(Status(a_, "/livez"), 200);
  std::optional<Health> h;
  // Caught up by `status`; the agent's own view follows the commit it just acknowledged.
  EXPECT_TRUE(WaitUntil(
      [&] {
        h = GetHealth(a_);
        return h && h->position == applied && h->backlog == std::optional<int64_t>(0);
      },
      seconds(5)))
      << "leader /health: " << (h ? "position " + std::to_string(h->position) : "unreadable")
      << ", sink position " << applied;
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(h->role, "leader");
  EXPECT_EQ(h->status, "ok");
  EXPECT_EQ(h->node, "a");
  EXPECT_EQ(h->deployment, deployment_);
  EXPECT_GE(h->epoch, 1);
  EXPECT_TRUE(h->last_error_null);
  int64_t epoch_a = h->epoch;

  // The standby: not the leader, but ready (it watches the lease).
  EXPECT_TRUE(WaitUntil([&] { return Status(b_, "/readyz") == 200; }, seconds(10)))
      << "standby /readyz: " << Status(b_, "/readyz");
  EXPECT_EQ(Status(b_, "/leader"), 503);
  EXPECT_EQ(Status(b_, "/livez"), 200);
  std::optional<Health> hb = GetHealth(b_);
  ASSERT_TRUE(hb.has_value());
  EXPECT_EQ(hb->role, "standby");
  EXPECT_EQ(hb->status, "ok");
  EXPECT_EQ(hb->node, "b");
  EXPECT_EQ(hb->deployment, deployment_);
  EXPECT_TRUE(hb->last_error_null);
  EXPECT_EQ(Status(a_, "/leader"), 200) << "still one leader";

  // SIGKILL of the leader: the standby's /leader turns 200 within a few seconds.
  auto killed = Clock::now();
  a_.agent->KillHard();
  EXPECT_TRUE(WaitLeader(b_, seconds(5))) << "the standby did not take over within 5 s";
  double took = std::chrono::duration<double>(Clock::now() - killed).count();
  std::cerr << "standby /leader 200 " << took << " s after SIGKILL of the leader\n";
  std::optional<Health> hb2 = GetHealth(b_);
  ASSERT_TRUE(hb2.has_value());
  EXPECT_EQ(hb2->role, "leader");
  EXPECT_GT(hb2->epoch, epoch_a);
  EXPECT_EQ(Status(b_, "/readyz"), 200);

  // The new leader applies what was written after the kill, and says so.
  InsertChats(*app_, 100, 5);
  ASSERT_TRUE(ExpectCaughtUp(b_.config, b_.agent));
  int64_t applied_b = SinkPosition();
  EXPECT_GT(applied_b, applied);
  EXPECT_TRUE(WaitUntil(
      [&] {
        hb2 = GetHealth(b_);
        return hb2 && hb2->position == applied_b && hb2->backlog == std::optional<int64_t>(0);
      },
      seconds(5)))
      << "new leader /health: "
      << (hb2 ? "position " + std::to_string(hb2->position) : "unreadable") << ", sink position "
      << applied_b;
  EXPECT_TRUE(b_.agent->Running());
}

// ---------------------------------------------------------------- metrics

// `promtool check metrics` on a scrape: Prometheus's own parser and lint.
void ExpectPromtoolPasses(const std::string& dir, const std::string& name,
                          const std::string& scrape) {
  std::string promtool = EnvOr("PROMTOOL", "promtool");
  std::string file = dir + "/" + name + ".prom";
  WriteFile(file, scrape);
  CommandResult c =
      RunCommand({"sh", "-c", "exec \"$0\" check metrics < \"$1\" 2>&1", promtool, file});
  EXPECT_EQ(c.exit_code, 0) << name << ": " << c.out;
  EXPECT_EQ(c.out, "") << name;
}

// Every family is there, the error kinds and each app table's series at 0 (no row written
// yet to any table: the fixture is empty).
void ExpectFirstScrapeComplete(const Exposition& e, const std::vector<std::string>& tables,
                               const std::string& who) {
  for (const std::string& f : kFamilies) {
    EXPECT_EQ(e.types.count(f), 1u) << who << ": no # TYPE for " << f;
    bool histogram = e.types.count(f) != 0 && e.types.at(f) == "histogram";
    EXPECT_FALSE(e.Find(histogram ? f + "_count" : f).empty()) << who << ": no sample of " << f;
  }
  for (const std::string& k : kErrorKinds) {
    EXPECT_EQ(e.Value("sluice_sink_errors_total", {{"kind", k}}), 0) << who << ": kind " << k;
  }
  for (const std::string& t : tables) {
    for (const char* op : {"upsert", "delete"}) {
      EXPECT_EQ(e.Value("sluice_rows_applied_total", {{"table", t}, {"op", op}}), 0)
          << who << ": sluice_rows_applied_total{table=\"" << t << "\",op=\"" << op << "\"}";
    }
    EXPECT_EQ(e.Value("sluice_rows_parked_total", {{"table", t}}), 0)
        << who << ": sluice_rows_parked_total{table=\"" << t << "\"}";
  }
}

TEST_F(HttpE2e, MetricsOfALivePairPassPromtoolAndCountExactly) {
  if (skipped_) return;
  std::vector<std::string> tables = AppTables(*app_);
  ASSERT_NE(std::find(tables.begin(), tables.end(), "chat"), tables.end());
  a_ = StartNode("a");
  std::string raw_a;
  Exposition first_a = Scrape(a_, &raw_a);  // the first scrape, as soon as it listens
  ASSERT_TRUE(WaitLeader(a_, seconds(15)));
  b_ = StartNode("b");
  std::string raw_b;
  Exposition first_b = Scrape(b_, &raw_b);
  ExpectPromtoolPasses(dir_->path().string(), "first-a", raw_a);
  ExpectPromtoolPasses(dir_->path().string(), "first-b", raw_b);
  ExpectFirstScrapeComplete(first_a, tables, "leader's first scrape");
  ExpectFirstScrapeComplete(first_b, tables, "standby's first scrape");

  ASSERT_TRUE(ExpectCaughtUp(a_.config, a_.agent));
  Exposition before = Scrape(a_);
  double upserts_before =
      before.Value("sluice_rows_applied_total", {{"table", "chat"}, {"op", "upsert"}});
  EXPECT_EQ(upserts_before, 0);
  constexpr int kRows = 37;
  InsertChats(*app_, 1000, kRows);
  ASSERT_TRUE(ExpectCaughtUp(a_.config, a_.agent));

  std::string raw_after;
  Exposition after = Scrape(a_, &raw_after);
  ExpectPromtoolPasses(dir_->path().string(), "after-a", raw_after);
  EXPECT_EQ(after.Value("sluice_rows_applied_total", {{"table", "chat"}, {"op", "upsert"}}) -
                upserts_before,
            kRows);
  EXPECT_EQ(after.Value("sluice_rows_applied_total", {{"table", "chat"}, {"op", "delete"}}), 0);
  EXPECT_GT(after.Value("sluice_batches_total"), 0);
  EXPECT_GE(after.Value("sluice_batch_rows_count"), 1);
  EXPECT_EQ(after.Value("sluice_leader"), 1);
  EXPECT_GE(after.Value("sluice_lease_epoch"), 1);
  EXPECT_GT(after.Value("sluice_lease_expiry_seconds"), 0);
  EXPECT_EQ(after.Value("sluice_position"), static_cast<double>(SinkPosition()));
  EXPECT_EQ(after.Value("sluice_journal_backlog_rows"), 0);

  std::string raw_b2;
  Exposition standby = Scrape(b_, &raw_b2);
  ExpectPromtoolPasses(dir_->path().string(), "after-b", raw_b2);
  EXPECT_EQ(standby.Value("sluice_leader"), 0);
  EXPECT_EQ(standby.Value("sluice_lease_expiry_seconds"), 0);
  EXPECT_EQ(standby.Value("sluice_rows_applied_total", {{"table", "chat"}, {"op", "upsert"}}), 0);
  EXPECT_EQ(standby.Value("sluice_batches_total"), 0);
}

// ---------------------------------------------------------------- hostile clients

// http.max_connections for the hostile test. Outside the floods the test holds at most 5
// connections (2 workers, 2 slow clients, 1 idle one), up to 2 more that the server has not
// yet counted closed, and the sampler's: the sampler is never refused by the test's own
// load, so every one of its samples outside a flood must be a 200.
constexpr int kMaxConnections = 10;

// One thing a hostile client does on its own connection, and what the server must answer
// (0: nothing; the client hangs up first).
struct HostileCase {
  const char* name;
  std::string bytes;
  int status;
};

std::vector<HostileCase> HostileCases() {
  std::string many_headers = "GET /livez HTTP/1.1\r\nHost: x\r\n";
  for (int i = 0; i < 600; ++i) many_headers += "X-H" + std::to_string(i) + ": vvvvvvvvvv\r\n";
  std::string chunk(4096, 'c');
  return {
      {"not http", "BLAH BLAH BLAH\r\n\r\n", 400},
      {"tls hello", std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11), 400},
      {"nul in header", std::string("GET /livez HTTP/1.1\r\nX: a\0b\r\n\r\n", 32), 400},
      {"bad content-length", "GET /livez HTTP/1.1\r\nContent-Length: -5\r\n\r\n", 400},
      {"two content-lengths",
       "GET /livez HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400},
      {"header over 8 KiB",
       "GET /livez HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(9000, 'a') + "\r\n\r\n", 431},
      {"600 headers", many_headers + "\r\n", 431},
      {"uri over 8 KiB", "GET /" + std::string(9000, 'u') + " HTTP/1.1\r\n\r\n", 414},
      {"declared body too large",
       "POST /livez HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n", 413},
      {"chunked body too large",
       "POST /livez HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1000\r\n" + chunk +
           "\r\n1000\r\n" + chunk + "\r\n",
       413},
      {"method", "DELETE /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 405},
      {"unknown path", "GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 404},
      {"truncated request line", "GET /hea", 0},
      {"truncated headers", "GET /health HTTP/1.1\r\nHost: x\r\nUser-Ag", 0},
      {"truncated body", "POST /livez HTTP/1.1\r\nContent-Length: 50\r\n\r\nabc", 0},
  };
}

// What the test saw; a mismatch is recorded only when the connection limit was not
// saturated by the test's own flood at the time.
struct Findings {
  std::mutex mu;
  std::vector<std::string> problems;
  std::atomic<int> cases{0};
  void Add(const std::string& p) {
    std::lock_guard<std::mutex> l(mu);
    if (problems.size() < 50) problems.push_back(p);
  }
};

TEST_F(HttpE2e, HostileClientsWhileSyncingLeaveTheMirrorExactAndLivezAnswering) {
  if (skipped_) return;
  Node n = StartNode("a", [](AgentConfig& c) { c.http_max_connections = kMaxConnections; });
  ASSERT_TRUE(WaitLeader(n, seconds(15)));
  ASSERT_TRUE(ExpectCaughtUp(n.config, n.agent));
  const std::string host = n.http.host;
  const int port = n.http.port;

  RandomWriter::Options wo;
  wo.max_txn_rows = 20;
  wo.pause_us = 2000;
  wo.seed = 6;
  RandomWriter writer(db_path_, wo);
  writer.Start();

  std::atomic<bool> stop{false};
  std::atomic<int> saturating{0};  // > 0 while the test floods the connection limit
  Findings found;

  // The sampler: GET /livez every 50 ms on a fresh connection.
  struct Sample {
    int status;
    double seconds;
    bool exempt;
  };
  std::vector<Sample> samples;
  std::thread sampler([&] {
    while (!stop) {
      bool exempt = saturating > 0;
      auto t0 = Clock::now();
      std::optional<HttpReply> r = testing::HttpGet(host, port, "/livez", 1000);
      double s = std::chrono::duration<double>(Clock::now() - t0).count();
      exempt = exempt || saturating > 0;
      samples.push_back({r ? r->status : 0, s, exempt});
      std::this_thread::sleep_for(milliseconds(50));
    }
  });

  // Two workers: malformed, truncated, oversized requests, a pipelined valid burst, each on
  // its own connection, one connection at a time each.
  std::vector<HostileCase> cases = HostileCases();
  auto worker = [&](int id) {
    for (size_t i = 0; !stop; ++i) {
      const HostileCase& c = cases[(i * 7 + static_cast<size_t>(id)) % cases.size()];
      bool exempt = saturating > 0;
      HttpConn conn(host, port, 2000);
      std::string what;
      if (i % 10 == 9) {  // valid, pipelined on one keep-alive connection
        conn.Send(
            "GET /livez HTTP/1.1\r\nHost: x\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\n\r\n"
            "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        for (const char* path : {"/livez", "/health", "/metrics"}) {
          std::optional<HttpReply> r = conn.Read();
          if (!r || r->status != 200) what += std::string(" pipelined ") + path + " failed;";
        }
      } else if (c.status == 0) {
        conn.Send(c.bytes);  // and hang up before the request is complete
      } else {
        conn.Send(c.bytes);  // may fail part way: the server answers and stops reading
        std::optional<HttpReply> r = conn.Read();
        if (!r) {
          what = std::string(c.name) + ": no reply";
        } else if (r->status != c.status) {
          what = std::string(c.name) + ": status " + std::to_string(r->status);
        } else if (!conn.WaitClosed(2000)) {
          what = std::string(c.name) + ": the server kept the connection open after an error";
        }
      }
      conn.Close();
      ++found.cases;
      exempt = exempt || saturating > 0;
      if (!what.empty() && !exempt) found.Add(what);
      std::this_thread::sleep_for(milliseconds(10));
    }
  };

  // Two slow clients: a byte every 200 ms, either a short complete request (answered) or an
  // endless header (closed by the server's request timeout, 5 s).
  auto slow = [&](int id) {
    for (int round = 0; !stop; ++round) {
      bool endless = (round + id) % 2 == 0;
      std::string bytes = endless ? "GET /livez HTTP/1.1\r\nX-Slow: " + std::string(200, 's')
                                  : std::string("GET / HTTP/1.0\r\n\r\n");
      bool exempt = saturating > 0;
      HttpConn conn(host, port, 2000);
      auto t0 = Clock::now();
      bool closed = false;
      for (size_t i = 0; i < bytes.size() && !stop; ++i) {
        if (!conn.Send(bytes.substr(i, 1))) {
          closed = true;
          break;
        }
        if (endless) {  // waits 200 ms, or sees the server close
          if (conn.WaitClosed(200)) {
            closed = true;
            break;
          }
        } else if (i + 1 < bytes.size()) {  // the reply to the last byte must stay unread
          std::this_thread::sleep_for(milliseconds(200));
        }
      }
      double s = std::chrono::duration<double>(Clock::now() - t0).count();
      exempt = exempt || saturating > 0;
      std::string what;
      if (endless && (!closed || s < 4.0 || s > 7.5)) {
        what = "slowloris: " + std::string(closed ? "closed" : "not closed") + " after " +
               std::to_string(s) + " s (request timeout 5 s)";
      } else if (!endless && !stop) {
        std::optional<HttpReply> r = conn.Read();
        if (!r || r->status != 404) what = "slow complete request: no 404";
      }
      ++found.cases;
      if (!what.empty() && !exempt && !stop) found.Add(what);
    }
  };

  // One idle client: connects, says nothing for 2 s, hangs up (the idle timeout is 10 s).
  auto idle = [&] {
    while (!stop) {
      HttpConn conn(host, port, 2000);
      conn.WaitClosed(2000);
      ++found.cases;
    }
  };

  // The flood: more connections than max_connections at once. Connections beyond the
  // limit get 503 or are closed; the ones within it are served.
  int flood_served = 0, flood_refused = 0;
  auto flood = [&] {
    ++saturating;
    std::vector<std::unique_ptr<HttpConn>> conns;
    for (int i = 0; i < kMaxConnections + 6; ++i) {
      conns.push_back(std::make_unique<HttpConn>(host, port, 2000));
    }
    std::this_thread::sleep_for(milliseconds(200));  // the loop accepts or refuses each
    for (auto& c : conns) c->Send("GET /livez HTTP/1.1\r\nHost: x\r\n\r\n");
    for (auto& c : conns) {
      std::optional<HttpReply> r = c->Read();
      if (r && r->status == 200) {
        ++flood_served;
      } else {
        ++flood_refused;
      }
    }
    conns.clear();
    std::this_thread::sleep_for(milliseconds(500));  // the server counts them closed
    --saturating;
  };

  std::vector<std::thread> threads;
  threads.emplace_back(worker, 0);
  threads.emplace_back(worker, 1);
  threads.emplace_back(slow, 0);
  threads.emplace_back(slow, 1);
  threads.emplace_back(idle);
  for (int round = 0; round < 3; ++round) {
    std::this_thread::sleep_for(seconds(3));
    flood();
  }
  std::this_thread::sleep_for(seconds(1));
  stop = true;
  for (std::thread& t : threads) t.join();
  sampler.join();
  writer.Stop();

  EXPECT_TRUE(writer.errors().empty()) << writer.errors().front();
  std::cerr << "hostile clients: " << found.cases << " case(s), " << writer.changes()
            << " change(s) written; flood: " << flood_served << " served, " << flood_refused
            << " refused\n";
  EXPECT_GE(found.cases, 300);
  for (const std::string& p : found.problems) ADD_FAILURE() << p;
  // The limit held and was exercised: each flood round had 6 more than it allows.
  EXPECT_LE(flood_served, 3 * kMaxConnections);
  EXPECT_GE(flood_refused, 3 * 6);

  int counted = 0, exempt = 0;
  for (const Sample& s : samples) {
    if (s.exempt) {
      ++exempt;
      continue;
    }
    ++counted;
    EXPECT_EQ(s.status, 200) << "a /livez sample failed (" << s.seconds << " s)";
    EXPECT_LT(s.seconds, 1.0) << "a /livez sample took " << s.seconds << " s";
  }
  std::cerr << "/livez samples: " << counted << " while not flooded (all checked), " << exempt
            << " during the floods\n";
  EXPECT_GE(counted, 100);

  EXPECT_TRUE(n.agent->Running()) << "the agent died";
  ASSERT_TRUE(ExpectCaughtUp(n.config, n.agent));
  ExpectMirrorEqual(*app_);
  EXPECT_EQ(Status(n, "/livez"), 200);
}

// ---------------------------------------------------------------- a real Prometheus

TEST_F(HttpE2e, PrometheusScrapesThePairUpAndOneLeader) {
  if (skipped_) return;
  ASSERT_NO_FATAL_FAILURE(StartPair());
  int web_port = FreePort();
  ASSERT_GT(web_port, 0);
  std::string config = dir_->file("prometheus.yml");
  WriteFile(config,
            "global:\n"
            "  scrape_interval: 1s\n"
            "  scrape_timeout: 1s\n"
            "scrape_configs:\n"
            "  - job_name: sluice\n"
            "    static_configs:\n"
            "      - targets: ['" +
                a_.http.Text() + "', '" + b_.http.Text() + "']\n");
  testing::ChildProcess prom({EnvOr("PROMETHEUS", "prometheus"), "--config.file=" + config,
                              "--storage.tsdb.path=" + dir_->file("tsdb"),
                              "--web.listen-address=127.0.0.1:" + std::to_string(web_port)},
                             dir_->file("prometheus.log"), "prometheus");
  prom.Start();
  auto api = [&](const std::string& path) {
    return testing::HttpGet("127.0.0.1", web_port, path, 2000);
  };
  bool ready = WaitUntil(
      [&] {
        if (!prom.Running()) return true;
        std::optional<HttpReply> r = api("/-/ready");
        return r && r->status == 200;
      },
      seconds(30));
  ASSERT_TRUE(ready && prom.Running()) << "Prometheus did not come up:\n"
                                       << TailLines(prom.Log(), 40);

  // The instant vector of `query` as {instance, value} pairs; nullopt unless the API says
  // success.
  using Vector = std::vector<std::pair<std::string, std::string>>;
  auto query = [&](const std::string& q) -> std::optional<Vector> {
    std::optional<HttpReply> r = api("/api/v1/query?query=" + UrlEncode(q));
    if (!r || r->status != 200) return std::nullopt;
    simdjson::dom::parser parser;
    simdjson::dom::element doc;
    if (parser.parse(r->body).get(doc) != simdjson::SUCCESS) return std::nullopt;
    std::string_view status;
    simdjson::dom::array result;
    if (doc["status"].get(status) != simdjson::SUCCESS || status != "success" ||
        doc["data"]["result"].get(result) != simdjson::SUCCESS) {
      return std::nullopt;
    }
    Vector out;
    for (simdjson::dom::element series : result) {
      std::string_view instance, value;
      if (series["metric"]["instance"].get(instance) != simdjson::SUCCESS) instance = "";
      if (series["value"].at(1).get(value) != simdjson::SUCCESS) return std::nullopt;
      out.emplace_back(std::string(instance), std::string(value));
    }
    return out;
  };

  Vector up, leaders;
  bool seen = WaitUntil(
      [&] {
        up = query("up == 1").value_or(Vector{});
        leaders = query("sum(sluice_leader)").value_or(Vector{});
        std::sort(up.begin(), up.end());
        Vector want = {{a_.http.Text(), "1"}, {b_.http.Text(), "1"}};
        std::sort(want.begin(), want.end());
        return up == want && leaders.size() == 1 && leaders[0].second == "1";
      },
      seconds(30));
  auto show = [](const Vector& v) {
    std::string s;
    for (const auto& [i, x] : v) s += i + "=" + x + " ";
    return s;
  };
  EXPECT_TRUE(seen) << "up == 1: " << show(up) << "; sum(sluice_leader): " << show(leaders) << "\n"
                    << TailLines(prom.Log(), 40);
  std::optional<Vector> targets = query("count(sluice_build_info)");
  ASSERT_TRUE(targets.has_value());
  EXPECT_EQ(show(*targets), "=2 ");

  EXPECT_EQ(prom.Stop(seconds(15)), 0) << TailLines(prom.Log(), 40);
  EXPECT_TRUE(a_.agent->Running());
  EXPECT_TRUE(b_.agent->Running());
}

}  // namespace
}  // namespace sluice::e2e
