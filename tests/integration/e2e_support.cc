// End-to-end test support (see e2e_support.h).
#include "tests/integration/e2e_support.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>

extern char** environ;

namespace sluice::e2e {

namespace {

constexpr unsigned kOidBool = 16;
constexpr unsigned kOidBytea = 17;
constexpr unsigned kOidInt8 = 20;
constexpr unsigned kOidInt2 = 21;
constexpr unsigned kOidInt4 = 23;
constexpr unsigned kOidJson = 114;
constexpr unsigned kOidFloat4 = 700;
constexpr unsigned kOidFloat8 = 701;
constexpr unsigned kOidNumeric = 1700;
constexpr unsigned kOidJsonb = 3802;

std::string ShortestDouble(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, res.ptr);
}

// Parses the whole of `s` as a double ("Infinity", "-Infinity", "NaN" included).
std::optional<double> ParseDouble(const std::string& s) {
  if (s.empty()) return std::nullopt;
  const char* begin = s.c_str();
  char* end = nullptr;
  errno = 0;
  double v = std::strtod(begin, &end);
  if (end != begin + s.size()) return std::nullopt;
  return v;
}

std::optional<int64_t> ParseInt(const std::string& s) {
  int64_t v = 0;
  auto res = std::from_chars(s.data(), s.data() + s.size(), v);
  if (res.ec != std::errc() || res.ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

bool SameDouble(double a, double b) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  return a == b;
}

std::optional<std::string> Unhex(const std::string& s) {
  std::string out;
  out.reserve(s.size() / 2);
  auto digit = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  if (s.size() % 2 != 0) return std::nullopt;
  for (size_t i = 0; i < s.size(); i += 2) {
    int hi = digit(s[i]);
    int lo = digit(s[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>((hi << 4) | lo));
  }
  return out;
}

// bytea text output (hex format "\x0a0b") → bytes.
std::optional<std::string> DecodeBytea(const std::string& s) {
  if (s.size() >= 2 && s[0] == '\\' && s[1] == 'x') return Unhex(s.substr(2));
  return std::nullopt;
}

// ---- a small JSON canonicaliser (jsonb semantics: object keys sorted, the
// last of duplicate keys wins, insignificant whitespace dropped, numbers
// compared as doubles).
class JsonCanon {
 public:
  explicit JsonCanon(const std::string& s) : s_(s) {}
  std::optional<std::string> Run() {
    std::string out;
    Ws();
    if (!Value(&out)) return std::nullopt;
    Ws();
    if (p_ != s_.size()) return std::nullopt;
    return out;
  }

 private:
  void Ws() {
    while (p_ < s_.size() && (s_[p_] == ' ' || s_[p_] == '\t' || s_[p_] == '\n' || s_[p_] == '\r'))
      ++p_;
  }
  bool Lit(const char* lit, std::string* out) {
    size_t n = std::strlen(lit);
    if (s_.compare(p_, n, lit) != 0) return false;
    p_ += n;
    *out += lit;
    return true;
  }
  static void AppendUtf8(uint32_t cp, std::string* out) {
    if (cp < 0x80) {
      out->push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }
  bool Hex4(uint32_t* v) {
    if (p_ + 4 > s_.size()) return false;
    uint32_t x = 0;
    for (int i = 0; i < 4; ++i) {
      char c = s_[p_ + static_cast<size_t>(i)];
      int h = (c >= '0' && c <= '9')   ? c - '0'
              : (c >= 'a' && c <= 'f') ? c - 'a' + 10
              : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                       : -1;
      if (h < 0) return false;
      x = x * 16 + static_cast<uint32_t>(h);
    }
    p_ += 4;
    *v = x;
    return true;
  }
  // Decoded string (bytes) without quotes.
  bool Str(std::string* decoded) {
    if (p_ >= s_.size() || s_[p_] != '"') return false;
    ++p_;
    while (p_ < s_.size()) {
      char c = s_[p_++];
      if (c == '"') return true;
      if (c != '\\') {
        decoded->push_back(c);
        continue;
      }
      if (p_ >= s_.size()) return false;
      char e = s_[p_++];
      switch (e) {
        case '"':
          decoded->push_back('"');
          break;
        case '\\':
          decoded->push_back('\\');
          break;
        case '/':
          decoded->push_back('/');
          break;
        case 'b':
          decoded->push_back('\b');
          break;
        case 'f':
          decoded->push_back('\f');
          break;
        case 'n':
          decoded->push_back('\n');
          break;
        case 'r':
          decoded->push_back('\r');
          break;
        case 't':
          decoded->push_back('\t');
          break;
        case 'u': {
          uint32_t cp = 0;
          if (!Hex4(&cp)) return false;
          if (cp >= 0xD800 && cp < 0xDC00 && p_ + 6 <= s_.size() && s_[p_] == '\\' &&
              s_[p_ + 1] == 'u') {
            p_ += 2;
            uint32_t lo = 0;
            if (!Hex4(&lo)) return false;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          AppendUtf8(cp, decoded);
          break;
        }
        default:
          return false;
      }
    }
    return false;
  }
  static void EmitStr(const std::string& bytes, std::string* out) {
    out->push_back('"');
    for (char c : bytes) {
      if (c == '"' || c == '\\') out->push_back('\\');
      out->push_back(c);
    }
    out->push_back('"');
  }
  bool Value(std::string* out) {
    if (p_ >= s_.size()) return false;
    char c = s_[p_];
    if (c == '{') {
      ++p_;
      std::map<std::string, std::string> members;
      Ws();
      if (p_ < s_.size() && s_[p_] == '}') {
        ++p_;
      } else {
        for (;;) {
          Ws();
          std::string key;
          if (!Str(&key)) return false;
          Ws();
          if (p_ >= s_.size() || s_[p_] != ':') return false;
          ++p_;
          Ws();
          std::string v;
          if (!Value(&v)) return false;
          members[key] = v;
          Ws();
          if (p_ < s_.size() && s_[p_] == ',') {
            ++p_;
            continue;
          }
          if (p_ < s_.size() && s_[p_] == '}') {
            ++p_;
            break;
          }
          return false;
        }
      }
      *out += '{';
      bool first = true;
      for (auto& [k, v] : members) {
        if (!first) *out += ',';
        first = false;
        EmitStr(k, out);
        *out += ':';
        *out += v;
      }
      *out += '}';
      return true;
    }
    if (c == '[') {
      ++p_;
      *out += '[';
      Ws();
      if (p_ < s_.size() && s_[p_] == ']') {
        ++p_;
        *out += ']';
        return true;
      }
      for (bool first = true;; first = false) {
        if (!first) *out += ',';
        Ws();
        if (!Value(out)) return false;
        Ws();
        if (p_ < s_.size() && s_[p_] == ',') {
          ++p_;
          continue;
        }
        if (p_ < s_.size() && s_[p_] == ']') {
          ++p_;
          *out += ']';
          return true;
        }
        return false;
      }
    }
    if (c == '"') {
      std::string decoded;
      if (!Str(&decoded)) return false;
      EmitStr(decoded, out);
      return true;
    }
    if (c == 't') return Lit("true", out);
    if (c == 'f') return Lit("false", out);
    if (c == 'n') return Lit("null", out);
    size_t start = p_;
    while (p_ < s_.size() && (std::isdigit(static_cast<unsigned char>(s_[p_])) || s_[p_] == '-' ||
                              s_[p_] == '+' || s_[p_] == '.' || s_[p_] == 'e' || s_[p_] == 'E')) {
      ++p_;
    }
    if (p_ == start) return false;
    auto d = ParseDouble(s_.substr(start, p_ - start));
    if (!d) return false;
    *out += "#" + Canon17(*d);
    return true;
  }

  const std::string& s_;
  size_t p_ = 0;
};

std::string CanonJson(const std::string& text) {
  auto c = JsonCanon(text).Run();
  if (!c) return "!invalid json:" + text;
  return *c;
}

// Canonical form of a key component: what PostgreSQL shows for a column of
// type `oid` and what the SQLite value becomes there must canonicalise alike.
std::string CanonSourceKey(const SqlValue& v, unsigned oid) {
  if (v.type == SQLITE_NULL) return "N";
  switch (oid) {
    case kOidInt2:
    case kOidInt4:
    case kOidInt8:
    case kOidBool:
      if (v.type == SQLITE_INTEGER) return "i" + std::to_string(v.i);
      if (v.type == SQLITE_FLOAT && std::nearbyint(v.r) == v.r && std::fabs(v.r) < 9.2e18) {
        return "i" + std::to_string(static_cast<int64_t>(v.r));
      }
      return "?" + v.Describe();
    case kOidFloat4:
    case kOidFloat8:
      if (v.type == SQLITE_INTEGER) return "d" + Canon17(static_cast<double>(v.i));
      if (v.type == SQLITE_FLOAT) return "d" + Canon17(v.r);
      return "?" + v.Describe();
    case kOidBytea:
      if (v.type == SQLITE_BLOB || v.type == SQLITE_TEXT) return "b" + v.bytes;
      return "?" + v.Describe();
    default:
      if (v.type == SQLITE_TEXT) return "t" + v.bytes;
      if (v.type == SQLITE_INTEGER) return "t" + std::to_string(v.i);
      if (v.type == SQLITE_FLOAT) return "t" + ShortestDouble(v.r);
      return "?" + v.Describe();
  }
}

std::string CanonPgKey(const std::optional<std::string>& text, unsigned oid) {
  if (!text) return "N";
  switch (oid) {
    case kOidInt2:
    case kOidInt4:
    case kOidInt8:
      return "i" + *text;
    case kOidBool:
      return *text == "t" ? "i1" : "i0";
    case kOidFloat4:
    case kOidFloat8: {
      auto d = ParseDouble(*text);
      return d ? "d" + Canon17(*d) : "?" + *text;
    }
    case kOidBytea: {
      auto b = DecodeBytea(*text);
      return b ? "b" + *b : "?" + *text;
    }
    default:
      return "t" + *text;
  }
}

std::string JoinKey(const std::vector<std::string>& parts) {
  std::string k;
  for (const std::string& p : parts) {
    k += std::to_string(p.size());
    k += ':';
    k += p;
  }
  return k;
}

// Does the SQLite value equal the PostgreSQL text of a column of type `oid`?
bool ValueEquals(const SqlValue& v, const std::optional<std::string>& pg, unsigned oid) {
  if (v.type == SQLITE_NULL || !pg) return v.type == SQLITE_NULL && !pg;
  switch (oid) {
    case kOidInt2:
    case kOidInt4:
    case kOidInt8: {
      auto n = ParseInt(*pg);
      if (!n) return false;
      if (v.type == SQLITE_INTEGER) return v.i == *n;
      if (v.type == SQLITE_FLOAT) return static_cast<double>(*n) == v.r;
      if (v.type == SQLITE_TEXT) return v.bytes == *pg;
      return false;
    }
    case kOidFloat4:
    case kOidFloat8: {
      auto d = ParseDouble(*pg);
      if (!d) return false;
      std::optional<double> s;
      if (v.type == SQLITE_INTEGER) s = static_cast<double>(v.i);
      if (v.type == SQLITE_FLOAT) s = v.r;
      if (v.type == SQLITE_TEXT) s = ParseDouble(v.bytes);
      if (!s) return false;
      if (oid == kOidFloat4) return SameDouble(static_cast<float>(*s), static_cast<float>(*d));
      return SameDouble(*s, *d);
    }
    case kOidBool:
      if (v.type != SQLITE_INTEGER) return false;
      return (v.i == 1 && *pg == "t") || (v.i == 0 && *pg == "f");
    case kOidNumeric: {
      if (v.type == SQLITE_INTEGER) {
        if (*pg == std::to_string(v.i)) return true;
        auto d = ParseDouble(*pg);
        return d && *d == static_cast<double>(v.i) && std::fabs(*d) < 9e15;
      }
      if (v.type == SQLITE_FLOAT) {
        auto d = ParseDouble(*pg);
        return d && SameDouble(*d, v.r);
      }
      if (v.type == SQLITE_TEXT) return v.bytes == *pg;
      return false;
    }
    case kOidJson:
    case kOidJsonb:
      if (v.type == SQLITE_TEXT) return CanonJson(v.bytes) == CanonJson(*pg);
      if (v.type == SQLITE_INTEGER) return CanonJson(std::to_string(v.i)) == CanonJson(*pg);
      if (v.type == SQLITE_FLOAT) return CanonJson(Canon17(v.r)) == CanonJson(*pg);
      return false;
    case kOidBytea: {
      auto b = DecodeBytea(*pg);
      return b && (v.type == SQLITE_BLOB || v.type == SQLITE_TEXT) && *b == v.bytes;
    }
    default:  // text, varchar and anything PostgreSQL casts from text
      if (v.type == SQLITE_TEXT) return v.bytes == *pg;
      if (v.type == SQLITE_INTEGER) return std::to_string(v.i) == *pg;
      if (v.type == SQLITE_FLOAT) {
        auto d = ParseDouble(*pg);
        return d && SameDouble(*d, v.r);
      }
      return false;
  }
}

}  // namespace

// Minimal reader for the flat JSON object `status --json` prints.
std::optional<std::string> JsonField(const std::string& raw, const std::string& key) {
  std::string pat = "\"" + key + "\"";
  size_t p = raw.find(pat);
  if (p == std::string::npos) return std::nullopt;
  p = raw.find(':', p + pat.size());
  if (p == std::string::npos) return std::nullopt;
  ++p;
  while (p < raw.size() && std::isspace(static_cast<unsigned char>(raw[p]))) ++p;
  if (p >= raw.size()) return std::nullopt;
  if (raw[p] == '"') {
    std::string out;
    for (++p; p < raw.size() && raw[p] != '"'; ++p) {
      if (raw[p] == '\\' && p + 1 < raw.size()) ++p;
      out.push_back(raw[p]);
    }
    return out;
  }
  size_t e = p;
  while (e < raw.size() && raw[e] != ',' && raw[e] != '}' &&
         !std::isspace(static_cast<unsigned char>(raw[e]))) {
    ++e;
  }
  return raw.substr(p, e - p);
}

// ---------------------------------------------------------------- basics

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? "" : v;
}

std::string SluiceBin() {
  std::string b = Env("SLUICE_BIN");
  if (b.empty()) throw std::runtime_error("SLUICE_BIN is not set (run through meson test)");
  return b;
}

std::string FixtureSchemaPath() {
  std::string f = Env("SLUICE_SCHEMA_FIXTURE");
  if (f.empty())
    throw std::runtime_error("SLUICE_SCHEMA_FIXTURE is not set (run through meson test)");
  return f;
}

bool ContainsNoCase(const std::string& haystack, const std::string& needle) {
  auto it = std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end(),
                        [](char a, char b) {
                          return std::tolower(static_cast<unsigned char>(a)) ==
                                 std::tolower(static_cast<unsigned char>(b));
                        });
  return it != haystack.end();
}

// ---------------------------------------------------------------- config

std::string AgentConfig::ToJson() const {
  auto list = [](const std::vector<std::string>& v) {
    std::string s = "[";
    for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + JsonString(v[i]);
    return s + "]";
  };
  std::string j = "{\n";
  j += "  \"deployment\": " + JsonString(deployment) + ",\n";
  j += "  \"node\": " + JsonString(node) + ",\n";
  j += "  \"source\": {\"path\": " + JsonString(db_path);
  if (!include.empty()) j += ", \"include\": " + list(include);
  if (!exclude.empty()) j += ", \"exclude\": " + list(exclude);
  j += ", \"busy_timeout_ms\": " + std::to_string(busy_timeout_ms) + "},\n";
  j += "  \"sink\": {\"url\": " + JsonString(sink_url) +
       ", \"schema\": " + JsonString(schema.empty() ? deployment : schema) +
       (sink_extra.empty() ? "" : ", " + sink_extra) + "},\n";
  if (!tables_json.empty()) j += "  \"tables\": " + tables_json + ",\n";
  j += "  \"agent\": {\"poll_interval_ms\": " + std::to_string(poll_interval_ms) +
       ", \"retry_min_ms\": " + std::to_string(retry_min_ms) +
       ", \"retry_max_ms\": " + std::to_string(retry_max_ms) +
       ", \"log_level\": " + JsonString(log_level) +
       (agent_extra.empty() ? "" : ", " + agent_extra) + "}\n";
  return j + "}\n";
}

std::string AgentConfig::Write(const std::string& path) const {
  WriteFile(path, ToJson());
  return path;
}

// ---------------------------------------------------------------- processes

CommandResult RunSluice(const std::vector<std::string>& args, milliseconds timeout) {
  std::vector<std::string> argv = {SluiceBin()};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, timeout);
}

// ---------------------------------------------------------------- status

AgentStatus QueryStatus(const std::string& config_path) {
  AgentStatus s;
  CommandResult r = RunSluice({"status", "--json", "--config", config_path}, seconds(30));
  s.raw = r.out;
  if (r.exit_code != 0) {
    s.error = r.Describe();
    return s;
  }
  auto num = [&](const char* key, int64_t* out) {
    auto v = JsonField(r.out, key);
    if (!v) return false;
    auto n = ParseInt(*v);
    if (!n) return false;
    *out = *n;
    return true;
  };
  bool ok = num("sink_position", &s.sink_position) && num("journal_max_seq", &s.journal_max_seq) &&
            num("backlog_rows", &s.backlog_rows) && num("parked_rows", &s.parked_rows);
  auto dep = JsonField(r.out, "deployment");
  auto src = JsonField(r.out, "source_id");
  auto lag = JsonField(r.out, "lag_seconds");
  auto done = JsonField(r.out, "initial_sync_done");
  if (!ok || !dep || !src || !lag || !done || !ParseDouble(*lag)) {
    s.error = "unparseable status --json output: " + r.out + r.err;
    return s;
  }
  s.deployment = *dep;
  s.source_id = *src;
  s.lag_seconds = *ParseDouble(*lag);
  s.initial_sync_done = *done == "true";
  auto full = JsonField(r.out, "pending_full_reads");
  if (full && ParseInt(*full)) s.pending_full_reads = *ParseInt(*full);
  s.ok = true;
  return s;
}

AgentStatus WaitCaughtUp(const std::string& config_path, AgentProcess* agent,
                         milliseconds timeout) {
  AgentStatus last;
  WaitUntil(
      [&] {
        if (agent != nullptr && !agent->Running()) {
          last.error = "the agent exited (" + std::to_string(agent->last_exit().value_or(-1)) + ")";
          return true;
        }
        last = QueryStatus(config_path);
        return last.CaughtUp();
      },
      timeout);
  return last;
}

// ---------------------------------------------------------------- SQLite

void CreateOpenWebUiDb(const std::string& path) {
  std::string schema = ReadFile(FixtureSchemaPath());
  if (schema.empty()) throw std::runtime_error("cannot read the fixture " + FixtureSchemaPath());
  Sqlite db(path);
  db.Exec(schema);
}

std::vector<std::string> AppTables(Sqlite& db) {
  std::vector<std::string> out;
  for (auto& row :
       db.Query("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE "
                "'sqlite\\_%' ESCAPE '\\' AND name NOT LIKE '\\_sluice\\_%' ESCAPE '\\' "
                "ORDER BY name")) {
    out.push_back(row[0].bytes);
  }
  return out;
}

std::string DumpAppTables(Sqlite& db) {
  std::string out;
  for (const std::string& t : AppTables(db)) {
    out += "TABLE " + t + ": " +
           db.ScalarText("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?",
                         {SqlValue::Text(t)}) +
           "\n";
    std::vector<std::string> cols;
    for (auto& c : db.Query("SELECT name FROM pragma_table_info(?)", {SqlValue::Text(t)})) {
      cols.push_back(c[0].bytes);
    }
    std::string expr;
    for (const std::string& c : cols) {
      expr += (expr.empty() ? "" : " || ',' || ") + std::string("quote(") + QuoteIdent(c) + ")";
    }
    if (expr.empty()) continue;
    std::vector<std::string> lines;
    for (auto& r : db.Query("SELECT " + expr + " FROM " + QuoteIdent(t)))
      lines.push_back(r[0].bytes);
    std::sort(lines.begin(), lines.end());
    for (auto& l : lines) out += "  " + l + "\n";
  }
  return out;
}

// ---------------------------------------------------------------- comparator

const SqlValue* SourceRowRef::Get(const std::string& column) const {
  for (size_t i = 0; i < names->size(); ++i) {
    if ((*names)[i] == column) return &(*values)[i];
  }
  return nullptr;
}

std::string CompareReport::Text() const {
  std::ostringstream s;
  s << tables << " table(s), " << rows_compared << " row(s) compared, " << rows_parked
    << " accepted as parked, " << problems.size() << " problem(s)";
  for (size_t i = 0; i < problems.size() && i < 60; ++i) s << "\n  - " << problems[i];
  if (problems.size() > 60) s << "\n  ... " << problems.size() - 60 << " more";
  return s.str();
}

std::vector<std::string> SinkKeyColumns(Pg& pg, const std::string& schema,
                                        const std::string& table) {
  const char* sql =
      "SELECT a.attname FROM pg_index i "
      "JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
      "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY (i.indkey::int2[]) "
      "WHERE n.nspname = $1 AND c.relname = $2 AND i.indexrelid = ("
      "  SELECT i2.indexrelid FROM pg_index i2 WHERE i2.indrelid = c.oid AND i2.indisunique "
      "  AND i2.indpred IS NULL ORDER BY i2.indisprimary DESC, i2.indexrelid LIMIT 1) "
      "ORDER BY array_position(i.indkey::int2[], a.attnum)";
  std::vector<std::string> out;
  for (auto& r : pg.Query(sql, {schema, table}).rows) out.push_back(r[0].value_or(""));
  return out;
}

std::string SinkColumnType(Pg& pg, const std::string& schema, const std::string& table,
                           const std::string& column) {
  auto v = pg.Scalar(
      "SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a JOIN pg_class c ON c.oid = "
      "a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND "
      "c.relname = $2 AND a.attname = $3 AND a.attnum > 0 AND NOT a.attisdropped",
      {schema, table, column});
  return v.value_or("");
}

namespace {

struct SourceIdentity {
  std::vector<std::string> pk;                        // declared primary key, in order
  std::vector<std::vector<std::string>> unique_sets;  // UNIQUE indexes on NOT NULL columns
};

SourceIdentity DescribeIdentity(Sqlite& src, const std::string& table) {
  SourceIdentity id;
  std::map<std::string, bool> not_null;
  std::vector<std::pair<int64_t, std::string>> pk;
  for (auto& r : src.Query("SELECT name, \"notnull\", pk FROM pragma_table_info(?)",
                           {SqlValue::Text(table)})) {
    not_null[r[0].bytes] = r[1].i != 0;
    if (r[2].i > 0) pk.emplace_back(r[2].i, r[0].bytes);
  }
  std::sort(pk.begin(), pk.end());
  for (auto& p : pk) id.pk.push_back(p.second);
  for (auto& ix : src.Query("SELECT name, \"unique\", partial FROM pragma_index_list(?)",
                            {SqlValue::Text(table)})) {
    if (ix[1].i == 0 || ix[2].i != 0) continue;
    std::vector<std::string> cols;
    bool usable = true;
    for (auto& c : src.Query("SELECT cid, name FROM pragma_index_info(?) ORDER BY seqno",
                             {SqlValue::Text(ix[0].bytes)})) {
      if (c[0].i < 0 || c[1].type != SQLITE_TEXT || !not_null[c[1].bytes]) usable = false;
      if (c[1].type == SQLITE_TEXT) cols.push_back(c[1].bytes);
    }
    if (usable && !cols.empty()) id.unique_sets.push_back(cols);
  }
  return id;
}

std::string RowidName(const std::vector<std::string>& columns) {
  for (const char* n : {"rowid", "_rowid_", "oid"}) {
    bool shadowed = false;
    for (const std::string& c : columns) {
      shadowed = shadowed || (c.size() == std::strlen(n) && ContainsNoCase(c, n));
    }
    if (!shadowed) return n;
  }
  return "";
}

void CompareTable(Sqlite& src, Pg& pg, const std::string& schema, const std::string& table,
                  const CompareOptions& options, CompareReport* report) {
  auto problem = [&](const std::string& what) { report->problems.push_back(table + ": " + what); };
  if (!pg.TableExists(schema, table)) return problem("no mirror table " + PgTable(schema, table));

  std::vector<std::string> key = SinkKeyColumns(pg, schema, table);
  if (key.empty()) return problem("mirror table has no primary key or unique index");
  bool rowid_key = key.size() == 1 && key[0] == "_sluice_rowid";

  std::vector<std::string> src_cols;
  for (auto& r :
       src.Query("SELECT name FROM pragma_table_info(?) ORDER BY cid", {SqlValue::Text(table)})) {
    src_cols.push_back(r[0].bytes);
  }

  // The row identity the design prescribes.
  SourceIdentity ident = DescribeIdentity(src, table);
  auto show = [](const std::vector<std::string>& v) {
    std::string s = "(";
    for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + v[i];
    return s + ")";
  };
  if (!ident.pk.empty()) {
    if (key != ident.pk)
      problem("sink key " + show(key) + " is not the primary key " + show(ident.pk));
  } else if (!ident.unique_sets.empty()) {
    if (std::find(ident.unique_sets.begin(), ident.unique_sets.end(), key) ==
        ident.unique_sets.end()) {
      problem("sink key " + show(key) + " is not one of the NOT NULL unique indexes, e.g. " +
              show(ident.unique_sets[0]));
    }
  } else if (!rowid_key) {
    problem("sink key " + show(key) + " but the table has no key: expected _sluice_rowid");
  }

  std::string select = "SELECT ";
  std::vector<std::string> names;
  if (rowid_key) {
    std::string rowid = RowidName(src_cols);
    if (rowid.empty()) return problem("every rowid alias is shadowed; cannot compare");
    select += rowid + " AS _sluice_rowid, ";
    names.push_back("_sluice_rowid");
  }
  for (size_t i = 0; i < src_cols.size(); ++i) {
    select += (i ? ", " : "") + QuoteIdent(src_cols[i]);
    names.push_back(src_cols[i]);
  }
  select += " FROM " + QuoteIdent(table);
  std::vector<SqlRow> src_rows = src.Query(select);

  PgRows sink = pg.Query("SELECT * FROM " + PgTable(schema, table));
  int deleted_col = sink.Col("_sluice_deleted_at");
  if (deleted_col < 0) return problem("mirror table has no _sluice_deleted_at column");
  for (const char* c : {"_sluice_seq", "_sluice_updated_at"}) {
    if (sink.Col(c) < 0) problem(std::string("mirror table has no ") + c + " column");
  }
  std::vector<int> sink_idx;  // per source column (names), the sink column
  for (const std::string& n : names) {
    int c = sink.Col(n);
    if (c < 0) {
      problem("column '" + n + "' is missing at the sink");
      return;
    }
    sink_idx.push_back(c);
  }
  std::vector<int> key_sink;
  std::vector<int> key_src;
  for (const std::string& k : key) {
    key_sink.push_back(sink.Col(k));
    auto it = std::find(names.begin(), names.end(), k);
    if (it == names.end()) return problem("sink key column '" + k + "' is not a source column");
    key_src.push_back(static_cast<int>(it - names.begin()));
  }

  std::map<std::string, size_t> sink_by_key;
  for (size_t r = 0; r < sink.rows.size(); ++r) {
    std::vector<std::string> parts;
    for (int c : key_sink)
      parts.push_back(
          CanonPgKey(sink.rows[r][static_cast<size_t>(c)], sink.types[static_cast<size_t>(c)]));
    if (!sink_by_key.emplace(JoinKey(parts), r).second) problem("two mirror rows share a key");
  }

  std::set<std::string> seen;
  int shown = 0;
  auto limited = [&](const std::string& what) {
    if (++shown <= 15) problem(what);
  };
  for (const SqlRow& row : src_rows) {
    std::vector<std::string> parts;
    std::string key_text;
    for (size_t i = 0; i < key_src.size(); ++i) {
      const SqlValue& v = row[static_cast<size_t>(key_src[i])];
      parts.push_back(CanonSourceKey(v, sink.types[static_cast<size_t>(key_sink[i])]));
      key_text += (i ? ", " : "") + key[i] + "=" + v.Describe();
    }
    std::string k = JoinKey(parts);
    SourceRowRef ref{&names, &row};
    bool parked = options.is_parked && options.is_parked(table, ref);
    if (!seen.insert(k).second) {
      if (parked) {
        ++report->rows_parked;
        continue;
      }
      limited("two source rows map to the same sink key (" + key_text + ")");
      continue;
    }
    auto it = sink_by_key.find(k);
    if (it == sink_by_key.end()) {
      if (parked) {
        ++report->rows_parked;
        continue;
      }
      limited("source row (" + key_text + ") is missing at the sink");
      continue;
    }
    const auto& srow = sink.rows[it->second];
    if (srow[static_cast<size_t>(deleted_col)].has_value()) {
      if (parked) {
        ++report->rows_parked;
        continue;
      }
      limited("source row (" + key_text + ") is tombstoned at the sink");
      continue;
    }
    std::string diffs;
    for (size_t c = 0; c < names.size(); ++c) {
      size_t sc = static_cast<size_t>(sink_idx[c]);
      if (!ValueEquals(row[c], srow[sc], sink.types[sc])) {
        diffs += "\n      " + names[c] + ": source " + row[c].Describe() + " vs sink " +
                 (srow[sc] ? "'" + Preview(*srow[sc]) + "'" : std::string("NULL")) + " (type oid " +
                 std::to_string(sink.types[sc]) + ")";
      }
    }
    if (!diffs.empty()) {
      if (parked) {
        ++report->rows_parked;
        continue;
      }
      limited("row (" + key_text + ") differs:" + diffs);
      continue;
    }
    ++report->rows_compared;
  }
  for (auto& [k, r] : sink_by_key) {
    if (seen.count(k) != 0) continue;
    if (!sink.rows[r][static_cast<size_t>(deleted_col)].has_value()) {
      std::string key_text;
      for (size_t i = 0; i < key_sink.size(); ++i) {
        const auto& v = sink.rows[r][static_cast<size_t>(key_sink[i])];
        key_text += (i ? ", " : "") + key[i] + "=" + (v ? Preview(*v) : "NULL");
      }
      limited("mirror row (" + key_text +
              ") is live but not in the source (should be a tombstone)");
    }
  }
  if (shown > 15) problem("... " + std::to_string(shown - 15) + " more row problem(s)");
}

}  // namespace

CompareReport CompareMirror(Sqlite& src, Pg& pg, const std::string& schema,
                            const CompareOptions& options) {
  CompareReport report;
  std::vector<std::string> tables = options.tables.empty() ? AppTables(src) : options.tables;
  for (const std::string& t : tables) {
    ++report.tables;
    try {
      CompareTable(src, pg, schema, t, options, &report);
    } catch (const std::exception& e) {
      report.problems.push_back(t + ": " + e.what());
    }
  }
  return report;
}

std::optional<bool> SinkRowTombstoned(Pg& pg, const std::string& schema, const std::string& table,
                                      const std::vector<std::pair<std::string, std::string>>& key) {
  std::string sql =
      "SELECT _sluice_deleted_at IS NOT NULL FROM " + PgTable(schema, table) + " WHERE ";
  std::vector<std::optional<std::string>> params;
  for (size_t i = 0; i < key.size(); ++i) {
    sql += (i ? " AND " : "") + QuoteIdent(key[i].first) + "::text = $" + std::to_string(i + 1);
    params.emplace_back(key[i].second);
  }
  PgRows r = pg.Query(sql, params);
  if (r.rows.empty()) return std::nullopt;
  return r.rows[0][0].value_or("f") == "t";
}

std::string CheckBatchChain(Pg& pg, const std::string& deployment, int64_t* batches) {
  PgRows r = pg.Query(
      "SELECT after_seq, snapshot_seq FROM sync_metadata.applied_batches WHERE deployment = $1 "
      "ORDER BY after_seq, snapshot_seq",
      {deployment});
  if (batches != nullptr) *batches = static_cast<int64_t>(r.rows.size());
  if (r.rows.empty()) return "no applied_batches rows for deployment " + deployment;
  std::ostringstream problems;
  int64_t prev = 0;
  for (size_t i = 0; i < r.rows.size(); ++i) {
    auto a = ParseInt(r.rows[i][0].value_or("x"));
    auto b = ParseInt(r.rows[i][1].value_or("x"));
    if (!a || !b) return "non-integer applied_batches row";
    if (*b < *a) problems << "batch (" << *a << ", " << *b << "] goes backwards; ";
    if (i > 0 && *a != prev) {
      problems << "batch " << i << " starts after " << *a << " but the previous one ended at "
               << prev << (*a < prev ? " (overlap: applied twice)" : " (gap: changes skipped)")
               << "; ";
    }
    prev = *b;
  }
  int64_t pos = pg.ScalarInt(
      "SELECT applied_seq FROM sync_metadata.source_position WHERE deployment = $1", {deployment});
  if (pos != prev) problems << "the last batch ends at " << prev << " but the position is " << pos;
  return problems.str();
}

// ---------------------------------------------------------------- app writer

RandomWriter::RandomWriter(std::string db_path, Options options)
    : db_path_(std::move(db_path)), options_(std::move(options)), rng_(options_.seed) {}

RandomWriter::~RandomWriter() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void RandomWriter::LoadKeys() {
  Sqlite db(db_path_);
  message_ids_.clear();
  tag_keys_.clear();
  prompt_ids_.clear();
  for (const std::string& t : options_.tables) {
    if (t == "message") {
      for (auto& r : db.Query("SELECT id FROM message")) message_ids_.push_back(r[0].bytes);
    } else if (t == "tag") {
      for (auto& r : db.Query("SELECT id, user_id FROM tag"))
        tag_keys_.emplace_back(r[0].bytes, r[1].bytes);
    } else if (t == "prompt") {
      for (auto& r : db.Query("SELECT id FROM prompt")) prompt_ids_.push_back(r[0].i);
    }
  }
}

void RandomWriter::Start() {
  thread_ = std::thread([this] { Run(); });
}

void RandomWriter::Stop() {
  stop_ = true;
  Join();
}

void RandomWriter::Join() {
  if (thread_.joinable()) thread_.join();
}

std::vector<std::string> RandomWriter::errors() {
  std::lock_guard<std::mutex> lock(mu_);
  return errors_;
}

std::vector<std::vector<std::pair<std::string, std::string>>> RandomWriter::DeletedKeys(
    const std::string& table) {
  std::lock_guard<std::mutex> lock(mu_);
  return deleted_[table];
}

void RandomWriter::Run() {
  try {
    Sqlite db(db_path_);
    for (;;) {
      int64_t n = changes_.load();
      if (options_.run_until_stopped) {
        if (stop_ && n >= options_.min_changes) break;
      } else if (n >= options_.min_changes || stop_) {
        break;
      }
      if (!OneTransaction(db)) {
        std::lock_guard<std::mutex> lock(mu_);
        if (errors_.size() > 20) break;
      }
      if (options_.pause_us > 0)
        std::this_thread::sleep_for(std::chrono::microseconds(options_.pause_us));
    }
  } catch (const std::exception& e) {
    std::lock_guard<std::mutex> lock(mu_);
    errors_.push_back(std::string("writer: ") + e.what());
  }
}

namespace {

const char* kTexts[] = {
    "hello",
    "héllo wörld ✓",
    "quote ' and \" and \\",
    "emoji 😀 and 中文",
    "line\nbreak\ttab",
    "",
    "a much longer message that goes on and on, as chat messages do, with ; and -- in it",
};

}  // namespace

bool RandomWriter::OneTransaction(Sqlite& db) {
  std::uniform_int_distribution<int> rows_dist(1, options_.max_txn_rows);
  std::uniform_int_distribution<int> op_dist(0, 99);
  std::uniform_int_distribution<size_t> table_dist(0, options_.tables.size() - 1);
  int n = rows_dist(rng_);
  std::map<std::string, std::vector<std::vector<std::pair<std::string, std::string>>>>
      pending_deleted;
  auto text = [&](int64_t salt) {
    return std::string(kTexts[static_cast<size_t>(salt) % (sizeof kTexts / sizeof kTexts[0])]) +
           " #" + std::to_string(salt);
  };
  auto json = [&](int64_t salt) {
    return "{\"n\": " + std::to_string(salt) + ", \"s\": " + JsonString(text(salt)) +
           ", \"a\": [1, 2.5, null, true, {\"k\": \"v\"}], \"z\": -0.125}";
  };
  auto pick = [&](size_t size) { return std::uniform_int_distribution<size_t>(0, size - 1)(rng_); };
  std::string err;
  int rc = db.TryExec("BEGIN", &err);
  bool ok = rc == SQLITE_OK;
  for (int i = 0; ok && i < n; ++i) {
    const std::string& table = options_.tables[table_dist(rng_)];
    int op = op_dist(rng_);
    int64_t c = options_.key_base + ++counter_;
    int64_t ns = 1730000000000000000LL + c * 1000 + 7;
    if (table == "message") {
      if (message_ids_.empty() || op < 40) {
        std::string id = "msg-" + std::to_string(c);
        rc = db.TryRun(
            "INSERT INTO message (id, user_id, channel_id, content, data, meta, created_at, "
            "updated_at, parent_id) VALUES (?, ?, ?, ?, ?, '{}', ?, ?, ?)",
            {SqlValue::Text(id), SqlValue::Text("user-" + std::to_string(c % 7)),
             SqlValue::Text("chan-1"), SqlValue::Text(text(c)), SqlValue::Text(json(c)),
             SqlValue::Int(ns), SqlValue::Int(ns),
             message_ids_.empty() ? SqlValue::Null()
                                  : SqlValue::Text(message_ids_[pick(message_ids_.size())])},
            &err);
        if (rc == SQLITE_OK) message_ids_.push_back(id);
      } else {
        size_t at = pick(message_ids_.size());
        std::string id = message_ids_[at];
        if (op < 70) {
          rc = db.TryRun("UPDATE message SET content = ?, data = ?, updated_at = ? WHERE id = ?",
                         {SqlValue::Text(text(c)), SqlValue::Text(json(c)), SqlValue::Int(ns),
                          SqlValue::Text(id)},
                         &err);
        } else if (op < 85) {
          rc = db.TryRun("DELETE FROM message WHERE id = ?", {SqlValue::Text(id)}, &err);
          if (rc == SQLITE_OK) {
            pending_deleted["message"].push_back({{"id", id}});
            message_ids_[at] = message_ids_.back();
            message_ids_.pop_back();
          }
        } else {
          std::string nid = "msg-" + std::to_string(c) + "-moved";
          rc = db.TryRun("UPDATE message SET id = ? WHERE id = ?",
                         {SqlValue::Text(nid), SqlValue::Text(id)}, &err);
          if (rc == SQLITE_OK) {
            pending_deleted["message"].push_back({{"id", id}});
            message_ids_[at] = nid;
          }
        }
      }
    } else if (table == "tag") {
      if (tag_keys_.empty() || op < 40) {
        std::pair<std::string, std::string> k{"tag-" + std::to_string(c),
                                              "user-" + std::to_string(c % 5)};
        rc = db.TryRun("INSERT INTO tag (id, name, user_id, meta) VALUES (?, ?, ?, ?)",
                       {SqlValue::Text(k.first), SqlValue::Text(text(c)), SqlValue::Text(k.second),
                        c % 3 == 0 ? SqlValue::Null() : SqlValue::Text(json(c))},
                       &err);
        if (rc == SQLITE_OK) tag_keys_.push_back(k);
      } else {
        size_t at = pick(tag_keys_.size());
        auto k = tag_keys_[at];
        if (op < 70) {
          rc = db.TryRun("UPDATE tag SET name = ?, meta = ? WHERE id = ? AND user_id = ?",
                         {SqlValue::Text(text(c)), SqlValue::Text(json(c)), SqlValue::Text(k.first),
                          SqlValue::Text(k.second)},
                         &err);
        } else if (op < 85) {
          rc = db.TryRun("DELETE FROM tag WHERE id = ? AND user_id = ?",
                         {SqlValue::Text(k.first), SqlValue::Text(k.second)}, &err);
          if (rc == SQLITE_OK) {
            pending_deleted["tag"].push_back({{"id", k.first}, {"user_id", k.second}});
            tag_keys_[at] = tag_keys_.back();
            tag_keys_.pop_back();
          }
        } else {
          std::string nuser = "user-moved-" + std::to_string(c);
          rc = db.TryRun("UPDATE tag SET user_id = ? WHERE id = ? AND user_id = ?",
                         {SqlValue::Text(nuser), SqlValue::Text(k.first), SqlValue::Text(k.second)},
                         &err);
          if (rc == SQLITE_OK) {
            pending_deleted["tag"].push_back({{"id", k.first}, {"user_id", k.second}});
            tag_keys_[at].second = nuser;
          }
        }
      }
    } else if (table == "prompt") {
      if (prompt_ids_.empty() || op < 40) {
        int64_t id = 1000000 + c;
        rc = db.TryRun(
            "INSERT INTO prompt (id, command, user_id, title, content, timestamp, access_control) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            {SqlValue::Int(id), SqlValue::Text("/cmd-" + std::to_string(c)),
             SqlValue::Text("user-1"), SqlValue::Text(text(c)), SqlValue::Text(text(c + 1)),
             SqlValue::Int(1730000000 + c),
             c % 2 == 0 ? SqlValue::Null() : SqlValue::Text(json(c))},
            &err);
        if (rc == SQLITE_OK) prompt_ids_.push_back(id);
      } else {
        size_t at = pick(prompt_ids_.size());
        int64_t id = prompt_ids_[at];
        if (op < 70) {
          rc = db.TryRun("UPDATE prompt SET title = ?, content = ?, timestamp = ? WHERE id = ?",
                         {SqlValue::Text(text(c)), SqlValue::Text(text(c + 2)),
                          SqlValue::Int(1730000000 + c), SqlValue::Int(id)},
                         &err);
        } else if (op < 85) {
          rc = db.TryRun("DELETE FROM prompt WHERE id = ?", {SqlValue::Int(id)}, &err);
          if (rc == SQLITE_OK) {
            pending_deleted["prompt"].push_back({{"id", std::to_string(id)}});
            prompt_ids_[at] = prompt_ids_.back();
            prompt_ids_.pop_back();
          }
        } else {
          int64_t nid = 1000000 + c;
          rc = db.TryRun("UPDATE prompt SET id = ? WHERE id = ?",
                         {SqlValue::Int(nid), SqlValue::Int(id)}, &err);
          if (rc == SQLITE_OK) {
            pending_deleted["prompt"].push_back({{"id", std::to_string(id)}});
            prompt_ids_[at] = nid;
          }
        }
      }
    }
    ok = rc == SQLITE_OK;
  }
  if (ok) {
    rc = db.TryExec("COMMIT", &err);
    ok = rc == SQLITE_OK;
  }
  if (!ok) {
    if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED) ++busy_errors_;
    {
      std::lock_guard<std::mutex> lock(mu_);
      errors_.push_back("app write failed (rc " + std::to_string(rc) + "): " + err);
    }
    db.TryExec("ROLLBACK");
    LoadKeys();  // the rolled-back statements changed the in-memory keys
    return false;
  }
  changes_ += n;
  ++transactions_;
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [t, keys] : pending_deleted) {
    auto& all = deleted_[t];
    all.insert(all.end(), keys.begin(), keys.end());
  }
  return true;
}

// ---------------------------------------------------------------- fixture

void E2eTest::SetUp() {
  dir_ = std::make_unique<sluice::testing::TempDir>();
  pg_url_ = sluice::testing::PgConninfoOrSkip();
  if (pg_url_.empty()) {
    skipped_ = true;
    if (!IsSkipped()) GTEST_FAIL() << "no PostgreSQL test server";
    return;
  }
  deployment_ = sluice::testing::UniqueName("e2e");
  pg_ = std::make_unique<Pg>(pg_url_);
}

void E2eTest::TearDown() {
  for (auto& a : agents_) a->KillHard();
  if (HasFailure()) {
    std::cerr << "\n===== agent logs (deployment " << deployment_ << ") =====\n"
              << AgentLogs() << "\n";
  } else if (pg_ != nullptr) {
    PgRows ignored;
    std::string err;
    pg_->TryQuery("DROP SCHEMA IF EXISTS " + QuoteIdent(deployment_) + " CASCADE", &ignored, &err);
  }
  agents_.clear();
}

AgentConfig E2eTest::BaseConfig(const std::string& db_path, const std::string& sink_url) {
  AgentConfig c;
  c.deployment = deployment_;
  c.db_path = db_path;
  c.sink_url = sink_url.empty() ? pg_url_ : sink_url;
  c.schema = deployment_;
  return c;
}

std::string E2eTest::WriteConfig(const std::string& db_path, const std::string& sink_url,
                                 const std::function<void(AgentConfig&)>& tweak,
                                 const std::string& file_name) {
  AgentConfig c = BaseConfig(db_path, sink_url);
  if (tweak) tweak(c);
  return c.Write(dir_->file(file_name));
}

AgentProcess* E2eTest::StartAgent(const std::string& config_path, const std::string& name) {
  std::string log = dir_->file(name + "-" + std::to_string(agents_.size()) + ".log");
  agents_.push_back(std::make_unique<AgentProcess>(SluiceBin(), config_path, log));
  agents_.back()->Start();
  return agents_.back().get();
}

CommandResult E2eTest::Init(const std::string& config_path) {
  CommandResult r = RunSluice({"init", "--config", config_path}, seconds(120));
  EXPECT_EQ(r.exit_code, 0) << "sluice init failed: " << r.Describe();
  return r;
}

std::string E2eTest::AgentLogs() {
  std::string out;
  for (auto& a : agents_) {
    out += "----- " + a->log_path() + " (last 200 lines) -----\n" + TailLines(a->Log(), 200) + "\n";
  }
  return out;
}

void E2eTest::ExpectMirrorEqual(Sqlite& src, const CompareOptions& options) {
  CompareReport report = CompareMirror(src, *pg_, deployment_, options);
  std::cerr << "mirror check: " << report.tables << " table(s), " << report.rows_compared
            << " row(s) equal, " << report.rows_parked << " parked, " << report.problems.size()
            << " problem(s)\n";
  EXPECT_TRUE(report.ok()) << "mirror differs from the source: " << report.Text();
  EXPECT_GT(report.rows_compared + report.rows_parked, 0) << "nothing was compared";
}

bool E2eTest::ExpectCaughtUp(const std::string& config_path, AgentProcess* agent,
                             milliseconds timeout) {
  if (timeout.count() == 0) timeout = catch_up_timeout_;
  AgentStatus s = WaitCaughtUp(config_path, agent, timeout);
  if (s.CaughtUp()) return true;
  ADD_FAILURE() << "the agent did not catch up within " << timeout.count()
                << " ms; last status: " << (s.ok ? s.raw : s.error);
  return false;
}

std::vector<std::string> WriteRandomChanges(const std::string& db_path,
                                            RandomWriter::Options options, bool load_keys) {
  options.run_until_stopped = false;
  RandomWriter writer(db_path, options);
  if (load_keys) writer.LoadKeys();
  writer.Start();
  writer.Join();
  return writer.errors();
}

}  // namespace sluice::e2e
