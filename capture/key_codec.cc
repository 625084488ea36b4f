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

namespace sluice {
namespace {

constexpr char kHex[] = "0123456789ABCDEF";

std::string Hex(const std::string& bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 0xf]);
  }
  return out;
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

Result<std::string> Unhex(std::string_view hex, std::string_view whole) {
  if (hex.size() % 2 != 0) {
    return Status::InvalidArgument(fmt::format("malformed key '{}': odd hex length", whole));
  }
  std::string out;
  out.reserve(hex.size() / 2);
  for (size_t i = 0; i < hex.size(); i += 2) {
    int hi = HexDigit(hex[i]);
    int lo = HexDigit(hex[i + 1]);
    if (hi < 0 || lo < 0) {
      return Status::InvalidArgument(fmt::format("malformed key '{}': bad hex digit", whole));
    }
    out.push_back(static_cast<char>((hi << 4) | lo));
  }
  return out;
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
      Result<std::string> b = Unhex(body, whole);
      if (!b.ok()) return b.status();
      return Value::Text(std::move(*b));
    }
    case 'b': {
      Result<std::string> b = Unhex(body, whole);
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
      return "t" + Hex(v.bytes);
    case Value::Kind::kBlob:
      return "b" + Hex(v.bytes);
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
