// Python json.dumps output (see py_json.h).
#include "bench/py_json.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace sluice::bench {

namespace {

const char kHex[] = "0123456789abcdef";

void AppendU16(std::string* out, uint32_t unit) {
  char buf[6] = {'\\',
                 'u',
                 kHex[(unit >> 12) & 0xf],
                 kHex[(unit >> 8) & 0xf],
                 kHex[(unit >> 4) & 0xf],
                 kHex[unit & 0xf]};
  out->append(buf, sizeof(buf));
}

}  // namespace

void AppendPyJsonEscaped(std::string* out, std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      out->push_back(static_cast<char>(c));
      ++i;
      continue;
    }
    if (c < 0x80) {
      switch (c) {
        case '"':
          *out += "\\\"";
          break;
        case '\\':
          *out += "\\\\";
          break;
        case '\n':
          *out += "\\n";
          break;
        case '\r':
          *out += "\\r";
          break;
        case '\t':
          *out += "\\t";
          break;
        case '\b':
          *out += "\\b";
          break;
        case '\f':
          *out += "\\f";
          break;
        default:
          AppendU16(out, c);  // other controls and DEL
      }
      ++i;
      continue;
    }
    // A multi-byte sequence; the caller promised valid UTF-8.
    int len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
    uint32_t cp = c & (0x3f >> (len - 1));
    for (int k = 1; k < len && i + k < s.size(); ++k) {
      cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3f);
    }
    i += len;
    if (cp >= 0x10000) {
      cp -= 0x10000;
      AppendU16(out, 0xd800 | (cp >> 10));
      AppendU16(out, 0xdc00 | (cp & 0x3ff));
    } else {
      AppendU16(out, cp);
    }
  }
}

void AppendPyJsonString(std::string* out, std::string_view utf8) {
  out->push_back('"');
  AppendPyJsonEscaped(out, utf8);
  out->push_back('"');
}

std::string PyFloatRepr(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  // Shortest round-trip digits, as Python's repr picks them; only the layout differs.
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::scientific);
  std::string sci(buf, res.ptr);
  std::string out;
  if (sci[0] == '-') {
    out = "-";
    sci.erase(0, 1);
  }
  size_t e_pos = sci.find('e');
  int exp = std::atoi(sci.c_str() + e_pos + 1);
  std::string digits;
  for (size_t k = 0; k < e_pos; ++k) {
    if (sci[k] != '.') digits.push_back(sci[k]);
  }
  if (exp < -4 || exp >= 16) {
    out += digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    char ebuf[16];
    std::snprintf(ebuf, sizeof(ebuf), "e%c%02d", exp < 0 ? '-' : '+', std::abs(exp));
    return out + ebuf;
  }
  if (exp < 0) return out + "0." + std::string(static_cast<size_t>(-exp - 1), '0') + digits;
  auto int_len = static_cast<size_t>(exp + 1);
  if (digits.size() <= int_len)
    return out + digits + std::string(int_len - digits.size(), '0') + ".0";
  return out + digits.substr(0, int_len) + "." + digits.substr(int_len);
}

void PyJson::BeforeValue() {
  if (after_key_) {
    after_key_ = false;
    return;
  }
  if (first_.empty()) return;
  if (!first_.back()) *out_ += ", ";
  first_.back() = false;
}

PyJson& PyJson::BeginObject() {
  BeforeValue();
  out_->push_back('{');
  first_.push_back(true);
  return *this;
}

PyJson& PyJson::EndObject() {
  out_->push_back('}');
  first_.pop_back();
  return *this;
}

PyJson& PyJson::BeginArray() {
  BeforeValue();
  out_->push_back('[');
  first_.push_back(true);
  return *this;
}

PyJson& PyJson::EndArray() {
  out_->push_back(']');
  first_.pop_back();
  return *this;
}

PyJson& PyJson::Key(std::string_view utf8) {
  BeforeValue();
  AppendPyJsonString(out_, utf8);
  *out_ += ": ";
  after_key_ = true;
  return *this;
}

PyJson& PyJson::Str(std::string_view utf8) {
  BeforeValue();
  AppendPyJsonString(out_, utf8);
  return *this;
}

PyJson& PyJson::EscapedStr(std::string_view body) {
  BeforeValue();
  out_->push_back('"');
  *out_ += body;
  out_->push_back('"');
  return *this;
}

PyJson& PyJson::Int(int64_t v) {
  BeforeValue();
  *out_ += std::to_string(v);
  return *this;
}

PyJson& PyJson::Float(double v) {
  BeforeValue();
  *out_ += PyFloatRepr(v);
  return *this;
}

PyJson& PyJson::Bool(bool v) {
  BeforeValue();
  *out_ += v ? "true" : "false";
  return *this;
}

PyJson& PyJson::Null() {
  BeforeValue();
  *out_ += "null";
  return *this;
}

PyJson& PyJson::RawValue(std::string_view json) {
  BeforeValue();
  *out_ += json;
  return *this;
}

}  // namespace sluice::bench
