// Conninfo handling for PgConnection: what sluice adds to a user's libpq
// connection string (defaults for keys the user left unset: keepalives,
// tcp_user_timeout, ...), what it checks before connecting, and the host
// addresses it resolves off the loop so that libpq never resolves a name on
// it. Pure (PQconninfoParse, PQconndefaults, an injected environment), any
// thread; unit-tested without a server.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace sluice::pg {

// libpq keyword → value, in the order given to PQconnectStartParams.
using ConnParams = std::vector<std::pair<std::string, std::string>>;
// Returns the value of an environment variable, or nullptr.
using EnvLookup = std::function<const char*(const char*)>;

// The process environment.
EnvLookup ProcessEnv();

// The user's conninfo (key=value string, URI, or a bare database name, as
// libpq takes it) as keyword/value pairs, followed by sluice's defaults for
// every key the user set neither there nor through its PG* variable:
//   client_encoding=UTF8, fallback_application_name=sluice, keepalives=1,
//   keepalives_idle=10, keepalives_interval=5, keepalives_count=3,
//   tcp_user_timeout=<tcp_user_timeout_ms>
// A user's own value always wins. Integer options that libpq checks only in
// its blocking API (connect_timeout, also from PGCONNECT_TIMEOUT) are checked
// here. Errors: InvalidArgument "invalid connection option ...", with quoted
// pieces of the conninfo blanked (they may be a password).
Result<ConnParams> BuildConnParams(std::string_view conninfo, int tcp_user_timeout_ms,
                                   const EnvLookup& env);

// The value libpq will use for `key`: from params, else its PG* variable,
// else "".
std::string EffectiveValue(const ConnParams& params, std::string_view key, const EnvLookup& env);

// connect_timeout in seconds as libpq applies it (unset → default_seconds;
// 0 or negative → 0, no limit; 1 → 2). BuildConnParams has validated it.
int ConnectTimeoutSeconds(const ConnParams& params, const EnvLookup& env, int default_seconds);

// Host names libpq would resolve itself (blocking): every entry of the host
// list that is not a Unix socket path or a numeric address. Empty when libpq
// resolves nothing, or when sluice cannot see the hosts (hostaddr set, or a
// service file in use: then libpq resolves, as it always did).
std::vector<std::string> NamesToResolve(const ConnParams& params, const EnvLookup& env);

// params with host / hostaddr / port rewritten so that each resolved address
// of a name is its own entry (host repeated for TLS verification and
// .pgpass, hostaddr = the address, port repeated when given per host); other
// entries keep an empty hostaddr. A name without addresses is left out.
// Errors: kUnavailable when no host is left.
Result<ConnParams> WithResolvedAddresses(
    const ConnParams& params, const EnvLookup& env,
    const std::map<std::string, std::vector<std::string>>& addresses);

// For the config's secret check: whether the conninfo carries a password, and
// the passfile it names ("" when none). A conninfo that does not parse has
// neither.
bool ConninfoHasPassword(std::string_view conninfo);
std::string ConninfoPassfile(std::string_view conninfo);

}  // namespace sluice::pg

namespace sluice::pg {

// `conninfo` as keyword='value' text, logging in as `user` with the password
// from `passfile` instead of whatever user and password it named: what
// `sluice admin bootstrap` prints for a host's sink.url. kInvalidArgument if it
// does not parse.
Result<std::string> ConninfoForRole(std::string_view conninfo, const std::string& user,
                                    const std::string& passfile);

}  // namespace sluice::pg
