// Conninfo defaults, checks and resolved addresses (sink/pg_conninfo.h), with
// an injected environment: no server, no DNS.
#include "sink/pg_conninfo.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

namespace sluice::pg {
namespace {

EnvLookup Env(std::map<std::string, std::string> vars = {}) {
  return [vars = std::move(vars)](const char* name) -> const char* {
    auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  };
}

std::string Value(const ConnParams& p, const std::string& key) {
  std::string found = "<unset>";
  int n = 0;
  for (const auto& [k, v] : p) {
    if (k == key) {
      found = v;
      ++n;
    }
  }
  EXPECT_LE(n, 1) << key << " passed twice";
  return found;
}

TEST(PgConninfo, DefaultsForUnsetKeys) {
  Result<ConnParams> p = BuildConnParams("host=db.example dbname=app", 30000, Env());
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(Value(*p, "host"), "db.example");
  EXPECT_EQ(Value(*p, "dbname"), "app");
  EXPECT_EQ(Value(*p, "keepalives"), "1");
  EXPECT_EQ(Value(*p, "keepalives_idle"), "10");
  EXPECT_EQ(Value(*p, "keepalives_interval"), "5");
  EXPECT_EQ(Value(*p, "keepalives_count"), "3");
  EXPECT_EQ(Value(*p, "tcp_user_timeout"), "30000");
  EXPECT_EQ(Value(*p, "client_encoding"), "UTF8");
  EXPECT_EQ(Value(*p, "fallback_application_name"), "sluice");
}

TEST(PgConninfo, UserValuesWinInStringUriAndEnvironment) {
  Result<ConnParams> p =
      BuildConnParams("host=h keepalives=0 tcp_user_timeout=5 keepalives_idle=99", 30000, Env());
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(Value(*p, "keepalives"), "0");
  EXPECT_EQ(Value(*p, "tcp_user_timeout"), "5");
  EXPECT_EQ(Value(*p, "keepalives_idle"), "99");
  EXPECT_EQ(Value(*p, "keepalives_count"), "3");

  p = BuildConnParams("postgresql://u@h:6543/postgres?keepalives_count=7&sslmode=require", 1000,
                      Env());
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(Value(*p, "keepalives_count"), "7");
  EXPECT_EQ(Value(*p, "port"), "6543");
  EXPECT_EQ(Value(*p, "sslmode"), "require");
  EXPECT_EQ(Value(*p, "tcp_user_timeout"), "1000");

  // A PG* variable is the user's value too: no default is passed over it.
  p = BuildConnParams("host=h", 1000, Env({{"PGCLIENTENCODING", "LATIN1"}}));
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(Value(*p, "client_encoding"), "<unset>");

  // A bare string is a database name, as for libpq.
  p = BuildConnParams("appdb", 1000, Env());
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(Value(*p, "dbname"), "appdb");
}

TEST(PgConninfo, ChecksConnectTimeoutAndSyntax) {
  Result<ConnParams> p = BuildConnParams("host=h connect_timeout=abc", 1000, Env());
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(p.status().message().find("connect_timeout=\"abc\""), std::string::npos)
      << p.status().message();
  p = BuildConnParams("host=h", 1000, Env({{"PGCONNECT_TIMEOUT", "soon"}}));
  EXPECT_FALSE(p.ok());
  EXPECT_TRUE(BuildConnParams("host=h connect_timeout=' 7 '", 1000, Env()).ok());

  p = BuildConnParams("host=h password=Sup3rSecretValue dbname", 1000, Env());
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(p.status().message().find("Sup3rSecretValue"), std::string::npos);
}

TEST(PgConninfo, ConnectTimeoutSeconds) {
  ConnParams none;
  EXPECT_EQ(ConnectTimeoutSeconds(none, Env(), 15), 15);
  EXPECT_EQ(ConnectTimeoutSeconds({{"connect_timeout", "0"}}, Env(), 15), 0);
  EXPECT_EQ(ConnectTimeoutSeconds({{"connect_timeout", "1"}}, Env(), 15), 2);
  EXPECT_EQ(ConnectTimeoutSeconds({{"connect_timeout", "9"}}, Env(), 15), 9);
  EXPECT_EQ(ConnectTimeoutSeconds(none, Env({{"PGCONNECT_TIMEOUT", "4"}}), 15), 4);
}

TEST(PgConninfo, NamesToResolve) {
  EXPECT_EQ(NamesToResolve({{"host", "db.example"}}, Env()),
            (std::vector<std::string>{"db.example"}));
  EXPECT_EQ(NamesToResolve({{"host", "a.example,127.0.0.1,/run/pg,::1,a.example,b"}}, Env()),
            (std::vector<std::string>{"a.example", "b"}));
  EXPECT_TRUE(NamesToResolve({}, Env()).empty());  // default Unix socket
  EXPECT_EQ(NamesToResolve({}, Env({{"PGHOST", "envhost"}})),
            (std::vector<std::string>{"envhost"}));
  EXPECT_TRUE(NamesToResolve({{"host", "h"}, {"hostaddr", "10.0.0.1"}}, Env()).empty());
  EXPECT_TRUE(NamesToResolve({{"host", "h"}}, Env({{"PGHOSTADDR", "10.0.0.1"}})).empty());
  EXPECT_TRUE(NamesToResolve({{"service", "prod"}}, Env()).empty());
}

TEST(PgConninfo, ResolvedAddressesBecomeHostaddrEntries) {
  ConnParams p = {{"host", "a.example,10.0.0.9,b.example"}, {"port", "5432"}, {"dbname", "x"}};
  std::map<std::string, std::vector<std::string>> addrs = {{"a.example", {"10.0.0.1", "fd00::1"}},
                                                           {"b.example", {"10.0.0.2"}}};
  Result<ConnParams> r = WithResolvedAddresses(p, Env(), addrs);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(Value(*r, "host"), "a.example,a.example,10.0.0.9,b.example");
  EXPECT_EQ(Value(*r, "hostaddr"), "10.0.0.1,fd00::1,,10.0.0.2");
  EXPECT_EQ(Value(*r, "port"), "5432");  // one port applies to every entry
  EXPECT_EQ(Value(*r, "dbname"), "x");

  // Ports given per host follow their host; a name without addresses is left out.
  p = {{"host", "a.example,b.example"}, {"port", "5432,6543"}};
  r = WithResolvedAddresses(p, Env(), {{"a.example", {}}, {"b.example", {"10.0.0.2", "10.0.0.3"}}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(Value(*r, "host"), "b.example,b.example");
  EXPECT_EQ(Value(*r, "hostaddr"), "10.0.0.2,10.0.0.3");
  EXPECT_EQ(Value(*r, "port"), "6543,6543");

  r = WithResolvedAddresses({{"host", "gone.example"}}, Env(), {{"gone.example", {}}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kUnavailable);
  EXPECT_NE(r.status().message().find("gone.example"), std::string::npos);
}

TEST(PgConninfo, PasswordAndPassfile) {
  EXPECT_TRUE(ConninfoHasPassword("host=h password=x"));
  EXPECT_TRUE(ConninfoHasPassword("postgresql://u:secret@h/db"));
  EXPECT_FALSE(ConninfoHasPassword("postgresql://u@h/db"));
  EXPECT_FALSE(ConninfoHasPassword(""));
  EXPECT_EQ(ConninfoPassfile("host=h passfile=/etc/sluice/pgpass"), "/etc/sluice/pgpass");
  EXPECT_EQ(ConninfoPassfile("host=h"), "");
}

// What `admin bootstrap` prints: the operator's URL (either form) with the
// host role and its password file in place of any user and password, quoted
// so that libpq reads back exactly these values.
TEST(PgConninfo, ForRole) {
  Result<std::string> r =
      ConninfoForRole("postgresql://postgres:secret@db.example:6543/postgres?sslmode=verify-full",
                      "sluice_host_edge", "/etc/sluice/it's.pgpass");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->find("secret"), std::string::npos) << *r;
  EXPECT_EQ(r->find("'postgres'"), r->find("dbname='postgres'") + 7) << *r;  // only as dbname
  EXPECT_NE(r->find("host='db.example'"), std::string::npos) << *r;
  EXPECT_NE(r->find("port='6543'"), std::string::npos) << *r;
  EXPECT_NE(r->find("sslmode='verify-full'"), std::string::npos) << *r;
  EXPECT_NE(r->find("user='sluice_host_edge'"), std::string::npos) << *r;
  EXPECT_NE(r->find("passfile='/etc/sluice/it\\'s.pgpass'"), std::string::npos) << *r;
  // libpq parses it back to the same values.
  Result<ConnParams> back = BuildConnParams(*r, 0, Env());
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(Value(*back, "passfile"), "/etc/sluice/it's.pgpass");
  EXPECT_EQ(Value(*back, "user"), "sluice_host_edge");
  EXPECT_EQ(Value(*back, "password"), "<unset>");

  r = ConninfoForRole("host=h user=admin password=pw passfile=/old", "r", "/new");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, "host='h' user='r' passfile='/new'");
  EXPECT_EQ(ConninfoForRole("host=h port", "r", "/p").status().code(),
            Status::Code::kInvalidArgument);
}

}  // namespace
}  // namespace sluice::pg
