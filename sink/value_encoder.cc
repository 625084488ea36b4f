// Value encoding for PostgreSQL parameters (rules in value_encoder.h).
#include "sink/value_encoder.h"

#include <simdjson.h>

#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>

#include "common/hex.h"

namespace sluice {
namespace {

std::string_view TrimAscii(std::string_view s) {
  auto blank = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  while (!s.empty() && blank(s.front())) s.remove_prefix(1);
  while (!s.empty() && blank(s.back())) s.remove_suffix(1);
  return s;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

Status CheckText(std::string_view bytes) {
  if (!IsValidUtf8(bytes)) return Status::DataError("text is not valid UTF-8");
  if (bytes.find('\0') != std::string_view::npos)
    return Status::DataError("text contains a NUL byte, which PostgreSQL text cannot store");
  return Status::Ok();
}

std::string IntegerText(int64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

// Integral real in int64 range, converted exactly.
bool RealToInt64(double r, int64_t* out) {
  if (!std::isfinite(r) || r != std::trunc(r)) return false;
  if (r < -9223372036854775808.0 || r >= 9223372036854775808.0) return false;
  *out = static_cast<int64_t>(r);
  return true;
}

// "0", "-12", "345": no sign but '-', no leading zeros, no blanks.
bool CanonicalIntegerText(std::string_view s, int64_t* out) {
  std::string_view digits = s;
  if (!digits.empty() && digits.front() == '-') digits.remove_prefix(1);
  if (digits.empty() || (digits.size() > 1 && digits.front() == '0')) return false;
  if (s == "-0") return false;
  for (char c : digits)
    if (c < '0' || c > '9') return false;
  auto r = std::from_chars(s.data(), s.data() + s.size(), *out);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

// A PostgreSQL numeric literal: [+-]digits[.digits][e[+-]digits], or NaN/Infinity.
bool NumericLiteral(std::string_view s) {
  if (EqualsIgnoreCase(s, "nan") || EqualsIgnoreCase(s, "infinity") ||
      EqualsIgnoreCase(s, "+infinity") || EqualsIgnoreCase(s, "-infinity") ||
      EqualsIgnoreCase(s, "inf") || EqualsIgnoreCase(s, "+inf") || EqualsIgnoreCase(s, "-inf"))
    return true;
  size_t i = 0;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
  size_t int_digits = 0, frac_digits = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i, ++int_digits;
  if (i < s.size() && s[i] == '.') {
    ++i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i, ++frac_digits;
  }
  if (int_digits + frac_digits == 0) return false;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    size_t exp_digits = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i, ++exp_digits;
    if (exp_digits == 0) return false;
  }
  return i == s.size();
}

std::string RealAsText(double r) {
  std::string s = FormatDouble(r);
  if (std::isfinite(r) && s.find_first_of(".e") == std::string::npos) s += ".0";
  return s;
}

Status NotAnInteger(const Value& v) {
  switch (v.kind) {
    case Value::Kind::kReal:
      return Status::DataError(RealAsText(v.real) + " is not an integer");
    case Value::Kind::kText:
      return Status::DataError(PreviewBytes(v.bytes) + " is not an integer");
    default:
      return Status::DataError(std::string(KindName(v.kind)) + " is not an integer");
  }
}

Result<std::optional<std::string>> EncodeInteger(const Value& v, int64_t lo, int64_t hi,
                                                 const char* type) {
  int64_t n = 0;
  switch (v.kind) {
    case Value::Kind::kInteger:
      n = v.integer;
      break;
    case Value::Kind::kReal:
      if (!RealToInt64(v.real, &n)) return NotAnInteger(v);
      break;
    case Value::Kind::kText:
      if (!CanonicalIntegerText(v.bytes, &n)) return NotAnInteger(v);
      break;
    default:
      return NotAnInteger(v);
  }
  if (n < lo || n > hi) {
    return Status::DataError(IntegerText(n) + " is out of range for type " + type);
  }
  return std::optional<std::string>(IntegerText(n));
}

Result<std::optional<std::string>> EncodeTextual(const Value& v) {
  switch (v.kind) {
    case Value::Kind::kInteger:
      return std::optional<std::string>(IntegerText(v.integer));
    case Value::Kind::kReal:
      return std::optional<std::string>(RealAsText(v.real));
    case Value::Kind::kText:
      SLUICE_RETURN_IF_ERROR(CheckText(v.bytes));
      return std::optional<std::string>(v.bytes);
    case Value::Kind::kBlob:
      return Status::DataError("blob of " + std::to_string(v.bytes.size()) +
                               " bytes in a text column");
    case Value::Kind::kNull:
      break;
  }
  return std::optional<std::string>();
}

// A double precision or numeric column: integers and reals as text; text must
// hold a number, which a double column gets as the double's shortest text and
// a numeric column keeps digit for digit.
Result<std::optional<std::string>> EncodeNumber(const Value& v, TargetKind kind) {
  switch (v.kind) {
    case Value::Kind::kInteger:
      return std::optional<std::string>(IntegerText(v.integer));
    case Value::Kind::kReal:
      return std::optional<std::string>(FormatDouble(v.real));
    case Value::Kind::kText: {
      std::string_view s = TrimAscii(v.bytes);
      if (kind == TargetKind::kNumeric) {
        if (NumericLiteral(s)) return std::optional<std::string>(std::string(s));
      } else {
        if (!s.empty() && s.front() == '+') s.remove_prefix(1);
        double d = 0;
        auto r = std::from_chars(s.data(), s.data() + s.size(), d);
        if (!s.empty() && r.ec == std::errc() && r.ptr == s.data() + s.size()) {
          return std::optional<std::string>(FormatDouble(d));
        }
      }
      return Status::DataError(PreviewBytes(v.bytes) + " is not a number");
    }
    default:
      return Status::DataError("blob is not a number");
  }
}

Result<std::optional<std::string>> EncodeJsonb(const Value& v) {
  switch (v.kind) {
    case Value::Kind::kInteger:
      return std::optional<std::string>(IntegerText(v.integer));
    case Value::Kind::kReal:
      if (!std::isfinite(v.real)) {
        return Status::DataError(FormatDouble(v.real) + " is not a JSON number");
      }
      return std::optional<std::string>(FormatDouble(v.real));
    case Value::Kind::kText:
      SLUICE_RETURN_IF_ERROR(CheckText(v.bytes));
      SLUICE_RETURN_IF_ERROR(CheckJsonbText(v.bytes));
      return std::optional<std::string>(v.bytes);
    default:
      return Status::DataError("blob in a jsonb column");
  }
}

}  // namespace

bool IsValidUtf8(std::string_view bytes) { return simdjson::validate_utf8(bytes); }

Status CheckJsonbText(std::string_view text) {
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element doc;
  simdjson::error_code err = parser.parse(text.data(), text.size(), true).get(doc);
  // simdjson refuses numbers beyond 64 bits that jsonb (numeric) accepts:
  // leave those to PostgreSQL, which parks the row if it disagrees.
  if (err != simdjson::SUCCESS && err != simdjson::NUMBER_ERROR) {
    return Status::DataError(std::string("text is not valid JSON (") +
                             simdjson::error_message(err) + ")");
  }
  // jsonb stores strings as PostgreSQL text, which has no NUL.
  for (size_t i = 0; i + 1 < text.size(); ++i) {
    if (text[i] != '\\') continue;
    if (text[i + 1] == 'u' && text.substr(i + 2, 4) == "0000") {
      return Status::DataError("JSON contains \\u0000, which jsonb cannot store");
    }
    ++i;  // skip the escaped character
  }
  return Status::Ok();
}

Result<std::optional<std::string>> EncodeValue(const Value& value, TargetKind kind) {
  if (value.is_null()) return std::optional<std::string>();
  switch (kind) {
    case TargetKind::kBigint:
      return EncodeInteger(value, std::numeric_limits<int64_t>::min(),
                           std::numeric_limits<int64_t>::max(), "bigint");
    case TargetKind::kInteger:
      return EncodeInteger(value, std::numeric_limits<int32_t>::min(),
                           std::numeric_limits<int32_t>::max(), "integer");
    case TargetKind::kSmallint:
      return EncodeInteger(value, std::numeric_limits<int16_t>::min(),
                           std::numeric_limits<int16_t>::max(), "smallint");
    case TargetKind::kBoolean:
      if (value.kind == Value::Kind::kInteger && (value.integer == 0 || value.integer == 1)) {
        return std::optional<std::string>(value.integer == 1 ? "true" : "false");
      }
      if (value.kind == Value::Kind::kInteger) {
        return Status::DataError(IntegerText(value.integer) + " is not a boolean (0 or 1)");
      }
      if (value.kind == Value::Kind::kText) {
        return Status::DataError(PreviewBytes(value.bytes) + " is not a boolean (0 or 1)");
      }
      return Status::DataError(std::string(KindName(value.kind)) + " is not a boolean (0 or 1)");
    case TargetKind::kDouble:
    case TargetKind::kNumeric:
      return EncodeNumber(value, kind);
    case TargetKind::kJsonb:
      return EncodeJsonb(value);
    case TargetKind::kBytea:
      if (value.kind == Value::Kind::kBlob || value.kind == Value::Kind::kText) {
        return std::optional<std::string>("\\x" + Hex(value.bytes));
      }
      return Status::DataError(std::string(KindName(value.kind)) + " in a bytea column");
    case TargetKind::kText:
    case TargetKind::kOther:
      return EncodeTextual(value);
  }
  return Status::Internal("unknown target kind");
}

void AppendValueJson(std::string* out, const Value& value) {
  switch (value.kind) {
    case Value::Kind::kNull:
      *out += "null";
      return;
    case Value::Kind::kInteger:
      *out += IntegerText(value.integer);
      return;
    case Value::Kind::kReal:
      if (std::isfinite(value.real)) {
        *out += FormatDouble(value.real);
      } else {
        AppendJsonString(out, FormatDouble(value.real));
      }
      return;
    case Value::Kind::kText:
      if (CheckText(value.bytes).ok()) {
        AppendJsonString(out, value.bytes);
      } else {
        *out += "{\"$text_hex\": \"" + Hex(value.bytes) + "\"}";
      }
      return;
    case Value::Kind::kBlob:
      *out += "{\"$blob_hex\": \"" + Hex(value.bytes) + "\"}";
      return;
  }
}

std::string PreviewBytes(std::string_view bytes) {
  if (!CheckText(bytes).ok()) {
    return "text of " + std::to_string(bytes.size()) + " bytes";
  }
  constexpr size_t kMax = 40;
  if (bytes.size() <= kMax) return "'" + std::string(bytes) + "'";
  size_t cut = kMax;
  while (cut > 0 && (static_cast<unsigned char>(bytes[cut]) & 0xC0) == 0x80) --cut;
  return "'" + std::string(bytes.substr(0, cut)) + "...'";
}

std::string FormatDouble(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

}  // namespace sluice
