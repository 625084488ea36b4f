// Mirror comparator (see mirror_compare.h): canonical forms of keys and values
// on both sides, the sink key read from the catalog, the batch chain check.
#include "tests/integration/mirror_compare.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>

#include "common/hex.h"
#include "tests/integration/e2e_support.h"  // AppTables, ContainsNoCase

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

bool SameDouble(double a, double b) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  return a == b;
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

}  // namespace sluice::e2e
