// The PostgreSQL error rules (sink/pg_error.h) without a server: SQLSTATE →
// Status code and next action, connect failures → stop or retry, redaction.
#include "sink/pg_error.h"

#include <gtest/gtest.h>

#include <string>

namespace sluice {
namespace {

using pg::PgAction;

TEST(PgErrorTest, SqlStateClasses) {
  using C = Status::Code;
  EXPECT_EQ(pg::CodeForSqlState("08006"), C::kUnavailable);
  EXPECT_EQ(pg::CodeForSqlState("57P01"), C::kUnavailable);
  EXPECT_EQ(pg::CodeForSqlState("57P03"), C::kUnavailable);
  EXPECT_EQ(pg::CodeForSqlState("57014"), C::kInternal);  // query_canceled
  EXPECT_EQ(pg::CodeForSqlState("22P02"), C::kDataError);
  EXPECT_EQ(pg::CodeForSqlState("23505"), C::kDataError);
  EXPECT_EQ(pg::CodeForSqlState("SL001"), C::kConflict);
  EXPECT_EQ(pg::CodeForSqlState("SL002"), C::kFenced);
  EXPECT_EQ(pg::CodeForSqlState("SL003"), C::kCorruption);
  EXPECT_EQ(pg::CodeForSqlState("42601"), C::kInternal);
  EXPECT_EQ(pg::CodeForSqlState(""), C::kInternal);
}

// The table from the issue: retry, stop, split, or isolate the row.
TEST(PgErrorTest, ActionForSqlState) {
  struct Case {
    const char* sqlstate;
    PgAction action;
  };
  const Case cases[] = {
      // retry with backoff: connection lost, serialization, locks, capacity
      {"08000", PgAction::kRetry},
      {"08006", PgAction::kRetry},
      {"08P01", PgAction::kRetry},
      {"40001", PgAction::kRetry},  // serialization_failure
      {"40P01", PgAction::kRetry},  // deadlock_detected
      {"55P03", PgAction::kRetry},  // lock_not_available (lock_timeout)
      {"53300", PgAction::kRetry},  // too_many_connections
      {"53100", PgAction::kRetry},  // disk_full
      {"57P01", PgAction::kRetry},  // admin_shutdown
      {"57P02", PgAction::kRetry},
      {"57P03", PgAction::kRetry},  // cannot_connect_now
      {"25P03", PgAction::kRetry},  // idle_in_transaction_session_timeout
      {"25006", PgAction::kRetry},  // read_only_sql_transaction (a standby, for now)
      {"58030", PgAction::kRetry},  // io_error
      {"XX000", PgAction::kRetry},
      {"42P01", PgAction::kRetry},  // undefined_table: re-read the catalog, re-plan
      {"42703", PgAction::kRetry},
      {"SL001", PgAction::kRetry},  // position moved: re-read it
      {"SL002", PgAction::kRetry},  // fenced: the lease logic decides
      {"", PgAction::kRetry},       // client-side (connection lost)
      // stop: retrying cannot help
      {"28000", PgAction::kStop},  // invalid_authorization_specification
      {"28P01", PgAction::kStop},  // invalid_password
      {"3D000", PgAction::kStop},  // invalid_catalog_name (database does not exist)
      {"42501", PgAction::kStop},  // insufficient_privilege
      {"57P04", PgAction::kStop},  // database_dropped
      {"0A000", PgAction::kStop},  // feature_not_supported
      {"XX001", PgAction::kStop},  // data_corrupted
      {"XX002", PgAction::kStop},  // index_corrupted
      {"SL003", PgAction::kStop},
      // split the work
      {"57014", PgAction::kSplit},  // query_canceled (statement_timeout)
      {"25P04", PgAction::kSplit},  // transaction_timeout
      {"53200", PgAction::kSplit},  // out_of_memory ("out of shared memory")
      {"54001", PgAction::kSplit},  // statement_too_complex
      {"54023", PgAction::kSplit},  // too_many_arguments
      // a row the sink rejects
      {"22P02", PgAction::kRowError},
      {"22021", PgAction::kRowError},
      {"23505", PgAction::kRowError},
      {"23502", PgAction::kRowError},
      {"21000", PgAction::kRowError},
      {"54000", PgAction::kRowError},  // index row too large (a huge key)
      {"P0001", PgAction::kRowError},  // a trigger at the sink refused the row
  };
  for (const Case& c : cases) {
    EXPECT_EQ(pg::ActionFor(c.sqlstate), c.action)
        << c.sqlstate << " gives " << pg::PgActionName(pg::ActionFor(c.sqlstate)) << ", want "
        << pg::PgActionName(c.action);
  }
}

TEST(PgErrorTest, ActionOfStatus) {
  // From the SQLSTATE in a PgConnection message, even when wrapped.
  Status denied = pg::QueryError(2, 5, "42501", "permission denied for table t", "", false);
  EXPECT_EQ(denied.code(), Status::Code::kInternal);  // exit 1, not a config error
  EXPECT_EQ(pg::ActionOf(denied), PgAction::kStop);
  EXPECT_EQ(pg::ActionOf(denied.Wrap("apply batch 42")), PgAction::kStop);
  Status timeout =
      pg::QueryError(1, 1, "57014", "canceling statement due to statement timeout", "", false);
  EXPECT_EQ(pg::ActionOf(timeout.Wrap("apply")), PgAction::kSplit);
  EXPECT_EQ(pg::ActionOf(pg::QueryError(1, 1, "40001", "could not serialize", "", false)),
            PgAction::kRetry);
  EXPECT_EQ(pg::ActionOf(pg::QueryError(1, 1, "23505", "dup", "", false)), PgAction::kRowError);
  // Without a SQLSTATE, from the code.
  EXPECT_EQ(pg::ActionOf(Status::Unavailable("connection lost")), PgAction::kRetry);
  EXPECT_EQ(pg::ActionOf(Status::InvalidArgument("bad option")), PgAction::kStop);
  EXPECT_EQ(pg::ActionOf(Status::DataError("NUL byte")), PgAction::kRowError);
  EXPECT_EQ(pg::ActionOf(Status::Corruption("x")), PgAction::kStop);
  EXPECT_EQ(pg::ActionOf(Status::Internal("x")), PgAction::kRetry);
  // A user's text that merely looks like a SQLSTATE is not one.
  EXPECT_EQ(pg::ActionOf(Status::Internal("value 'SQLSTATE 42501' seen")), PgAction::kRetry);
}

TEST(PgErrorTest, QueryErrorMessage) {
  Status s =
      pg::QueryError(3, 7, "23505", "duplicate key value violates unique constraint \"t_pkey\"",
                     "Key (id)=(1) already exists.", false);
  EXPECT_EQ(s.code(), Status::Code::kDataError);
  EXPECT_EQ(s.message(),
            "query 3 of 7 failed: SQLSTATE 23505: duplicate key value violates unique constraint "
            "\"t_pkey\" (Key (id)=(1) already exists.)");
  EXPECT_EQ(pg::QueryError(1, 1, "", "server closed the connection", "", true).code(),
            Status::Code::kUnavailable);
  EXPECT_EQ(pg::QueryError(1, 1, "", "out of memory", "", false).code(), Status::Code::kInternal);
}

Status Connect(const std::string& libpq_message) {
  return pg::ConnectError(libpq_message, "bob", "db.example", "5432");
}

TEST(PgErrorTest, ConnectErrorClassification) {
  Status auth = pg::ConnectError(
      "connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  password authentication "
      "failed for user \"bob\"\n",
      "bob", "127.0.0.1", "5432");
  EXPECT_EQ(auth.code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(auth.message().rfind("authentication failed for user bob on host 127.0.0.1", 0), 0u)
      << auth.message();
  Status down = pg::ConnectError(
      "connection to server at \"127.0.0.1\", port 1 failed: Connection refused\n\tIs the server "
      "running on that host and accepting TCP/IP connections?\n",
      "bob", "127.0.0.1", "1");
  EXPECT_EQ(down.code(), Status::Code::kUnavailable);
  EXPECT_EQ(down.message().rfind("cannot reach PostgreSQL at 127.0.0.1:1: ", 0), 0u)
      << down.message();
  EXPECT_EQ(down.message().find('\n'), std::string::npos);
}

// Permanent problems stop the agent (kInvalidArgument) with a message that
// says what is wrong; transient ones are retried (kUnavailable).
TEST(PgErrorTest, ConnectFailuresThatStop) {
  struct Case {
    const char* libpq;
    const char* starts;
  };
  const Case stop[] = {
      {"connection to server at \"db.example\" (10.0.0.1), port 5432 failed: FATAL:  database "
       "\"nodb\" does not exist\n",
       "database does not exist on host db.example:5432"},
      {"invalid integer value \"abc\" for connection option \"connect_timeout\"\n",
       "invalid connection option"},
      {"invalid sslmode value: \"sometimes\"\n", "invalid connection option"},
      {"invalid port number: \"54x\"\n", "invalid connection option"},
      {"could not match 2 port numbers to 3 hosts\n", "invalid connection option"},
      {"could not parse network address \"1.2.3\": Name or service not known\n",
       "invalid connection option"},
      {"connection to server at \"db.example\" (10.0.0.1), port 5432 failed: FATAL:  permission "
       "denied for database \"postgres\"\nDETAIL:  User does not have CONNECT privilege.\n",
       "permission denied on host db.example:5432"},
      {"connection to server at \"db.example\" (10.0.0.1), port 5432 failed: FATAL:  invalid value "
       "for parameter \"TimeZone\": \"Mars\"\n",
       "invalid connection option"},
      {"connection to server at \"db.example\" (10.0.0.1), port 5432 failed: FATAL:  unrecognized "
       "configuration parameter \"nosuch\"\n",
       "invalid connection option"},
      {"connection to server at \"db.example\" (10.0.0.1), port 5432 failed: server does not "
       "support SSL, but SSL was required\n",
       "TLS setup failed"},
      {"root certificate file \"/nope.pem\" does not exist\nEither provide the file or change "
       "sslmode to disable server certificate verification.\n",
       "TLS setup failed"},
      {"connection to server at \"db.example\" (10.0.0.1), port 5432 failed: SSL error: "
       "certificate verify failed\n",
       "TLS setup failed"},
      {"connection to server at \"db.example\" (10.0.0.1), port 6543 failed: FATAL:  no such "
       "database: nodb\n",
       "database does not exist on host db.example:5432"},
  };
  for (const Case& c : stop) {
    Status s = Connect(c.libpq);
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << c.libpq << " -> " << s.ToString();
    EXPECT_EQ(s.message().rfind(c.starts, 0), 0u) << s.message();
    EXPECT_EQ(pg::ActionOf(s), PgAction::kStop);
  }
  const char* retry[] = {
      "connection to server at \"db.example\" (10.0.0.1), port 5432 failed: FATAL:  sorry, too "
      "many clients already\n",
      "connection to server at \"db.example\" (10.0.0.1), port 5432 failed: FATAL:  the database "
      "system is starting up\n",
      "connection to server on socket \"/run/postgresql/.s.PGSQL.5432\" failed: No such file or "
      "directory\n",
      "could not translate host name \"db.example\" to address: Temporary failure in name "
      "resolution\n",
      "connection to server at \"db.example\" (10.0.0.1), port 5432 failed: server closed the "
      "connection unexpectedly\n",
  };
  for (const char* m : retry) {
    Status s = Connect(m);
    EXPECT_EQ(s.code(), Status::Code::kUnavailable) << m << " -> " << s.ToString();
    EXPECT_EQ(s.message().rfind("cannot reach PostgreSQL at db.example:5432: ", 0), 0u)
        << s.message();
    EXPECT_EQ(pg::ActionOf(s), PgAction::kRetry);
  }
}

TEST(PgErrorTest, RedactsSecrets) {
  EXPECT_EQ(pg::RedactQuoted("missing \"=\" after \"hunter2\" in connection info string"),
            "missing \"=\" after \"...\" in connection info string");
  EXPECT_EQ(pg::Redact("x hunter2 y hunter2", "hunter2"), "x ******** y ********");
  EXPECT_EQ(pg::Redact("a b c", "a"), "a b c");  // too short to redact safely
}

}  // namespace
}  // namespace sluice
