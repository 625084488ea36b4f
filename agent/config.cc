// Config parsing with simdjson's DOM API; every key is checked by name and type.
#include "agent/config.h"

#include <fmt/format.h>
#include <simdjson.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "agent/lease.h"         // LeaseSafetyMarginMs
#include "common/table_shape.h"  // kMaxIdentifierBytes
#include "sink/conflict_policy.h"
#include "sink/pg_conninfo.h"
#include "sink/type_mapping.h"

namespace sluice {
namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;
using simdjson::dom::object;

Status TypeError(const std::string& key, const char* want) {
  return Status::InvalidArgument("config: '" + key + "' must be " + want);
}

Status Unknown(const std::string& key) {
  return Status::InvalidArgument("config: unknown key '" + key + "'");
}

Status GetString(element e, const std::string& key, std::string* out) {
  std::string_view v;
  if (e.get_string().get(v) != simdjson::SUCCESS) return TypeError(key, "a string");
  *out = std::string(v);
  return Status::Ok();
}

Status GetInt(element e, const std::string& key, int min, int max, int* out) {
  int64_t v = 0;
  if (e.get_int64().get(v) != simdjson::SUCCESS) return TypeError(key, "an integer");
  if (v < min || v > max) {
    return Status::InvalidArgument("config: '" + key + "' must be between " + std::to_string(min) +
                                   " and " + std::to_string(max));
  }
  *out = static_cast<int>(v);
  return Status::Ok();
}

Status GetStringList(element e, const std::string& key, std::vector<std::string>* out) {
  simdjson::dom::array arr;
  if (e.get_array().get(arr) != simdjson::SUCCESS) return TypeError(key, "an array of strings");
  out->clear();
  size_t i = 0;
  for (element item : arr) {
    std::string s;
    SLUICE_RETURN_IF_ERROR(GetString(item, key + "[" + std::to_string(i++) + "]", &s));
    out->push_back(std::move(s));
  }
  return Status::Ok();
}

Status GetObject(element e, const std::string& key, object* out) {
  if (e.get_object().get(*out) != simdjson::SUCCESS) return TypeError(key, "an object");
  return Status::Ok();
}

Status ParseSource(element e, Config* c) {
  object obj;
  SLUICE_RETURN_IF_ERROR(GetObject(e, "source", &obj));
  for (auto field : obj) {
    std::string key = "source." + std::string(field.key);
    if (field.key == "path") {
      SLUICE_RETURN_IF_ERROR(GetString(field.value, key, &c->source.path));
    } else if (field.key == "include") {
      SLUICE_RETURN_IF_ERROR(GetStringList(field.value, key, &c->source.include));
    } else if (field.key == "exclude") {
      SLUICE_RETURN_IF_ERROR(GetStringList(field.value, key, &c->source.exclude));
    } else if (field.key == "busy_timeout_ms") {
      SLUICE_RETURN_IF_ERROR(GetInt(field.value, key, 0, 600000, &c->source.busy_timeout_ms));
    } else if (field.key == "spool_dir") {
      SLUICE_RETURN_IF_ERROR(GetString(field.value, key, &c->source.spool_dir));
    } else {
      return Unknown(key);
    }
  }
  return Status::Ok();
}

Status ParseSink(element e, Config* c) {
  object obj;
  SLUICE_RETURN_IF_ERROR(GetObject(e, "sink", &obj));
  for (auto field : obj) {
    std::string key = "sink." + std::string(field.key);
    if (field.key == "url") {
      SLUICE_RETURN_IF_ERROR(GetString(field.value, key, &c->sink.url));
    } else if (field.key == "schema") {
      SLUICE_RETURN_IF_ERROR(GetString(field.value, key, &c->sink.schema));
    } else if (field.key == "query_timeout_ms") {
      SLUICE_RETURN_IF_ERROR(GetInt(field.value, key, 100, 3600000, &c->sink.query_timeout_ms));
    } else if (field.key == "chunk_rows") {
      SLUICE_RETURN_IF_ERROR(GetInt(field.value, key, 1, 1000000, &c->sink.chunk_rows));
    } else if (field.key == "chunk_bytes") {
      int bytes = 0;
      SLUICE_RETURN_IF_ERROR(GetInt(field.value, key, 8192, 1 << 30, &bytes));
      c->sink.chunk_bytes = bytes;
    } else if (field.key == "toast_compression") {
      SLUICE_RETURN_IF_ERROR(GetString(field.value, key, &c->sink.toast_compression));
      const std::string& v = c->sink.toast_compression;
      if (v != "lz4" && v != "pglz" && v != "server") {
        return Status::InvalidArgument("config: " + key + " is '" + v +
                                       "'; it must be lz4, pglz or server");
      }
    } else {
      return Unknown(key);
    }
  }
  return Status::Ok();
}

// "tables": { "<table>": { "columns": { "<column>": "<postgres type>" } } }
Status ParseTables(element e, Config* c) {
  object tables;
  SLUICE_RETURN_IF_ERROR(GetObject(e, "tables", &tables));
  for (auto table : tables) {
    std::string tkey = "tables." + std::string(table.key);
    object tobj;
    SLUICE_RETURN_IF_ERROR(GetObject(table.value, tkey, &tobj));
    for (auto field : tobj) {
      std::string key = tkey + "." + std::string(field.key);
      if (field.key != "columns") return Unknown(key);
      object cols;
      SLUICE_RETURN_IF_ERROR(GetObject(field.value, key, &cols));
      for (auto col : cols) {
        std::string type;
        std::string ckey = key + "." + std::string(col.key);
        SLUICE_RETURN_IF_ERROR(GetString(col.value, ckey, &type));
        // The type is spliced into CREATE / ALTER TABLE: refuse anything but a type name.
        Status valid = CheckPgTypeName(type);
        if (!valid.ok()) {
          return Status::InvalidArgument("config: '" + ckey + "' (\"" + type + "\") is " +
                                         valid.message());
        }
        c->sink.column_types[std::string(table.key)][std::string(col.key)] = type;
      }
    }
  }
  return Status::Ok();
}

// "conflicts": {"file": PATH} (kept for LoadConfig, joined to base_dir when
// relative), or the policy itself, parsed here (wrapper or not).
Status ParseConflicts(element e, const std::string& base_dir, Config* c) {
  object obj;
  SLUICE_RETURN_IF_ERROR(GetObject(e, "conflicts", &obj));
  element file;
  if (obj.at_key("file").get(file) == simdjson::SUCCESS) {
    if (obj.size() != 1) {
      return Status::InvalidArgument(
          "config: 'conflicts' is either {\"file\": PATH} or the policy itself, not both");
    }
    std::string path;
    SLUICE_RETURN_IF_ERROR(GetString(file, "conflicts.file", &path));
    if (path.empty()) return TypeError("conflicts.file", "a path");
    c->conflicts_file = path.front() == '/' || base_dir.empty() ? path
                        : base_dir.back() == '/'                ? base_dir + path
                                                                : base_dir + "/" + path;
    return Status::Ok();
  }
  Result<ConflictPolicy> policy = ParseConflictPolicy(simdjson::minify(obj));
  if (!policy.ok()) return Status::InvalidArgument("config: " + policy.status().message());
  c->sink.conflicts = std::move(*policy);
  return Status::Ok();
}

Status ParseAgent(element e, Config* c) {
  object obj;
  SLUICE_RETURN_IF_ERROR(GetObject(e, "agent", &obj));
  for (auto field : obj) {
    std::string key = "agent." + std::string(field.key);
    if (field.key == "poll_interval_ms") {
      SLUICE_RETURN_IF_ERROR(GetInt(field.value, key, 1, 60000, &c->agent.poll_interval_ms));
    } else if (field.key == "retry_min_ms") {
      SLUICE_RETURN_IF_ERROR(GetInt(field.value, key, 1, 60000, &c->agent.retry_min_ms));
    } else if (field.key == "retry_max_ms") {
      SLUICE_RETURN_IF_ERROR(GetInt(field.value, key, 1, 600000, &c->agent.retry_max_ms));
    } else if (field.key == "log_level") {
      SLUICE_RETURN_IF_ERROR(GetString(field.value, key, &c->agent.log_level));
    } else if (field.key == "stop_timeout_ms") {
      SLUICE_RETURN_IF_ERROR(GetInt(field.value, key, 0, 3600000, &c->agent.stop_timeout_ms));
    } else {
      return Unknown(key);
    }
  }
  return Status::Ok();
}

Status ParseLease(element e, Config* c) {
  object obj;
  SLUICE_RETURN_IF_ERROR(GetObject(e, "lease", &obj));
  for (auto field : obj) {
    std::string key = "lease." + std::string(field.key);
    if (field.key == "duration_ms") {
      SLUICE_RETURN_IF_ERROR(GetInt(field.value, key, 200, 600000, &c->lease.duration_ms));
    } else if (field.key == "renew_ms") {
      SLUICE_RETURN_IF_ERROR(GetInt(field.value, key, 20, 300000, &c->lease.renew_ms));
    } else if (field.key == "poll_ms") {
      SLUICE_RETURN_IF_ERROR(GetInt(field.value, key, 10, 60000, &c->lease.poll_ms));
    } else {
      return Unknown(key);
    }
  }
  return Status::Ok();
}

Status ParseHttp(element e, Config* c) {
  object obj;
  SLUICE_RETURN_IF_ERROR(GetObject(e, "http", &obj));
  for (auto field : obj) {
    std::string key = "http." + std::string(field.key);
    if (field.key == "listen") {
      SLUICE_RETURN_IF_ERROR(GetString(field.value, key, &c->http.listen));
    } else if (field.key == "max_connections") {
      SLUICE_RETURN_IF_ERROR(GetInt(field.value, key, 1, 10000, &c->http.max_connections));
    } else {
      return Unknown(key);
    }
  }
  return Status::Ok();
}

// An integer from the environment, in [min, max]; unset or empty: unchanged.
Status OverrideInt(const EnvLookup& env, const char* name, int min, int max, int* target) {
  const char* v = env(name);
  if (v == nullptr || *v == '\0') return Status::Ok();
  char* end = nullptr;
  errno = 0;
  long n = std::strtol(v, &end, 10);
  if (errno != 0 || *end != '\0' || n < min || n > max) {
    return Status::InvalidArgument(
        fmt::format("config: environment variable {} (\"{}\") must be an integer between {} and {}",
                    name, v, min, max));
  }
  *target = static_cast<int>(n);
  return Status::Ok();
}

}  // namespace

Status ResolveLease(LeaseOptions* l) {
  if (l->renew_ms == 0) l->renew_ms = std::max(20, l->duration_ms / 3);
  if (l->poll_ms == 0) l->poll_ms = std::max(10, std::min(200, l->duration_ms / 5));
  int margin = static_cast<int>(LeaseSafetyMarginMs(l->duration_ms));
  int most = (l->duration_ms - margin) / 2;
  if (l->renew_ms > most) {
    return Status::InvalidArgument(fmt::format(
        "config: 'lease.renew_ms' ({}) must be at most {} for lease.duration_ms {}: half of the "
        "duration less its safety margin of {} ms, so that one lost renewal does not cost the "
        "lease",
        l->renew_ms, most, l->duration_ms, margin));
  }
  return Status::Ok();
}

namespace {

void Override(const EnvLookup& env, const char* name, std::string* target) {
  const char* v = env(name);
  if (v != nullptr && *v != '\0') *target = v;
}

}  // namespace

std::string HostName() {
  char buf[256] = {0};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "";
  return buf;
}

Result<Config> ParseConfig(std::string_view json, const EnvLookup& env,
                           const std::string& base_dir) {
  Config c;
  simdjson::dom::parser parser;
  simdjson::padded_string padded(json);
  element root;
  auto err = parser.parse(padded).get(root);
  if (err != simdjson::SUCCESS) {
    return Status::InvalidArgument(std::string("config: not valid JSON: ") +
                                   simdjson::error_message(err));
  }
  object obj;
  if (root.get_object().get(obj) != simdjson::SUCCESS) {
    return Status::InvalidArgument("config: the top level must be a JSON object");
  }
  for (auto field : obj) {
    std::string key(field.key);
    if (key == "deployment") {
      SLUICE_RETURN_IF_ERROR(GetString(field.value, key, &c.deployment));
    } else if (key == "node") {
      SLUICE_RETURN_IF_ERROR(GetString(field.value, key, &c.node));
    } else if (key == "source") {
      SLUICE_RETURN_IF_ERROR(ParseSource(field.value, &c));
    } else if (key == "sink") {
      SLUICE_RETURN_IF_ERROR(ParseSink(field.value, &c));
    } else if (key == "tables") {
      SLUICE_RETURN_IF_ERROR(ParseTables(field.value, &c));
    } else if (key == "conflicts") {
      SLUICE_RETURN_IF_ERROR(ParseConflicts(field.value, base_dir, &c));
    } else if (key == "agent") {
      SLUICE_RETURN_IF_ERROR(ParseAgent(field.value, &c));
    } else if (key == "lease") {
      SLUICE_RETURN_IF_ERROR(ParseLease(field.value, &c));
    } else if (key == "http") {
      SLUICE_RETURN_IF_ERROR(ParseHttp(field.value, &c));
    } else if (key == "$schema" || key == "comment") {
      // documentation keys, ignored on purpose
    } else {
      return Unknown(key);
    }
  }

  if (pg::ConninfoHasPassword(c.sink.url)) c.secret_keys.push_back("sink.url");
  Override(env, "SLUICE_DEPLOYMENT", &c.deployment);
  Override(env, "SLUICE_NODE", &c.node);
  Override(env, "SLUICE_SOURCE_PATH", &c.source.path);
  Override(env, "DATABASE_URL", &c.sink.url);
  Override(env, "SLUICE_SINK_URL", &c.sink.url);  // wins over DATABASE_URL
  Override(env, "SLUICE_SINK_SCHEMA", &c.sink.schema);
  Override(env, "SLUICE_LOG_LEVEL", &c.agent.log_level);
  Override(env, "SLUICE_HTTP_LISTEN", &c.http.listen);
  // A policy file from the environment replaces the config's policy (the
  // seed's variable first, so that sluice's own wins).
  std::string env_conflicts;
  Override(env, "CONFLICT_RESOLUTION_CONFIG", &env_conflicts);
  Override(env, "SLUICE_CONFLICT_CONFIG", &env_conflicts);
  if (!env_conflicts.empty()) {
    c.conflicts_file = env_conflicts;
    c.sink.conflicts = ConflictPolicy{};  // LoadConfig reads the file
  }
  SLUICE_RETURN_IF_ERROR(
      OverrideInt(env, "SLUICE_LEASE_DURATION_MS", 200, 600000, &c.lease.duration_ms));
  SLUICE_RETURN_IF_ERROR(OverrideInt(env, "SLUICE_LEASE_RENEW_MS", 20, 300000, &c.lease.renew_ms));
  SLUICE_RETURN_IF_ERROR(OverrideInt(env, "SLUICE_LEASE_POLL_MS", 10, 60000, &c.lease.poll_ms));
  SLUICE_RETURN_IF_ERROR(ResolveLease(&c.lease));
  if (c.http.listen.empty()) {
    return Status::InvalidArgument(
        "config: 'http.listen' must be \"host:port\" or \"off\" (or SLUICE_HTTP_LISTEN)");
  }

  if (c.deployment.empty()) {
    return Status::InvalidArgument("config: 'deployment' is required (or SLUICE_DEPLOYMENT)");
  }
  if (c.deployment.size() > kMaxIdentifierBytes) {
    return Status::InvalidArgument(
        fmt::format("config: 'deployment' is longer than {} bytes", kMaxIdentifierBytes));
  }
  if (c.source.path.empty()) {
    return Status::InvalidArgument("config: 'source.path' is required (or SLUICE_SOURCE_PATH)");
  }
  if (c.sink.schema.empty()) c.sink.schema = c.deployment;
  if (c.sink.schema.size() > kMaxIdentifierBytes) {
    return Status::InvalidArgument(
        fmt::format("config: 'sink.schema' is longer than {} bytes", kMaxIdentifierBytes));
  }
  if (c.sink.schema == "sync_metadata") {
    return Status::InvalidArgument("config: 'sink.schema' cannot be sync_metadata (sluice's own)");
  }
  if (c.node.empty()) c.node = HostName();
  if (c.node.empty()) c.node = "node";  // gethostname failed
  if (c.agent.retry_max_ms < c.agent.retry_min_ms) {
    return Status::InvalidArgument("config: 'agent.retry_max_ms' is below 'agent.retry_min_ms'");
  }
  static const char* kLevels[] = {"trace", "debug", "info", "warn", "error", "critical", "off"};
  bool level_ok = false;
  for (const char* l : kLevels) level_ok = level_ok || c.agent.log_level == l;
  if (!level_ok) {
    return Status::InvalidArgument(
        "config: 'agent.log_level' must be one of trace, debug, "
        "info, warn, error, critical, off");
  }
  c.sink.deployment = c.deployment;
  // sink.url may stay empty: libpq then uses its PG* variables and .pgpass.
  return c;
}

namespace {

// "mode 0644" when `path` has one of the `bits` (of group and others), else "".
std::string OpenToOthers(const std::string& path, mode_t bits) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0 || (st.st_mode & bits) == 0) return "";
  char mode[8];
  std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
  return std::string("mode ") + mode;
}

}  // namespace

std::vector<std::string> ExposedSecrets(const std::string& config_path, const Config& config,
                                        const EnvLookup& env) {
  std::vector<std::string> out;
  if (!config.secret_keys.empty()) {
    std::string mode = OpenToOthers(config_path, S_IRGRP | S_IROTH);
    if (!mode.empty()) {
      std::string keys;
      for (const std::string& k : config.secret_keys) keys += (keys.empty() ? "" : ", ") + k;
      out.push_back(config_path + " holds a secret (" + keys +
                    " has a password) and is readable by group or others (" + mode +
                    "): chmod 600 " + config_path +
                    ", or keep the password in a password file (passfile) or PGPASSWORD");
    }
  }
  std::string passfile = pg::ConninfoPassfile(config.sink.url);
  if (passfile.empty()) {
    const char* v = env("PGPASSFILE");
    if (v != nullptr) passfile = v;
  }
  if (!passfile.empty()) {
    // libpq ignores a password file with any group or other bit, not only read.
    std::string mode = OpenToOthers(passfile, S_IRWXG | S_IRWXO);
    if (!mode.empty()) {
      out.push_back("password file " + passfile + " is open to group or others (" + mode +
                    "): chmod 600 " + passfile + " (libpq ignores a password file in that state)");
    }
  }
  return out;
}

Result<Config> LoadConfig(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Status::InvalidArgument("config: cannot read " + path + ": " + std::strerror(errno));
  }
  std::ostringstream text;
  text << in.rdbuf();
  size_t slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "" : slash == 0 ? "/" : path.substr(0, slash);
  Result<Config> c = ParseConfig(
      text.str(), [](const char* n) { return std::getenv(n); }, dir);
  if (!c.ok()) return c.status().Wrap(path);
  c->file = path;
  if (!c->conflicts_file.empty()) {
    std::ifstream policy_in(c->conflicts_file, std::ios::binary);
    if (!policy_in) {
      return Status::InvalidArgument("config: conflicts.file: cannot read " + c->conflicts_file +
                                     ": " + std::strerror(errno));
    }
    std::ostringstream policy_text;
    policy_text << policy_in.rdbuf();
    Result<ConflictPolicy> policy = ParseConflictPolicy(policy_text.str());
    if (!policy.ok()) {
      return Status::InvalidArgument("config: " + c->conflicts_file + ": " +
                                     policy.status().message());
    }
    c->sink.conflicts = std::move(*policy);
  }
  std::vector<std::string> exposed = ExposedSecrets(path, *c, std::getenv);
  if (!exposed.empty()) {
    std::string message = "config: refusing a secret others can read: ";
    for (size_t i = 0; i < exposed.size(); ++i) message += (i > 0 ? "; " : "") + exposed[i];
    return Status::InvalidArgument(message);
  }
  return c;
}

}  // namespace sluice
