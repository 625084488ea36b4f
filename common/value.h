// Value: one SQLite value of any storage class, as captured, before any
// conversion for the sink. Plain data; safe to copy and move across threads.
#pragma once

#include <cstdint>
#include <string>

namespace sluice {

struct Value {
  enum class Kind : uint8_t { kNull = 0, kInteger = 1, kReal = 2, kText = 3, kBlob = 4 };

  Kind kind = Kind::kNull;
  int64_t integer = 0;
  double real = 0;
  std::string bytes;  // TEXT (any bytes, may be invalid UTF-8 or hold NUL) or BLOB

  static Value Null() { return Value(); }
  static Value Integer(int64_t v) {
    Value x;
    x.kind = Kind::kInteger;
    x.integer = v;
    return x;
  }
  static Value Real(double v) {
    Value x;
    x.kind = Kind::kReal;
    x.real = v;
    return x;
  }
  static Value Text(std::string v) {
    Value x;
    x.kind = Kind::kText;
    x.bytes = std::move(v);
    return x;
  }
  static Value Blob(std::string v) {
    Value x;
    x.kind = Kind::kBlob;
    x.bytes = std::move(v);
    return x;
  }

  bool is_null() const { return kind == Kind::kNull; }
  // Bit for `kind` in a seen-kinds mask (see ColumnShape::seen_kinds).
  static constexpr uint8_t Bit(Kind k) { return static_cast<uint8_t>(1u << static_cast<int>(k)); }

  // Bitwise equality (NaN equals NaN; +0.0 and -0.0 differ only by bits).
  friend bool operator==(const Value& a, const Value& b);
};

const char* KindName(Value::Kind k);

}  // namespace sluice
