// Conninfo defaults, checks and resolved host addresses (see pg_conninfo.h).
#include "sink/pg_conninfo.h"

#include <arpa/inet.h>
#include <libpq-fe.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>

#include "sink/pg_error.h"

namespace sluice::pg {
namespace {

bool LooksLikeConninfo(std::string_view s) {
  return s.find('=') != std::string_view::npos || s.rfind("postgresql://", 0) == 0 ||
         s.rfind("postgres://", 0) == 0;
}

// keyword → its PG* variable, from libpq itself (PQconndefaults).
const std::map<std::string, std::string>& EnvVarNames() {
  static const std::map<std::string, std::string> names = [] {
    std::map<std::string, std::string> m;
    if (PQconninfoOption* opts = PQconndefaults()) {
      for (PQconninfoOption* o = opts; o->keyword != nullptr; ++o) {
        if (o->envvar != nullptr) m[o->keyword] = o->envvar;
      }
      PQconninfoFree(opts);
    }
    return m;
  }();
  return names;
}

const std::string* Find(const ConnParams& params, std::string_view key) {
  for (const auto& [k, v] : params) {
    if (k == key) return &v;
  }
  return nullptr;
}

// libpq's parse_int_param: optional blanks, an integer, optional blanks.
bool IsInteger(const std::string& v) {
  const char* s = v.c_str();
  char* end = nullptr;
  errno = 0;
  long n = std::strtol(s, &end, 10);
  if (end == s || errno != 0 || n < -2147483647L || n > 2147483647L) return false;
  while (*end != '\0' && std::isspace(static_cast<unsigned char>(*end))) ++end;
  return *end == '\0';
}

std::vector<std::string> SplitList(const std::string& v) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    size_t comma = v.find(',', start);
    out.push_back(v.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (comma == std::string::npos) return out;
    start = comma + 1;
  }
}

std::string JoinList(const std::vector<std::string>& v) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) out += (i ? "," : "") + v[i];
  return out;
}

bool IsSocketOrNumeric(const std::string& host) {
  if (host.empty() || host[0] == '/' || host[0] == '@') return true;
  unsigned char buf[sizeof(struct in6_addr)];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

void Set(ConnParams* params, const std::string& key, std::string value) {
  for (auto& [k, v] : *params) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  params->emplace_back(key, std::move(value));
}

// The user's keys, or a parse error worded for the operator.
Result<ConnParams> ParseUser(std::string_view conninfo) {
  ConnParams out;
  if (conninfo.empty()) return out;
  if (!LooksLikeConninfo(conninfo)) {
    out.emplace_back("dbname", std::string(conninfo));
    return out;
  }
  char* err = nullptr;
  std::string text(conninfo);
  PQconninfoOption* opts = PQconninfoParse(text.c_str(), &err);
  if (opts == nullptr) {
    std::string m = err != nullptr ? RedactQuoted(OneLine(err)) : "out of memory";
    if (err != nullptr) PQfreemem(err);
    return Status::InvalidArgument("invalid connection string: " + m);
  }
  for (PQconninfoOption* o = opts; o->keyword != nullptr; ++o) {
    if (o->val != nullptr) out.emplace_back(o->keyword, o->val);
  }
  PQconninfoFree(opts);
  return out;
}

}  // namespace

EnvLookup ProcessEnv() {
  return [](const char* name) { return std::getenv(name); };
}

std::string EffectiveValue(const ConnParams& params, std::string_view key, const EnvLookup& env) {
  if (const std::string* v = Find(params, key)) return *v;
  auto it = EnvVarNames().find(std::string(key));
  if (it == EnvVarNames().end()) return "";
  const char* v = env(it->second.c_str());
  return v != nullptr ? v : "";
}

Result<ConnParams> BuildConnParams(std::string_view conninfo, int tcp_user_timeout_ms,
                                   const EnvLookup& env) {
  Result<ConnParams> parsed = ParseUser(conninfo);
  if (!parsed.ok()) return parsed.status();
  ConnParams params = std::move(parsed.value());

  // libpq checks connect_timeout only in PQconnectdb; its asynchronous API
  // ignores a bad value, and so would the agent's own connect timer.
  std::string timeout = EffectiveValue(params, "connect_timeout", env);
  if (!timeout.empty() && !IsInteger(timeout)) {
    return Status::InvalidArgument("invalid connection option connect_timeout=\"" + timeout +
                                   "\": not a whole number of seconds");
  }

  // Defaults for what the user left unset. Keepalives find a peer that went
  // away while the connection is idle; tcp_user_timeout bounds how long sent
  // data may stay unacknowledged (a black-holed network) before the kernel
  // gives up. Neither helps when a middlebox keeps the TCP session alive but
  // forwards nothing: PgConnection's own reply deadline covers that.
  const std::pair<const char*, std::string> defaults[] = {
      {"client_encoding", "UTF8"},
      {"fallback_application_name", "sluice"},
      {"keepalives", "1"},
      {"keepalives_idle", "10"},
      {"keepalives_interval", "5"},
      {"keepalives_count", "3"},
      {"tcp_user_timeout", std::to_string(tcp_user_timeout_ms)},
  };
  for (const auto& [key, value] : defaults) {
    if (EffectiveValue(params, key, env).empty()) params.emplace_back(key, value);
  }
  return params;
}

int ConnectTimeoutSeconds(const ConnParams& params, const EnvLookup& env, int default_seconds) {
  std::string v = EffectiveValue(params, "connect_timeout", env);
  if (v.empty() || !IsInteger(v)) return default_seconds;
  long seconds = std::strtol(v.c_str(), nullptr, 10);
  if (seconds <= 0) return 0;
  return seconds < 2 ? 2 : static_cast<int>(seconds);  // as libpq does
}

std::vector<std::string> NamesToResolve(const ConnParams& params, const EnvLookup& env) {
  if (!EffectiveValue(params, "hostaddr", env).empty() ||
      !EffectiveValue(params, "service", env).empty()) {
    return {};
  }
  std::vector<std::string> names;
  for (const std::string& h : SplitList(EffectiveValue(params, "host", env))) {
    if (IsSocketOrNumeric(h)) continue;
    bool seen = false;
    for (const std::string& n : names) seen = seen || n == h;
    if (!seen) names.push_back(h);
  }
  return names;
}

Result<ConnParams> WithResolvedAddresses(
    const ConnParams& params, const EnvLookup& env,
    const std::map<std::string, std::vector<std::string>>& addresses) {
  std::vector<std::string> hosts = SplitList(EffectiveValue(params, "host", env));
  std::string port_text = EffectiveValue(params, "port", env);
  std::vector<std::string> ports = SplitList(port_text);
  bool per_host_ports = ports.size() > 1 && ports.size() == hosts.size();

  std::vector<std::string> out_hosts, out_addrs, out_ports;
  std::string failed;
  for (size_t i = 0; i < hosts.size(); ++i) {
    const std::string& h = hosts[i];
    std::vector<std::string> addrs = {""};  // sockets and numeric: libpq needs no lookup
    if (!IsSocketOrNumeric(h)) {
      auto it = addresses.find(h);
      addrs = it == addresses.end() ? std::vector<std::string>{} : it->second;
      if (addrs.empty()) failed += (failed.empty() ? "" : ", ") + h;
    }
    for (const std::string& a : addrs) {
      out_hosts.push_back(h);
      out_addrs.push_back(a);
      if (per_host_ports) out_ports.push_back(ports[i]);
    }
  }
  if (out_hosts.empty()) {
    return Status::Unavailable("cannot resolve host name " + failed);
  }
  ConnParams out = params;
  Set(&out, "host", JoinList(out_hosts));
  Set(&out, "hostaddr", JoinList(out_addrs));
  if (per_host_ports) Set(&out, "port", JoinList(out_ports));
  return out;
}

bool ConninfoHasPassword(std::string_view conninfo) {
  Result<ConnParams> p = ParseUser(conninfo);
  if (!p.ok()) return false;
  const std::string* v = Find(*p, "password");
  return v != nullptr && !v->empty();
}

std::string ConninfoPassfile(std::string_view conninfo) {
  Result<ConnParams> p = ParseUser(conninfo);
  if (!p.ok()) return "";
  const std::string* v = Find(*p, "passfile");
  return v != nullptr ? *v : "";
}

}  // namespace sluice::pg

namespace sluice::pg {

Result<std::string> ConninfoForRole(std::string_view conninfo, const std::string& user,
                                    const std::string& passfile) {
  Result<ConnParams> p = ParseUser(conninfo);
  if (!p.ok()) return p.status();
  ConnParams out;
  for (auto& [k, v] : *p) {
    if (k != "password" && k != "user" && k != "passfile") out.emplace_back(k, v);
  }
  out.emplace_back("user", user);
  out.emplace_back("passfile", passfile);
  std::string text;
  for (const auto& [k, v] : out) {
    if (!text.empty()) text += ' ';
    text += k + "='";
    for (char c : v) {
      if (c == '\'' || c == '\\') text += '\\';
      text += c;
    }
    text += '\'';
  }
  return text;
}

}  // namespace sluice::pg
