// The agent's state file: JSON written with JsonString, read with simdjson.
#include "agent/agent_state_file.h"

#include <fcntl.h>
#include <simdjson.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/json_text.h"

namespace sluice {

namespace {

std::string SafeName(const std::string& name) {
  std::string safe;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    safe.push_back(ok ? c : '_');
  }
  return safe;
}

}  // namespace

std::string StateFilePath(const std::string& source_path, const std::string& deployment,
                          const std::string& node) {
  return source_path + ".sluice-" + SafeName(deployment) + "." + SafeName(node) + ".state.json";
}

std::string FormatAgentState(const AgentStateRecord& r) {
  std::string j = "{\"state\":" + JsonString(r.state);
  auto num = [&j](const char* key, int64_t v) {
    j += ",\"";
    j += key;
    j += "\":" + std::to_string(v);
  };
  num("since_ms", r.since_ms);
  num("position", r.position);
  j += ",\"last_error\":" + JsonString(r.last_error);
  num("last_error_at_ms", r.last_error_at_ms);
  num("failures", r.failures);
  num("exit_code", r.exit_code);
  num("pid", r.pid);
  j += ",\"host\":" + JsonString(r.host);
  j += ",\"node\":" + JsonString(r.node);
  j += ",\"role\":" + JsonString(r.role);
  num("epoch", r.epoch);
  j += ",\"http\":" + JsonString(r.http);
  num("updated_at_ms", r.updated_at_ms);
  j += ",\"stopped_tables\":[";
  for (size_t i = 0; i < r.stopped_tables.size(); ++i) {
    const StoppedTable& t = r.stopped_tables[i];
    if (i > 0) j += ",";
    j += "{\"table\":" + JsonString(t.table) + ",\"error\":" + JsonString(t.error) +
         ",\"since_ms\":" + std::to_string(t.since_ms) + "}";
  }
  j += "],\"progress\":" + SyncProgressJson(r.progress);
  return j + "}\n";
}

namespace {

using simdjson::dom::element;
using simdjson::dom::object;

Status Field(const object& obj, const char* key, std::string* out) {
  std::string_view v;
  if (obj[key].get_string().get(v) != simdjson::SUCCESS) {
    return Status::Corruption(std::string("agent state file: no string '") + key + "'");
  }
  *out = std::string(v);
  return Status::Ok();
}

Status Field(const object& obj, const char* key, int64_t* out) {
  if (obj[key].get_int64().get(*out) != simdjson::SUCCESS) {
    return Status::Corruption(std::string("agent state file: no integer '") + key + "'");
  }
  return Status::Ok();
}

Result<SyncProgress> ParseSyncProgress(const object& p) {
  SyncProgress g;
  SLUICE_RETURN_IF_ERROR(Field(p, "kind", &g.kind));
  SLUICE_RETURN_IF_ERROR(Field(p, "started_ms", &g.started_ms));
  SLUICE_RETURN_IF_ERROR(Field(p, "rows_total", &g.rows_total));
  SLUICE_RETURN_IF_ERROR(Field(p, "rows_done", &g.rows_done));
  SLUICE_RETURN_IF_ERROR(Field(p, "bytes_done", &g.bytes_done));
  SLUICE_RETURN_IF_ERROR(Field(p, "tables_total", &g.tables_total));
  SLUICE_RETURN_IF_ERROR(Field(p, "tables_done", &g.tables_done));
  double rate = 0, eta = -1;
  if (p["rows_per_s"].get_double().get(rate) == simdjson::SUCCESS) g.rows_per_s = rate;
  if (p["eta_s"].get_double().get(eta) == simdjson::SUCCESS) g.eta_s = eta;
  simdjson::dom::array pt;
  if (p["tables"].get_array().get(pt) != simdjson::SUCCESS) {
    return Status::Corruption("agent state file: no array 'progress.tables'");
  }
  for (element e : pt) {
    object t;
    if (e.get_object().get(t) != simdjson::SUCCESS) {
      return Status::Corruption("agent state file: a progress table is not an object");
    }
    SyncProgress::Table tp;
    SLUICE_RETURN_IF_ERROR(Field(t, "table", &tp.table));
    SLUICE_RETURN_IF_ERROR(Field(t, "rows_total", &tp.rows_total));
    SLUICE_RETURN_IF_ERROR(Field(t, "rows_done", &tp.rows_done));
    SLUICE_RETURN_IF_ERROR(Field(t, "bytes_done", &tp.bytes_done));
    g.tables.push_back(std::move(tp));
  }
  return g;
}

}  // namespace

Result<AgentStateRecord> ParseAgentState(std::string_view json) {
  simdjson::dom::parser parser;
  simdjson::padded_string padded(json);
  element root;
  object obj;
  if (parser.parse(padded).get(root) != simdjson::SUCCESS ||
      root.get_object().get(obj) != simdjson::SUCCESS) {
    return Status::Corruption("agent state file: not a JSON object");
  }
  AgentStateRecord r;
  int64_t exit_code = -1;
  SLUICE_RETURN_IF_ERROR(Field(obj, "state", &r.state));
  SLUICE_RETURN_IF_ERROR(Field(obj, "since_ms", &r.since_ms));
  SLUICE_RETURN_IF_ERROR(Field(obj, "position", &r.position));
  SLUICE_RETURN_IF_ERROR(Field(obj, "last_error", &r.last_error));
  SLUICE_RETURN_IF_ERROR(Field(obj, "last_error_at_ms", &r.last_error_at_ms));
  SLUICE_RETURN_IF_ERROR(Field(obj, "failures", &r.failures));
  SLUICE_RETURN_IF_ERROR(Field(obj, "exit_code", &exit_code));
  SLUICE_RETURN_IF_ERROR(Field(obj, "pid", &r.pid));
  SLUICE_RETURN_IF_ERROR(Field(obj, "host", &r.host));
  SLUICE_RETURN_IF_ERROR(Field(obj, "node", &r.node));
  SLUICE_RETURN_IF_ERROR(Field(obj, "role", &r.role));
  SLUICE_RETURN_IF_ERROR(Field(obj, "epoch", &r.epoch));
  SLUICE_RETURN_IF_ERROR(Field(obj, "http", &r.http));
  SLUICE_RETURN_IF_ERROR(Field(obj, "updated_at_ms", &r.updated_at_ms));
  r.exit_code = static_cast<int>(exit_code);
  simdjson::dom::array tables;
  if (obj["stopped_tables"].get_array().get(tables) != simdjson::SUCCESS) {
    return Status::Corruption("agent state file: no array 'stopped_tables'");
  }
  for (element e : tables) {
    object t;
    if (e.get_object().get(t) != simdjson::SUCCESS) {
      return Status::Corruption("agent state file: a stopped table is not an object");
    }
    StoppedTable s;
    SLUICE_RETURN_IF_ERROR(Field(t, "table", &s.table));
    SLUICE_RETURN_IF_ERROR(Field(t, "error", &s.error));
    SLUICE_RETURN_IF_ERROR(Field(t, "since_ms", &s.since_ms));
    r.stopped_tables.push_back(std::move(s));
  }
  // "progress": absent in files of older agents, null between batches; one
  // that does not parse is no progress, not a lost record.
  object p;
  if (obj["progress"].get_object().get(p) == simdjson::SUCCESS) {
    Result<SyncProgress> g = ParseSyncProgress(p);
    if (g.ok()) r.progress = std::move(g.value());
  }
  return r;
}

Status WriteAgentState(const std::string& path, const AgentStateRecord& record) {
  std::string tmp = path + ".tmp";
  std::string text = FormatAgentState(record);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) return Status::Internal("write " + tmp + ": " + std::strerror(errno));
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int e = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return Status::Internal("write " + tmp + ": " + std::strerror(e));
    }
    done += static_cast<size_t>(n);
  }
  // No fsync: rename alone makes the replacement atomic for readers, which
  // is what status needs. The record is advisory and rewritten every few
  // seconds; an fsync per state change would stall the loop thread for
  // milliseconds on a busy disk. After a power loss the file may be old or
  // empty: status then says it cannot read it.
  if (::close(fd) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    return Status::Internal("write " + tmp + ": " + std::strerror(e));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    return Status::Internal("rename " + tmp + " to " + path + ": " + std::strerror(e));
  }
  return Status::Ok();
}

Result<std::optional<AgentStateRecord>> ReadAgentState(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (errno == ENOENT) return std::optional<AgentStateRecord>();
    return Status::Internal("read " + path + ": " + std::strerror(errno));
  }
  std::ostringstream text;
  text << in.rdbuf();
  Result<AgentStateRecord> r = ParseAgentState(text.str());
  if (!r.ok()) return r.status().Wrap(path);
  return std::optional<AgentStateRecord>(std::move(r.value()));
}

std::string StaleReason(const AgentStateRecord& r, int64_t now_ms, bool pid_alive,
                        int64_t max_age_ms) {
  if (r.state == "stopped") {
    return "the agent stopped (exit " + std::to_string(r.exit_code) + ")";
  }
  if (!pid_alive) return "agent process " + std::to_string(r.pid) + " is gone";
  if (now_ms - r.updated_at_ms > max_age_ms) {
    return "not updated for " + std::to_string((now_ms - r.updated_at_ms) / 1000) + " s";
  }
  return "";
}

}  // namespace sluice
