// TLS to the sink (issue #8, "Connection security"): a PostgreSQL of the
// test's own with ssl=on and a certificate from a test CA made with openssl.
// sslmode=verify-full with sslrootcert syncs end to end over TLS (the server's
// pg_stat_ssl says so); a server whose certificate names another host, or
// comes from another CA, is refused by `sluice init` and `sluice run` with a
// message that says why, and `run` stops instead of retrying forever.
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <memory>
#include <string>

#include "tests/integration/e2e_support.h"
#include "tests/integration/scratch_cluster.h"

namespace sluice::e2e {
namespace {

// A free TCP port on the loopback (the kernel's pick; free again once closed).
int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  ::close(fd);
  return port;
}

class Ssl : public E2eTest {
 protected:
  void SetUp() override {
    E2eTest::SetUp();
    if (skipped_) return;
    // The server's files live where its user can read them (it is `postgres`
    // when the tests run as root); the key must be its own, mode 0600.
    char tmpl[] = "/tmp/sluice-ssl.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    certs_ = tmpl;
    OpenSsl({"req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", certs_ + "/ca.key", "-out",
             certs_ + "/ca.crt", "-subj", "/CN=sluice test CA", "-days", "2"});
    OpenSsl({"req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", certs_ + "/other-ca.key",
             "-out", certs_ + "/other-ca.crt", "-subj", "/CN=another CA", "-days", "2"});
    // The server's certificate names localhost only (no IP address).
    WriteFile(certs_ + "/ext.cnf", "subjectAltName=DNS:localhost\n");
    OpenSsl({"req", "-newkey", "rsa:2048", "-nodes", "-keyout", certs_ + "/server.key", "-out",
             certs_ + "/server.csr", "-subj", "/CN=localhost"});
    OpenSsl({"x509", "-req", "-in", certs_ + "/server.csr", "-CA", certs_ + "/ca.crt", "-CAkey",
             certs_ + "/ca.key", "-CAcreateserial", "-out", certs_ + "/server.crt", "-days", "2",
             "-extfile", certs_ + "/ext.cnf"});
    ::chmod((certs_ + "/server.key").c_str(), 0600);
    ::chmod(certs_.c_str(), 0755);
    if (::geteuid() == 0) {
      struct passwd* pw = ::getpwnam("postgres");
      ASSERT_NE(pw, nullptr);
      for (const char* f : {"server.key", "server.crt"}) {
        ASSERT_EQ(::chown((certs_ + "/" + f).c_str(), pw->pw_uid, pw->pw_gid), 0);
      }
    }
    port_ = FreePort();
    ASSERT_GT(port_, 0);
    server_ = std::make_unique<ScratchCluster>(std::vector<std::string>{
        "listen_addresses=127.0.0.1", "port=" + std::to_string(port_), "ssl=on",
        "ssl_cert_file=" + certs_ + "/server.crt", "ssl_key_file=" + certs_ + "/server.key"});
  }
  void TearDown() override {
    server_.reset();
    std::error_code ec;
    if (!certs_.empty()) std::filesystem::remove_all(certs_, ec);
    E2eTest::TearDown();
  }

  void OpenSsl(std::vector<std::string> args) {
    args.insert(args.begin(), "openssl");
    CommandResult r = RunCommand(args, seconds(60));
    ASSERT_EQ(r.exit_code, 0) << r.Describe();
  }

  // The scratch server over TCP as `host`, verify-full against `ca`.
  std::string Url(const std::string& host, const std::string& ca) {
    return "host=" + host + " port=" + std::to_string(port_) +
           " user=postgres dbname=postgres sslmode=verify-full sslrootcert=" + certs_ + "/" + ca;
  }

  // A small Open WebUI-like app file and a config naming `sink_url`.
  std::string Prepare(const std::string& sink_url, const std::string& name = "sluice.json") {
    db_path_ = dir_->file("app.db");
    if (!std::filesystem::exists(db_path_)) {
      Sqlite db(db_path_);
      db.Exec("PRAGMA journal_mode=WAL");
      db.Exec("CREATE TABLE chat (id VARCHAR(255) NOT NULL PRIMARY KEY, title TEXT NOT NULL)");
      db.Exec("INSERT INTO chat VALUES ('c1', 'over TLS')");
    }
    return WriteConfig(db_path_, sink_url, nullptr, name);
  }

  std::string certs_;
  int port_ = 0;
  std::unique_ptr<ScratchCluster> server_;
  std::string db_path_;
};

TEST_F(Ssl, VerifyFullSyncsEndToEndOverTls) {
  if (skipped_) return;
  std::string config = Prepare(Url("localhost", "ca.crt"));
  ASSERT_EQ(Init(config).exit_code, 0);
  AgentProcess* agent = StartAgent(config);
  ASSERT_TRUE(ExpectCaughtUp(config, agent, seconds(30)));
  {
    Sqlite db(db_path_);
    db.Exec("INSERT INTO chat VALUES ('c2', 'also over TLS')");
  }
  ASSERT_TRUE(ExpectCaughtUp(config, agent, seconds(30)));
  // Its Unix socket (not TLS itself), under the port it listens on.
  Pg server(server_->conninfo() + " port=" + std::to_string(port_));
  EXPECT_EQ(server
                .Scalar("SELECT string_agg(id || '=' || title, ',' ORDER BY id) FROM \"" +
                        deployment_ + "\".chat")
                .value_or(""),
            "c1=over TLS,c2=also over TLS");
  // Every client connection of the agent's is TLS, and verified by it.
  EXPECT_GE(server.ScalarInt("SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a "
                             "USING (pid) WHERE a.client_addr IS NOT NULL AND s.ssl"),
            1);
  EXPECT_EQ(server.ScalarInt("SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a "
                             "USING (pid) WHERE a.client_addr IS NOT NULL AND NOT s.ssl"),
            0);
  agent->Signal(SIGTERM);
  EXPECT_EQ(agent->WaitExit(seconds(30)), 0);
}

// The certificate names localhost; the config says 127.0.0.1 (the same server):
// verify-full must refuse it, and so must a certificate from another CA.
TEST_F(Ssl, ServerCertificateForAnotherHostOrFromAnotherCaIsRefused) {
  if (skipped_) return;
  // The app file is prepared through a good connection first, so `run` below
  // gets as far as the sink.
  ASSERT_EQ(Init(Prepare(Url("localhost", "ca.crt"))).exit_code, 0);
  struct Bad {
    std::string url;
    std::string says;
  };
  for (const Bad& bad : {Bad{Url("127.0.0.1", "ca.crt"), "does not match host name \"127.0.0.1\""},
                         Bad{Url("localhost", "other-ca.crt"), "certificate verify failed"}}) {
    SCOPED_TRACE(bad.url);
    std::string config = Prepare(bad.url, "bad.json");
    CommandResult init = RunSluice({"init", "--config", config}, seconds(30));
    EXPECT_NE(init.exit_code, 0) << init.Describe();
    EXPECT_TRUE(ContainsNoCase(init.err, bad.says)) << init.Describe();
    // `run` stops (the config or the server's certificate must change) and says why.
    CommandResult run = RunSluice({"run", "--config", config}, seconds(20));
    EXPECT_FALSE(run.timed_out) << "sluice run kept retrying\n" << run.Describe();
    EXPECT_EQ(run.exit_code, 2) << run.Describe();
    EXPECT_TRUE(ContainsNoCase(run.err, bad.says)) << run.Describe();
  }
}

}  // namespace
}  // namespace sluice::e2e
