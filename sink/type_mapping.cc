// Type mapping rules (see the table in type_mapping.h).
#include "sink/type_mapping.h"

#include <cctype>
#include <string>

#include "common/value.h"

namespace sluice {
namespace {

enum class Affinity { kInteger, kText, kBlob, kReal, kNumeric };

std::string Upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// SQLite's rules, https://sqlite.org/datatype3.html section 3.1.
Affinity AffinityOf(const std::string& upper) {
  if (upper.find("INT") != std::string::npos) return Affinity::kInteger;
  if (upper.find("CHAR") != std::string::npos || upper.find("CLOB") != std::string::npos ||
      upper.find("TEXT") != std::string::npos)
    return Affinity::kText;
  if (upper.find("BLOB") != std::string::npos || Trim(upper).empty()) return Affinity::kBlob;
  if (upper.find("REAL") != std::string::npos || upper.find("FLOA") != std::string::npos ||
      upper.find("DOUB") != std::string::npos)
    return Affinity::kReal;
  return Affinity::kNumeric;
}

// The declared type's name without "(n)" and surrounding blanks.
std::string BaseName(const std::string& upper) {
  std::string_view s = upper;
  size_t paren = s.find('(');
  if (paren != std::string_view::npos) s = s.substr(0, paren);
  return std::string(Trim(s));
}

constexpr uint8_t kI = Value::Bit(Value::Kind::kInteger);
constexpr uint8_t kR = Value::Bit(Value::Kind::kReal);
constexpr uint8_t kT = Value::Bit(Value::Kind::kText);
constexpr uint8_t kB = Value::Bit(Value::Kind::kBlob);

bool IsIdentStart(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool IsIdentChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '$';
}

// Words that may follow the first word of a type name: PostgreSQL's
// multi-word types are spelled with these only, so a constraint or a
// DEFAULT clause cannot pass as "more of the type".
bool IsTypeWord(const std::string& upper) {
  static const char* kWords[] = {"PRECISION", "VARYING", "WITH",  "WITHOUT", "TIME",
                                 "ZONE",      "YEAR",    "MONTH", "DAY",     "HOUR",
                                 "MINUTE",    "SECOND",  "TO"};
  for (const char* w : kWords) {
    if (upper == w) return true;
  }
  return false;
}

// The type-name grammar of CheckPgTypeName, as a small scanner over `s`.
class TypeNameScanner {
 public:
  explicit TypeNameScanner(std::string_view s) : s_(s) {}

  // Returns "" when the whole text is a type name, else what is wrong.
  std::string Check() {
    SkipBlanks();
    std::string word;
    if (!Ident(&word)) return "it must start with a type name";
    if (Peek('.')) {
      ++i_;
      if (!Ident(&word)) return "a schema-qualified name needs a type name after the '.'";
      if (Peek('.')) return "at most one schema qualification is allowed";
    }
    bool typmod = false;
    for (;;) {
      if (Peek('(')) {
        if (typmod) return "only one (n) or (n,m) modifier is allowed";
        std::string why = Typmod();
        if (!why.empty()) return why;
        typmod = true;
        continue;
      }
      size_t before = i_;
      SkipBlanks();
      if (AtEnd()) return "";
      if (Peek('[')) return Arrays();
      if (i_ == before && !Peek('(')) return Unexpected();
      if (Peek('(')) continue;
      if (!Ident(&word)) return Unexpected();
      if (!IsTypeWord(Upper(word))) {
        return "\"" + word + "\" is not part of a type name (no DEFAULT, constraints or clauses)";
      }
    }
  }

 private:
  bool AtEnd() const { return i_ >= s_.size(); }
  bool Peek(char c) const { return i_ < s_.size() && s_[i_] == c; }
  void SkipBlanks() {
    while (i_ < s_.size() && s_[i_] == ' ') ++i_;
  }
  bool Ident(std::string* out) {
    if (AtEnd() || !IsIdentStart(s_[i_])) return false;
    size_t start = i_;
    while (i_ < s_.size() && IsIdentChar(s_[i_])) ++i_;
    *out = std::string(s_.substr(start, i_ - start));
    return out->size() <= kMaxIdentifierBytes;
  }
  bool Digits() {
    size_t start = i_;
    while (i_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[i_]))) ++i_;
    return i_ > start && i_ - start <= 9;
  }
  std::string Typmod() {
    ++i_;  // '('
    SkipBlanks();
    if (!Digits()) return "a type modifier must be (n) or (n,m) with numbers";
    SkipBlanks();
    if (Peek(',')) {
      ++i_;
      SkipBlanks();
      if (!Digits()) return "a type modifier must be (n) or (n,m) with numbers";
      SkipBlanks();
    }
    if (!Peek(')')) return "a type modifier must be (n) or (n,m) with numbers";
    ++i_;
    return "";
  }
  std::string Arrays() {
    while (Peek('[')) {
      ++i_;
      if (!Peek(']') && !Digits()) return "an array suffix must be [] or [n]";
      if (!Peek(']')) return "an array suffix must be [] or [n]";
      ++i_;
    }
    SkipBlanks();
    return AtEnd() ? "" : Unexpected();
  }
  std::string Unexpected() const {
    return "unexpected '" + std::string(1, s_[i_]) + "' at offset " + std::to_string(i_);
  }

  std::string_view s_;
  size_t i_ = 0;
};

}  // namespace

const char* TargetKindName(TargetKind kind) {
  switch (kind) {
    case TargetKind::kBigint:
      return "bigint";
    case TargetKind::kInteger:
      return "integer";
    case TargetKind::kSmallint:
      return "smallint";
    case TargetKind::kBoolean:
      return "boolean";
    case TargetKind::kDouble:
      return "double precision";
    case TargetKind::kNumeric:
      return "numeric";
    case TargetKind::kText:
      return "text";
    case TargetKind::kJsonb:
      return "jsonb";
    case TargetKind::kBytea:
      return "bytea";
    case TargetKind::kOther:
      return "other";
  }
  return "?";
}

std::string MapColumnType(const ColumnShape& column) {
  if (column.name == kRowidColumn) return "bigint";
  const std::string upper = Upper(column.declared_type);
  const std::string base = BaseName(upper);
  const uint8_t held = column.seen_kinds & static_cast<uint8_t>(kI | kR | kT | kB);
  const bool some_text = (held & kT) != 0;
  const bool some_blob = (held & kB) != 0;

  if (base == "BOOLEAN" || base == "BOOL") {
    if ((held & ~kI) == 0 && column.integers_all_bool) return "boolean";
    if (held == kI) return "bigint";
    return "text";
  }
  if (base == "JSON") {
    if ((held & ~kT) == 0 && column.text_all_json) return "jsonb";
    return "text";
  }
  if (base == "DATETIME" || base == "DATE" || base == "TIME" || base.rfind("TIMESTAMP", 0) == 0) {
    return held == kI ? "bigint" : "text";
  }
  switch (AffinityOf(upper)) {
    case Affinity::kInteger:
      if (some_text || some_blob) return "text";
      if (held & kR) return "double precision";
      return "bigint";
    case Affinity::kReal:
      if (some_text || some_blob) return "text";
      return "double precision";
    case Affinity::kText:
      return "text";
    case Affinity::kNumeric:
      if (some_text || some_blob) return "text";
      return "numeric";
    case Affinity::kBlob:
      if (held == 0) return base.empty() ? "text" : "bytea";
      if (held == kB) return "bytea";
      if (held == kI) return "bigint";
      if ((held & ~(kI | kR)) == 0) return "double precision";
      return "text";
  }
  return "text";
}

TargetKind KindOfPgType(std::string_view pg_type) {
  std::string t = Upper(Trim(pg_type));
  // Arrays are "other": PostgreSQL parses their text form.
  if (t.size() >= 2 && t.compare(t.size() - 2, 2, "[]") == 0) return TargetKind::kOther;
  std::string base = BaseName(t);
  if (base == "BIGINT" || base == "INT8" || base == "BIGSERIAL" || base == "SERIAL8")
    return TargetKind::kBigint;
  if (base == "INTEGER" || base == "INT" || base == "INT4" || base == "SERIAL" || base == "SERIAL4")
    return TargetKind::kInteger;
  if (base == "SMALLINT" || base == "INT2" || base == "SMALLSERIAL" || base == "SERIAL2")
    return TargetKind::kSmallint;
  if (base == "BOOLEAN" || base == "BOOL") return TargetKind::kBoolean;
  if (base == "DOUBLE PRECISION" || base == "FLOAT8" || base == "REAL" || base == "FLOAT4" ||
      base == "FLOAT")
    return TargetKind::kDouble;
  if (base == "NUMERIC" || base == "DECIMAL") return TargetKind::kNumeric;
  if (base == "TEXT" || base == "CHARACTER VARYING" || base == "VARCHAR" || base == "CHARACTER" ||
      base == "CHAR" || base == "BPCHAR" || base == "NAME" || base == "CITEXT")
    return TargetKind::kText;
  if (base == "JSONB" || base == "JSON") return TargetKind::kJsonb;
  if (base == "BYTEA") return TargetKind::kBytea;
  return TargetKind::kOther;
}

Status CheckPgTypeName(std::string_view pg_type) {
  std::string why = TypeNameScanner(pg_type).Check();
  if (why.empty()) return Status::Ok();
  return Status::InvalidArgument("not a PostgreSQL type name: " + why);
}

}  // namespace sluice
