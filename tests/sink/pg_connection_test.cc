// PgConnection against a real PostgreSQL (SLUICE_TEST_PG) on a real libuv loop;
// the error-mapping rules are unit-tested in pg_error_test.cc.
// Every test closes its connections and asserts uv_loop_close() == 0.
#include "sink/pg_connection.h"

#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tests/support/sql_clients.h"
#include "tests/test_support.h"

namespace sluice {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

// ------------------------------------------------------------ loop fixture

// Adds keyword=value to a conninfo string or URI.
std::string WithOption(const std::string& conninfo, const std::string& key,
                       const std::string& value) {
  if (conninfo.rfind("postgres://", 0) == 0 || conninfo.rfind("postgresql://", 0) == 0) {
    return conninfo + (conninfo.find('?') == std::string::npos ? "?" : "&") + key + "=" + value;
  }
  return conninfo + " " + key + "='" + value + "'";
}

class PgConnectionTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(uv_loop_init(&loop_), 0); }

  void TearDown() override {
    int rc = uv_loop_close(&loop_);
    EXPECT_EQ(rc, 0) << "a libuv handle was left open";
    if (rc != 0) {  // close stragglers so the next test starts clean
      uv_walk(
          &loop_,
          [](uv_handle_t* h, void*) {
            if (!uv_is_closing(h)) uv_close(h, nullptr);
          },
          nullptr);
      uv_run(&loop_, UV_RUN_DEFAULT);
      uv_loop_close(&loop_);
    }
  }

  // Runs the loop until done() or the limit; a ticking timer keeps
  // UV_RUN_ONCE from blocking forever when nothing else is pending.
  bool RunUntil(const std::function<bool()>& done, milliseconds limit = milliseconds(20000)) {
    uv_timer_t tick;
    uv_timer_init(&loop_, &tick);
    uv_timer_start(
        &tick, [](uv_timer_t*) {}, 10, 10);
    auto deadline = steady_clock::now() + limit;
    while (!done() && steady_clock::now() < deadline) uv_run(&loop_, UV_RUN_ONCE);
    uv_close(reinterpret_cast<uv_handle_t*>(&tick), nullptr);
    uv_run(&loop_, UV_RUN_NOWAIT);  // runs the close callback
    return done();
  }

  Status ConnectSync(PgConnection& c) {
    std::optional<Status> got;
    c.Connect([&](Status s) { got = std::move(s); });
    EXPECT_FALSE(got.has_value()) << "Connect must answer from the loop, not inline";
    EXPECT_TRUE(RunUntil([&] { return got.has_value(); })) << "Connect timed out";
    return got.value_or(Status::Internal("no answer"));
  }

  std::pair<Status, std::vector<PgResult>> SubmitSync(PgConnection& c,
                                                      std::vector<PgQuery> queries) {
    std::optional<std::pair<Status, std::vector<PgResult>>> got;
    c.Submit(std::move(queries),
             [&](Status s, std::vector<PgResult> r) { got.emplace(std::move(s), std::move(r)); });
    EXPECT_TRUE(RunUntil([&] { return got.has_value(); })) << "Submit timed out";
    if (!got) return {Status::Internal("no answer"), {}};
    return std::move(*got);
  }

  void CloseSync(PgConnection& c) {
    bool closed = false;
    c.Close([&] { closed = true; });
    EXPECT_FALSE(closed) << "Close must complete from the loop";
    EXPECT_TRUE(RunUntil([&] { return closed; }));
    EXPECT_FALSE(c.connected());
  }

  static PgQuery Q(std::string sql, std::vector<std::optional<std::string>> params = {}) {
    return PgQuery{std::move(sql), std::move(params)};
  }

  // The basic pipeline: DDL, parameters with NULL / 10 MB / unicode, a read back.
  void RunBasicPipeline(const std::string& conninfo) {
    testing::Pg admin(conninfo);
    std::string t = testing::UniqueName("pgc_basic");
    PgConnection c(&loop_, conninfo);
    Status st = ConnectSync(c);
    ASSERT_TRUE(st.ok()) << st.ToString();
    EXPECT_TRUE(c.connected());

    const std::string big(10 * 1024 * 1024, 'x');
    const std::string unicode =
        "h\xC3\xA9llo w\xC3\xB6rld \xE2\x9C\x93 \xE6\x97\xA5\xE6\x9C\xAC "
        "\xF0\x9F\x8E\x89 'quoted' \"double\" \\back";
    auto [s, res] = SubmitSync(
        c,
        {Q("CREATE TABLE " + t + " (id int PRIMARY KEY, a text, b text)"),
         Q("INSERT INTO " + t + " VALUES ($1, $2, $3)", {"1", std::nullopt, "plain"}),
         Q("INSERT INTO " + t + " VALUES ($1, $2, $3)", {"2", big, std::nullopt}),
         Q("INSERT INTO " + t + " VALUES ($1, $2, $3), ($4, $2, $3)", {"3", unicode, unicode, "4"}),
         Q("SELECT id, a, b, length(a) FROM " + t + " ORDER BY id"),
         Q("UPDATE " + t + " SET b = $1 WHERE id > $2", {"u", "1"})});
    ASSERT_TRUE(s.ok()) << s.ToString();
    ASSERT_EQ(res.size(), 6u);
    EXPECT_EQ(res[0].affected, 0);
    EXPECT_EQ(res[1].affected, 1);
    EXPECT_EQ(res[3].affected, 2);
    EXPECT_EQ(res[5].affected, 3);
    const auto& rows = res[4].rows;
    ASSERT_EQ(rows.size(), 4u);
    EXPECT_EQ(rows[0][0], "1");
    EXPECT_EQ(rows[0][1], std::nullopt);
    EXPECT_EQ(rows[0][2], "plain");
    EXPECT_EQ(rows[0][3], std::nullopt);
    EXPECT_EQ(rows[1][1], big);
    EXPECT_EQ(rows[1][2], std::nullopt);
    EXPECT_EQ(rows[1][3], std::to_string(big.size()));
    EXPECT_EQ(rows[2][1], unicode);
    EXPECT_EQ(rows[3][2], unicode);
    EXPECT_EQ(admin.Scalar("SELECT count(*) FROM " + t + " WHERE b = 'u'"), "3");

    auto [s2, res2] = SubmitSync(c, {});  // an empty pipeline is just a Sync
    EXPECT_TRUE(s2.ok()) << s2.ToString();
    EXPECT_TRUE(res2.empty());
    CloseSync(c);
    admin.Query("DROP TABLE " + t);
  }

  void RunTransactionAcrossSubmits(const std::string& conninfo) {
    testing::Pg admin(conninfo);
    std::string t = testing::UniqueName("pgc_txn");
    admin.Query("CREATE TABLE " + t + " (id int PRIMARY KEY)");
    PgConnection c(&loop_, conninfo);
    ASSERT_TRUE(ConnectSync(c).ok());
    auto [s1, r1] = SubmitSync(c, {Q("BEGIN"), Q("INSERT INTO " + t + " VALUES (1)")});
    ASSERT_TRUE(s1.ok()) << s1.ToString();
    EXPECT_EQ(admin.Scalar("SELECT count(*) FROM " + t), "0");  // not committed yet
    auto [s2, r2] = SubmitSync(c, {Q("INSERT INTO " + t + " VALUES (2)"), Q("COMMIT")});
    ASSERT_TRUE(s2.ok()) << s2.ToString();
    EXPECT_EQ(admin.Scalar("SELECT count(*) FROM " + t), "2");
    CloseSync(c);
    admin.Query("DROP TABLE " + t);
  }

  // COPY FROM STDIN between pipelined queries of one explicit transaction:
  // escapes, NULL, a 4 MB value, unicode; the rows copied as `affected`;
  // results in order; a COPY the server refuses (a duplicate key) names its
  // query and sends nothing after it; the connection stays usable.
  void RunCopyBetweenQueries(const std::string& conninfo) {
    testing::Pg admin(conninfo);
    std::string t = testing::UniqueName("pgc_copy");
    admin.Query("CREATE TABLE " + t + " (id int PRIMARY KEY, a text, b bytea)");
    PgConnection c(&loop_, conninfo);
    ASSERT_TRUE(ConnectSync(c).ok());
    const std::string big(4 * 1024 * 1024, 'y');
    std::string data = "1\ttab\\there\\nnewline\t\\\\x00ff\n";
    data += "2\t\\N\t\\N\n";
    data += "3\t" + big + "\t\\N\n";
    data += "4\th\xC3\xA9llo \xF0\x9F\x8E\x89\t\\N\n";
    auto [s, res] =
        SubmitSync(c, {Q("BEGIN"), Q("INSERT INTO " + t + " VALUES (0, 'before', NULL)"),
                       PgQuery::Copy("COPY " + t + " (id, a, b) FROM STDIN", data),
                       Q("SELECT count(*) FROM " + t),
                       PgQuery::Copy("COPY " + t + " FROM STDIN", "5\tx\t\\N\n"), Q("COMMIT")});
    ASSERT_TRUE(s.ok()) << s.ToString();
    ASSERT_EQ(res.size(), 6u);
    EXPECT_EQ(res[2].affected, 4);
    EXPECT_EQ(res[3].rows.at(0).at(0), "5");
    EXPECT_EQ(res[4].affected, 1);
    EXPECT_EQ(admin.Scalar("SELECT a || '|' || encode(b, 'hex') FROM " + t + " WHERE id = 1"),
              std::string("tab\there\nnewline|00ff"));
    EXPECT_EQ(admin.Scalar("SELECT a IS NULL AND b IS NULL FROM " + t + " WHERE id = 2"), "t");
    EXPECT_EQ(admin.Scalar("SELECT length(a) FROM " + t + " WHERE id = 3"),
              std::to_string(big.size()));
    EXPECT_EQ(admin.Scalar("SELECT a FROM " + t + " WHERE id = 4"),
              "h\xC3\xA9llo \xF0\x9F\x8E\x89");

    auto [s2, r2] = SubmitSync(
        c, {Q("BEGIN"), PgQuery::Copy("COPY " + t + " (id, a) FROM STDIN", "6\tnew\n1\tdup\n"),
            Q("INSERT INTO " + t + " VALUES (7, 'never', NULL)"), Q("COMMIT")});
    EXPECT_EQ(s2.code(), Status::Code::kDataError) << s2.ToString();
    EXPECT_NE(s2.message().find("query 2 of 4 failed: SQLSTATE 23505"), std::string::npos)
        << s2.message();
    EXPECT_TRUE(c.connected());
    auto [s3, r3] = SubmitSync(c, {Q("ROLLBACK"), Q("SELECT count(*) FROM " + t)});
    ASSERT_TRUE(s3.ok()) << s3.ToString();
    EXPECT_EQ(r3.at(1).rows.at(0).at(0), "6");
    // A COPY TO given as one FROM STDIN: refused, named, the connection given
    // up (its protocol state is not known), never a loop.
    auto [s4, r4] = SubmitSync(c, {PgQuery::Copy("COPY (SELECT 1) TO STDOUT", "")});
    EXPECT_EQ(s4.code(), Status::Code::kInternal) << s4.ToString();
    EXPECT_NE(s4.message().find("not a COPY FROM STDIN"), std::string::npos) << s4.message();
    EXPECT_FALSE(c.connected());
    CloseSync(c);
    admin.Query("DROP TABLE " + t);
  }

  uv_loop_t loop_;
};

TEST_F(PgConnectionTest, CopyBetweenPipelinedQueries) {
  std::string pg = testing::PgConninfoOrSkip();
  if (pg.empty()) return;
  RunCopyBetweenQueries(pg);
}

TEST_F(PgConnectionTest, PipelineWithNullLargeAndUnicodeParams) {
  std::string pg = testing::PgConninfoOrSkip();
  if (pg.empty()) return;
  RunBasicPipeline(pg);
}

TEST_F(PgConnectionTest, ExplicitTransactionSpansSubmits) {
  std::string pg = testing::PgConninfoOrSkip();
  if (pg.empty()) return;
  RunTransactionAcrossSubmits(pg);
}

TEST_F(PgConnectionTest, ErrorInQueryTwoRollsBackAndConnectionStaysUsable) {
  std::string pg = testing::PgConninfoOrSkip();
  if (pg.empty()) return;
  testing::Pg admin(pg);
  std::string t = testing::UniqueName("pgc_err");
  admin.Query("CREATE TABLE " + t + " (id int PRIMARY KEY)");
  PgConnection c(&loop_, pg);
  ASSERT_TRUE(ConnectSync(c).ok());

  auto [s, res] = SubmitSync(c, {Q("INSERT INTO " + t + " VALUES ($1)", {"1"}),
                                 Q("INSERT INTO " + t + " VALUES ($1)", {"1"}),
                                 Q("INSERT INTO " + t + " VALUES ($1)", {"2"})});
  EXPECT_EQ(s.code(), Status::Code::kDataError) << s.ToString();
  EXPECT_NE(s.message().find("query 2 of 3 failed: SQLSTATE 23505"), std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find("already exists"), std::string::npos) << s.message();  // detail
  EXPECT_TRUE(res.empty());
  EXPECT_TRUE(c.connected());

  // The implicit transaction rolled back: query 1's row is gone too.
  auto [s2, res2] = SubmitSync(c, {Q("SELECT count(*) FROM " + t)});
  ASSERT_TRUE(s2.ok()) << s2.ToString();
  ASSERT_EQ(res2.size(), 1u);
  EXPECT_EQ(res2[0].rows.at(0).at(0), "0");

  // A bad cast is class 22; a syntax error is kInternal.
  auto [s3, r3] = SubmitSync(c, {Q("SELECT $1::int", {"abc"})});
  EXPECT_EQ(s3.code(), Status::Code::kDataError) << s3.ToString();
  EXPECT_NE(s3.message().find("query 1 of 1 failed: SQLSTATE 22P02"), std::string::npos);
  auto [s4, r4] = SubmitSync(c, {Q("SELECT 1"), Q("SELEC 2")});
  EXPECT_EQ(s4.code(), Status::Code::kInternal) << s4.ToString();
  EXPECT_NE(s4.message().find("query 2 of 2 failed: SQLSTATE 42601"), std::string::npos);

  // A NUL byte cannot travel as text: refused before sending, connection intact.
  auto [s5, r5] = SubmitSync(c, {Q("SELECT $1", {std::string("a\0b", 3)})});
  EXPECT_EQ(s5.code(), Status::Code::kDataError) << s5.ToString();
  auto [s6, r6] = SubmitSync(c, {Q("SELECT 1")});
  EXPECT_TRUE(s6.ok()) << s6.ToString();
  CloseSync(c);
  admin.Query("DROP TABLE " + t);
}

TEST_F(PgConnectionTest, SluiceErrcodesMapToConflictFencedCorruption) {
  std::string pg = testing::PgConninfoOrSkip();
  if (pg.empty()) return;
  PgConnection c(&loop_, pg);
  ASSERT_TRUE(ConnectSync(c).ok());
  auto raise = [](const char* code) {
    return Q(std::string("DO $$ BEGIN RAISE EXCEPTION 'sluice says %', '") + code +
             "' USING ERRCODE = '" + code + "'; END $$");
  };
  auto [s1, r1] = SubmitSync(c, {Q("SELECT 1"), raise("SL001")});
  EXPECT_EQ(s1.code(), Status::Code::kConflict) << s1.ToString();
  EXPECT_NE(s1.message().find("query 2 of 2 failed: SQLSTATE SL001: sluice says SL001"),
            std::string::npos)
      << s1.message();
  auto [s2, r2] = SubmitSync(c, {raise("SL002")});
  EXPECT_EQ(s2.code(), Status::Code::kFenced) << s2.ToString();
  auto [s3, r3] = SubmitSync(c, {raise("SL003")});
  EXPECT_EQ(s3.code(), Status::Code::kCorruption) << s3.ToString();
  CloseSync(c);
}

TEST_F(PgConnectionTest, WrongPasswordIsInvalidArgumentWithoutThePassword) {
  std::string pg = testing::PgConninfoOrSkip();
  if (pg.empty()) return;
  testing::Pg admin(pg);
  std::string role = testing::UniqueName("pgc_role");
  admin.Query("CREATE ROLE " + role + " LOGIN PASSWORD 'right-password-1'");
  const std::string secret = "wrong-secret-Zq81";
  // Over TCP, where pg_virtualenv's cluster asks for a password.
  std::string ci =
      WithOption(WithOption(WithOption(pg, "host", "127.0.0.1"), "user", role), "password", secret);
  PgConnection c(&loop_, ci);
  Status s = ConnectSync(c);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << s.ToString();
  EXPECT_NE(s.message().find("authentication failed for user " + role + " on host 127.0.0.1"),
            std::string::npos)
      << s.message();
  EXPECT_EQ(s.message().find(secret), std::string::npos) << s.message();
  EXPECT_FALSE(c.connected());

  // The same object connects once the password is right.
  PgConnection good(&loop_, WithOption(ci, "password", "right-password-1"));
  Status g = ConnectSync(good);
  EXPECT_TRUE(g.ok()) << g.ToString();
  CloseSync(good);
  CloseSync(c);
  admin.Query("DROP ROLE " + role);
}

TEST_F(PgConnectionTest, BadConninfoIsInvalidArgumentWithoutThePassword) {
  PgConnection c(&loop_, "host=127.0.0.1 password=Sup3rSecretValue dbname");
  Status s = ConnectSync(c);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << s.ToString();
  EXPECT_EQ(s.message().find("Sup3rSecretValue"), std::string::npos) << s.message();
  CloseSync(c);
}

TEST_F(PgConnectionTest, UnreachablePortIsUnavailableQuickly) {
  PgConnection c(&loop_, "host=127.0.0.1 port=1 connect_timeout=5");
  auto start = steady_clock::now();
  Status s = ConnectSync(c);
  EXPECT_LT(steady_clock::now() - start, milliseconds(3000));
  EXPECT_EQ(s.code(), Status::Code::kUnavailable) << s.ToString();
  EXPECT_NE(s.message().find("cannot reach PostgreSQL at 127.0.0.1:1"), std::string::npos)
      << s.message();
  EXPECT_FALSE(c.connected());
  // A failed Connect may be retried (and fails the same way).
  EXPECT_EQ(ConnectSync(c).code(), Status::Code::kUnavailable);
  // Submit without a connection answers from the loop.
  auto [s2, r2] = SubmitSync(c, {Q("SELECT 1")});
  EXPECT_EQ(s2.code(), Status::Code::kUnavailable);
  CloseSync(c);
}

// A server that accepts TCP but never answers: libpq waits forever on its own
// (connect_timeout is only enforced by its blocking API), PgConnection must not.
TEST_F(PgConnectionTest, SilentServerHitsConnectTimeout) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(fd, 4), 0);
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  std::string port = std::to_string(ntohs(addr.sin_port));

  PgConnection c(&loop_, "host=127.0.0.1 port=" + port + " connect_timeout=2 sslmode=disable");
  auto start = steady_clock::now();
  Status s = ConnectSync(c);
  auto took = steady_clock::now() - start;
  EXPECT_EQ(s.code(), Status::Code::kUnavailable) << s.ToString();
  EXPECT_NE(
      s.message().find("cannot reach PostgreSQL at 127.0.0.1:" + port + ": connect timed out"),
      std::string::npos)
      << s.message();
  EXPECT_GE(took, milliseconds(1900));
  EXPECT_LT(took, milliseconds(4000));
  CloseSync(c);
  close(fd);
}

// Host names are resolved off the loop (uv_getaddrinfo) and handed to libpq
// as hostaddr; a name that does not resolve is an outage, retried.
TEST_F(PgConnectionTest, HostNamesAreResolvedBeforeLibpqConnects) {
  std::string pg = testing::PgConninfoOrSkip();
  if (pg.empty()) return;
  PgConnection c(&loop_, WithOption(pg, "host", "localhost"));
  Status s = ConnectSync(c);
  ASSERT_TRUE(s.ok()) << s.ToString();
  auto [q, r] = SubmitSync(c, {Q("SELECT inet_client_addr() IS NOT NULL")});
  ASSERT_TRUE(q.ok()) << q.ToString();
  EXPECT_EQ(r.at(0).rows.at(0).at(0), "t");  // TCP, not the Unix socket
  CloseSync(c);

  PgConnection bad(&loop_, "host=no-such-host.invalid port=5432 connect_timeout=5");
  Status b = ConnectSync(bad);
  EXPECT_EQ(b.code(), Status::Code::kUnavailable) << b.ToString();
  EXPECT_NE(b.message().find("cannot resolve host name no-such-host.invalid"), std::string::npos)
      << b.message();
  CloseSync(bad);
}

// A Submit that gets no reply within the deadline fails (kUnavailable), the
// connection is dropped, and a new Connect works.
TEST_F(PgConnectionTest, ReplyDeadlineDropsASilentConnection) {
  std::string pg = testing::PgConninfoOrSkip();
  if (pg.empty()) return;
  PgConnection c(&loop_, pg, /*query_timeout_ms=*/400);
  ASSERT_TRUE(ConnectSync(c).ok());
  auto start = steady_clock::now();
  auto [s, r] = SubmitSync(c, {Q("SELECT pg_sleep(5)")});
  auto took = steady_clock::now() - start;
  EXPECT_EQ(s.code(), Status::Code::kUnavailable) << s.ToString();
  EXPECT_NE(s.message().find("no reply from PostgreSQL"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("within 400 ms (sink.query_timeout_ms)"), std::string::npos)
      << s.message();
  EXPECT_GE(took, milliseconds(380));
  EXPECT_LT(took, milliseconds(2000));
  EXPECT_FALSE(c.connected());
  // Reconnected, a Submit that answers in time is not cut, and the deadline
  // restarts for each Submit.
  ASSERT_TRUE(ConnectSync(c).ok());
  for (int i = 0; i < 3; ++i) {
    auto [s2, r2] = SubmitSync(c, {Q("SELECT pg_sleep(0.25)")});
    EXPECT_TRUE(s2.ok()) << s2.ToString();
  }
  CloseSync(c);
}

TEST_F(PgConnectionTest, TerminatedBackendGivesUnavailableAndReconnects) {
  std::string pg = testing::PgConninfoOrSkip();
  if (pg.empty()) return;
  testing::Pg admin(pg);
  PgConnection c(&loop_, pg);
  ASSERT_TRUE(ConnectSync(c).ok());
  auto pid_of = [&]() -> std::string {
    auto [s, r] = SubmitSync(c, {Q("SELECT pg_backend_pid()")});
    EXPECT_TRUE(s.ok()) << s.ToString();
    return r.empty() ? "" : r[0].rows.at(0).at(0).value_or("");
  };

  // 1. Killed while idle and the loop not running: the next Submit finds out.
  std::string pid = pid_of();
  ASSERT_FALSE(pid.empty());
  EXPECT_EQ(admin.Scalar("SELECT pg_terminate_backend(" + pid + ", 5000)"), "t");
  auto [s1, r1] = SubmitSync(c, {Q("SELECT 1")});
  EXPECT_EQ(s1.code(), Status::Code::kUnavailable) << s1.ToString();
  EXPECT_FALSE(c.connected());

  // 2. Connect again works.
  Status again = ConnectSync(c);
  ASSERT_TRUE(again.ok()) << again.ToString();
  EXPECT_TRUE(c.connected());

  // 3. Killed while idle with the loop running: noticed without a Submit.
  pid = pid_of();
  ASSERT_FALSE(pid.empty());
  EXPECT_EQ(admin.Scalar("SELECT pg_terminate_backend(" + pid + ", 5000)"), "t");
  EXPECT_TRUE(RunUntil([&] { return !c.connected(); }, milliseconds(5000)));
  auto [s2, r2] = SubmitSync(c, {Q("SELECT 1")});
  EXPECT_EQ(s2.code(), Status::Code::kUnavailable) << s2.ToString();
  EXPECT_NE(s2.message().find("57P01"), std::string::npos) << s2.message();

  // 4. Killed in the middle of a Submit.
  ASSERT_TRUE(ConnectSync(c).ok());
  pid = pid_of();
  std::optional<Status> got;
  c.Submit({Q("SELECT pg_sleep(10)")}, [&](Status s, std::vector<PgResult>) { got = s; });
  RunUntil([] { return false; }, milliseconds(200));
  admin.Query("SELECT pg_terminate_backend(" + pid + ", 5000)");
  EXPECT_TRUE(RunUntil([&] { return got.has_value(); }, milliseconds(5000)));
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->code(), Status::Code::kUnavailable) << got->ToString();

  ASSERT_TRUE(ConnectSync(c).ok());
  auto [s3, r3] = SubmitSync(c, {Q("SELECT 1")});
  EXPECT_TRUE(s3.ok()) << s3.ToString();
  CloseSync(c);
}

TEST_F(PgConnectionTest, CloseAnswersPendingSubmitAndSecondSubmitIsRefused) {
  std::string pg = testing::PgConninfoOrSkip();
  if (pg.empty()) return;
  PgConnection c(&loop_, pg);
  ASSERT_TRUE(ConnectSync(c).ok());
  std::optional<Status> first, second;
  c.Submit({Q("SELECT pg_sleep(30)")}, [&](Status s, std::vector<PgResult>) { first = s; });
  c.Submit({Q("SELECT 1")}, [&](Status s, std::vector<PgResult>) { second = s; });
  RunUntil([&] { return second.has_value(); }, milliseconds(2000));
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->code(), Status::Code::kInternal) << second->ToString();
  EXPECT_FALSE(first.has_value());
  auto start = steady_clock::now();
  CloseSync(c);  // does not wait for pg_sleep
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->code(), Status::Code::kUnavailable);
  EXPECT_EQ(first->message(), "connection closed");
  EXPECT_LT(steady_clock::now() - start, milliseconds(5000));
}

TEST_F(PgConnectionTest, CloseWhileConnectingAndCloseWithoutConnect) {
  std::string pg = testing::PgConninfoOrSkip();
  if (pg.empty()) return;
  PgConnection never(&loop_, pg);
  CloseSync(never);

  PgConnection c(&loop_, pg);
  std::optional<Status> got;
  c.Connect([&](Status s) { got = s; });
  CloseSync(c);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->code(), Status::Code::kUnavailable);
}

TEST_F(PgConnectionTest, CallbackMaySubmitAgainAndClose) {
  std::string pg = testing::PgConninfoOrSkip();
  if (pg.empty()) return;
  PgConnection c(&loop_, pg);
  ASSERT_TRUE(ConnectSync(c).ok());
  int answered = 0;
  bool closed = false;
  std::function<void(Status, std::vector<PgResult>)> again = [&](Status s,
                                                                 std::vector<PgResult> r) {
    EXPECT_TRUE(s.ok()) << s.ToString();
    EXPECT_EQ(r.at(0).rows.at(0).at(0), std::to_string(answered));
    if (++answered < 5) {
      c.Submit({Q("SELECT $1::int", {std::to_string(answered)})}, again);
    } else {
      c.Close([&] { closed = true; });
    }
  };
  c.Submit({Q("SELECT 0")}, again);
  EXPECT_TRUE(RunUntil([&] { return closed; }));
  EXPECT_EQ(answered, 5);
}

// pgbouncer in transaction mode (stand-in for Supabase's pooler on 6543).
TEST_F(PgConnectionTest, ThroughPgbouncerTransactionMode) {
  const char* bouncer = std::getenv("SLUICE_TEST_PGBOUNCER");
  if (bouncer == nullptr || *bouncer == '\0') {
    GTEST_SKIP() << "SLUICE_TEST_PGBOUNCER not set (scripts/test.sh starts pgbouncer)";
  }
  RunBasicPipeline(bouncer);
  RunTransactionAcrossSubmits(bouncer);
  RunCopyBetweenQueries(bouncer);
  // An error inside a pipeline leaves the pooled server connection usable.
  PgConnection c(&loop_, bouncer);
  ASSERT_TRUE(ConnectSync(c).ok());
  for (int i = 0; i < 3; ++i) {
    auto [s, r] = SubmitSync(c, {Q("SELECT 1"), Q("SELECT 1/0"), Q("SELECT 2")});
    EXPECT_EQ(s.code(), Status::Code::kDataError) << s.ToString();
    auto [s2, r2] = SubmitSync(c, {Q("SELECT $1::text", {"ok"})});
    ASSERT_TRUE(s2.ok()) << s2.ToString();
    EXPECT_EQ(r2.at(0).rows.at(0).at(0), "ok");
  }
  CloseSync(c);
}

}  // namespace
}  // namespace sluice
