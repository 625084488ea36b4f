// Key codec. REAL components are formatted by sqlite3_mprintf itself, so the
// C++ and the SQL forms agree even where SQLite's printf differs from glibc's.
#include "capture/key_codec.h"

#include <fmt/format.h>
#include <sqlite3.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <optional>

#include "common/hex.h"

namespace sluice {
namespace {

// Key text holds TEXT and BLOB bytes in upper-case hex, as SQLite's hex().
Result<std::string> UnhexComponent(std::string_view hex, std::string_view whole) {
  std::optional<std::string> out = Unhex(hex);
  if (!out) {
    return Status::InvalidArgument(fmt::format(
        "malformed key '{}': {}", whole, hex.size() % 2 != 0 ? "odd hex length" : "bad hex digit"));
  }
  return *std::move(out);
}

Result<Value> DecodeComponent(std::string_view c, std::string_view whole) {
  if (c.empty())
    return Status::InvalidArgument(fmt::format("malformed key '{}': empty component", whole));
  std::string_view body = c.substr(1);
  switch (c[0]) {
    case 'n':
      if (!body.empty()) break;
      return Value::Null();
    case 'i': {
      int64_t v = 0;
      auto [p, ec] = std::from_chars(body.data(), body.data() + body.size(), v);
      if (ec != std::errc() || p != body.data() + body.size() || body.empty()) break;
      return Value::Integer(v);
    }
    case 'r': {
      if (body == "Inf" || body == "+Inf")
        return Value::Real(std::numeric_limits<double>::infinity());
      if (body == "-Inf") return Value::Real(-std::numeric_limits<double>::infinity());
      if (body.empty()) break;
      std::string s(body);
      char* end = nullptr;
      errno = 0;
      double v = std::strtod(s.c_str(), &end);
      if (end != s.c_str() + s.size() || std::isnan(v)) break;
      return Value::Real(v);
    }
    case 't': {
      Result<std::string> b = UnhexComponent(body, whole);
      if (!b.ok()) return b.status();
      return Value::Text(std::move(*b));
    }
    case 'b': {
      Result<std::string> b = UnhexComponent(body, whole);
      if (!b.ok()) return b.status();
      return Value::Blob(std::move(*b));
    }
    default:
      break;
  }
  return Status::InvalidArgument(
      fmt::format("malformed key '{:.200}': bad component '{:.80}'", whole, c));
}

}  // namespace

std::string EncodeKeyComponent(const Value& v) {
  switch (v.kind) {
    case Value::Kind::kNull:
      return "n";
    case Value::Kind::kInteger:
      return "i" + std::to_string(v.integer);
    case Value::Kind::kText:
      return "t" + Hex(v.bytes, HexCase::kUpper);
    case Value::Kind::kBlob:
      return "b" + Hex(v.bytes, HexCase::kUpper);
    case Value::Kind::kReal: {
      if (std::isnan(v.real)) return "n";  // SQLite stores NaN as NULL
      char* s = sqlite3_mprintf("%!.17g", v.real);
      std::string out = "r";
      if (s != nullptr) out += s;
      sqlite3_free(s);
      return out;
    }
  }
  return "n";
}

std::string EncodeKey(const std::vector<Value>& key) {
  std::string out;
  for (size_t i = 0; i < key.size(); ++i) {
    if (i > 0) out.push_back('|');
    out += EncodeKeyComponent(key[i]);
  }
  return out;
}

Result<std::vector<Value>> DecodeKey(std::string_view encoded) {
  std::vector<Value> out;
  size_t start = 0;
  for (;;) {
    size_t bar = encoded.find('|', start);
    std::string_view c = encoded.substr(start, bar == std::string_view::npos ? bar : bar - start);
    Result<Value> v = DecodeComponent(c, encoded);
    if (!v.ok()) return v.status();
    out.push_back(std::move(*v));
    if (bar == std::string_view::npos) break;
    start = bar + 1;
  }
  return out;
}

bool KeyHasReal(const std::vector<Value>& key) {
  for (const Value& v : key) {
    if (v.kind == Value::Kind::kReal) return true;
  }
  return false;
}

}  // namespace sluice
