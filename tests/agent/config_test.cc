// Config parsing: defaults, env overrides, and errors that name the key.
#include "agent/config.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <map>

#include "tests/test_support.h"

namespace sluice {
namespace {

Result<Config> Parse(const std::string& json, std::map<std::string, std::string> env = {}) {
  return ParseConfig(json, [env](const char* name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  });
}

const char* kMinimal = R"({"deployment":"acme","source":{"path":"/data/webui.db"}})";

TEST(Config, MinimalGetsDefaults) {
  Result<Config> c = Parse(kMinimal);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->deployment, "acme");
  EXPECT_EQ(c->sink.schema, "acme");  // schema defaults to the deployment name
  EXPECT_EQ(c->sink.deployment, "acme");
  EXPECT_EQ(c->source.busy_timeout_ms, 5000);
  EXPECT_EQ(c->sink.query_timeout_ms, 30000);
  EXPECT_EQ(c->sink.chunk_rows, 2000);
  EXPECT_EQ(c->sink.chunk_bytes, 1 << 20);
  EXPECT_EQ(c->agent.stop_timeout_ms, 30000);
  EXPECT_FALSE(c->node.empty());
  EXPECT_TRUE(c->source.include.empty());
}

TEST(Config, LeaseDefaultsDeriveFromTheDuration) {
  Result<Config> c = Parse(kMinimal);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->lease.duration_ms, 5000);
  EXPECT_EQ(c->lease.renew_ms, 1666);
  EXPECT_EQ(c->lease.poll_ms, 200);
  EXPECT_EQ(c->http.listen, "127.0.0.1:9443");
  EXPECT_EQ(c->http.max_connections, 64);
  Result<Config> one =
      Parse(R"({"deployment":"a","source":{"path":"/x.db"},"lease":{"duration_ms":1000},)"
            R"("http":{"listen":"off","max_connections":8}})");
  ASSERT_TRUE(one.ok()) << one.status().ToString();
  EXPECT_EQ(one->lease.renew_ms, 333);
  EXPECT_EQ(one->lease.poll_ms, 200);
  EXPECT_EQ(one->http.listen, "off");
  EXPECT_EQ(one->http.max_connections, 8);
}

TEST(Config, LeaseAndHttpFromTheEnvironment) {
  Result<Config> c = Parse(kMinimal, {{"SLUICE_LEASE_DURATION_MS", "900"},
                                      {"SLUICE_LEASE_POLL_MS", "50"},
                                      {"SLUICE_HTTP_LISTEN", "127.0.0.1:0"}});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->lease.duration_ms, 900);
  EXPECT_EQ(c->lease.renew_ms, 300);
  EXPECT_EQ(c->lease.poll_ms, 50);
  EXPECT_EQ(c->http.listen, "127.0.0.1:0");
  Result<Config> bad = Parse(kMinimal, {{"SLUICE_LEASE_DURATION_MS", "5s"}});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("SLUICE_LEASE_DURATION_MS"), std::string::npos)
      << bad.status().message();
}

TEST(Config, ARenewalIntervalThatCannotSurviveOneLossIsRefused) {
  Result<Config> c = Parse(
      R"({"deployment":"a","source":{"path":"/x.db"},"lease":{"duration_ms":1000,"renew_ms":500}})");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("'lease.renew_ms' (500) must be at most 450"),
            std::string::npos)
      << c.status().message();
  Result<Config> unknown =
      Parse(R"({"deployment":"a","source":{"path":"/x.db"},"lease":{"duration":1000}})");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("unknown key 'lease.duration'"), std::string::npos);
}

TEST(Config, BoundsOfWork) {
  Result<Config> c = Parse(
      R"({"deployment":"a","source":{"path":"/x.db"},"sink":{"chunk_rows":50,"chunk_bytes":65536},)"
      R"("agent":{"stop_timeout_ms":0}})");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->sink.chunk_rows, 50);
  EXPECT_EQ(c->sink.chunk_bytes, 65536);
  EXPECT_EQ(c->agent.stop_timeout_ms, 0);
  for (const char* bad : {R"("sink":{"chunk_rows":0})", R"("sink":{"chunk_bytes":100})",
                          R"("agent":{"stop_timeout_ms":-1})", R"("sink":{"chunk_rows":"x"})"}) {
    Result<Config> b =
        Parse(std::string(R"({"deployment":"a","source":{"path":"/x.db"},)") + bad + "}");
    ASSERT_FALSE(b.ok()) << bad;
    EXPECT_EQ(b.status().code(), Status::Code::kInvalidArgument);
    std::string key = std::string(bad).find("chunk_rows") != std::string::npos ? "chunk_rows"
                      : std::string(bad).find("chunk_bytes") != std::string::npos
                          ? "chunk_bytes"
                          : "stop_timeout_ms";
    EXPECT_NE(b.status().message().find(key), std::string::npos) << b.status().message();
  }
}

TEST(Config, ToastCompression) {
  Result<Config> d = Parse(R"({"deployment":"a","source":{"path":"/x.db"}})");
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->sink.toast_compression, "lz4");
  for (const char* v : {"lz4", "pglz", "server"}) {
    Result<Config> c = Parse(std::string(R"({"deployment":"a","source":{"path":"/x.db"},)") +
                             R"("sink":{"toast_compression":")" + v + R"("}})");
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    EXPECT_EQ(c->sink.toast_compression, v);
  }
  Result<Config> bad =
      Parse(R"({"deployment":"a","source":{"path":"/x.db"},"sink":{"toast_compression":"zstd"}})");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("sink.toast_compression"), std::string::npos)
      << bad.status().message();
  EXPECT_NE(bad.status().message().find("lz4, pglz or server"), std::string::npos)
      << bad.status().message();
}

TEST(Config, FullFile) {
  Result<Config> c = Parse(R"({
    "deployment": "acme", "node": "a",
    "source": {"path": "/x.db", "include": ["chat", "user*"], "exclude": ["tmp_*"],
               "busy_timeout_ms": 100, "spool_dir": "/var/tmp"},
    "sink": {"url": "postgresql://u@h/db", "schema": "tenant_acme", "query_timeout_ms": 2000},
    "tables": {"chat": {"columns": {"created_at": "bigint"}}},
    "agent": {"poll_interval_ms": 50, "retry_min_ms": 10, "retry_max_ms": 1000,
              "log_level": "debug"}})");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->source.include, (std::vector<std::string>{"chat", "user*"}));
  EXPECT_EQ(c->source.exclude, (std::vector<std::string>{"tmp_*"}));
  EXPECT_EQ(c->sink.schema, "tenant_acme");
  EXPECT_EQ(c->sink.query_timeout_ms, 2000);
  EXPECT_EQ(c->sink.column_types["chat"]["created_at"], "bigint");
  EXPECT_EQ(c->agent.poll_interval_ms, 50);
  EXPECT_EQ(c->agent.log_level, "debug");
}

TEST(Config, EnvironmentOverridesFile) {
  Result<Config> c = Parse(kMinimal, {{"DATABASE_URL", "host=db1"},
                                      {"SLUICE_SOURCE_PATH", "/other.db"},
                                      {"SLUICE_DEPLOYMENT", "beta"}});
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->sink.url, "host=db1");
  EXPECT_EQ(c->source.path, "/other.db");
  EXPECT_EQ(c->deployment, "beta");
  // SLUICE_SINK_URL wins over DATABASE_URL.
  c = Parse(kMinimal, {{"DATABASE_URL", "host=db1"}, {"SLUICE_SINK_URL", "host=db2"}});
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->sink.url, "host=db2");
}

void ExpectError(const std::string& json, const std::string& fragment) {
  Result<Config> c = Parse(json);
  ASSERT_FALSE(c.ok()) << json;
  EXPECT_EQ(c.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(c.status().message().find(fragment), std::string::npos) << c.status().message();
}

TEST(Config, ErrorsNameTheKey) {
  ExpectError(R"({"deployment":"a","source":{"path":"/x","pathh":1}})", "'source.pathh'");
  ExpectError(R"({"deployment":"a","source":{"path":"/x"},"sinc":{}})", "'sinc'");
  ExpectError(R"({"deployment":"a","source":{"path":5}})", "'source.path' must be a string");
  ExpectError(R"({"deployment":"a","source":{"path":"/x","busy_timeout_ms":"5"}})",
              "'source.busy_timeout_ms' must be an integer");
  ExpectError(R"({"deployment":"a","source":{"path":"/x","include":["a",3]}})",
              "'source.include[1]'");
  ExpectError(R"({"deployment":"a","source":{"path":"/x"},"tables":{"t":{"cols":{}}}})",
              "'tables.t.cols'");
  ExpectError(R"({"deployment":"a","source":{"path":"/x"},"agent":{"log_level":"loud"}})",
              "log_level");
  ExpectError(R"({"source":{"path":"/x"}})", "'deployment' is required");
  ExpectError(R"({"deployment":"a"})", "'source.path' is required");
  ExpectError(R"({"deployment":"a", "source": )", "not valid JSON");
  ExpectError(R"([1,2])", "JSON object");
  ExpectError(
      std::string(R"({"deployment":")") + std::string(64, 'x') + R"(","source":{"path":"/x"}})",
      "63 bytes");
  ExpectError(R"({"deployment":"a","source":{"path":"/x"},"sink":{"schema":"sync_metadata"}})",
              "sync_metadata");
}

TEST(Config, TypeOverrideMustBeATypeName) {
  auto with_type = [](const std::string& type) {
    return R"({"deployment":"a","source":{"path":"/x"},"tables":{"chat":{"columns":{"created_at":)" +
           std::string("\"") + type + "\"}}}}";
  };
  EXPECT_TRUE(Parse(with_type("timestamp(3) with time zone")).ok());
  ExpectError(with_type("bigint DEFAULT (pg_sleep(1))"), "'tables.chat.columns.created_at'");
  ExpectError(with_type("text, extra text"), "'tables.chat.columns.created_at'");
  ExpectError(with_type("text, extra text"), "not a PostgreSQL type name");
}

TEST(Config, MissingFileIsAClearError) {
  Result<Config> c = LoadConfig("/nonexistent/sluice.json");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("/nonexistent/sluice.json"), std::string::npos);
}

std::string WriteText(const std::string& path, const std::string& text, mode_t mode) {
  std::ofstream(path) << text;
  ::chmod(path.c_str(), mode);
  return path;
}

TEST(Config, SecretReadableByOthersIsRefused) {
  testing::TempDir dir;
  auto none = [](const char*) -> const char* { return nullptr; };
  const std::string with_password =
      R"({"deployment":"a","source":{"path":"/x"},"sink":{"url":"postgresql://u:s3cret@h/db"}})";
  std::string path = WriteText(dir.file("c.json"), with_password, 0644);
  Result<Config> c = Parse(with_password);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->secret_keys, std::vector<std::string>{"sink.url"});
  std::vector<std::string> w = ExposedSecrets(path, *c, none);
  ASSERT_EQ(w.size(), 1u);
  EXPECT_EQ(w[0].rfind(path + " holds a secret (sink.url has a password)", 0), 0u) << w[0];
  EXPECT_NE(w[0].find("mode 0644"), std::string::npos) << w[0];
  EXPECT_NE(w[0].find("chmod 600 " + path), std::string::npos) << w[0];
  EXPECT_EQ(w[0].find("s3cret"), std::string::npos) << w[0];

  // LoadConfig refuses it, saying what to do, without the password.
  Result<Config> loaded = LoadConfig(path);
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(loaded.status().message().find("chmod 600 " + path), std::string::npos)
      << loaded.status().message();
  EXPECT_EQ(loaded.status().message().find("s3cret"), std::string::npos);

  ::chmod(path.c_str(), 0600);
  EXPECT_TRUE(ExposedSecrets(path, *c, none).empty());
  EXPECT_TRUE(LoadConfig(path).ok()) << LoadConfig(path).status().ToString();
  ::chmod(path.c_str(), 0640);  // group alone is enough to refuse
  EXPECT_EQ(ExposedSecrets(path, *c, none).size(), 1u);
  EXPECT_FALSE(LoadConfig(path).ok());

  // No password in the file (it comes from the environment): no warning.
  c = Parse(kMinimal, {{"SLUICE_SINK_URL", "postgresql://u:s3cret@h/db"}});
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->secret_keys.empty());
  EXPECT_TRUE(ExposedSecrets(path, *c, none).empty());

  // A password file named by sink.url, or by PGPASSFILE.
  std::string pgpass = WriteText(dir.file("pgpass"), "h:5432:db:u:s3cret\n", 0644);
  c = Parse(R"({"deployment":"a","source":{"path":"/x"},"sink":{"url":"host=h passfile=)" + pgpass +
            R"("}})");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  w = ExposedSecrets(path, *c, none);
  ASSERT_EQ(w.size(), 1u);
  EXPECT_EQ(w[0].rfind("password file " + pgpass + " is open to group or others", 0), 0u) << w[0];
  // libpq ignores it when group or others may only write it, too.
  ::chmod(pgpass.c_str(), 0620);
  EXPECT_EQ(ExposedSecrets(path, *c, none).size(), 1u);
  ::chmod(pgpass.c_str(), 0644);
  c = Parse(kMinimal);
  ASSERT_TRUE(c.ok());
  w = ExposedSecrets(path, *c, [&](const char* n) -> const char* {
    return std::string(n) == "PGPASSFILE" ? pgpass.c_str() : nullptr;
  });
  EXPECT_EQ(w.size(), 1u);
  ::chmod(pgpass.c_str(), 0600);
  EXPECT_TRUE(ExposedSecrets(path, *c, none).empty());
}

// The policy `conflicts` configures, as ParseConflictPolicy gives it.
ConflictPolicy Policy(const std::string& json) {
  Result<ConflictPolicy> p = ParseConflictPolicy(json);
  EXPECT_TRUE(p.ok()) << p.status().ToString();
  return p.ok() ? *p : ConflictPolicy{};
}

const char* kChatMerge =
    R"({"default_compare_field":"updated_at","table_strategies":{"chat":{"strategy":"merge",)"
    R"("merge_rules":{"chat":"union"}}}})";

std::string WithConflicts(const std::string& conflicts) {
  return R"({"deployment":"acme","source":{"path":"/data/webui.db"},"conflicts":)" + conflicts +
         "}";
}

TEST(Config, ConflictsKeyIsAccepted) {
  // Inline, with the seed's wrapper or without it.
  Result<Config> c =
      Parse(WithConflicts(std::string(R"({"conflict_resolution":)") + kChatMerge + "}"));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->sink.conflicts, Policy(kChatMerge));
  EXPECT_EQ(c->sink.conflicts.For("chat").strategy, "merge");
  EXPECT_TRUE(c->conflicts_file.empty());
  c = Parse(WithConflicts(kChatMerge));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->sink.conflicts, Policy(kChatMerge));
  // Nothing configured: source_wins everywhere.
  c = Parse(kMinimal);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->sink.conflicts, ConflictPolicy{});
  EXPECT_EQ(c->sink.conflicts.For("chat").strategy, "source_wins");
}

TEST(Config, ConflictsErrorsAreStructuralAndNamed) {
  ExpectError(WithConflicts(R"({"default_strategy":"newest"})"),
              "config: conflicts: default_strategy: unknown strategy \"newest\"");
  ExpectError(WithConflicts(R"({"conflict_resolution":{"notification":{}}})"),
              "config: conflicts: notification: not supported by sluice");
  ExpectError(WithConflicts(R"("conflicts.json")"), "config: 'conflicts' must be an object");
  ExpectError(WithConflicts(R"({"file":3})"), "config: 'conflicts.file' must be a string");
  ExpectError(WithConflicts(R"({"file":"c.json","default_strategy":"merge"})"),
              "config: 'conflicts' is either {\"file\": PATH} or the policy itself, not both");
}

TEST(Config, ConflictsFileIsRelativeToTheConfigFile) {
  testing::TempDir dir;
  WriteText(dir.file("policy.json"), std::string(R"({"conflict_resolution":)") + kChatMerge + "}",
            0644);
  std::string config =
      WriteText(dir.file("sluice.json"), WithConflicts(R"({"file":"policy.json"})"), 0600);
  Result<Config> c = LoadConfig(config);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->conflicts_file, dir.file("policy.json"));
  EXPECT_EQ(c->sink.conflicts, Policy(kChatMerge));
  // ParseConfig alone only resolves the path (against base_dir); LoadConfig reads it.
  Result<Config> parsed = ParseConfig(
      WithConflicts(R"({"file":"policy.json"})"),
      [](const char*) -> const char* { return nullptr; }, "/etc/sluice");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->conflicts_file, "/etc/sluice/policy.json");
  parsed = ParseConfig(
      WithConflicts(R"({"file":"/srv/p.json"})"),
      [](const char*) -> const char* { return nullptr; }, "/etc/sluice");
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->conflicts_file, "/srv/p.json");

  // A policy file that does not parse, or is missing: LoadConfig fails naming it.
  WriteText(dir.file("policy.json"), R"({"default_strategy":"oldest"})", 0644);
  c = LoadConfig(config);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find(dir.file("policy.json") +
                                      ": conflicts: default_strategy: unknown strategy \"oldest\""),
            std::string::npos)
      << c.status().message();
  std::remove(dir.file("policy.json").c_str());
  c = LoadConfig(config);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("conflicts.file: cannot read " + dir.file("policy.json")),
            std::string::npos)
      << c.status().message();
}

TEST(Config, ConflictsFileFromTheEnvironment) {
  auto file_of = [](std::map<std::string, std::string> env) {
    Result<Config> c = Parse(WithConflicts(kChatMerge), std::move(env));
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? c->conflicts_file : "?";
  };
  EXPECT_EQ(file_of({}), "");
  EXPECT_EQ(file_of({{"CONFLICT_RESOLUTION_CONFIG", "seed.json"}}), "seed.json");
  EXPECT_EQ(file_of({{"CONFLICT_RESOLUTION_CONFIG", "seed.json"},
                     {"SLUICE_CONFLICT_CONFIG", "/etc/sluice/conflicts.json"}}),
            "/etc/sluice/conflicts.json");
  // The file named by the environment replaces the inline policy.
  Result<Config> c = Parse(WithConflicts(kChatMerge), {{"SLUICE_CONFLICT_CONFIG", "/p.json"}});
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->sink.conflicts, ConflictPolicy{});

  testing::TempDir dir;
  WriteText(dir.file("env-policy.json"), R"({"default_strategy":"target_wins"})", 0644);
  std::string config = WriteText(dir.file("sluice.json"), WithConflicts(kChatMerge), 0600);
  ::setenv("SLUICE_CONFLICT_CONFIG", dir.file("env-policy.json").c_str(), 1);
  c = LoadConfig(config);
  ::unsetenv("SLUICE_CONFLICT_CONFIG");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->sink.conflicts, Policy(R"({"default_strategy":"target_wins"})"));
}

}  // namespace
}  // namespace sluice
