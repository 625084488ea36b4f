// SinkAdmin over blocking libpq: control plane install, mirror tables, position row.
// Blocking, but never without a deadline: the connection gets sluice's
// conninfo defaults (keepalives, tcp_user_timeout) and a connect_timeout, and
// every round trip gives up after sink.query_timeout_ms without a byte from
// the server (as PgConnection does), so the CLI cannot hang on a dead sink.
#include "sink/sink_admin.h"

#include <libpq-fe.h>
#include <poll.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <optional>

#include "common/hex.h"
#include "sink/mirror_table.h"
#include "sink/pg_conninfo.h"
#include "sink/pg_error.h"
#include "sink/pg_sql.h"
#include "sink/value_encoder.h"
#include "sql/control_plane_sql.h"

namespace sluice {
namespace {

using Params = std::vector<std::optional<std::string>>;

struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using PgResultPtr = std::unique_ptr<PGresult, ResultDeleter>;

void LogNotice(void*, const char* message) { spdlog::debug("postgres: {}", pg::OneLine(message)); }

class LibpqSinkAdmin final : public SinkAdmin {
 public:
  LibpqSinkAdmin(PGconn* conn, SinkOptions options) : conn_(conn), options_(std::move(options)) {}
  ~LibpqSinkAdmin() override {
    if (conn_ != nullptr) PQfinish(conn_);
  }

  Status InstallControlPlane() override {
    // A role that may not even read sync_metadata learns so from the script.
    Result<int> version = ControlPlaneVersion();
    if (!version.ok() && version.status().code() == Status::Code::kUnavailable) {
      return version.status();
    }
    const int current = version.ok() ? *version : -1;
    if (current >= kControlPlaneVersion) return Status::Ok();
    Status st = RunScript(kControlPlaneSql, "install control plane (sql/01-control-plane.sql)");
    if (st.ok() || st.code() == Status::Code::kUnavailable) return st;
    std::string now = current < 0 ? "missing" : "at version " + std::to_string(current);
    return Status::InvalidArgument(
        "the control plane (schema sync_metadata) is " + now + ", this sluice needs version " +
        std::to_string(kControlPlaneVersion) + ", and role " + User() + " could not install it (" +
        st.message() +
        "): an administrator runs `sluice admin bootstrap --config FILE --admin-url URL` "
        "(or psql -f sql/01-control-plane.sql, 02-sync-role.sql, 03-host-isolation.sql)");
  }

  Status RunScript(const char* sql, const std::string& what) override {
    Result<PgResultPtr> r = Roundtrip(std::string(sql), nullptr);
    if (!r.ok()) return r.status().Wrap(what);
    return Check(r->get(), what);
  }

  Result<int> ControlPlaneVersion() override {
    // Two statements: one naming a table that does not exist fails to parse.
    Result<PgResultPtr> exists =
        Exec("SELECT to_regclass('sync_metadata.schema_version') IS NOT NULL", {});
    if (!exists.ok()) return exists.status().Wrap("read the control plane's version");
    if (std::string(PQgetvalue(exists->get(), 0, 0)) != "t") return -1;
    Result<PgResultPtr> r = Exec(
        "SELECT coalesce(max(version), -1) FROM sync_metadata.schema_version "
        "WHERE component = 'control-plane'",
        {});
    if (!r.ok()) return r.status().Wrap("read the control plane's version");
    return std::stoi(PQgetvalue(r->get(), 0, 0));
  }

  Result<std::string> EncryptPassword(const std::string& password,
                                      const std::string& role) override {
    char* verifier = PQencryptPasswordConn(conn_, password.c_str(), role.c_str(), "scram-sha-256");
    if (verifier == nullptr) {
      return Status::Internal("encrypt a password: " + pg::OneLine(PQerrorMessage(conn_)));
    }
    std::string out(verifier);
    PQfreemem(verifier);
    return out;
  }

  std::string User() override { return PQuser(conn_) != nullptr ? PQuser(conn_) : ""; }

  // One transaction per kDdlTablesPerTransaction tables (see mirror_table.h):
  // each table's DDL is atomic, a failure keeps the tables done before it.
  Status EnsureMirror(const std::vector<TableShape>& tables) override {
    SLUICE_RETURN_IF_ERROR(CheckIdentifier(options_.schema, "schema"));
    Result<PgResultPtr> mode_row = Exec(DdlModeSql(), {options_.schema});
    if (!mode_row.ok()) return mode_row.status();
    const DdlMode mode = std::string(PQgetvalue(mode_row->get(), 0, 0)) == "delegated"
                             ? DdlMode::kDelegated
                             : DdlMode::kDirect;
    for (size_t first = 0; first < tables.size() || first == 0; first += kDdlTablesPerTransaction) {
      size_t end = std::min(tables.size(), first + kDdlTablesPerTransaction);
      SLUICE_RETURN_IF_ERROR(Exec("BEGIN", {}).status());
      Status st = EnsureMirrorInTxn(tables, first, end, mode);
      if (!st.ok()) {
        if (PQstatus(conn_) == CONNECTION_OK) Roundtrip("ROLLBACK", nullptr);
        // E.g. a unique index that cannot be built on an adopted table holding
        // duplicate keys: retrying will not help, an operator has to act (as
        // the agent's own mirror DDL says: the same exit code).
        if (st.code() == Status::Code::kDataError) return Status::InvalidArgument(st.message());
        return st;
      }
      SLUICE_RETURN_IF_ERROR(Exec("COMMIT", {}).status());
      if (end == tables.size()) break;
    }
    return Status::Ok();
  }

  Status EnsurePosition(const std::string& source_id) override {
    Result<PgResultPtr> ins = Exec(
        "INSERT INTO sync_metadata.source_position (deployment, source_id) "
        "VALUES ($1, $2::uuid) ON CONFLICT (deployment) DO NOTHING",
        {options_.deployment, source_id});
    if (!ins.ok()) return ins.status().Wrap("record source " + source_id);
    Result<SinkPosition> pos = ReadPosition();
    if (!pos.ok()) return pos.status();
    if (!pos->exists) {
      return Status::Internal("position row of deployment " + options_.deployment +
                              " vanished after insert");
    }
    if (pos->source_id != source_id) {
      return Status::Conflict("deployment " + options_.deployment + " already follows source " +
                              pos->source_id + "; this file is source " + source_id);
    }
    return Status::Ok();
  }

  Status Rebind(const std::string& source_id) override {
    Result<PgResultPtr> r = Exec(
        "INSERT INTO sync_metadata.source_position (deployment, source_id) "
        "VALUES ($1, $2::uuid) ON CONFLICT (deployment) DO UPDATE "
        "SET source_id = EXCLUDED.source_id, applied_seq = -1, updated_at = now()",
        {options_.deployment, source_id});
    if (!r.ok()) return r.status().Wrap("re-bind deployment " + options_.deployment);
    return Status::Ok();
  }

  Result<SinkPosition> ReadPosition() override {
    Result<PgResultPtr> r = Exec(
        "SELECT source_id::text, applied_seq, updated_at::text "
        "FROM sync_metadata.source_position WHERE deployment = $1",
        {options_.deployment});
    if (!r.ok()) return r.status().Wrap("read position of deployment " + options_.deployment);
    SinkPosition pos;
    PGresult* res = r->get();
    if (PQntuples(res) == 0) return pos;
    pos.exists = true;
    pos.source_id = PQgetvalue(res, 0, 0);
    pos.applied_seq = PQgetisnull(res, 0, 1) ? -1 : std::stoll(PQgetvalue(res, 0, 1));
    if (!PQgetisnull(res, 0, 2)) pos.updated_at = PQgetvalue(res, 0, 2);
    return pos;
  }

  Result<SinkLease> ReadLease() override {
    Result<PgResultPtr> r = Exec(
        "SELECT coalesce(leader_id, ''), coalesce(leader_host, ''), epoch, "
        "CASE WHEN expires_at IS NULL THEN 0 ELSE floor(extract(epoch FROM expires_at - "
        "clock_timestamp()) * 1000)::bigint END, heartbeat_count, released_at IS NOT NULL "
        "FROM sync_metadata.leader_election WHERE deployment = $1 AND epoch > 0",
        {options_.deployment});
    if (!r.ok()) {
      if (r.status().message().find("SQLSTATE 42P01") != std::string::npos) {
        return Status::InvalidArgument(
            "the sink's control plane has no leader lease (sync_metadata.leader_election): it "
            "is older than this binary; run `sluice init` to upgrade it");
      }
      return r.status().Wrap("read the leader lease of " + options_.deployment);
    }
    SinkLease lease;
    PGresult* res = r->get();
    if (PQntuples(res) == 0) return lease;
    lease.exists = true;
    lease.leader_id = PQgetvalue(res, 0, 0);
    lease.leader_host = PQgetvalue(res, 0, 1);
    lease.epoch = std::stoll(PQgetvalue(res, 0, 2));
    lease.expires_in_ms = PQgetisnull(res, 0, 3) ? 0 : std::stoll(PQgetvalue(res, 0, 3));
    lease.heartbeats = std::stoll(PQgetvalue(res, 0, 4));
    lease.released = std::string(PQgetvalue(res, 0, 5)) == "t";
    return lease;
  }

  Result<int64_t> CountParked() override {
    Result<PgResultPtr> r = Exec(
        "SELECT count(*) FROM sync_metadata.conflict_log "
        "WHERE deployment = $1 AND status = 'parked'",
        {options_.deployment});
    if (!r.ok()) return r.status().Wrap("count parked rows");
    return static_cast<int64_t>(std::stoll(PQgetvalue(r->get(), 0, 0)));
  }

  Result<std::vector<SinkRow>> Query(const std::string& sql, const Params& params,
                                     int timeout_ms) override {
    const int saved = options_.query_timeout_ms;
    if (timeout_ms > 0) options_.query_timeout_ms = timeout_ms;
    Result<PgResultPtr> r = Exec(sql, params);
    options_.query_timeout_ms = saved;
    if (!r.ok()) return r.status();
    std::vector<SinkRow> rows;
    PGresult* res = r->get();
    for (int i = 0; i < PQntuples(res); ++i) {
      SinkRow& row = rows.emplace_back();
      for (int j = 0; j < PQnfields(res); ++j) {
        if (PQgetisnull(res, i, j)) {
          row.emplace_back();
        } else {
          row.emplace_back(std::string(PQgetvalue(res, i, j), PQgetlength(res, i, j)));
        }
      }
    }
    return rows;
  }

 private:
  Status EnsureMirrorInTxn(const std::vector<TableShape>& tables, size_t first, size_t end,
                           DdlMode mode) {
    // A host role's schema exists (registered by an administrator).
    if (mode == DdlMode::kDirect) {
      SLUICE_RETURN_IF_ERROR(Exec(CreateSchemaSql(options_.schema), {}).status());
    }
    // The DDL's writes to mirror rows (sweeping a mirror set aside) are
    // sluice's own, not outside writes, and no conflicts.
    SLUICE_RETURN_IF_ERROR(
        Exec(WriterSettingsSql(), {options_.deployment, "{\"mode\":\"retire\"}"}).status());
    for (size_t i = first; i < end; ++i) {
      Status st = EnsureTable(tables[i], mode);
      if (!st.ok()) return st.Wrap("table " + tables[i].name);
    }
    return Status::Ok();
  }

  Status EnsureTable(const TableShape& shape, DdlMode mode) {
    SLUICE_RETURN_IF_ERROR(CheckIdentifier(shape.name, "table"));
    const std::string qualified = QualifiedName(options_.schema, shape.name);
    Result<PgResultPtr> cols = Exec(CatalogColumnsSql(), {qualified});
    if (!cols.ok()) return cols.status();
    ExistingTable existing;
    for (int i = 0; i < PQntuples(cols->get()); ++i) {
      existing.columns.push_back({PQgetvalue(cols->get(), i, 0), PQgetvalue(cols->get(), i, 1),
                                  PQgetvalue(cols->get(), i, 2)});
    }
    if (!existing.columns.empty()) {
      std::string keys = "[";
      for (size_t k : shape.KeyColumns()) {
        if (keys.size() > 1) keys += ",";
        AppendJsonString(&keys, shape.columns[k].name);
      }
      keys += "]";
      Result<PgResultPtr> idx = Exec(KeyIndexExistsSql(), {qualified, keys});
      if (!idx.ok()) return idx.status();
      existing.key_index_exists = std::string(PQgetvalue(idx->get(), 0, 0)) == "t";
      Result<PgResultPtr> indexes = Exec(TableIndexesSql(), {qualified});
      if (!indexes.ok()) return indexes.status();
      for (int i = 0; i < PQntuples(indexes->get()); ++i) {
        existing.relid = PQgetvalue(indexes->get(), i, 0);
        if (!PQgetisnull(indexes->get(), i, 1)) {
          existing.index_names.push_back(PQgetvalue(indexes->get(), i, 1));
        }
        existing.pages = std::stoll(PQgetvalue(indexes->get(), i, 2));
        existing.page_bytes = std::stoll(PQgetvalue(indexes->get(), i, 3));
      }
      Result<PgResultPtr> triggers = Exec(ConflictTriggersSql(), {qualified});
      if (!triggers.ok()) return triggers.status();
      for (int i = 0; i < PQntuples(triggers->get()); ++i) {
        existing.triggers[PQgetvalue(triggers->get(), i, 0)] =
            Unhex(PQgetvalue(triggers->get(), i, 1)).value_or("");
      }
    }
    Result<MirrorTable> plan =
        PlanMirror(options_.schema, options_.deployment, shape,
                   OverridesFor(options_.column_types, shape.name), existing);
    if (!plan.ok()) return plan.status();
    if (!plan->set_aside_as.empty()) {
      spdlog::warn(
          "sink: mirror {} has another key than table \"{}\" now has: kept as {} "
          "(rows tombstoned), a new mirror is created and filled by a full read",
          plan->qualified, shape.name, plan->set_aside_as);
    }
    Result<std::vector<DdlStatement>> statements =
        DdlStatements(mode, options_.deployment, options_.schema, plan->qualified, plan->ddl,
                      plan->steps, plan->owner_only);
    if (!statements.ok()) return statements.status();
    for (const DdlStatement& ddl : *statements) {
      Result<PgResultPtr> r = Exec(ddl.sql, ddl.params);
      // E.g. duplicate keys in an adopted table (kDataError): EnsureMirror
      // turns it into kInvalidArgument, an operator has to act (`init` exits 2).
      if (!r.ok()) return r.status();
    }
    return Status::Ok();
  }

  // Runs one statement with text parameters; errors carry the SQLSTATE.
  Result<PgResultPtr> Exec(const std::string& sql, const Params& params) {
    Result<PgResultPtr> r = Roundtrip(sql, &params);
    if (!r.ok()) return r.status();
    Status st = Check(r->get(), "");
    if (!st.ok()) return st;
    return r;
  }

  // PQexec (params == nullptr: several statements allowed) or PQexecParams,
  // with a deadline: the first error result, else the last result.
  // kUnavailable, with the connection dropped, after query_timeout_ms
  // without a byte from the server.
  Result<PgResultPtr> Roundtrip(const std::string& sql, const Params* params) {
    int sent = 0;
    if (params == nullptr) {
      sent = PQsendQuery(conn_, sql.c_str());
    } else {
      std::vector<const char*> values;
      for (const auto& p : *params) values.push_back(p ? p->c_str() : nullptr);
      sent = PQsendQueryParams(conn_, sql.c_str(), static_cast<int>(values.size()), nullptr,
                               values.data(), nullptr, nullptr, 0);
    }
    if (sent == 0) return Lost(pg::OneLine(PQerrorMessage(conn_)));
    PgResultPtr last;
    PgResultPtr error;
    for (;;) {
      while (PQisBusy(conn_) != 0) {
        pollfd p{PQsocket(conn_), POLLIN, 0};
        int n = ::poll(&p, 1, options_.query_timeout_ms);
        if (n < 0 && errno == EINTR) continue;
        if (n == 0) {
          PQfinish(conn_);
          conn_ = nullptr;
          return Status::Unavailable("no reply from PostgreSQL within " +
                                     std::to_string(options_.query_timeout_ms) +
                                     " ms (sink.query_timeout_ms timeout); connection dropped");
        }
        if (n < 0 || PQconsumeInput(conn_) == 0) {
          return Lost(pg::OneLine(PQerrorMessage(conn_)));
        }
      }
      PGresult* r = PQgetResult(conn_);
      if (r == nullptr) break;
      ExecStatusType st = PQresultStatus(r);
      bool failed = st == PGRES_FATAL_ERROR || st == PGRES_BAD_RESPONSE;
      if (failed && error == nullptr) {
        error.reset(r);
      } else {
        last.reset(r);
      }
    }
    return error != nullptr ? std::move(error) : std::move(last);
  }

  static Status Lost(const std::string& why) {
    return Status::Unavailable("connection to PostgreSQL lost: " + why);
  }

  Status Check(PGresult* r, const std::string& context) {
    ExecStatusType s = r == nullptr ? PGRES_FATAL_ERROR : PQresultStatus(r);
    if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK || s == PGRES_EMPTY_QUERY) {
      return Status::Ok();
    }
    const char* state = r == nullptr ? nullptr : PQresultErrorField(r, PG_DIAG_SQLSTATE);
    const char* primary = r == nullptr ? nullptr : PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
    const char* detail = r == nullptr ? nullptr : PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL);
    std::string msg = primary != nullptr ? primary : PQerrorMessage(conn_);
    Status st = pg::QueryError(1, 1, state != nullptr ? state : "", msg,
                               detail != nullptr ? detail : "", PQstatus(conn_) == CONNECTION_BAD);
    return context.empty() ? st : st.Wrap(context);
  }

  PGconn* conn_;
  SinkOptions options_;
};

}  // namespace

Result<std::unique_ptr<SinkAdmin>> SinkAdmin::Connect(const SinkOptions& options) {
  char* parse_error = nullptr;
  PQconninfoOption* parsed = PQconninfoParse(options.url.c_str(), &parse_error);
  if (parsed == nullptr) {
    std::string m = parse_error != nullptr ? pg::OneLine(parse_error) : "out of memory";
    PQfreemem(parse_error);
    return Status::InvalidArgument("invalid sink URL / conninfo: " + pg::RedactQuoted(m));
  }
  std::string password;
  for (PQconninfoOption* o = parsed; o->keyword != nullptr; ++o) {
    if (std::string(o->keyword) == "password" && o->val != nullptr) password = o->val;
  }
  PQconninfoFree(parsed);

  pg::EnvLookup env = pg::ProcessEnv();
  Result<pg::ConnParams> params = pg::BuildConnParams(options.url, options.query_timeout_ms, env);
  if (!params.ok()) return params.status();
  if (pg::EffectiveValue(*params, "connect_timeout", env).empty()) {
    // libpq counts whole seconds per host; the query deadline, rounded up.
    int seconds = std::max(2, (options.query_timeout_ms + 999) / 1000);
    params->emplace_back("connect_timeout", std::to_string(seconds));
  }
  std::vector<const char*> keys;
  std::vector<const char*> values;
  for (const auto& [k, v] : *params) {
    keys.push_back(k.c_str());
    values.push_back(v.c_str());
  }
  keys.push_back(nullptr);
  values.push_back(nullptr);
  PGconn* conn = PQconnectdbParams(keys.data(), values.data(), 0);
  if (conn == nullptr) return Status::Internal("libpq could not allocate a connection");
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string user = PQuser(conn) != nullptr ? PQuser(conn) : "";
    std::string host = PQhost(conn) != nullptr ? PQhost(conn) : "";
    std::string port = PQport(conn) != nullptr ? PQport(conn) : "";
    Status st = pg::ConnectError(pg::Redact(PQerrorMessage(conn), password), user, host, port);
    PQfinish(conn);
    return st;
  }
  PQsetNoticeProcessor(conn, LogNotice, nullptr);
  return std::unique_ptr<SinkAdmin>(new LibpqSinkAdmin(conn, options));
}

}  // namespace sluice
